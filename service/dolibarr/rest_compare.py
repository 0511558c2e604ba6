"""Whether a Dolibarr object, as its REST API returns it, already holds what a request body would write. Pure
functions, no I/O: :meth:`~service.dolibarr.rest.DolibarrRestClient.unchanged_parts` builds the body
``update`` would send (``rest_bodies.py``) and asks :func:`body_held` about the object's row.

Dolibarr answers numbers as text with its own precision (``"12.50000000"``, ``tva_tx`` ``"20.000"``), flags as
``"1"``, empty values as ``null`` or ``""``, a category's type as its number, extrafields inside
``array_options``. What cannot be told equal for sure counts as different: a write too many is harmless, a write
missed is a lost update.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from service.dolibarr.refs import api_scalar

__all__ = [
    "CATEGORY_TYPE_CODES",
    "COMPARED_FIELDS",
    "body_held",
    "differing_fields",
    "field_held",
    "same_value",
]

# Categorie::MAP_ID of Dolibarr 20 (htdocs/categories/class/categorie.class.php): the row holds the number
CATEGORY_TYPE_CODES: Final = {
    "product": "0",
    "supplier": "1",
    "customer": "2",
    "member": "3",
    "contact": "4",
    "bank_account": "5",
    "project": "6",
    "user": "7",
    "warehouse": "9",
}

# Product::update stores these as null when empty(): the unit 0 (kg) comes back null
ZERO_STORED_EMPTY: Final = frozenset({"weight_units", "length_units", "width_units", "height_units"})

# PUT /products/{id} stores the price with price2num(..., 'MU'): MAIN_MAX_DECIMALS_UNIT decimals, 5 by default.
# (POST /products stores it to the cent: 7.416667 -> 7.42 on the real 20.0.2; the REST client follows such a create
# with the PUT of its exact price, rest_bodies.price_after_create, so a price held to the cent only is not held: an
# object created by an older ps2doli, or whose PUT a crash cut, gets its price on adoption.)
UNIT_PRICES: Final = frozenset({"price"})
UNIT_PRICE_DECIMALS: Final = 5

# DolibarrApi::_checkValForAPI keeps HTML (restricthtml) in these; every other text goes through alphanohtml
RESTRICT_HTML: Final = frozenset({"note", "note_private", "note_public", "desc", "description"})

# the fields of a listed row that a comparison reads (the bulk index keeps these only); keys of the bodies of
# rest_bodies.py for an update, plus what the row names differently
COMPARED_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "product": frozenset(
        {
            "ref",
            "label",
            "type",
            "status",
            "status_buy",
            "price",
            "price_base_type",
            "tva_tx",
            "description",
            "weight",
            "weight_units",
            "length",
            "length_units",
            "width",
            "width_units",
            "height",
            "height_units",
            "barcode",
            "cost_price",
            "ref_ext",
            "array_options",
        }
    ),
    "thirdparty": frozenset(
        {
            "name",
            "client",
            "fournisseur",
            "email",
            "phone",
            "address",
            "zip",
            "town",
            "country_id",
            "tva_intra",
            "idprof1",
            "idprof2",
            "status",
            "ref_ext",
            "note_private",
        }
    ),
    "contact": frozenset(
        {
            "socid",
            "lastname",
            "firstname",
            "address",
            "zip",
            "town",
            "phone_pro",
            "phone_mobile",
            "email",
            "statut",
            "ref_ext",
            "country_id",
        }
    ),
    "category": frozenset({"label", "type", "description", "fk_parent", "visible", "ref_ext"}),
}


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _unit_price(sent: Any, decimals: int = UNIT_PRICE_DECIMALS) -> Decimal | None:
    """A price rounded as Dolibarr stores it (PHP's round(): halves away from zero)."""
    number = _number(sent)
    if number is None:
        return None
    return number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def same_value(sent: Any, held: Any) -> bool:
    """Whether Dolibarr holding ``held`` (a value of a REST row) already has ``sent`` (a value of a body)."""
    if _empty(sent):
        return _empty(held)
    if isinstance(sent, dict):
        return isinstance(held, dict) and all(same_value(v, held.get(k)) for k, v in sent.items())
    if isinstance(sent, bool | int | float | Decimal):
        number = _number(held) if not _empty(held) else None
        return number is not None and number == _number(sent)
    if isinstance(sent, str):
        return isinstance(held, str) and held == sent
    return False


def field_held(kind: str, name: str, sent: Any, held: Any) -> bool:
    """Whether the field ``name`` of a ``kind`` row, holding ``held``, already has the body's ``sent``, with
    Dolibarr's own normalisations of that field."""
    if name in ZERO_STORED_EMPTY and _empty(held) and _number(sent) == 0:
        return True
    if name in UNIT_PRICES and not _empty(sent):
        # as sent (a Dolibarr set to more decimals), or rounded as an update stores it
        number = _number(held)
        return number is not None and number in (_number(sent), _unit_price(sent))
    if name == "email" and isinstance(sent, str) and isinstance(held, str):
        return sent.casefold() == held.casefold()
    if kind == "category" and name == "type":
        return str(held) == CATEGORY_TYPE_CODES.get(str(sent), f"?{sent}")
    if isinstance(sent, dict):  # array_options: each value as its own field
        return isinstance(held, dict) and all(field_held(kind, k, v, held.get(k)) for k, v in sent.items())
    if isinstance(sent, str) and name not in RESTRICT_HTML and isinstance(held, str) and sent != held:
        # DolibarrApi::_checkValForAPI: sanitizeVal(..., 'alphanohtml') on the other texts (extrafields too)
        return held == api_scalar(sent)
    return same_value(sent, held)


def differing_fields(kind: str, body: Mapping[str, Any], row: Mapping[str, Any]) -> list[str]:
    """The fields of ``body`` that ``row`` (the object as ``GET`` or a listing returns it) does not hold. A field
    the row does not carry at all counts as different."""
    return [
        name for name, sent in body.items() if name not in row or not field_held(kind, name, sent, row[name])
    ]


def body_held(kind: str, body: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether ``row`` holds every field of ``body``."""
    return not differing_fields(kind, body, row)
