"""Reading one field of a PrestaShop record for a mapper.

The :mod:`service.prestashop.values` readers, with ``None`` / ``""`` read as the given default and a value of a
shape no PrestaShop sends raised as a :class:`MappingError` naming the field (the record is filed as a failure).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from service.mapping.context import MappingError
from service.prestashop import values

Record = Mapping[str, Any]


def _empty(raw: Any) -> bool:
    return raw is None or raw == ""


def read_int(record: Record, name: str, default: int = 0) -> int:
    raw = record.get(name)
    if _empty(raw):
        return default
    try:
        return values.as_int(raw)
    except ValueError as exc:
        raise MappingError(name, str(exc)) from None


def read_flag(record: Record, name: str, default: bool = False) -> bool:
    raw = record.get(name)
    if _empty(raw):
        return default
    try:
        return values.as_bool(raw)
    except ValueError as exc:
        raise MappingError(name, str(exc)) from None


# No price, quantity, rate or weight of a shop comes near this; above it, rounding to the cent or to 8 decimals
# leaves Decimal's 28 digits (decimal.InvalidOperation): a corrupt record, named as such.
MAX_PLAUSIBLE_NUMBER = Decimal("1e15")


def read_opt_decimal(record: Record, name: str) -> Decimal | None:
    """The field's number, or None when it is empty. A number of implausible size is a MappingError."""
    try:
        number = values.as_opt_decimal(record.get(name))
    except ValueError as exc:
        raise MappingError(name, str(exc)) from None
    if number is not None and abs(number) >= MAX_PLAUSIBLE_NUMBER:
        raise MappingError(name, f"implausible number {number:.6g}")
    return number


def read_decimal(record: Record, name: str) -> Decimal:
    """The field's number, ``Decimal(0)`` when it is empty."""
    number = read_opt_decimal(record, name)
    return Decimal(0) if number is None else number


def read_lang_text(record: Record, name: str, language_id: int) -> str:
    """A multilingual field's text in ``language_id``, stripped."""
    try:
        return values.lang_text(record.get(name), language_id).strip()
    except ValueError as exc:
        raise MappingError(name, str(exc)) from None
