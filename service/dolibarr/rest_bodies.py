"""Dolibarr REST request bodies built from ps2doli's payloads (``service/dolibarr/model.py``). Pure functions, no
I/O: :class:`~service.dolibarr.rest.DolibarrRestClient` resolves the ids they need and sends them. What each field
means is documented in ``docs/dolibarr-rest.md``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from service.dolibarr.model import (
    CategoryPayload,
    ContactPayload,
    DocumentPayload,
    LinePayload,
    PaymentPayload,
    ProductPayload,
    ThirdpartyPayload,
)

__all__ = [
    "category_body",
    "contact_body",
    "document_body",
    "line_body",
    "money",
    "payment_body",
    "product_body",
    "quantity",
    "stock_movement_body",
    "thirdparty_body",
]

WEIGHT_UNIT_KG: Final = 0
SIZE_UNIT_CM: Final = -2


# ------------------------------------------------------------------------------------------------ values


def money(value: Decimal) -> float:
    """A price, rate or size as a JSON number."""
    return float(value)


def quantity(value: Decimal) -> int | float:
    """A quantity as a JSON number, whole when it is."""
    return int(value) if value == value.to_integral_value() else float(value)


def amount_text(value: Decimal) -> str:
    """A payment amount as text, at least to the cent."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        return f"{value:.2f}"
    return format(value, "f")


# ---------------------------------------------------------------------------------------------- bodies


def price_after_create(p: ProductPayload) -> dict[str, Any] | None:
    """The ``PUT /products/{id}`` that gives a product just created its exact price, or None when the create kept it.

    ``Product::create`` stores the unit prices with ``price2num(..., 'MT')``, to the cent (product.class.php:859-860;
    real 20.0.2: POST 12.416667 -> 12.42), while ``updatePrice`` keeps ``'MU'``, 5 decimals (12.41667). A shop whose
    prices are entered tax included holds such prices for most products."""
    exact = p.price.quantize(Decimal("0.00001"), rounding=ROUND_HALF_UP)
    if exact == p.price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP):
        return None
    return {"price": money(p.price), "price_base_type": "HT"}


def product_body(p: ProductPayload, *, update: bool = False) -> dict[str, Any]:
    """``POST /products`` / ``PUT /products/{id}``: weight in kg (``weight_units`` 0), sizes in cm
    (``*_units`` -2). On update, a dimension the payload no longer has is sent as null to clear it."""
    body: dict[str, Any] = {
        "ref": p.ref,
        "label": p.label,
        "type": 1 if p.service else 0,
        "status": 1 if p.on_sale else 0,
        "status_buy": 1 if p.on_purchase else 0,
        "price": money(p.price),
        "price_base_type": "HT",
        "tva_tx": money(p.tva_tx),
        "description": p.description,
    }
    if p.weight is not None:
        body["weight"] = money(p.weight)
        body["weight_units"] = WEIGHT_UNIT_KG
    elif update:
        body["weight"] = None
    for name in ("length", "width", "height"):
        size: Decimal | None = getattr(p, name)
        if size is not None:
            body[name] = money(size)
            body[f"{name}_units"] = SIZE_UNIT_CM
        elif update:
            body[name] = None
    body["barcode"] = p.barcode
    if p.cost_price is not None:
        body["cost_price"] = money(p.cost_price)
    body["ref_ext"] = p.ref_ext
    if p.extrafields:
        body["array_options"] = {f"options_{name}": value for name, value in p.extrafields}
    return body


def thirdparty_body(p: ThirdpartyPayload, country_id: int | None) -> dict[str, Any]:
    """``POST /thirdparties``: a customer (``client`` 1). No ``code_client``: ``"auto"`` races between
    concurrent creates (quirks/thirdparties.create.concurrent-autocode.json) and Dolibarr fills it anyway."""
    body: dict[str, Any] = {
        "name": p.name,
        "client": 1,
        "fournisseur": 0,
        "email": p.email,
        "phone": p.phone,
        "address": p.address,
        "zip": p.zip,
        "town": p.town,
    }
    if country_id is not None:
        body["country_id"] = country_id
    body.update(
        {
            "tva_intra": p.vat_number,
            "idprof1": p.idprof1,
            "idprof2": p.idprof2,
            "status": 1 if p.active else 0,
            "ref_ext": p.ref_ext,
            "note_private": p.note_private,
        }
    )
    return body


def contact_body(p: ContactPayload, socid: int, country_id: int | None) -> dict[str, Any]:
    """``POST /contacts`` (``socid`` = the thirdparty)."""
    body: dict[str, Any] = {
        "socid": socid,
        "lastname": p.lastname,
        "firstname": p.firstname,
        "address": p.address,
        "zip": p.zip,
        "town": p.town,
        "phone_pro": p.phone,
        "phone_mobile": p.phone_mobile,
        "email": p.email,
        "statut": 1 if p.active else 0,
        "ref_ext": p.ref_ext,
    }
    if country_id is not None:
        body["country_id"] = country_id
    return body


def category_body(p: CategoryPayload, parent_id: int | None) -> dict[str, Any]:
    """``POST /categories``: ``type`` is Dolibarr's category type name (product, customer, contact...)."""
    body: dict[str, Any] = {"label": p.label, "type": p.type, "description": p.description}
    body["fk_parent"] = parent_id or 0
    body["visible"] = 1 if p.visible else 0
    body["ref_ext"] = p.ref_ext
    return body


def line_body(line: LinePayload, product_id: int | None) -> dict[str, Any]:
    """One line for ``POST /orders/{id}/lines`` or ``/invoices/{id}/lines`` (and in a create's ``lines``)."""
    body: dict[str, Any] = {}
    if product_id is not None:
        body["fk_product"] = product_id
    body.update(
        {
            "qty": quantity(line.qty),
            "subprice": money(line.subprice),
            "tva_tx": money(line.tva_tx),
            "product_type": 1 if line.service else 0,
            "desc": line.description,
        }
    )
    if line.remise_percent:
        body["remise_percent"] = money(line.remise_percent)
    if line.label:
        body["label"] = line.label
    return body


def document_body(
    doc: DocumentPayload,
    *,
    socid: int,
    mode_reglement_id: int | None,
    multicurrency: tuple[str, Decimal | None] | None,
    lines: list[dict[str, Any]] | None,
    order_id: int | None = None,
    credit_note_of: int | None = None,
    cond_reglement_id: int | None = None,
) -> dict[str, Any]:
    """``POST /orders`` / ``POST /invoices`` (with ``lines``: one atomic create) or the header of a ``PUT``
    (``lines`` None)."""
    body: dict[str, Any] = {"socid": socid}
    if doc.kind == "invoice" and lines is not None:
        body["type"] = 2 if credit_note_of else 0
        if credit_note_of:
            body["fk_facture_source"] = credit_note_of
    body.update(
        {
            "date": doc.date,
            "ref_client": doc.ref_client,
            "ref_ext": doc.ref_ext,
            "note_private": doc.note_private,
            "note_public": doc.note_public,
        }
    )
    if mode_reglement_id is not None:
        body["mode_reglement_id"] = mode_reglement_id
    if cond_reglement_id is not None:
        body["cond_reglement_id"] = cond_reglement_id
    if multicurrency is not None:
        code, rate = multicurrency
        body["multicurrency_code"] = code
        if rate is not None:
            body["multicurrency_tx"] = money(rate)
    if order_id and doc.kind == "invoice" and lines is not None:
        body["linked_objects"] = {"commande": order_id}
    if lines is not None:
        body["lines"] = lines
    return body


def payment_body(
    payment: PaymentPayload,
    *,
    invoice_id: int,
    paymentid: int,
    accountid: int,
    in_invoice_currency: bool = False,
) -> dict[str, Any]:
    """``POST /invoices/paymentsdistributed``: the only payment route that takes an amount
    (``POST /invoices/{id}/payments`` always pays the whole remainder). ``ref_ext`` travels three ways so the
    payment can be found again: the ``ref_ext`` field (stored where Dolibarr supports it), ``num_payment``
    (when the shop gave no transaction number) and the private note (``comment``)."""
    amount = amount_text(payment.amount)
    body: dict[str, Any] = {
        "arrayofamounts": {
            str(invoice_id): {
                "amount": "" if in_invoice_currency else amount,
                "multicurrency_amount": amount if in_invoice_currency else "",
            }
        },
        "datepaye": payment.date,
        "paymentid": paymentid,
        "closepaidinvoices": "yes" if payment.close_paid else "no",
        "accountid": accountid,
        "num_payment": payment.number or payment.ref_ext,
        "comment": f"ps2doli ref_ext={payment.ref_ext}",
        "ref_ext": payment.ref_ext,
    }
    if payment.payment_type == "CHQ":
        body["chqemetteur"] = "PrestaShop customer"  # mandatory for cheques when the bank module is on
    return body


def stock_movement_body(product_id: int, warehouse_id: int, qty: Decimal, label: str) -> dict[str, Any]:
    """``POST /stockmovements`` (positive qty adds, negative removes; 0 is refused by Dolibarr)."""
    return {
        "product_id": product_id,
        "warehouse_id": warehouse_id,
        "qty": quantity(qty),
        "movementlabel": label,
    }
