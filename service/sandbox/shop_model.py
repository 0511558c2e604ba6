"""In-memory PrestaShop 1.7.8 shop for the webservice simulator (tests, demo, benchmarks).

The shop holds one table per webservice resource (``resource -> {id: record}``). A record is a plain dict
whose keys are the resource's webservice fields (see :data:`RESOURCES`, field order and types taken from the
1.7.8.8 samples in ``shared/reference/prestashop/samples``) plus a few hidden keys starting with ``_`` that
carry association data (a product's categories, a combination's option values, a customer's groups...).
Values are Python values, not their JSON rendering: ints, :class:`~decimal.Decimal` for prices, ``str`` for
texts and for dates (shop-local ``YYYY-MM-DD HH:MM:SS`` text, zero dates ``0000-00-00 00:00:00``), ``None``
for NULL columns, and ``{id_lang: text}`` for multilingual fields.

Tests and the demo change the shop through the mutation API of :class:`ShopData` (``add``, ``update``,
``delete``, ``set_stock``, ``change_order_state``, ``create_order``...), which keeps ``date_upd``, stock
totals, invoices and payments consistent the way PrestaShop's own code does. Writing records directly is
allowed but then call :meth:`ShopData.touch` so the association indexes are rebuilt.
"""

from __future__ import annotations

import random
import string
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

Record = dict[str, Any]
FieldKind = Literal["int", "nint", "dec6", "dec3", "dec2", "str", "nstr", "date", "datetime", "null", "raw"]

ZERO_DATETIME = "0000-00-00 00:00:00"
ZERO_DATE = "0000-00-00"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

ROUND_ITEM = 1
ROUND_LINE = 2
ROUND_TOTAL = 3

_CENT = Decimal("0.01")
_MILLI = Decimal("0.001")
_MICRO = Decimal("0.000001")
ZERO = Decimal("0")


# ----------------------------------------------------------------------------------------------------------
# Money helpers (Decimal throughout; PrestaShop rounds half up, Tools::ps_round with PS_PRICE_ROUND_MODE = 2)
# ----------------------------------------------------------------------------------------------------------
def dec(value: Decimal | int | str | float) -> Decimal:
    """A Decimal from an int, a string or a Decimal (floats go through their shortest repr)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def round2(value: Decimal) -> Decimal:
    """Tools::ps_round(value, 2): the currency precision of EUR/USD, half up."""
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def round3(value: Decimal) -> Decimal:
    return value.quantize(_MILLI, rounding=ROUND_HALF_UP)


def round6(value: Decimal) -> Decimal:
    """DECIMAL(20,6) storage."""
    return value.quantize(_MICRO, rounding=ROUND_HALF_UP)


def fmt_datetime(value: datetime) -> str:
    return value.strftime(DATETIME_FORMAT)


# ----------------------------------------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One webservice field.

    ``getter``: a dynamic field (rendered, listed among the filters, but filtering on it is a 400 code 34; XML
    marks it ``notFilterable="true"``). ``column=False``: not a column of the main table (filtering or
    sorting on it is an SQL error, which the webservice turns into an empty 200 ``[]``). ``shop``: a product
    field read from ``product_shop`` for the context shop. ``xlink``: the resource the XML output links the
    value to.
    """

    name: str
    kind: FieldKind = "int"
    i18n: bool = False
    getter: bool = False
    column: bool = True
    shop: bool = False
    xlink: str | None = None


@dataclass(frozen=True)
class Assoc:
    """An association rendered under ``associations`` (display=full, single GET).

    ``fields`` are the row fields besides ``id``. ``declares_fields=False`` marks the associations that
    declare no ``fields`` in PrestaShop and render as ``[[null]]`` in JSON on 1.7.8.8/PHP 8 (WEBSERVICE.md 5).
    ``virtual``: rows are not resources of their own (``virtualEntity="true"`` in XML, no ``xlink:href``).
    """

    name: str
    node: str
    api: str
    fields: tuple[Field, ...] = ()
    declares_fields: bool = True
    virtual: bool = False


ShopScope = Literal["none", "shop", "fk_shop", "share_order", "share_customer"]


@dataclass(frozen=True)
class Resource:
    """A webservice resource: its list key, single key, fields in output order and associations.

    ``shop_scope`` says how a shop context restricts it (``Shop::$asso_tables`` and the
    ``getWebserviceObjectList`` overrides): ``shop`` (``<table>_shop`` association), ``fk_shop`` (rows carry
    ``id_shop``/``id_shop_group``: stock_availables), ``share_order`` / ``share_customer`` (orders and
    customers, ``Shop::addSqlRestriction``), ``none``.
    """

    name: str
    list_key: str
    single_key: str
    description: str
    fields: tuple[Field, ...] = (Field("id"),)
    associations: tuple[Assoc, ...] = ()
    shop_scope: ShopScope = "none"
    forbidden: frozenset[str] = frozenset()
    modelled: bool = True
    _by_name: dict[str, Field] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.fields})

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def has_date_upd(self) -> bool:
        return "date_upd" in self._by_name

    @property
    def has_date_add(self) -> bool:
        return "date_add" in self._by_name

    def assoc(self, name: str) -> Assoc | None:
        for a in self.associations:
            if a.name == name:
                return a
        return None


_KINDS = {"int", "nint", "dec6", "dec3", "dec2", "str", "nstr", "date", "datetime", "null", "raw"}


def _fields(spec: str) -> tuple[Field, ...]:
    """Parse a field list, one per line: ``name [kind] [i18n] [getter] [virtual] [shop] [xlink=r]``."""
    out: list[Field] = []
    for line in spec.strip().splitlines():
        parts = line.split()
        if not parts:
            continue
        name, kind, i18n, getter, column, shop, xlink = parts[0], "int", False, False, True, False, None
        for p in parts[1:]:
            if p in _KINDS:
                kind = p
            elif p == "i18n":
                i18n, kind = True, "str"
            elif p == "getter":
                getter = True
            elif p == "virtual":
                column = False
            elif p == "shop":
                shop = True
            elif p.startswith("xlink="):
                xlink = p[len("xlink=") :]
            else:  # pragma: no cover - a typo in the tables below
                raise ValueError(f"bad field option {p!r} in {line!r}")
        out.append(Field(name, cast(FieldKind, kind), i18n, getter, column, shop, xlink))
    return tuple(out)


PRODUCT_FIELDS = _fields(
    """
    id
    id_manufacturer xlink=manufacturers
    id_supplier xlink=suppliers
    id_category_default shop xlink=categories
    new null virtual
    cache_default_attribute shop
    id_default_image raw getter virtual xlink=images/products
    id_default_combination getter virtual
    id_tax_rules_group shop xlink=tax_rule_groups
    position_in_category getter virtual
    manufacturer_name raw getter virtual
    quantity getter
    type str getter virtual
    id_shop_default
    reference str
    supplier_reference str
    location str
    width dec6
    height dec6
    depth dec6
    weight dec6
    quantity_discount
    ean13 str
    isbn str
    upc str
    mpn str
    cache_is_pack
    cache_has_attachments
    is_virtual
    state
    additional_delivery_times
    delivery_in_stock i18n
    delivery_out_stock i18n
    product_type str
    on_sale shop
    online_only shop
    ecotax dec6 shop
    minimal_quantity shop
    low_stock_threshold nint shop
    low_stock_alert shop
    price dec6 shop
    wholesale_price dec6 shop
    unity str shop
    unit_price_ratio dec6 shop
    additional_shipping_cost dec6 shop
    customizable shop
    text_fields shop
    uploadable_files shop
    active shop
    redirect_type str shop
    id_type_redirected shop
    available_for_order shop
    available_date date shop
    show_condition shop
    condition str shop
    show_price shop
    indexed shop
    visibility str shop
    advanced_stock_management shop
    date_add datetime shop
    date_upd datetime shop
    pack_stock_type shop
    meta_description i18n
    meta_keywords i18n
    meta_title i18n
    link_rewrite i18n
    name i18n
    description i18n
    description_short i18n
    available_now i18n
    available_later i18n
    """
)
SHOP_PRODUCT_FIELDS = tuple(f.name for f in PRODUCT_FIELDS if f.shop)

_ID_ONLY = ()


def _assoc(
    name: str, node: str, api: str, spec: str = "", *, declares: bool = True, virtual: bool = False
) -> Assoc:
    return Assoc(name, node, api, _fields(spec) if spec.strip() else (), declares, virtual)


PRODUCT_ASSOCS = (
    _assoc("categories", "category", "categories"),
    _assoc("images", "image", "images"),
    _assoc("combinations", "combination", "combinations"),
    _assoc("product_option_values", "product_option_value", "product_option_values"),
    _assoc(
        "product_features",
        "product_feature",
        "product_features",
        "id_feature_value xlink=product_feature_values",
    ),
    _assoc("tags", "tag", "tags"),
    _assoc("stock_availables", "stock_available", "stock_availables", "id_product_attribute"),
    _assoc("attachments", "attachment", "attachments"),
    _assoc("accessories", "product", "products"),
    _assoc("product_bundle", "product", "products", "id_product_attribute\nquantity"),
)

ORDER_ROW_FIELDS = _fields(
    """
    product_id xlink=products
    product_attribute_id xlink=combinations
    product_quantity
    product_name str
    product_reference str
    product_ean13 str
    product_isbn str
    product_upc str
    product_price dec6
    id_customization xlink=customizations
    unit_price_tax_incl dec6
    unit_price_tax_excl dec6
    """
)

_RESOURCE_LIST: list[Resource] = [
    Resource(
        "products", "products", "product", "The products", PRODUCT_FIELDS, PRODUCT_ASSOCS, shop_scope="shop"
    ),
    Resource(
        "combinations",
        "combinations",
        "combination",
        "The product combinations",
        _fields(
            """
            id
            id_product xlink=products
            location str
            ean13 str
            isbn str
            upc str
            mpn str
            quantity
            reference str
            supplier_reference str
            wholesale_price dec6
            price dec6
            ecotax dec6
            weight dec6
            unit_price_impact dec6
            minimal_quantity
            low_stock_threshold nint
            low_stock_alert
            default_on nint
            available_date date
            """
        ),
        (
            _assoc("product_option_values", "product_option_value", "product_option_values", declares=False),
            # the XML says api="images/products" for a combination's images (api="images" for a product's)
            _assoc("images", "image", "images/products", declares=False),
        ),
        shop_scope="shop",
    ),
    Resource(
        "product_options",
        "product_options",
        "product_option",
        "The product options",
        _fields(
            """
            id
            is_color_group
            group_type str
            position
            name i18n
            public_name i18n
            """
        ),
        (_assoc("product_option_values", "product_option_value", "product_option_values"),),
        shop_scope="shop",
    ),
    Resource(
        "product_option_values",
        "product_option_values",
        "product_option_value",
        "The product options value",
        _fields(
            """
            id
            id_attribute_group xlink=product_options
            color str
            position
            name i18n
            """
        ),
        shop_scope="shop",
    ),
    Resource(
        "categories",
        "categories",
        "category",
        "The product categories",
        _fields(
            """
            id
            id_parent xlink=categories
            level_depth
            nb_products_recursive getter virtual
            active
            id_shop_default
            is_root_category
            position
            date_add datetime
            date_upd datetime
            name i18n
            link_rewrite i18n
            description i18n
            meta_title i18n
            meta_description i18n
            meta_keywords i18n
            """
        ),
        (
            _assoc("categories", "category", "categories", declares=False),
            _assoc("products", "product", "products", declares=False),
        ),
        shop_scope="shop",
    ),
    Resource(
        "customers",
        "customers",
        "customer",
        "The e-shop's customers",
        _fields(
            """
            id
            id_default_group xlink=groups
            id_lang xlink=languages
            newsletter_date_add datetime
            ip_registration_newsletter nstr
            last_passwd_gen datetime
            secure_key str
            deleted
            passwd str
            lastname str
            firstname str
            email str
            id_gender
            birthday date
            newsletter
            optin
            website nstr
            company nstr
            siret nstr
            ape nstr
            outstanding_allow_amount dec6
            show_public_prices
            id_risk
            max_payment_days
            active
            note nstr
            is_guest
            id_shop xlink=shops
            id_shop_group xlink=shop_groups
            date_add datetime
            date_upd datetime
            reset_password_token nstr
            reset_password_validity datetime
            """
        ),
        (_assoc("groups", "group", "groups", declares=False),),
        shop_scope="share_customer",
    ),
    Resource(
        "addresses",
        "addresses",
        "address",
        "The Customer, Brand and Customer addresses",
        _fields(
            """
            id
            id_customer xlink=customers
            id_manufacturer xlink=manufacturers
            id_supplier xlink=suppliers
            id_warehouse xlink=warehouses
            id_country xlink=countries
            id_state xlink=states
            alias str
            company str
            lastname str
            firstname str
            vat_number str
            address1 str
            address2 str
            postcode str
            city str
            other str
            phone str
            phone_mobile str
            dni str
            deleted
            date_add datetime
            date_upd datetime
            """
        ),
    ),
    Resource(
        "orders",
        "orders",
        "order",
        "The Customers orders",
        _fields(
            """
            id
            id_address_delivery xlink=addresses
            id_address_invoice xlink=addresses
            id_cart xlink=carts
            id_currency xlink=currencies
            id_lang xlink=languages
            id_customer xlink=customers
            id_carrier xlink=carriers
            current_state xlink=order_states
            module str
            invoice_number
            invoice_date datetime
            delivery_number
            delivery_date datetime
            valid
            date_add datetime
            date_upd datetime
            shipping_number str getter
            note str
            id_shop_group
            id_shop
            secure_key str
            payment str
            recyclable
            gift
            gift_message str
            mobile_theme
            total_discounts dec6
            total_discounts_tax_incl dec6
            total_discounts_tax_excl dec6
            total_paid dec6
            total_paid_tax_incl dec6
            total_paid_tax_excl dec6
            total_paid_real dec6
            total_products dec6
            total_products_wt dec6
            total_shipping dec6
            total_shipping_tax_incl dec6
            total_shipping_tax_excl dec6
            carrier_tax_rate dec3
            total_wrapping dec6
            total_wrapping_tax_incl dec6
            total_wrapping_tax_excl dec6
            round_mode
            round_type
            conversion_rate dec6
            reference str
            """
        ),
        (Assoc("order_rows", "order_row", "order_details", ORDER_ROW_FIELDS, True, True),),
        shop_scope="share_order",
    ),
    Resource(
        "order_details",
        "order_details",
        "order_detail",
        "Details of an order",
        _fields(
            """
            id
            id_order xlink=orders
            product_id xlink=products
            product_attribute_id xlink=combinations
            product_quantity_reinjected
            group_reduction dec2
            discount_quantity_applied
            download_hash str
            download_deadline datetime
            id_order_invoice xlink=order_invoices
            id_warehouse xlink=warehouses
            id_shop xlink=shops
            id_customization xlink=customizations
            product_name str
            product_quantity
            product_quantity_in_stock
            product_quantity_return
            product_quantity_refunded
            product_price dec6
            reduction_percent dec2
            reduction_amount dec6
            reduction_amount_tax_incl dec6
            reduction_amount_tax_excl dec6
            product_quantity_discount dec6
            product_ean13 str
            product_isbn str
            product_upc str
            product_mpn str
            product_reference str
            product_supplier_reference str
            product_weight dec6
            tax_computation_method
            id_tax_rules_group xlink=tax_rule_groups
            ecotax dec6
            ecotax_tax_rate dec3
            download_nb
            unit_price_tax_incl dec6
            unit_price_tax_excl dec6
            total_price_tax_incl dec6
            total_price_tax_excl dec6
            total_shipping_price_tax_excl dec6
            total_shipping_price_tax_incl dec6
            purchase_supplier_price dec6
            original_product_price dec6
            original_wholesale_price dec6
            total_refunded_tax_excl dec6
            total_refunded_tax_incl dec6
            """
        ),
        (_assoc("taxes", "tax", "taxes"),),
    ),
    Resource(
        "order_histories",
        "order_histories",
        "order_history",
        "The Order histories",
        _fields(
            """
            id
            id_employee xlink=employees
            id_order_state xlink=order_states
            id_order xlink=orders
            date_add datetime
            """
        ),
    ),
    Resource(
        "order_states",
        "order_states",
        "order_state",
        "The Order statuses",
        _fields(
            """
            id
            unremovable
            delivery
            hidden
            send_email
            module_name str
            invoice
            color str
            logable
            shipped
            paid
            pdf_delivery
            pdf_invoice
            deleted
            name i18n
            template i18n
            """
        ),
    ),
    Resource(
        "order_payments",
        "order_payments",
        "order_payment",
        "The Order payments",
        _fields(
            """
            id
            order_reference str
            id_currency xlink=currencies
            amount dec6
            payment_method str
            conversion_rate dec6
            transaction_id str
            card_number str
            card_brand str
            card_expiration str
            card_holder str
            date_add datetime
            """
        ),
    ),
    Resource(
        "order_invoices",
        "order_invoices",
        "order_invoice",
        "The Order invoices",
        _fields(
            """
            id
            id_order xlink=orders
            number
            delivery_number
            delivery_date datetime
            total_discount_tax_excl dec6
            total_discount_tax_incl dec6
            total_paid_tax_excl dec6
            total_paid_tax_incl dec6
            total_products dec6
            total_products_wt dec6
            total_shipping_tax_excl dec6
            total_shipping_tax_incl dec6
            shipping_tax_computation_method
            total_wrapping_tax_excl dec6
            total_wrapping_tax_incl dec6
            shop_address str
            note str
            date_add datetime
            """
        ),
    ),
    Resource(
        "order_carriers",
        "order_carriers",
        "order_carrier",
        "The Order carriers",
        _fields(
            """
            id
            id_order xlink=orders
            id_carrier xlink=carriers
            id_order_invoice xlink=order_invoices
            weight dec6
            shipping_cost_tax_excl dec6
            shipping_cost_tax_incl dec6
            tracking_number str
            date_add datetime
            """
        ),
    ),
    Resource(
        "order_slip",
        "order_slips",
        "order_slip",
        "The Order slips",
        _fields(
            """
            id
            id_customer xlink=customers
            id_order xlink=orders
            conversion_rate dec6
            total_products_tax_excl dec6
            total_products_tax_incl dec6
            total_shipping_tax_excl dec6
            total_shipping_tax_incl dec6
            amount dec6
            shipping_cost
            shipping_cost_amount dec6
            partial
            date_add datetime
            date_upd datetime
            order_slip_type
            """
        ),
        (
            _assoc(
                "order_slip_details",
                "order_slip_detail",
                "order_slip_details",
                "id_order_detail\nproduct_quantity\namount_tax_excl dec6\namount_tax_incl dec6",
                virtual=True,
            ),
        ),
    ),
    Resource(
        "stock_availables",
        "stock_availables",
        "stock_available",
        "Available quantities",
        _fields(
            """
            id
            id_product xlink=products
            id_product_attribute xlink=combinations
            id_shop xlink=shops
            id_shop_group xlink=shop_groups
            quantity
            depends_on_stock
            out_of_stock
            location str
            """
        ),
        shop_scope="fk_shop",
        forbidden=frozenset({"POST", "DELETE"}),
    ),
    Resource(
        "carriers",
        "carriers",
        "carrier",
        "The Carriers",
        _fields(
            """
            id
            deleted
            is_module
            id_tax_rules_group getter virtual xlink=tax_rule_groups
            id_reference
            name str
            active
            is_free
            url str
            shipping_handling
            shipping_external
            range_behavior
            shipping_method
            max_width
            max_height
            max_depth
            max_weight dec6
            grade
            external_module_name str
            need_range
            position
            delay i18n
            """
        ),
        shop_scope="shop",
    ),
    Resource(
        "shops",
        "shops",
        "shop",
        "Shops from multi-shop feature",
        _fields(
            """
            id
            id_shop_group xlink=shop_groups
            id_category xlink=categories
            active
            deleted
            name str
            color str
            theme_name str
            """
        ),
    ),
    Resource(
        "shop_groups",
        "shop_groups",
        "shop_group",
        "Shop groups from multi-shop feature",
        _fields(
            """
            id
            name str
            color str
            share_customer
            share_order
            share_stock
            active
            deleted
            """
        ),
    ),
    Resource(
        "languages",
        "languages",
        "language",
        "Shop languages",
        _fields(
            """
            id
            name str
            iso_code str
            locale str
            language_code str
            active
            is_rtl
            date_format_lite str
            date_format_full str
            """
        ),
        shop_scope="shop",
    ),
    Resource(
        "currencies",
        "currencies",
        "currency",
        "The currencies",
        _fields(
            """
            id
            names i18n
            name str getter
            symbol i18n
            iso_code str
            numeric_iso_code str
            precision
            conversion_rate dec6
            deleted
            active
            unofficial
            modified
            pattern i18n
            """
        ),
        shop_scope="shop",
    ),
    Resource(
        "taxes",
        "taxes",
        "tax",
        "The tax rate",
        _fields(
            """
            id
            rate dec3
            active
            deleted
            name i18n
            """
        ),
    ),
    Resource(
        "tax_rules",
        "tax_rules",
        "tax_rule",
        "Tax rules entity",
        _fields(
            """
            id
            id_tax_rules_group xlink=tax_rule_groups
            id_state xlink=states
            id_country xlink=countries
            zipcode_from str
            zipcode_to str
            id_tax xlink=taxes
            behavior
            description str
            """
        ),
    ),
    Resource(
        "tax_rule_groups",
        "tax_rule_groups",
        "tax_rule_group",
        "Tax rule groups",
        _fields(
            """
            id
            name str
            active
            deleted
            date_add datetime
            date_upd datetime
            """
        ),
        shop_scope="shop",
    ),
    Resource(
        "countries",
        "countries",
        "country",
        "The countries",
        _fields(
            """
            id
            id_zone xlink=zones
            id_currency xlink=currencies
            call_prefix
            iso_code str
            active
            contains_states
            need_identification_number
            need_zip_code
            zip_code_format str
            display_tax_label
            name i18n
            """
        ),
        shop_scope="shop",
    ),
    Resource(
        "configurations",
        "configurations",
        "configuration",
        "Shop configuration",
        _fields(
            """
            id
            value nstr
            name str
            id_shop_group nint xlink=shop_groups
            id_shop nint xlink=shops
            date_add datetime
            date_upd datetime
            """
        ),
    ),
]

# Every resource of the 1.7.8 webservice (WebserviceRequest::getResources), in the order of GET /api/.
_ALL_RESOURCES: dict[str, str] = {
    "addresses": "The Customer, Brand and Customer addresses",
    "attachments": "The product Attachments",
    "carriers": "The Carriers",
    "cart_rules": "Cart rules management",
    "carts": "Customer's carts",
    "categories": "The product categories",
    "combinations": "The product combinations",
    "configurations": "Shop configuration",
    "contacts": "Shop contacts",
    "content_management_system": "Content management system",
    "countries": "The countries",
    "currencies": "The currencies",
    "customer_messages": "Customer services messages",
    "customer_threads": "Customer services threads",
    "customers": "The e-shop's customers",
    "customizations": "Customization values",
    "deliveries": "Product delivery",
    "employees": "The Employees",
    "groups": "The customer's groups",
    "guests": "The guests",
    "image_types": "The image types",
    "images": "The images",
    "languages": "Shop languages",
    "manufacturers": "The product brands",
    "messages": "The Messages",
    "order_carriers": "The Order carriers",
    "order_cart_rules": "The Order cart rules",
    "order_details": "Details of an order",
    "order_histories": "The Order histories",
    "order_invoices": "The Order invoices",
    "order_payments": "The Order payments",
    "order_slip": "The Order slips",
    "order_states": "The Order statuses",
    "orders": "The Customers orders",
    "price_ranges": "Price ranges",
    "product_customization_fields": "Customization Field",
    "product_feature_values": "The product feature values",
    "product_features": "The product features",
    "product_option_values": "The product options value",
    "product_options": "The product options",
    "product_suppliers": "Product Suppliers",
    "products": "The products",
    "search": "Search",
    "shop_groups": "Shop groups from multi-shop feature",
    "shop_urls": "Shop URLs from multi-shop feature",
    "shops": "Shops from multi-shop feature",
    "specific_price_rules": "Specific price management",
    "specific_prices": "Specific price management",
    "states": "The available states of countries",
    "stock_availables": "Available quantities",
    "stock_movement_reasons": "Stock movement reason",
    "stock_movements": "Stock movements",
    "stocks": "Stocks",
    "stores": "The stores",
    "suppliers": "The product suppliers",
    "supply_order_details": "Supply Order Details",
    "supply_order_histories": "Supply Order Histories",
    "supply_order_receipt_histories": "Supply Order Receipt Histories",
    "supply_order_states": "Supply Order Statuses",
    "supply_orders": "Supply Orders",
    "tags": "The Products tags",
    "tax_rule_groups": "Tax rule groups",
    "tax_rules": "Tax rules entity",
    "taxes": "The tax rate",
    "translated_configurations": "Shop configuration",
    "warehouse_product_locations": "Location of products in warehouses",
    "warehouses": "Warehouses",
    "weight_ranges": "Weight ranges",
    "zones": "The Countries zones",
}
_WRITE = frozenset({"PUT", "POST", "PATCH", "DELETE"})
_FORBIDDEN: dict[str, frozenset[str]] = {
    "search": _WRITE,
    "stock_movements": _WRITE,
    "warehouses": frozenset({"DELETE"}),
    "stocks": _WRITE,
    "stock_availables": frozenset({"POST", "DELETE"}),
    "warehouse_product_locations": _WRITE,
    "supply_orders": _WRITE,
    "supply_order_details": _WRITE,
    "supply_order_states": _WRITE,
    "supply_order_histories": _WRITE,
    "supply_order_receipt_histories": _WRITE,
}
# resources answered by a "specific management" class instead of an entity (no filters, no fields)
SPECIFIC_MANAGEMENT = frozenset({"images", "attachments", "search"})


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("sses"):
        return name[:-2]
    if name.endswith("s"):
        return name[:-1]
    return name


def _build_resources() -> dict[str, Resource]:
    modelled = {r.name: r for r in _RESOURCE_LIST}
    out: dict[str, Resource] = {}
    for name, description in _ALL_RESOURCES.items():
        if name in modelled:
            out[name] = modelled[name]
        else:
            out[name] = Resource(
                name,
                name,
                _singular(name),
                description,
                forbidden=_FORBIDDEN.get(name, frozenset()),
                modelled=False,
            )
    return out


RESOURCES: dict[str, Resource] = _build_resources()
MODELLED = tuple(r.name for r in _RESOURCE_LIST)


# ----------------------------------------------------------------------------------------------------------
# Record defaults
# ----------------------------------------------------------------------------------------------------------
def _default_value(f: Field, langs: Sequence[int]) -> Any:
    if f.i18n:
        return dict.fromkeys(langs, "")
    return {
        "int": 0,
        "nint": None,
        "dec6": ZERO,
        "dec3": ZERO,
        "dec2": ZERO,
        "str": "",
        "nstr": None,
        "date": ZERO_DATE,
        "datetime": ZERO_DATETIME,
        "null": None,
        "raw": "",
    }[f.kind]


_RESOURCE_DEFAULTS: dict[str, Record] = {
    "products": {
        "id_shop_default": 1,
        "type": "simple",
        "state": 1,
        "additional_delivery_times": 1,
        "product_type": "standard",
        "minimal_quantity": 1,
        "active": 1,
        "redirect_type": "301-category",
        "available_for_order": 1,
        "condition": "new",
        "show_price": 1,
        "indexed": 1,
        "visibility": "both",
        "pack_stock_type": 3,
        "position_in_category": 1,
        "manufacturer_name": False,
        "id_default_image": "",
    },
    "combinations": {"minimal_quantity": 1},
    "categories": {"active": 1, "id_shop_default": 1, "id_parent": 2, "level_depth": 2},
    "customers": {
        "id_default_group": 3,
        "id_lang": 1,
        "active": 1,
        "id_shop": 1,
        "id_shop_group": 1,
        "reset_password_validity": ZERO_DATETIME,
    },
    "stock_availables": {"out_of_stock": 2, "id_shop": 1},
    "carriers": {"active": 1, "shipping_handling": 1, "shipping_method": 1},
    "shops": {"active": 1, "id_shop_group": 1, "id_category": 2, "theme_name": "classic"},
    "shop_groups": {"active": 1},
    "languages": {"active": 1},
    "currencies": {"precision": 2, "active": 1, "conversion_rate": Decimal(1)},
    "taxes": {"active": 1},
    "tax_rules": {"zipcode_from": "0", "zipcode_to": "0"},
    "tax_rule_groups": {"active": 1},
    "countries": {"active": 1, "need_zip_code": 1, "display_tax_label": 1},
    "order_invoices": {"shipping_tax_computation_method": 1},
    "order_states": {"unremovable": 1, "send_email": 1},
}


# (resource, languages) -> (the defaults of its plain fields, its fields whose default is a fresh dict)
_TEMPLATES: dict[tuple[str, tuple[int, ...]], tuple[Record, tuple[tuple[str, Record], ...]]] = {}


def _template(resource: str, langs: Sequence[int]) -> tuple[Record, tuple[tuple[str, Record], ...]]:
    key = (resource, tuple(langs))
    found = _TEMPLATES.get(key)
    if found is None:
        spec = RESOURCES[resource]
        plain: Record = {f.name: _default_value(f, langs) for f in spec.fields}
        plain.update(_RESOURCE_DEFAULTS.get(resource, {}))
        mutable = tuple((k, v) for k, v in plain.items() if isinstance(v, dict))
        found = _TEMPLATES[key] = (plain, mutable)
    return found


_COERCIONS: dict[str, dict[str, str]] = {}


def _coercions(resource: str) -> dict[str, str]:
    """Field name -> ``i18n`` (a dict by language) or ``dec`` (a Decimal) for the fields a write converts."""
    found = _COERCIONS.get(resource)
    if found is None:
        found = _COERCIONS[resource] = {
            f.name: "i18n" if f.i18n else "dec"
            for f in RESOURCES[resource].fields
            if f.i18n or f.kind in ("dec6", "dec3", "dec2")
        }
    return found


def new_record(resource: str, langs: Sequence[int] = (1,), **values: Any) -> Record:
    """A record of ``resource`` with every field at its PrestaShop default, then ``values`` applied.

    Multilingual fields given as a plain string are set for every language of ``langs``.
    """
    spec = RESOURCES[resource]
    plain, mutable = _template(resource, langs)
    rec: Record = dict(plain)
    for k, v in mutable:  # every record gets its own (multilingual values are edited in place)
        rec[k] = dict(v)
    for k, v in values.items():
        f = spec.field(k)
        if f is not None and f.i18n and isinstance(v, str):
            rec[k] = dict.fromkeys(langs, v)
        elif f is not None and f.i18n and isinstance(v, Mapping):
            merged = dict.fromkeys(langs, "")
            merged.update({int(lk): str(lv) for lk, lv in v.items()})
            rec[k] = merged
        elif f is not None and f.kind in ("dec6", "dec3", "dec2") and v is not None:
            rec[k] = dec(v)
        else:
            rec[k] = v
    return rec


# ----------------------------------------------------------------------------------------------------------
# Tiny deterministic images
# ----------------------------------------------------------------------------------------------------------
def tiny_jpeg(comment: str) -> bytes:
    """A valid 8x8 grey baseline JPEG whose COM segment carries ``comment`` (image id + version).

    One quantisation table of ones, one DC and one AC Huffman table with a single 1-bit code each; the scan is
    one block with DC difference 0 and an immediate end-of-block (bits ``00``, padded with ones).
    """
    com = comment.encode("utf-8")[:60000]
    out = bytearray(b"\xff\xd8")
    out += b"\xff\xfe" + struct.pack(">H", len(com) + 2) + com
    out += b"\xff\xdb\x00\x43\x00" + bytes([1] * 64)
    out += b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00"
    counts = bytes([1] + [0] * 15)
    out += b"\xff\xc4\x00\x14\x00" + counts + b"\x00"
    out += b"\xff\xc4\x00\x14\x10" + counts + b"\x00"
    out += b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    out += b"\x3f"
    out += b"\xff\xd9"
    return bytes(out)


# ----------------------------------------------------------------------------------------------------------
# Indexes (rebuilt when the shop's revision moves)
# ----------------------------------------------------------------------------------------------------------
@dataclass
class ShopIndex:
    """Foreign-key indexes so list rendering stays O(rows)."""

    combinations_by_product: dict[int, list[int]] = field(default_factory=dict)
    stock_by_product: dict[int, list[int]] = field(default_factory=dict)
    images_by_product: dict[int, list[int]] = field(default_factory=dict)
    details_by_order: dict[int, list[int]] = field(default_factory=dict)
    children_by_category: dict[int, list[int]] = field(default_factory=dict)
    products_by_category: dict[int, list[int]] = field(default_factory=dict)
    values_by_group: dict[int, list[int]] = field(default_factory=dict)
    orders_by_reference: dict[str, list[int]] = field(default_factory=dict)
    invoices_by_order: dict[int, list[int]] = field(default_factory=dict)
    histories_by_order: dict[int, list[int]] = field(default_factory=dict)
    carriers_by_order: dict[int, list[int]] = field(default_factory=dict)
    payments_by_reference: dict[str, list[int]] = field(default_factory=dict)
    addresses_by_customer: dict[int, list[int]] = field(default_factory=dict)


class ShopError(ValueError):
    """A mutation the shop refuses (unknown id, bad argument)."""


@dataclass(frozen=True)
class OrderLine:
    """One cart line for :meth:`ShopData.create_order`."""

    id_product: int
    quantity: int = 1
    id_product_attribute: int = 0


LineSpec = OrderLine | tuple[int, int] | tuple[int, int, int]
Amount = Decimal | int | str


# fields an index is keyed on: changing one through update() rebuilds the indexes
_INDEXED_FIELDS = frozenset(
    {
        "id_product",
        "id_order",
        "id_parent",
        "position",
        "_categories",
        "id_category_default",
        "reference",
        "order_reference",
        "id_attribute_group",
        "id_customer",
    }
)

_MODULE_DISPLAY_NAMES = {
    "ps_checkpayment": "Payments by check",
    "ps_wirepayment": "Bank wire",
    "ps_cashondelivery": "Cash on delivery (COD)",
}


@dataclass
class ShopData:
    """An in-memory PrestaShop shop: tables, a controllable clock and the mutation API used by tests.

    ``clock`` is the shop-local wall clock (naive datetime in ``PS_TIMEZONE``); every
    ``date_add``/``date_upd`` written by the mutation API is ``now()``.
    Nothing moves the clock by itself: tests call :meth:`advance`.
    """

    clock: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, 0))
    seed: int = 1
    tables: dict[str, dict[int, Record]] = field(default_factory=dict)
    # product id -> shop id -> that shop's product_shop row (values of the ``shop`` fields)
    product_shop: dict[int, dict[int, Record]] = field(default_factory=dict)
    # resource -> id -> shops the row is associated with (``<table>_shop``); a missing id means every shop
    shop_assoc: dict[str, dict[int, set[int]]] = field(default_factory=dict)
    # product images: id -> {id, id_product, position, cover (1|None), legend {lang: text}, version}
    images: dict[int, Record] = field(default_factory=dict)
    # order_detail_tax rows: id_order_detail -> [{id_tax, unit_amount, total_amount}]
    order_detail_taxes: dict[int, list[Record]] = field(default_factory=dict)
    # order_invoice_payment rows: (id_order_invoice, id_order_payment, id_order)
    invoice_payments: list[tuple[int, int, int]] = field(default_factory=list)
    # order_slip_detail rows: id_order_slip -> rows
    slip_details: dict[int, list[Record]] = field(default_factory=dict)
    manufacturer_names: dict[int, str] = field(default_factory=dict)
    revision: int = 0
    rng: random.Random = field(default_factory=random.Random)
    _next_ids: dict[str, int] = field(default_factory=dict)
    _next_cart: int = 1
    _index: ShopIndex | None = None
    _index_rev: int = -1
    _tax_cache: dict[tuple[int, int], tuple[Decimal, list[int]]] = field(default_factory=dict)
    _nb_cache: tuple[int, dict[int, int]] | None = None
    # _invoice_payment_index: rows read, payments by invoice, (payment, order) pairs by order
    _ip_index: tuple[int, dict[int, list[int]], dict[int, set[tuple[int, int]]]] = field(
        default_factory=lambda: (0, {}, {})
    )
    # _next_number: (resource, key) -> (rows when last read, highest id read, highest number)
    _numbers: dict[tuple[str, str], tuple[int, int, int | None]] = field(default_factory=dict)
    _now_text: tuple[datetime | None, str] = (None, "")

    def __post_init__(self) -> None:
        self.rng.seed(self.seed * 7919 + 17)
        for name in MODELLED:
            self.tables.setdefault(name, {})

    # ------------------------------------------------------------------------------------------------------
    # clock
    # ------------------------------------------------------------------------------------------------------
    def now(self) -> str:
        """The clock as PrestaShop stores it: shop-local ``YYYY-MM-DD HH:MM:SS``."""
        clock, text = self._now_text
        if clock != self.clock:
            clock, text = self.clock, fmt_datetime(self.clock)
            self._now_text = (clock, text)
        return text

    def advance(self, seconds: float = 1.0) -> str:
        """Move the clock forward (or back, with a negative value) and return the new ``now()``."""
        self.clock += timedelta(seconds=seconds)
        return self.now()

    def set_clock(self, when: datetime | str) -> str:
        self.clock = (
            datetime.strptime(when, DATETIME_FORMAT) if isinstance(when, str) else when.replace(tzinfo=None)
        )
        return self.now()

    @property
    def timezone(self) -> str:
        return self.config("PS_TIMEZONE") or "UTC"

    def unix_now(self) -> int:
        """The clock as a Unix timestamp, read in ``PS_TIMEZONE`` (what ``Access-Time`` carries)."""
        return int(self.clock.replace(tzinfo=ZoneInfo(self.timezone)).timestamp())

    # ------------------------------------------------------------------------------------------------------
    # lookups
    # ------------------------------------------------------------------------------------------------------
    def table(self, resource: str) -> dict[int, Record]:
        if resource not in self.tables:
            raise ShopError(f"resource {resource!r} is not modelled")
        return self.tables[resource]

    def get(self, resource: str, id_: int) -> Record:
        try:
            return self.table(resource)[id_]
        except KeyError:
            raise ShopError(f"{resource} {id_} does not exist") from None

    def touch(self) -> None:
        """Declare that records were edited directly: association indexes are rebuilt on next use."""
        self.revision += 1
        self._tax_cache.clear()

    def _index_current(self) -> bool:
        return self._index is not None and self._index_rev == self.revision

    def _mutated(self) -> None:
        """A change that leaves every foreign key alone: a current index stays current."""
        current = self._index_current()
        self.revision += 1
        if current:
            self._index_rev = self.revision

    def _index_insert(self, resource: str, rec: Record) -> None:
        """A new row: keep a current index current by appending it (ids only grow, so lists stay sorted)."""
        current = self._index_current()
        self.revision += 1
        if resource in ("taxes", "tax_rules", "tax_rule_groups"):
            self._tax_cache.clear()
        if not current or self._index is None:
            return
        idx = self._index
        rid = int(rec["id"])
        keyed: dict[str, tuple[dict[Any, list[int]], str]] = {
            "combinations": (idx.combinations_by_product, "id_product"),
            "stock_availables": (idx.stock_by_product, "id_product"),
            "images": (idx.images_by_product, "id_product"),
            "order_details": (idx.details_by_order, "id_order"),
            "order_invoices": (idx.invoices_by_order, "id_order"),
            "order_histories": (idx.histories_by_order, "id_order"),
            "order_carriers": (idx.carriers_by_order, "id_order"),
            "orders": (idx.orders_by_reference, "reference"),
            "order_payments": (idx.payments_by_reference, "order_reference"),
            "categories": (idx.children_by_category, "id_parent"),
            "product_option_values": (idx.values_by_group, "id_attribute_group"),
            "addresses": (idx.addresses_by_customer, "id_customer"),
        }
        if resource in keyed:
            target, key = keyed[resource]
            target.setdefault(rec[key], []).append(rid)
        elif resource == "products":
            for cid in rec.get("_categories", []):
                idx.products_by_category.setdefault(cid, []).append(rid)
        self._index_rev = self.revision

    def nb_products_recursive(self) -> dict[int, int]:
        """Category id -> number of distinct products in the category and its subcategories."""
        if self._nb_cache is not None and self._nb_cache[0] == self.revision:
            return self._nb_cache[1]
        cats = self.tables["categories"]
        counts: dict[int, int] = {}
        for product in self.tables["products"].values():
            seen: set[int] = set()
            for cid in product.get("_categories", []):
                node: int | None = cid
                while node and node not in seen and node in cats:
                    seen.add(node)
                    node = int(cats[node]["id_parent"])
            for cid in seen:
                counts[cid] = counts.get(cid, 0) + 1
        self._nb_cache = (self.revision, counts)
        return counts

    def config(self, name: str, default: str | None = None) -> str | None:
        """The global value of a configuration key (``Configuration::get`` without shop context)."""
        shop_value: str | None = None
        for rec in self.tables["configurations"].values():
            if rec["name"] == name:
                if rec["id_shop"] in (None, 0) and rec["id_shop_group"] in (None, 0):
                    return cast("str | None", rec["value"])
                shop_value = rec["value"]
        return shop_value if shop_value is not None else default

    def set_config(self, name: str, value: str | int | None) -> int:
        text = None if value is None else str(value)
        for rec in self.tables["configurations"].values():
            if rec["name"] == name and rec["id_shop"] in (None, 0):
                if rec["value"] != text:
                    rec["value"] = text
                    rec["date_upd"] = self.now()
                    self._mutated()
                return int(rec["id"])
        return self.add("configurations", name=name, value=text)

    def _config_int(self, name: str, default: int) -> int:
        value = self.config(name)
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default

    @property
    def round_type(self) -> int:
        """PS_ROUND_TYPE: 1 round each item, 2 round each line, 3 round the total."""
        return self._config_int("PS_ROUND_TYPE", ROUND_LINE)

    @property
    def default_shop_id(self) -> int:
        return self._config_int("PS_SHOP_DEFAULT", 1)

    @property
    def default_lang_id(self) -> int:
        return self._config_int("PS_LANG_DEFAULT", 1)

    @property
    def default_currency_id(self) -> int:
        return self._config_int("PS_CURRENCY_DEFAULT", 1)

    @property
    def default_country_id(self) -> int:
        return self._config_int("PS_COUNTRY_DEFAULT", 8)

    @property
    def lang_ids(self) -> list[int]:
        """Active languages (``Language::getIDs()``): the languages i18n fields are rendered in."""
        ids = sorted(i for i, rec in self.tables["languages"].items() if rec.get("active"))
        return ids or [1]

    @property
    def all_lang_ids(self) -> list[int]:
        return sorted(self.tables["languages"]) or [1]

    def shop_ids(self) -> list[int]:
        return sorted(self.tables["shops"]) or [1]

    def shop_group_of(self, id_shop: int) -> int:
        shop = self.tables["shops"].get(id_shop)
        return int(shop["id_shop_group"]) if shop else 1

    def shops_in_group(self, id_group: int) -> list[int]:
        return sorted(i for i, s in self.tables["shops"].items() if s["id_shop_group"] == id_group)

    def group_shares(
        self, id_shop: int, what: Literal["share_customer", "share_order", "share_stock"]
    ) -> bool:
        group = self.tables["shop_groups"].get(self.shop_group_of(id_shop))
        return bool(group and group.get(what))

    def associated(self, resource: str, id_: int, id_shop: int) -> bool:
        """Whether a row of a ``shop``-scoped resource belongs to ``id_shop`` (its ``<table>_shop`` row)."""
        if resource == "products":
            rows = self.product_shop.get(id_)
            return rows is None or id_shop in rows
        if resource == "combinations":
            combo = self.tables["combinations"].get(id_)
            return combo is not None and self.associated("products", int(combo["id_product"]), id_shop)
        shops = self.shop_assoc.get(resource, {}).get(id_)
        return shops is None or id_shop in shops

    def product_shops(self, id_product: int) -> list[int]:
        rows = self.product_shop.get(id_product)
        return sorted(rows) if rows is not None else self.shop_ids()

    def product_view(self, id_product: int, id_shop: int | None = None) -> Record:
        """The product as the webservice shows it in a shop context: main row + that shop's product_shop
        row."""
        rec = self.get("products", id_product)
        rows = self.product_shop.get(id_product)
        if not rows:
            return rec
        row = rows.get(id_shop if id_shop is not None else self.default_shop_id)
        return {**rec, **row} if row else rec

    def cover_image(self, id_product: int) -> int | None:
        ids = self.index().images_by_product.get(id_product, [])
        for iid in ids:
            if self.images[iid].get("cover"):
                return iid
        return ids[0] if ids else None

    def product_image_ids(self, id_product: int) -> list[int]:
        return list(self.index().images_by_product.get(id_product, []))

    def default_combination(self, id_product: int) -> int:
        for cid in self.index().combinations_by_product.get(id_product, []):
            if self.tables["combinations"][cid].get("default_on") == 1:
                return cid
        return 0

    def tax_rate(self, id_tax_rules_group: int, id_country: int) -> tuple[Decimal, list[int]]:
        """Total rate (percent) and tax ids a tax rules group applies in a country (no state/zipcode
        rules)."""
        key = (id_tax_rules_group, id_country)
        cached = self._tax_cache.get(key)
        if cached is not None:
            return cached
        rate, ids = ZERO, []
        if id_tax_rules_group:
            for rule in self.tables["tax_rules"].values():
                if rule["id_tax_rules_group"] == id_tax_rules_group and rule["id_country"] == id_country:
                    tax = self.tables["taxes"].get(int(rule["id_tax"]))
                    if tax and tax["active"] and not tax["deleted"]:
                        rate += dec(tax["rate"])
                        ids.append(int(tax["id"]))
        self._tax_cache[key] = (rate, ids)
        return rate, ids

    # ------------------------------------------------------------------------------------------------------
    # indexes
    # ------------------------------------------------------------------------------------------------------
    def index(self) -> ShopIndex:
        if self._index is not None and self._index_rev == self.revision:
            return self._index
        idx = ShopIndex()
        t = self.tables

        def add(target: dict[Any, list[int]], key: Any, value: int) -> None:
            target.setdefault(key, []).append(value)

        for cid in sorted(t["combinations"]):
            add(idx.combinations_by_product, t["combinations"][cid]["id_product"], cid)
        for sid in sorted(t["stock_availables"]):
            add(idx.stock_by_product, t["stock_availables"][sid]["id_product"], sid)
        for iid in sorted(self.images, key=lambda i: (self.images[i]["position"], i)):
            add(idx.images_by_product, self.images[iid]["id_product"], iid)
        for did in sorted(t["order_details"]):
            add(idx.details_by_order, t["order_details"][did]["id_order"], did)
        for iid in sorted(t["order_invoices"]):
            add(idx.invoices_by_order, t["order_invoices"][iid]["id_order"], iid)
        for hid in sorted(t["order_histories"]):
            add(idx.histories_by_order, t["order_histories"][hid]["id_order"], hid)
        for ocid in sorted(t["order_carriers"]):
            add(idx.carriers_by_order, t["order_carriers"][ocid]["id_order"], ocid)
        for oid in sorted(t["orders"]):
            add(idx.orders_by_reference, t["orders"][oid]["reference"], oid)
        cats = t["categories"]
        for cid in sorted(cats, key=lambda c: (cats[c]["position"], c)):
            add(idx.children_by_category, cats[cid]["id_parent"], cid)
        for vid in sorted(t["product_option_values"]):
            add(idx.values_by_group, t["product_option_values"][vid]["id_attribute_group"], vid)
        for pid in sorted(t["products"]):
            for cid in t["products"][pid].get("_categories", []):
                add(idx.products_by_category, cid, pid)
        for pay_id in sorted(t["order_payments"]):
            add(idx.payments_by_reference, t["order_payments"][pay_id]["order_reference"], pay_id)
        for aid in sorted(t["addresses"]):
            add(idx.addresses_by_customer, t["addresses"][aid]["id_customer"], aid)
        self._index, self._index_rev = idx, self.revision
        return idx

    # ------------------------------------------------------------------------------------------------------
    # generic mutations
    # ------------------------------------------------------------------------------------------------------
    def new_id(self, resource: str) -> int:
        """The next AUTO_INCREMENT value (ids are never reused after a delete, as in MySQL)."""
        existing = self.images if resource == "images" else self.table(resource)
        nxt = self._next_ids.get(resource)
        if nxt is None:
            nxt = max(existing, default=0) + 1
        while nxt in existing:  # rows inserted directly into the table
            nxt += 1
        self._next_ids[resource] = nxt + 1
        return nxt

    def _coerce(self, resource: str, rec: Record, values: Mapping[str, Any]) -> None:
        coercions = _coercions(resource)
        for k, v in values.items():
            how = coercions.get(k)
            if how is None or (v is None and how == "dec"):
                rec[k] = v
            elif how == "i18n":
                current = dict(rec.get(k) or {})
                if isinstance(v, Mapping):
                    current.update({int(lk): str(lv) for lk, lv in v.items()})
                else:
                    current = dict.fromkeys(self.all_lang_ids, str(v))
                rec[k] = current
            else:
                rec[k] = dec(v)

    def add(self, resource: str, record: Mapping[str, Any] | None = None, /, **values: Any) -> int:
        """Insert a row (PrestaShop defaults for missing fields) and return its id.

        ``date_add``/``date_upd`` default to ``now()``. Products take ``_shops=[...]`` (shops to associate,
        default the default shop) and ``_categories=[...]``; a product gets its product-level stock row
        (quantity 0), a combination its own stock row, and adding a combination bumps its product's
        ``date_upd``.
        """
        spec = RESOURCES[resource]
        if not spec.modelled:
            raise ShopError(f"resource {resource!r} is not modelled")
        data: dict[str, Any] = dict(record or {})
        data.update(values)
        shops = data.pop("_shops", None)
        rid = data.pop("id", None)
        if rid is None:
            rid = self.new_id(resource)
        else:
            rid = int(rid)
            if rid in self.table(resource):
                raise ShopError(f"{resource} {rid} already exists")
            self._next_ids[resource] = max(self._next_ids.get(resource, 1), rid + 1)
        rec = new_record(resource, self.all_lang_ids)
        self._coerce(resource, rec, data)
        rec["id"] = rid
        now = self.now()
        if spec.has_date_add and rec.get("date_add") in (ZERO_DATETIME, None):
            rec["date_add"] = now
        if spec.has_date_upd and rec.get("date_upd") in (ZERO_DATETIME, None):
            rec["date_upd"] = now
        if resource == "products":
            rec["_categories"] = list(rec.get("_categories", []))
            if rec["id_category_default"] and rec["id_category_default"] not in rec["_categories"]:
                rec["_categories"].append(rec["id_category_default"])
        self.table(resource)[rid] = rec
        self._index_insert(resource, rec)
        if resource == "products":
            shop_list = [int(s) for s in (shops or [self.default_shop_id])]
            rec["id_shop_default"] = shop_list[0]
            self.product_shop[rid] = {s: {k: rec[k] for k in SHOP_PRODUCT_FIELDS} for s in shop_list}
            for s in shop_list:
                self._stock_row(rid, 0, s, create=True)
        elif resource == "combinations":
            rec.setdefault("_option_values", [])
            rec.setdefault("_images", [])
            pid = int(rec["id_product"])
            product = self.get("products", pid)
            for s in self.product_shops(pid):
                self._stock_row(pid, rid, s, create=True)
            if product["product_type"] == "standard":
                product["product_type"] = "combinations"
            if rec.get("default_on") == 1 or not self.default_combination(pid):
                self._set_default_combination(pid, rid)
            self._bump_product(pid)
        elif resource == "customers":
            rec.setdefault("_groups", [rec["id_default_group"]])
        return rid

    def _bump_product(self, id_product: int, id_shop: int | None = None) -> None:
        """A product saved from the back office: main row and product_shop row(s) get ``date_upd = now``."""
        product = self.tables["products"].get(id_product)
        if product is None:
            return
        now = self.now()
        product["date_upd"] = now
        rows = self.product_shop.get(id_product, {})
        for s, row in rows.items():
            if id_shop is None or s == id_shop:
                row["date_upd"] = now
        self._mutated()

    def _set_default_combination(self, id_product: int, id_combination: int) -> None:
        for cid in self.index().combinations_by_product.get(id_product, []):
            combo = self.tables["combinations"][cid]
            combo["default_on"] = 1 if cid == id_combination else None
        product = self.tables["products"][id_product]
        product["cache_default_attribute"] = id_combination
        for row in self.product_shop.get(id_product, {}).values():
            row["cache_default_attribute"] = id_combination
        self._mutated()

    def update(self, resource: str, id_: int, /, *, id_shop: int | None = None, **fields: Any) -> int:
        """Change fields of a row, as the back office does; return the id of the row that now holds them.

        ``date_upd`` moves to ``now()`` where the resource has it. Products: ``id_shop`` is the shop context
        of the edit (default: the default shop); shop fields (price, active...) change in that shop's
        product_shop row only, the main row gets every field (filters read the main row). A combination edit
        bumps its product. An address used by an order, or a carrier used by an order, is not edited in
        place: PrestaShop marks it deleted and creates a new row (the returned id).
        """
        rec = self.get(resource, id_)
        spec = RESOURCES[resource]
        if resource == "addresses" and self._address_used(id_) and set(fields) - {"deleted"}:
            return self._version_row(resource, id_, fields)
        if resource == "carriers" and self._carrier_used(id_) and set(fields) - {"deleted", "active"}:
            return self._version_row(resource, id_, fields)
        self._coerce(resource, rec, fields)
        if spec.has_date_upd and "date_upd" not in fields:
            rec["date_upd"] = self.now()
        if resource == "products":
            ctx = id_shop if id_shop is not None else self.default_shop_id
            rows = self.product_shop.setdefault(id_, {})
            if ctx not in rows:
                rows[ctx] = {k: rec[k] for k in SHOP_PRODUCT_FIELDS}
            row = rows[ctx]
            for k in SHOP_PRODUCT_FIELDS:
                if k in fields:
                    row[k] = rec[k]
            row["date_upd"] = rec["date_upd"]
            if "id_category_default" in fields:
                cats = rec.setdefault("_categories", [])
                if rec["id_category_default"] not in cats:
                    cats.append(rec["id_category_default"])
        elif resource == "combinations":
            if fields.get("default_on") == 1:
                self._set_default_combination(int(rec["id_product"]), id_)
            self._bump_product(int(rec["id_product"]))
        if set(fields) & _INDEXED_FIELDS or resource in ("taxes", "tax_rules", "tax_rule_groups"):
            self.touch()
        else:
            self._mutated()
        return id_

    def _address_used(self, id_address: int) -> bool:
        return any(
            o["id_address_delivery"] == id_address or o["id_address_invoice"] == id_address
            for o in self.tables["orders"].values()
        )

    def _carrier_used(self, id_carrier: int) -> bool:
        return any(o["id_carrier"] == id_carrier for o in self.tables["orders"].values())

    def _version_row(self, resource: str, id_: int, fields: Mapping[str, Any]) -> int:
        old = self.get(resource, id_)
        data = {k: v for k, v in old.items() if k not in ("id", "date_add", "date_upd")}
        data.update(fields)
        if resource == "carriers":
            data["id_reference"] = old["id_reference"] or id_
        new_id = self.add(resource, data)
        old["deleted"] = 1
        if RESOURCES[resource].has_date_upd:
            old["date_upd"] = self.now()
        if resource in self.shop_assoc and id_ in self.shop_assoc[resource]:
            self.shop_assoc[resource][new_id] = set(self.shop_assoc[resource][id_])
        self.touch()
        return new_id

    def soft_delete(self, resource: str, id_: int) -> None:
        """``deleted = 1`` (customers, addresses, carriers, order states, shops): the row stays readable."""
        rec = self.get(resource, id_)
        if "deleted" not in rec:
            raise ShopError(f"{resource} has no 'deleted' flag")
        rec["deleted"] = 1
        if RESOURCES[resource].has_date_upd:
            rec["date_upd"] = self.now()
        self._mutated()

    def delete(self, resource: str, id_: int) -> None:
        """Hard delete, with the cascades PrestaShop's ``delete()`` methods perform."""
        rec = self.get(resource, id_)
        table = self.table(resource)
        if resource == "products":
            for cid in list(self.index().combinations_by_product.get(id_, [])):
                self.tables["combinations"].pop(cid, None)
            for sid in list(self.index().stock_by_product.get(id_, [])):
                self.tables["stock_availables"].pop(sid, None)
            for iid in list(self.index().images_by_product.get(id_, [])):
                self.images.pop(iid, None)
            self.product_shop.pop(id_, None)
        elif resource == "combinations":
            pid = int(rec["id_product"])
            for sid in list(self.index().stock_by_product.get(pid, [])):
                if self.tables["stock_availables"][sid]["id_product_attribute"] == id_:
                    self.tables["stock_availables"].pop(sid)
            table.pop(id_)
            self.touch()
            remaining = self.index().combinations_by_product.get(pid, [])
            if rec.get("default_on") == 1:
                self._set_default_combination(pid, remaining[0] if remaining else 0)
            if not remaining:
                self.tables["products"][pid]["product_type"] = "standard"
            self._resync_product_stock(pid)
            self._bump_product(pid)
            return
        elif resource == "categories":
            doomed: list[int] = [id_]
            children = self.index().children_by_category
            i = 0
            while i < len(doomed):
                doomed.extend(children.get(doomed[i], []))
                i += 1
            parent = int(rec["id_parent"])
            for d in doomed:
                table.pop(d, None)
            for product in self.tables["products"].values():
                cats = [c for c in product.get("_categories", []) if c not in doomed]
                product["_categories"] = cats
                if product["id_category_default"] in doomed:
                    product["id_category_default"] = parent
            for rows in self.product_shop.values():
                for row in rows.values():
                    if row["id_category_default"] in doomed:
                        row["id_category_default"] = parent
            self.touch()
            return
        elif resource == "orders":
            idx = self.index()
            for did in idx.details_by_order.get(id_, []):
                self.tables["order_details"].pop(did, None)
                self.order_detail_taxes.pop(did, None)
            for hid in idx.histories_by_order.get(id_, []):
                self.tables["order_histories"].pop(hid, None)
            for ocid in idx.carriers_by_order.get(id_, []):
                self.tables["order_carriers"].pop(ocid, None)
        elif resource == "order_slip":
            self.slip_details.pop(id_, None)
        table.pop(id_, None)
        self.touch()

    def set_name(
        self, resource: str, id_: int, text: str, *, lang: int | None = None, id_shop: int | None = None
    ) -> int:
        """Rename a row (``name``), in one language or all of them; bumps ``date_upd``."""
        f = RESOURCES[resource].field("name")
        if f is None:
            raise ShopError(f"{resource} has no name")
        value: Any = {lang: text} if (f.i18n and lang is not None) else text
        if resource == "products":
            return self.update(resource, id_, id_shop=id_shop, name=value)
        return self.update(resource, id_, name=value)

    # ------------------------------------------------------------------------------------------------------
    # products: shops, categories, images
    # ------------------------------------------------------------------------------------------------------
    def associate_product(self, id_product: int, id_shop: int, **shop_fields: Any) -> None:
        """Add a product to a shop (a product_shop row copied from the main row, then ``shop_fields``).

        No date moves: this is for building data. Use ``update(..., id_shop=...)`` for a back-office edit.
        """
        rec = self.get("products", id_product)
        rows = self.product_shop.setdefault(id_product, {})
        row = rows.setdefault(id_shop, {k: rec[k] for k in SHOP_PRODUCT_FIELDS})
        for k, v in shop_fields.items():
            if k not in SHOP_PRODUCT_FIELDS:
                raise ShopError(f"{k!r} is not a shop field of products")
            row[k] = (
                dec(v) if isinstance(v, (int, str)) and k in ("price", "wholesale_price", "ecotax") else v
            )
        self._stock_row(id_product, 0, id_shop, create=True)
        for cid in self.index().combinations_by_product.get(id_product, []):
            self._stock_row(id_product, cid, id_shop, create=True)
        self._mutated()

    def dissociate_product(self, id_product: int, id_shop: int) -> None:
        rows = self.product_shop.get(id_product)
        if rows is not None:
            rows.pop(id_shop, None)
        self.touch()

    def move_product_to_category(
        self, id_product: int, id_category: int, *, keep_previous: bool = False
    ) -> None:
        """Change a product's default category (and its category associations); bumps ``date_upd``."""
        self.get("categories", id_category)
        product = self.get("products", id_product)
        old = product["id_category_default"]
        cats = [c for c in product.get("_categories", []) if keep_previous or c != old or c == 2]
        if id_category not in cats:
            cats.append(id_category)
        product["_categories"] = cats
        self.update("products", id_product, id_category_default=id_category)

    def add_image(self, id_product: int, *, cover: bool = False, legend: str = "") -> int:
        """Upload an image for a product; the first image becomes the cover. No product date moves."""
        self.get("products", id_product)
        existing = self.product_image_ids(id_product)
        iid = self.new_id("images")
        is_cover = cover or not existing
        if is_cover:
            for other in existing:
                self.images[other]["cover"] = None
        self.images[iid] = {
            "id": iid,
            "id_product": id_product,
            "position": len(existing) + 1,
            "cover": 1 if is_cover else None,
            "legend": dict.fromkeys(self.all_lang_ids, legend),
            "version": 1,
        }
        self._index_insert("images", self.images[iid])
        return iid

    def replace_image(self, id_image: int) -> None:
        """Upload a new file for an existing image id: the bytes served change, the id does not."""
        if id_image not in self.images:
            raise ShopError(f"image {id_image} does not exist")
        self.images[id_image]["version"] += 1
        self._mutated()

    def delete_image(self, id_image: int) -> None:
        img = self.images.pop(id_image, None)
        if img is None:
            raise ShopError(f"image {id_image} does not exist")
        self.touch()
        rest = self.product_image_ids(int(img["id_product"]))
        for pos, iid in enumerate(rest, start=1):
            self.images[iid]["position"] = pos
        if img.get("cover") and rest:
            self.images[rest[0]]["cover"] = 1
        self.touch()

    def image_bytes(self, id_image: int, size: str = "") -> bytes:
        img = self.images[id_image]
        suffix = f" {size}" if size else ""
        return tiny_jpeg(f"ps2doli product {img['id_product']} image {id_image} v{img['version']}{suffix}")

    # ------------------------------------------------------------------------------------------------------
    # stock
    # ------------------------------------------------------------------------------------------------------
    def stock_scope(self, id_shop: int) -> tuple[int, int]:
        """``(id_shop, id_shop_group)`` of a shop's stock rows: ``(0, group)`` when its group shares stock."""
        if self.group_shares(id_shop, "share_stock"):
            return 0, self.shop_group_of(id_shop)
        return id_shop, 0

    def _stock_row(
        self, id_product: int, id_attr: int, id_shop: int | None, *, create: bool = False
    ) -> Record | None:
        scope = self.stock_scope(id_shop if id_shop is not None else self.default_shop_id)
        stock = self.tables["stock_availables"]
        for sid in self.index().stock_by_product.get(id_product, []):
            row = stock.get(sid)
            if (
                row
                and row["id_product_attribute"] == id_attr
                and (row["id_shop"], row["id_shop_group"]) == scope
            ):
                return row
        if not create:
            return None
        sid = self.new_id("stock_availables")
        stock[sid] = new_record(
            "stock_availables",
            id=sid,
            id_product=id_product,
            id_product_attribute=id_attr,
            id_shop=scope[0],
            id_shop_group=scope[1],
        )
        self._index_insert("stock_availables", stock[sid])
        return stock[sid]

    def stock_quantity(
        self, id_product: int, id_product_attribute: int = 0, *, id_shop: int | None = None
    ) -> int:
        row = self._stock_row(id_product, id_product_attribute, id_shop)
        return int(row["quantity"]) if row else 0

    def set_stock(
        self, id_product: int, id_product_attribute: int = 0, quantity: int = 0, *, id_shop: int | None = None
    ) -> int:
        """Set a quantity (no date moves anywhere: stock has no dates). A combination's change resyncs the
        product-level row (``id_product_attribute`` 0 = sum of the combinations), as StockAvailable does."""
        self.get("products", id_product)
        if id_product_attribute:
            self.get("combinations", id_product_attribute)
        row = self._stock_row(id_product, id_product_attribute, id_shop, create=True)
        assert row is not None
        row["quantity"] = int(quantity)
        if id_product_attribute:
            self._resync_product_stock(id_product, id_shop)
        self._mutated()
        return int(row["id"])

    def _resync_product_stock(self, id_product: int, id_shop: int | None = None) -> None:
        combos = set(self.index().combinations_by_product.get(id_product, []))
        if not combos:
            return
        shops = [id_shop] if id_shop is not None else self.product_shops(id_product)
        stock = self.tables["stock_availables"]
        for s in shops:
            scope = self.stock_scope(s)
            total = sum(
                int(r["quantity"])
                for sid in self.index().stock_by_product.get(id_product, [])
                if (r := stock[sid])["id_product_attribute"] in combos
                and (r["id_shop"], r["id_shop_group"]) == scope
            )
            row = self._stock_row(id_product, 0, s, create=True)
            assert row is not None
            row["quantity"] = total

    # ------------------------------------------------------------------------------------------------------
    # orders
    # ------------------------------------------------------------------------------------------------------
    def order_state(self, id_state: int) -> Record:
        return self.get("order_states", id_state)

    def order_payments_for(self, reference: str) -> list[Record]:
        payments = self.tables["order_payments"]
        return [payments[p] for p in self.index().payments_by_reference.get(reference, []) if p in payments]

    def invoice_paid(self, id_order_invoice: int) -> Decimal:
        """Sum of the payments linked to an invoice (``order_invoice_payment``),
        ``OrderInvoice::getTotalPaid``."""
        payments = self.tables["order_payments"]
        by_invoice, _ = self._invoice_payment_index()
        return sum(
            (dec(payments[p]["amount"]) for p in by_invoice.get(id_order_invoice, []) if p in payments),
            ZERO,
        )

    def _invoice_payment_index(self) -> tuple[dict[int, list[int]], dict[int, set[tuple[int, int]]]]:
        """``invoice_payments`` by invoice (payment ids, in order) and by order ((payment, order) pairs), brought
        up to date with the rows appended since the last call (the list only grows; a shorter one is re-read)."""
        seen, by_invoice, by_order = self._ip_index
        rows = self.invoice_payments
        if len(rows) < seen:
            seen, by_invoice, by_order = 0, {}, {}
        for inv, pay, oid in rows[seen:]:
            by_invoice.setdefault(inv, []).append(pay)
            by_order.setdefault(oid, set()).add((pay, oid))
        self._ip_index = (len(rows), by_invoice, by_order)
        return by_invoice, by_order

    def _next_number(self, resource: str, key: str, start: int) -> int:
        """``MAX(key) + 1`` over a table, at least ``start``. Rows added since the last call are read (ids only
        grow, new rows come last); numbers handed out are noted by :meth:`_note_number`."""
        table = self.tables[resource]
        count, last_id, high = self._numbers.get((resource, key), (0, 0, None))
        if len(table) < count:
            count, last_id, high = 0, 0, None
        fresh: list[int] = []
        for rid in reversed(table):
            if rid <= last_id:
                break
            fresh.append(int(table[rid][key]))
        if fresh:
            high = max(fresh if high is None else [*fresh, high])
        if table:
            last_id = max(last_id, next(reversed(table)))
        self._numbers[(resource, key)] = (len(table), last_id, high)
        return max((start - 1 if high is None else high) + 1, start)

    def _note_number(self, resource: str, key: str, number: int) -> None:
        count, last_id, high = self._numbers.get((resource, key), (0, 0, None))
        self._numbers[(resource, key)] = (count, last_id, number if high is None else max(high, number))

    def _new_reference(self) -> str:
        """Order::generateReference: 9 random upper-case letters, shared by the orders of one cart."""
        return "".join(self.rng.choice(string.ascii_uppercase) for _ in range(9))

    def _add_history(self, id_order: int, id_state: int, id_employee: int) -> int:
        return self.add(
            "order_histories",
            id_employee=id_employee,
            id_order_state=id_state,
            id_order=id_order,
            date_add=self.now(),
        )

    def _payment_method(self, order: Record) -> str:
        return _MODULE_DISPLAY_NAMES.get(str(order["module"]), str(order["payment"]))

    def _add_order_payment(
        self,
        order: Record,
        amount: Decimal,
        *,
        method: str,
        transaction_id: str = "",
        id_currency: int | None = None,
        conversion_rate: Decimal = Decimal(1),
        id_order_invoice: int | None = None,
        card: Mapping[str, str] | None = None,
    ) -> int:
        """Order::addOrderPayment: a payment on the order's reference; ``total_paid_real`` grows; the order is
        saved (``date_upd`` moves)."""
        card = card or {}
        pid = self.add(
            "order_payments",
            order_reference=order["reference"],
            id_currency=id_currency or order["id_currency"],
            amount=round6(amount),
            payment_method=method,
            conversion_rate=conversion_rate,
            transaction_id=transaction_id,
            card_number=card.get("card_number", ""),
            card_brand=card.get("card_brand", ""),
            card_expiration=card.get("card_expiration", ""),
            card_holder=card.get("card_holder", ""),
            date_add=self.now(),
        )
        order["total_paid_real"] = round6(dec(order["total_paid_real"]) + amount)
        order["date_upd"] = self.now()
        if id_order_invoice is not None:
            self.invoice_payments.append((id_order_invoice, pid, int(order["id"])))
        self._mutated()
        return pid

    def _set_invoice(self, order: Record, use_existing_payment: bool) -> int:
        """Order::setInvoice: next invoice number, totals copied from the order, lines and carrier linked."""
        number = self._next_number("order_invoices", "number", self._config_int("PS_INVOICE_START_NUMBER", 1))
        shop = self.tables["shops"].get(int(order["id_shop"]))
        inv_id = self.add(
            "order_invoices",
            id_order=order["id"],
            number=number,
            total_discount_tax_excl=order["total_discounts_tax_excl"],
            total_discount_tax_incl=order["total_discounts_tax_incl"],
            total_paid_tax_excl=order["total_paid_tax_excl"],
            total_paid_tax_incl=order["total_paid_tax_incl"],
            total_products=order["total_products"],
            total_products_wt=order["total_products_wt"],
            total_shipping_tax_excl=order["total_shipping_tax_excl"],
            total_shipping_tax_incl=order["total_shipping_tax_incl"],
            total_wrapping_tax_excl=order["total_wrapping_tax_excl"],
            total_wrapping_tax_incl=order["total_wrapping_tax_incl"],
            shop_address=shop["name"] if shop else "",
            date_add=self.now(),
        )
        order["invoice_number"] = number
        order["invoice_date"] = self.now()
        idx = self.index()
        for did in idx.details_by_order.get(int(order["id"]), []):
            self.tables["order_details"][did]["id_order_invoice"] = inv_id
        for ocid in idx.carriers_by_order.get(int(order["id"]), []):
            self.tables["order_carriers"][ocid]["id_order_invoice"] = inv_id
        if use_existing_payment:
            linked = set(self._invoice_payment_index()[1].get(int(order["id"]), ()))
            for pay in self.order_payments_for(str(order["reference"])):
                if (pay["id"], order["id"]) not in linked:
                    self.invoice_payments.append((inv_id, int(pay["id"]), int(order["id"])))
        self._mutated()
        return inv_id

    def _set_delivery_slip(self, order: Record) -> None:
        number = self._next_number("orders", "delivery_number", self._config_int("PS_DELIVERY_NUMBER", 1))
        self._note_number("orders", "delivery_number", number)
        for inv_id in self.index().invoices_by_order.get(int(order["id"]), []):
            inv = self.tables["order_invoices"][inv_id]
            inv["delivery_number"] = number
            inv["delivery_date"] = self.now()
        order["delivery_number"] = number

    def change_order_state(
        self,
        id_order: int,
        id_order_state: int,
        *,
        id_employee: int = 1,
        duplicate_payment: bool = False,
        use_existing_payment: bool | None = None,
    ) -> int:
        """OrderHistory::changeIdOrderState, as the back office calls it; returns the new order_history id.

        Appends an order_history, sets ``current_state``/``valid``, moves ``date_upd``. Entering an
        ``invoice`` state creates the invoice (next number; payments already recorded on the reference are
        linked to it); otherwise entering a ``delivery`` state creates the delivery slip. Entering a ``paid``
        state adds an order_payment for what the invoice still misses. ``duplicate_payment=True`` reproduces
        the overpayment seen in the field: the full invoice amount is recorded again whatever was already
        paid.
        """
        order = self.get("orders", id_order)
        new_os = self.order_state(id_order_state)
        if use_existing_payment is None:
            use_existing_payment = not order["invoice_number"]
        hid = self._add_history(id_order, id_order_state, id_employee)
        if new_os["invoice"] and not order["invoice_number"]:
            self._set_invoice(order, use_existing_payment)
        elif new_os["delivery"] and not order["delivery_number"]:
            self._set_delivery_slip(order)
        if new_os["paid"]:
            for inv_id in self.index().invoices_by_order.get(id_order, []):
                inv = self.tables["order_invoices"][inv_id]
                total = dec(inv["total_paid_tax_incl"])
                rest = total if duplicate_payment else round2(total - self.invoice_paid(inv_id))
                if rest > 0:
                    self._add_order_payment(
                        order,
                        rest,
                        method=self._payment_method(order),
                        conversion_rate=dec(order["conversion_rate"]),
                        id_order_invoice=inv_id,
                    )
        if new_os["delivery"]:
            order["delivery_date"] = self.now()
            for inv_id in self.index().invoices_by_order.get(id_order, []):
                inv = self.tables["order_invoices"][inv_id]
                if not inv["delivery_number"]:
                    inv["delivery_date"] = self.now()
        order["current_state"] = id_order_state
        order["valid"] = 1 if new_os["logable"] else 0
        order["date_upd"] = self.now()
        self._mutated()
        return hid

    def add_payment(
        self,
        order_reference: str,
        amount: Amount,
        method: str = "Bank wire",
        transaction_id: str = "",
        *,
        id_currency: int | None = None,
        card: Mapping[str, str] | None = None,
    ) -> int:
        """A payment entered in the back office on the order(s) of a reference (linked to the first order's
        invoice when it has one). Carries the currency's conversion rate; bumps the order's ``date_upd``."""
        oids = self.index().orders_by_reference.get(order_reference)
        if not oids:
            raise ShopError(f"no order with reference {order_reference!r}")
        order = self.tables["orders"][oids[0]]
        cur_id = id_currency or int(order["id_currency"])
        currency = self.tables["currencies"].get(cur_id)
        rate = dec(currency["conversion_rate"]) if currency else Decimal(1)
        invoices = self.index().invoices_by_order.get(oids[0], [])
        return self._add_order_payment(
            order,
            dec(amount),
            method=method,
            transaction_id=transaction_id,
            id_currency=cur_id,
            conversion_rate=rate,
            id_order_invoice=invoices[0] if invoices else None,
            card=card,
        )

    def add_credit_slip(
        self,
        id_order: int,
        amount: Amount | None = None,
        *,
        lines: Sequence[tuple[int, int]] | None = None,
        shipping: bool = False,
        id_order_state: int | None = None,
    ) -> int:
        """A refund (order_slip). ``lines``: ``(id_order_detail, quantity)`` refunded; ``amount``: a partial
        refund of that amount (tax incl.); neither: a full refund of every line and the shipping.
        ``id_order_state``: also move the order to that state (e.g. 7, Refunded)."""
        order = self.get("orders", id_order)
        details = self.tables["order_details"]
        rows: list[tuple[int, int]] = []
        partial = 0
        prod_excl = prod_incl = ZERO
        if lines is None and amount is None:
            rows = [
                (did, int(details[did]["product_quantity"]) - int(details[did]["product_quantity_refunded"]))
                for did in self.index().details_by_order.get(id_order, [])
            ]
            rows = [(d, q) for d, q in rows if q > 0]
            shipping = True
        elif lines is not None:
            rows = [(int(d), int(q)) for d, q in lines]
        slip_rows: list[Record] = []
        for did, qty in rows:
            detail = details[did]
            if detail["id_order"] != id_order:
                raise ShopError(f"order_detail {did} is not a line of order {id_order}")
            line_excl = round2(dec(detail["unit_price_tax_excl"]) * qty)
            line_incl = round2(dec(detail["unit_price_tax_incl"]) * qty)
            prod_excl += line_excl
            prod_incl += line_incl
            detail["product_quantity_refunded"] = int(detail["product_quantity_refunded"]) + qty
            detail["total_refunded_tax_excl"] = round6(dec(detail["total_refunded_tax_excl"]) + line_excl)
            detail["total_refunded_tax_incl"] = round6(dec(detail["total_refunded_tax_incl"]) + line_incl)
            slip_rows.append(
                {
                    "id_order_detail": did,
                    "product_quantity": qty,
                    "amount_tax_excl": line_excl,
                    "amount_tax_incl": line_incl,
                }
            )
        if amount is not None:
            partial = 1
            prod_incl = round2(dec(amount))
            wt, ht = dec(order["total_products_wt"]), dec(order["total_products"])
            prod_excl = round2(prod_incl * ht / wt) if wt else prod_incl
        ship_excl = dec(order["total_shipping_tax_excl"]) if shipping else ZERO
        ship_incl = dec(order["total_shipping_tax_incl"]) if shipping else ZERO
        sid = self.add(
            "order_slip",
            id_customer=order["id_customer"],
            id_order=id_order,
            conversion_rate=order["conversion_rate"],
            total_products_tax_excl=prod_excl,
            total_products_tax_incl=prod_incl,
            total_shipping_tax_excl=ship_excl,
            total_shipping_tax_incl=ship_incl,
            amount=prod_incl + ship_incl,
            shipping_cost=1 if shipping else 0,
            shipping_cost_amount=ship_incl,
            partial=partial,
        )
        self.slip_details[sid] = [{"id": sid, **r} for r in slip_rows]
        if id_order_state is not None:
            self.change_order_state(id_order, id_order_state)
        self._mutated()
        return sid

    def _default_address(self, id_customer: int) -> int:
        addresses = self.tables["addresses"]
        for aid in self.index().addresses_by_customer.get(id_customer, []):
            a = addresses.get(aid)
            if a is not None and a["id_customer"] == id_customer and not a["deleted"]:
                return aid
        raise ShopError(f"customer {id_customer} has no address")

    def _default_carrier(self) -> int:
        for cid in sorted(self.tables["carriers"]):
            c = self.tables["carriers"][cid]
            if c["active"] and not c["deleted"]:
                return cid
        raise ShopError("no active carrier")

    def _order_line_name(self, product: Record, combo: Record | None, id_lang: int) -> str:
        name = str(product["name"].get(id_lang) or product["name"].get(self.default_lang_id) or "")
        if not combo:
            return name
        parts = []
        values = self.tables["product_option_values"]
        groups = self.tables["product_options"]
        for vid in combo.get("_option_values", []):
            value = values.get(vid)
            if value is None:
                continue
            group = groups.get(int(value["id_attribute_group"]))
            gname = group["public_name"].get(id_lang, "") if group else ""
            parts.append(f"{gname} : {value['name'].get(id_lang, '')}")
        return f"{name} - {', '.join(parts)}" if parts else name

    def _build_order(
        self,
        customer_id: int,
        lines: Sequence[LineSpec],
        *,
        address_id: int | None,
        invoice_address_id: int | None,
        carrier_id: int | None,
        currency_id: int | None,
        shop_id: int | None,
        module: str,
        payment: str,
        discount_percent: Amount | None,
        discount_amount: Amount | None,
        free_shipping: bool,
        gift_wrapping: bool,
        gift_message: str,
        shipping_tax_excl: Amount | None,
        round_type: int | None,
        reference: str,
        id_cart: int,
        note: str,
        decrement_stock: bool,
    ) -> int:
        customer = self.get("customers", customer_id)
        id_shop = shop_id if shop_id is not None else int(customer["id_shop"]) or self.default_shop_id
        delivery = self.get(
            "addresses", address_id if address_id is not None else self._default_address(customer_id)
        )
        invoice_addr = invoice_address_id if invoice_address_id is not None else int(delivery["id"])
        carrier = self.get("carriers", carrier_id if carrier_id is not None else self._default_carrier())
        currency = self.get(
            "currencies", currency_id if currency_id is not None else self.default_currency_id
        )
        conv = dec(currency["conversion_rate"])
        country = int(delivery["id_country"])
        rtype = round_type if round_type is not None else self.round_type
        id_lang = int(customer["id_lang"]) or self.default_lang_id
        if not lines:
            raise ShopError("an order needs at least one line")

        computed: list[dict[str, Any]] = []
        by_group: dict[tuple[int, Decimal], Decimal] = {}
        sum_excl_raw = ZERO
        sum_incl_raw = ZERO
        weight = ZERO
        for spec in lines:
            line = spec if isinstance(spec, OrderLine) else OrderLine(*spec)
            product = self.product_view(line.id_product, id_shop)
            combo = self.get("combinations", line.id_product_attribute) if line.id_product_attribute else None
            base = dec(product["price"]) + (dec(combo["price"]) if combo else ZERO)
            unit_excl = round6(base * conv)
            group = int(product["id_tax_rules_group"])
            rate, tax_ids = self.tax_rate(group, country)
            unit_incl = round6(unit_excl * (1 + rate / 100))
            q = line.quantity
            if rtype == ROUND_ITEM:
                tot_excl, tot_incl = round2(unit_excl) * q, round2(unit_incl) * q
            elif rtype == ROUND_TOTAL:
                tot_excl, tot_incl = round3(unit_excl * q), round3(unit_incl * q)
            else:
                tot_excl, tot_incl = round2(unit_excl * q), round2(unit_incl * q)
            sum_excl_raw += unit_excl * q
            sum_incl_raw += unit_incl * q
            by_group[(group, rate)] = by_group.get((group, rate), ZERO) + unit_excl * q
            line_weight = dec(product["weight"]) + (dec(combo["weight"]) if combo else ZERO)
            weight += line_weight * q
            wholesale = dec(combo["wholesale_price"]) if combo and dec(combo["wholesale_price"]) else ZERO
            wholesale = wholesale or dec(product["wholesale_price"])
            computed.append(
                {
                    "line": line,
                    "product": product,
                    "combo": combo,
                    "unit_excl": unit_excl,
                    "unit_incl": unit_incl,
                    "tot_excl": tot_excl,
                    "tot_incl": tot_incl,
                    "group": group,
                    "tax_ids": tax_ids,
                    "weight": line_weight,
                    "wholesale": wholesale,
                }
            )

        if rtype == ROUND_TOTAL:
            products_excl = round2(sum_excl_raw)
            products_incl = sum((round2(v * (1 + r / 100)) for (_, r), v in by_group.items()), ZERO)
        else:
            products_excl = sum((c["tot_excl"] for c in computed), ZERO)
            products_incl = sum((c["tot_incl"] for c in computed), ZERO)

        if carrier["is_free"]:
            ship_excl = ZERO
        elif shipping_tax_excl is not None:
            ship_excl = round2(dec(shipping_tax_excl))
        else:
            ship_excl = round2(dec(carrier.get("_price", ZERO)) * conv)
        carrier_rate, _ = self.tax_rate(int(carrier["id_tax_rules_group"]), country)
        ship_incl = round2(ship_excl * (1 + carrier_rate / 100))

        wrap_excl = wrap_incl = ZERO
        if gift_wrapping:
            wrap_excl = round2(dec(self.config("PS_GIFT_WRAPPING_PRICE") or "0") * conv)
            wrap_rate, _ = self.tax_rate(self._config_int("PS_GIFT_WRAPPING_TAX_RULES_GROUP", 0), country)
            wrap_incl = round2(wrap_excl * (1 + wrap_rate / 100))

        disc_excl = disc_incl = ZERO
        if discount_percent is not None:
            pct = dec(discount_percent) / 100
            disc_excl += round2(products_excl * pct)
            disc_incl += round2(products_incl * pct)
        if discount_amount is not None:
            amount = min(round2(dec(discount_amount)), products_incl)
            disc_incl += amount
            disc_excl += round2(amount * products_excl / products_incl) if products_incl else amount
        if free_shipping:
            disc_excl += ship_excl
            disc_incl += ship_incl

        paid_excl = max(products_excl + ship_excl + wrap_excl - disc_excl, ZERO)
        paid_incl = max(products_incl + ship_incl + wrap_incl - disc_incl, ZERO)
        now = self.now()
        oid = self.add(
            "orders",
            id_address_delivery=delivery["id"],
            id_address_invoice=invoice_addr,
            id_cart=id_cart,
            id_currency=currency["id"],
            id_lang=id_lang,
            id_customer=customer_id,
            id_carrier=carrier["id"],
            current_state=0,
            module=module,
            valid=0,
            date_add=now,
            date_upd=now,
            note=note,
            id_shop_group=self.shop_group_of(id_shop),
            id_shop=id_shop,
            secure_key=customer["secure_key"],
            payment=payment,
            gift=1 if gift_wrapping else 0,
            gift_message=gift_message,
            total_discounts=disc_incl,
            total_discounts_tax_incl=disc_incl,
            total_discounts_tax_excl=disc_excl,
            total_paid=paid_incl,
            total_paid_tax_incl=paid_incl,
            total_paid_tax_excl=paid_excl,
            total_paid_real=ZERO,
            total_products=products_excl,
            total_products_wt=products_incl,
            total_shipping=ship_incl,
            total_shipping_tax_incl=ship_incl,
            total_shipping_tax_excl=ship_excl,
            carrier_tax_rate=carrier_rate,
            total_wrapping=wrap_incl,
            total_wrapping_tax_incl=wrap_incl,
            total_wrapping_tax_excl=wrap_excl,
            round_mode=self._config_int("PS_PRICE_ROUND_MODE", 2),
            round_type=rtype,
            conversion_rate=conv,
            reference=reference,
        )
        for c in computed:
            line, product, combo = c["line"], c["product"], c["combo"]
            in_stock = self.stock_quantity(line.id_product, line.id_product_attribute, id_shop=id_shop)
            did = self.add(
                "order_details",
                id_order=oid,
                product_id=line.id_product,
                product_attribute_id=line.id_product_attribute,
                id_shop=id_shop,
                product_name=self._order_line_name(product, combo, id_lang),
                product_quantity=line.quantity,
                product_quantity_in_stock=line.quantity if in_stock >= line.quantity else max(in_stock, 0),
                product_price=c["unit_excl"],
                product_ean13=(combo["ean13"] if combo and combo["ean13"] else product["ean13"]),
                product_isbn=(combo["isbn"] if combo and combo["isbn"] else product["isbn"]),
                product_upc=(combo["upc"] if combo and combo["upc"] else product["upc"]),
                product_mpn=(combo["mpn"] if combo and combo["mpn"] else product["mpn"]),
                product_reference=(
                    combo["reference"] if combo and combo["reference"] else product["reference"]
                ),
                product_supplier_reference=product["supplier_reference"],
                product_weight=c["weight"],
                id_tax_rules_group=c["group"],
                unit_price_tax_incl=c["unit_incl"],
                unit_price_tax_excl=c["unit_excl"],
                total_price_tax_incl=c["tot_incl"],
                total_price_tax_excl=c["tot_excl"],
                purchase_supplier_price=c["wholesale"],
                original_product_price=c["unit_excl"],
                original_wholesale_price=c["wholesale"],
            )
            if c["tax_ids"]:
                unit_tax = c["unit_incl"] - c["unit_excl"]
                self.order_detail_taxes[did] = [
                    {
                        "id_tax": tid,
                        "unit_amount": round6(unit_tax),
                        "total_amount": round6(c["tot_incl"] - c["tot_excl"]),
                    }
                    for tid in c["tax_ids"]
                ]
            if decrement_stock:
                self.set_stock(
                    line.id_product, line.id_product_attribute, in_stock - line.quantity, id_shop=id_shop
                )
        self.add(
            "order_carriers",
            id_order=oid,
            id_carrier=carrier["id"],
            weight=weight,
            shipping_cost_tax_excl=ship_excl,
            shipping_cost_tax_incl=ship_incl,
            date_add=now,
        )
        return oid

    def _checkout(
        self, order_ids: Sequence[int], id_state: int, amount_paid: Decimal, transaction_id: str
    ) -> None:
        """PaymentModule::validateOrder after the orders exist: one payment for the whole cart on the last
        order when the initial state is ``logable``, then the initial state of each order (payments linked to
        the invoices it creates)."""
        state = self.order_state(id_state)
        if state["logable"]:
            last = self.tables["orders"][order_ids[-1]]
            self._add_order_payment(
                last, amount_paid, method=str(last["payment"]), transaction_id=transaction_id
            )
        for oid in order_ids:
            self.change_order_state(oid, id_state, id_employee=0, use_existing_payment=True)

    def create_order(
        self,
        customer_id: int,
        lines: Sequence[LineSpec],
        *,
        address_id: int | None = None,
        invoice_address_id: int | None = None,
        carrier_id: int | None = None,
        currency_id: int | None = None,
        shop_id: int | None = None,
        state_id: int = 1,
        module: str = "ps_checkpayment",
        payment: str = "Payment by check",
        discount_percent: Amount | None = None,
        discount_amount: Amount | None = None,
        free_shipping: bool = False,
        gift_wrapping: bool = False,
        gift_message: str = "",
        shipping_tax_excl: Amount | None = None,
        round_type: int | None = None,
        reference: str | None = None,
        transaction_id: str = "",
        note: str = "",
        decrement_stock: bool = True,
    ) -> int:
        """Validate a cart into one order, computing every total as PrestaShop 1.7 does for the round type.

        ``lines``: ``OrderLine`` or ``(id_product, quantity[, id_product_attribute])``. Prices come from the
        product in the order's shop (+ combination impact), converted with the currency's rate; taxes from the
        product's tax rules group for the delivery country. ``state_id`` is the initial state (1 awaiting
        check, 2 payment accepted, 10 awaiting bank wire...); a ``logable`` initial state records the
        checkout payment (conversion rate 1, as observed). ``discount_amount`` is a voucher tax incl.,
        ``discount_percent`` a percentage voucher, ``free_shipping`` a free-shipping voucher (all end in
        ``total_discounts``).
        """
        ref = reference or self._new_reference()
        cart = self._next_cart
        self._next_cart += 1
        oid = self._build_order(
            customer_id,
            lines,
            address_id=address_id,
            invoice_address_id=invoice_address_id,
            carrier_id=carrier_id,
            currency_id=currency_id,
            shop_id=shop_id,
            module=module,
            payment=payment,
            discount_percent=discount_percent,
            discount_amount=discount_amount,
            free_shipping=free_shipping,
            gift_wrapping=gift_wrapping,
            gift_message=gift_message,
            shipping_tax_excl=shipping_tax_excl,
            round_type=round_type,
            reference=ref,
            id_cart=cart,
            note=note,
            decrement_stock=decrement_stock,
        )
        order = self.tables["orders"][oid]
        self._checkout([oid], state_id, dec(order["total_paid_tax_incl"]), transaction_id)
        return oid

    def create_split_order(
        self,
        customer_id: int,
        lines_a: Sequence[LineSpec],
        lines_b: Sequence[LineSpec],
        *,
        carrier_ids: tuple[int | None, int | None] = (None, None),
        discount_amount: Amount | None = None,
        state_id: int = 2,
        module: str = "ps_checkpayment",
        payment: str = "Payment by check",
        transaction_id: str = "",
        **kwargs: Any,
    ) -> tuple[int, int]:
        """One cart paid once that becomes two orders (two carriers/warehouses) with one ``reference``.

        As seen in the field: the cart's voucher is applied to each order (together they come to less than the
        cart), and the single checkout payment (the cart total, voucher counted once) is linked to both
        orders' invoices, so the payments of the reference add up to neither order's total.
        """
        ref = kwargs.pop("reference", None) or self._new_reference()
        cart = self._next_cart
        self._next_cart += 1
        common: dict[str, Any] = {
            "address_id": None,
            "invoice_address_id": None,
            "currency_id": None,
            "shop_id": None,
            "module": module,
            "payment": payment,
            "discount_percent": None,
            "discount_amount": discount_amount,
            "free_shipping": False,
            "gift_wrapping": False,
            "gift_message": "",
            "shipping_tax_excl": None,
            "round_type": None,
            "reference": ref,
            "id_cart": cart,
            "note": "",
            "decrement_stock": True,
        }
        common.update(kwargs)
        oid_a = self._build_order(customer_id, lines_a, carrier_id=carrier_ids[0], **common)
        oid_b = self._build_order(customer_id, lines_b, carrier_id=carrier_ids[1], **common)
        orders = self.tables["orders"]
        voucher_once = dec(orders[oid_a]["total_discounts_tax_incl"])
        amount = (
            dec(orders[oid_a]["total_paid_tax_incl"])
            + dec(orders[oid_b]["total_paid_tax_incl"])
            + voucher_once
        )
        self._checkout([oid_a, oid_b], state_id, amount, transaction_id)
        return oid_a, oid_b

    # ------------------------------------------------------------------------------------------------------
    # iteration helpers for the simulator
    # ------------------------------------------------------------------------------------------------------
    def rows(self, resource: str) -> Iterator[Record]:
        table = self.tables.get(resource, {})
        for rid in sorted(table):
            yield table[rid]


def ids_of(records: Iterable[Record]) -> list[int]:
    return [int(r["id"]) for r in records]
