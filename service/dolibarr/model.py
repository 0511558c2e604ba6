"""What ps2doli writes to Dolibarr, independent of REST or SOAP.

The mappers build these frozen payloads from PrestaShop records; the engine hashes them (canonical JSON of
:func:`canonical`) to detect change, resolves their :class:`Ref` dependencies to Dolibarr ids, and hands them to
a :class:`~service.dolibarr.port.DolibarrPort`, which turns them into its own wire format.

Money is ``Decimal``. Dates are ``int`` Unix timestamps (already converted from the shop's zone by the mapper).
Dependencies are :class:`Ref` values (kind + ``ref_ext``), never Dolibarr ids, so a payload's hash does not
depend on which Dolibarr row a parent happens to have.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

ObjectKind = Literal["category", "product", "thirdparty", "contact", "order", "invoice", "payment"]
DocumentKind = Literal["order", "invoice"]


def ref_ext(shop: str, kind: str, record_id: int | str) -> str:
    """The one place the ``ref_ext`` contract is built: ``ps-{shop}-{kind}-{id}``.

    No colons (Dolibarr's injection filter refuses them in URL paths); shop names are ``[a-z0-9_]+``.
    Combinations use ``{id_product}-{id_product_attribute}`` as id, e.g. ``ps-main-product-12-3``.
    """
    return f"ps-{shop}-{kind}-{record_id}"


@dataclass(frozen=True, order=True)
class Ref:
    """A Dolibarr object ps2doli owns, named by its ``ref_ext`` (resolved to an id by the engine)."""

    kind: ObjectKind
    ref_ext: str


@dataclass(frozen=True)
class CategoryPayload:
    ref_ext: str
    label: str
    description: str = ""
    parent: Ref | None = None
    type: str = "product"
    visible: bool = True

    kind: ObjectKind = field(default="category", init=False)


@dataclass(frozen=True)
class ProductPayload:
    ref_ext: str
    ref: str
    label: str
    description: str = ""
    price: Decimal = Decimal("0")  # tax excluded
    tva_tx: Decimal = Decimal("0")
    cost_price: Decimal | None = None
    weight: Decimal | None = None
    length: Decimal | None = None
    width: Decimal | None = None
    height: Decimal | None = None
    barcode: str = ""
    on_sale: bool = True  # status
    on_purchase: bool = True  # status_buy
    service: bool = False  # type 1
    extrafields: tuple[tuple[str, str], ...] = ()  # (name without options_, value)
    categories: tuple[Ref, ...] = ()  # exact set of category links
    # variants mode: the parent product and the (attribute label, value label) pairs of this child
    variant_of: Ref | None = None
    variant_features: tuple[tuple[str, str], ...] = ()
    # variants mode: the combination's impacts on the parent's price (tax excluded) and weight, kept on
    # Dolibarr's combination too (Dolibarr computes a child's price from them whenever the parent is saved)
    variant_price_impact: Decimal = Decimal("0")
    variant_weight_impact: Decimal = Decimal("0")
    # the ref is the shop's own reference and ``catalog.shared_refs`` is on: a product of another shop (or one
    # made in Dolibarr) holding the same ref is this product too
    ref_shared: bool = False

    kind: ObjectKind = field(default="product", init=False)


@dataclass(frozen=True)
class StockPayload:
    """The shop's quantity of one product (or combination) in one Dolibarr warehouse: the writer moves the
    difference between it and Dolibarr's real stock (``service/engine/catalog_writer.py``)."""

    ref_ext: str  # ps-{shop}-stock-{id of the stock_available row}
    product: Ref
    warehouse_id: int
    quantity: Decimal

    kind: str = field(default="stock", init=False)


@dataclass(frozen=True)
class ImagesPayload:
    """The images a Dolibarr product carries as attached files: (shop image id, file name) pairs, read from
    the shop product ``id_product`` (``service/engine/catalog_writer.py``)."""

    ref_ext: str  # ps-{shop}-images-{product key}
    product: Ref
    id_product: int
    images: tuple[tuple[int, str], ...] = ()

    kind: str = field(default="images", init=False)


@dataclass(frozen=True)
class ThirdpartyPayload:
    ref_ext: str
    name: str
    email: str = ""
    phone: str = ""
    address: str = ""
    zip: str = ""
    town: str = ""
    country_code: str = ""
    vat_number: str = ""
    idprof1: str = ""  # SIRET
    idprof2: str = ""  # APE
    active: bool = True
    note_private: str = ""

    kind: ObjectKind = field(default="thirdparty", init=False)


@dataclass(frozen=True)
class ContactPayload:
    ref_ext: str
    thirdparty: Ref
    lastname: str
    firstname: str = ""
    company: str = ""
    address: str = ""
    zip: str = ""
    town: str = ""
    country_code: str = ""
    phone: str = ""
    phone_mobile: str = ""
    email: str = ""
    active: bool = True

    kind: ObjectKind = field(default="contact", init=False)


@dataclass(frozen=True)
class LinePayload:
    description: str
    qty: Decimal
    subprice: Decimal  # unit price tax excluded, before line discount
    tva_tx: Decimal
    product: Ref | None = None  # None: a free-text line
    remise_percent: Decimal = Decimal("0")
    service: bool = False
    label: str = ""


@dataclass(frozen=True)
class DocumentPayload:
    """An order or an invoice (or a credit note: ``invoice`` with ``credit_note_of`` set)."""

    kind: DocumentKind
    ref_ext: str
    thirdparty: Ref
    date: int  # Unix timestamp
    ref_client: str
    lines: tuple[LinePayload, ...]
    payment_type: str = ""  # Dolibarr payment mode code (CB, CHQ, VIR, ...)
    payment_terms: str = ""  # Dolibarr payment term code (RECEP, 30D, ...); "" = the thirdparty's
    currency: str = ""  # "" = Dolibarr's main currency
    currency_rate: Decimal | None = None
    note_private: str = ""
    note_public: str = ""
    billing_contact: Ref | None = None
    shipping_contact: Ref | None = None
    order: Ref | None = None  # invoice created for this order
    credit_note_of: Ref | None = None
    expected_total_ttc: Decimal | None = None  # what the shop says the customer paid


DocumentStatus = Literal["draft", "validated", "shipped", "closed", "cancelled"]


@dataclass(frozen=True)
class PaymentPayload:
    ref_ext: str  # kept in the payment's note to find it again after an ambiguous write
    invoice: Ref
    date: int
    amount: Decimal
    payment_type: str  # Dolibarr payment mode code
    number: str = ""  # transaction id
    bank_account_id: int = 0
    close_paid: bool = True

    kind: ObjectKind = field(default="payment", init=False)


Payload = CategoryPayload | ProductPayload | ThirdpartyPayload | ContactPayload | DocumentPayload


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        # normalise so that 20, 20.0 and 20.000000 hash alike
        return (
            format(value.normalize(), "f") if value == value.to_integral_value() else str(value.normalize())
        )
    if isinstance(value, Ref):
        return f"{value.kind}:{value.ref_ext}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def canonical(payload: Any) -> str:
    """Canonical JSON of a payload: sorted keys, normalised decimals. Equal payloads give equal text."""
    return json.dumps(_plain(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_hash(payload: Any) -> str:
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def dependencies(payload: Any) -> list[Ref]:
    """Every object a payload refers to, which must exist in Dolibarr before it is pushed."""
    refs: list[Ref] = []
    if isinstance(payload, CategoryPayload):
        refs += [payload.parent] if payload.parent else []
    elif isinstance(payload, ProductPayload):
        refs += list(payload.categories)
        refs += [payload.variant_of] if payload.variant_of else []
    elif isinstance(payload, ContactPayload):
        refs.append(payload.thirdparty)
    elif isinstance(payload, DocumentPayload):
        refs.append(payload.thirdparty)
        for optional in (
            payload.billing_contact,
            payload.shipping_contact,
            payload.order,
            payload.credit_note_of,
        ):
            if optional is not None:
                refs.append(optional)
        refs += [line.product for line in payload.lines if line.product is not None]
    elif isinstance(payload, PaymentPayload):
        refs.append(payload.invoice)
    elif isinstance(payload, StockPayload | ImagesPayload):
        refs.append(payload.product)
    seen: set[Ref] = set()
    return [r for r in refs if not (r in seen or seen.add(r))]  # type: ignore[func-returns-value]
