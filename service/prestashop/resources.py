"""What ps2doli knows about each PrestaShop webservice resource it reads.

``list_key`` / ``single_key`` are the JSON keys (``objectsNodeName`` / ``objectNodeName`` of the class's
``webserviceParameters``; e.g. the resource ``order_slip`` lists under ``order_slips``).

``change_field`` says how changes are found (WEBSERVICE.md §6):

- ``"date_upd"``: the row has ``date_upd``, bumped on every save -> keyset over ``(date_upd, id)``;
- ``"date_add"``: only a creation date (none used at the moment: such resources are append-mostly and read by
  id);
- ``"id"``: append-mostly rows without ``date_upd`` (order_histories, order_payments, order_invoices,
  order_carriers): new rows have higher ids -> ``filter[id]=>[last_id]``;
- ``None``: no usable change marker (combinations, stock_availables, carriers…) -> a **sweep** reads every row
  with the few ``sweep_fields`` and the caller compares them (hash) with what it stored.

``sweep_fields`` are the fields a sweep reads (``display=[…]``; PrestaShop loads every object anyway, so the
list is short for payload size, not for query count). ``deletable`` says how rows disappear (WEBSERVICE.md
§8): ``"hard"`` (the row is gone: diff the id list), ``"soft"`` (the row stays with ``deleted=1``),
``"never"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ChangeField = Literal["date_upd", "date_add", "id"] | None
Deletable = Literal["hard", "soft", "never"]


@dataclass(frozen=True)
class ResourceSpec:
    name: str
    list_key: str
    single_key: str
    change_field: ChangeField
    sweep_fields: tuple[str, ...]
    deletable: Deletable

    @property
    def has_date_upd(self) -> bool:
        return self.change_field == "date_upd"


def _spec(
    name: str,
    single: str,
    change: ChangeField,
    sweep: tuple[str, ...],
    deletable: Deletable,
    plural: str | None = None,
) -> ResourceSpec:
    return ResourceSpec(name, plural or name, single, change, sweep, deletable)


RESOURCES: dict[str, ResourceSpec] = {
    spec.name: spec
    for spec in (
        # catalogue
        _spec("categories", "category", "date_upd", ("id", "id_parent", "active", "date_upd"), "hard"),
        _spec("products", "product", "date_upd", ("id", "reference", "price", "active", "date_upd"), "hard"),
        _spec(
            "combinations",
            "combination",
            None,
            ("id", "id_product", "reference", "ean13", "price", "weight", "default_on"),
            "hard",
        ),
        _spec("product_options", "product_option", None, ("id", "group_type", "position"), "hard"),
        _spec(
            "product_option_values",
            "product_option_value",
            None,
            ("id", "id_attribute_group", "position"),
            "hard",
        ),
        _spec(
            "stock_availables",
            "stock_available",
            None,
            ("id", "id_product", "id_product_attribute", "id_shop", "id_shop_group", "quantity"),
            "hard",
        ),
        # customers
        _spec("customers", "customer", "date_upd", ("id", "email", "active", "deleted", "date_upd"), "soft"),
        _spec("addresses", "address", "date_upd", ("id", "id_customer", "deleted", "date_upd"), "soft"),
        # orders
        _spec("orders", "order", "date_upd", ("id", "current_state", "date_upd"), "hard"),
        _spec("order_details", "order_detail", None, ("id", "id_order", "product_quantity"), "hard"),
        _spec(
            "order_histories",
            "order_history",
            "id",
            ("id", "id_order", "id_order_state", "date_add"),
            "never",
        ),
        _spec(
            "order_payments", "order_payment", "id", ("id", "order_reference", "amount", "date_add"), "never"
        ),
        _spec("order_invoices", "order_invoice", "id", ("id", "id_order", "number", "date_add"), "never"),
        _spec(
            "order_carriers",
            "order_carrier",
            "id",
            ("id", "id_order", "id_carrier", "tracking_number"),
            "never",
        ),
        _spec(
            "order_slip",
            "order_slip",
            "date_upd",
            ("id", "id_order", "date_upd"),
            "never",
            plural="order_slips",
        ),
        _spec(
            "order_states",
            "order_state",
            None,
            ("id", "invoice", "paid", "shipped", "delivery", "logable", "deleted"),
            "soft",
        ),
        # reference data
        _spec("carriers", "carrier", None, ("id", "id_reference", "active", "deleted"), "soft"),
        _spec("taxes", "tax", None, ("id", "rate", "active", "deleted"), "soft"),
        _spec(
            "tax_rules",
            "tax_rule",
            None,
            ("id", "id_tax_rules_group", "id_country", "id_state", "id_tax"),
            "hard",
        ),
        _spec(
            "tax_rule_groups", "tax_rule_group", "date_upd", ("id", "active", "deleted", "date_upd"), "soft"
        ),
        _spec("countries", "country", None, ("id", "iso_code", "active"), "never"),
        _spec(
            "currencies", "currency", None, ("id", "iso_code", "conversion_rate", "active", "deleted"), "soft"
        ),
        _spec("languages", "language", None, ("id", "iso_code", "active"), "hard"),
        _spec("shops", "shop", None, ("id", "id_shop_group", "active", "deleted"), "soft"),
        _spec("shop_groups", "shop_group", None, ("id", "active", "deleted"), "soft"),
        _spec(
            "configurations",
            "configuration",
            "date_upd",
            ("id", "name", "id_shop", "id_shop_group", "value"),
            "hard",
        ),
    )
}


def spec(name: str) -> ResourceSpec:
    """The spec of a resource; an unknown name gets a generic one (list key = name, sweep of ids only)."""
    known = RESOURCES.get(name)
    if known is not None:
        return known
    single = name[:-1] if name.endswith("s") else name
    return ResourceSpec(name, name, single, None, ("id",), "hard")
