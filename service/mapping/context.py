"""What a mapper may know besides the record itself: the shop's settings and its reference data.

Built by the engine once per pass (``engine/reference.py``) from the shop's small reference resources (taxes,
countries, attribute values, order states). Mappers only read it: no I/O happens here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from service.settings import CatalogSettings, OrderSettings


class MappingError(ValueError):
    """A record cannot be mapped: names the field and why. Recorded as a failure for that record."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"field {field}: {reason}")


@dataclass(frozen=True)
class OrderState:
    id: int
    name: str
    invoice: bool = False
    paid: bool = False
    shipped: bool = False
    delivery: bool = False
    logable: bool = False
    # a state that is none of the above but names a cancellation / refund / error (module_name or template)
    cancelled: bool = False
    refunded: bool = False
    error: bool = False


@dataclass(frozen=True)
class ShopContext:
    shop: str
    language_id: int = 1
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    catalog: CatalogSettings = CatalogSettings()
    orders: OrderSettings = OrderSettings()
    # id_tax_rules_group -> VAT rate for the configured country
    tax_rates: Mapping[int, Decimal] = field(default_factory=dict)
    # id_tax -> rate (what an order line's ``taxes`` association names)
    tax_by_id: Mapping[int, Decimal] = field(default_factory=dict)
    # id_country -> ISO code
    countries: Mapping[int, str] = field(default_factory=dict)
    # id of a product_option_value -> (attribute group name, value name)
    option_values: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    order_states: Mapping[int, OrderState] = field(default_factory=dict)
    # id_currency -> ISO code
    currencies: Mapping[int, str] = field(default_factory=dict)
    # PrestaShop category ids that are structural (Root, Home) and not mirrored
    structural_categories: frozenset[int] = frozenset({1, 2})
    round_type: int = 2  # PS_ROUND_TYPE: 1 per item, 2 per line, 3 on total
    main_currency: str = "EUR"
    # what the Dolibarr backend can hold (the SOAP backend has no categories, stock, variants...)
    categories_enabled: bool = True
    stock_enabled: bool = True
    images_enabled: bool = True  # files attached to products
