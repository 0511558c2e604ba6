"""Indexed in-memory tables and the small value formatters the Dolibarr model shares."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from service.sandbox.dolibarr_text import sanitize_alphanohtml

Obj = dict[str, Any]


class PhpObject(dict[str, Any]):
    """A PHP object (stdClass): json_encode writes ``{}`` for an empty one, where an empty array is ``[]``."""


# llx_c_payment_term (id, code, label, nbjour)
PAYMENT_TERMS: dict[int, tuple[str, str, int]] = {
    1: ("RECEP", "Due upon receipt", 1),
    2: ("30D", "Due in 30 days", 30),
    3: ("30DENDMONTH", "Due in 30 days, end of month", 30),
    4: ("60D", "Due in 60 days", 60),
    5: ("60DENDMONTH", "Due in 60 days, end of month", 60),
    6: ("PT_ORDER", "Due on order", 0),
    7: ("PT_DELIVERY", "Due on delivery", 0),
    8: ("PT_5050", "50 percent in advance, 50 percent on delivery", 0),
}


@dataclass
class DolibarrError(Exception):
    """An error answer: status, the message after Restler's prefix, and where Dolibarr raised it.

    ``extra`` becomes the ``"0"`` key of ``error`` (``ErrorProductAlreadyExists``) and ``more`` the ``"1"``,
    ``"2"``... keys after it (the object's ``errors[]``); ``raw`` replaces the whole answer (body bytes, content
    type, extra headers) for the non-JSON quirks; ``prefix`` is output printed before the JSON.
    """

    status: int
    message: str = ""
    source: str = "api.class.php:0"
    stage: str = "call"
    extra: str | None = None
    raw: tuple[bytes, str, dict[str, str]] | None = None
    more: tuple[str, ...] = ()
    # text PHP printed before Restler's answer (dol_print_error() inside a call): the body starts with it
    prefix: str = ""
    # the object's error was empty: "0": null (RestException(500, "Error creating invoice", [null]))
    null_detail: bool = False


class Table(dict[int, Obj]):
    """``{id: object}`` plus value indexes on a few keys, so lookups by ref / ref_ext / email are O(1).

    Write through :meth:`add`, :meth:`update_obj` and :meth:`remove` to keep the indexes right. Index values
    are compared case-insensitively (the database collation is ``utf8mb4_unicode_ci``).
    """

    def __init__(self, name: str, indexed: Iterable[str] = ()) -> None:
        super().__init__()
        self.name = name
        self.indexed = tuple(indexed)
        self._idx: dict[str, dict[str, dict[int, None]]] = {k: {} for k in self.indexed}
        self.next_id = 1

    @staticmethod
    def _key(value: Any) -> str | None:
        if value is None or value == "":
            return None
        return str(value).rstrip(" ").casefold()

    def new_id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i

    def add(self, oid: int, obj: Obj) -> Obj:
        self[oid] = obj
        self.next_id = max(self.next_id, oid + 1)
        for k in self.indexed:
            key = self._key(obj.get(k))
            if key is not None:
                self._idx[k].setdefault(key, {})[oid] = None
        return obj

    def update_obj(self, oid: int, **fields: Any) -> Obj:
        obj = self[oid]
        for k, v in fields.items():
            if k in self.indexed:
                old = self._key(obj.get(k))
                if old is not None:
                    bucket = self._idx[k].get(old)
                    if bucket is not None:
                        bucket.pop(oid, None)
                        if not bucket:
                            del self._idx[k][old]
                new = self._key(v)
                if new is not None:
                    self._idx[k].setdefault(new, {})[oid] = None
            obj[k] = v
        return obj

    def remove(self, oid: int) -> Obj:
        obj = self.pop(oid)
        for k in self.indexed:
            key = self._key(obj.get(k))
            if key is not None:
                bucket = self._idx[k].get(key)
                if bucket is not None:
                    bucket.pop(oid, None)
                    if not bucket:
                        del self._idx[k][key]
        return obj

    def ids_by(self, key: str, value: Any) -> list[int]:
        """Ids whose ``key`` equals ``value`` (indexed keys: O(1); others: a scan)."""
        if key in self._idx:
            k = self._key(value)
            return sorted(self._idx[key].get(k, {})) if k is not None else []
        return [oid for oid, o in self.items() if o.get(key) == value]

    def first_by(self, key: str, value: Any) -> Obj | None:
        ids = self.ids_by(key, value)
        return self[ids[0]] if ids else None

    def values_sorted(self) -> Iterator[Obj]:
        for oid in sorted(self):
            yield self[oid]


# ----------------------------------------------------------------------------------------------------------
# number and date formatting, PHP / MariaDB style
# ----------------------------------------------------------------------------------------------------------
def dec(v: Any, default: str = "0") -> Decimal:
    """A request value (int, float, numeric string, None) as a Decimal."""
    if v is None or v == "" or isinstance(v, bool):
        return Decimal(default) if not isinstance(v, bool) else Decimal(int(v))
    try:
        return Decimal(str(v).strip())
    except InvalidOperation:
        return Decimal(default)


def round_half_up(d: Decimal, places: int) -> Decimal:
    return d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def mt(d: Decimal) -> Decimal:
    """``price2num($x, 'MT')``: totals, MAIN_MAX_DECIMALS_TOT = 2."""
    return round_half_up(d, 2)


def mu(d: Decimal) -> Decimal:
    """``price2num($x, 'MU')``: unit prices, MAIN_MAX_DECIMALS_UNIT = 5."""
    return round_half_up(d, 5)


def s8(d: Decimal) -> str:
    """A ``double(24,8)`` column as MariaDB returns it: ``"20.00000000"``."""
    return f"{round_half_up(d, 8):.8f}"


def s4(d: Decimal) -> str:
    """A ``double(7,4)`` column (VAT rates): ``"20.0000"``."""
    return f"{round_half_up(d, 4):.4f}"


def sfloat(d: Decimal | float | int) -> str:
    """A ``real`` column / PHP float as a string: shortest form, ``"0.25"``, ``"47"``, ``"-3"``."""
    x = Decimal(str(d)) if not isinstance(d, Decimal) else d
    if x == x.to_integral_value():
        return str(int(x))
    return format(x.normalize(), "f")


def num(d: Decimal) -> int | float:
    """A PHP float as json_encode writes it: ``56`` or ``11.2``."""
    return int(d) if d == d.to_integral_value() else float(d)


def price2num(d: Decimal) -> str:
    """``price2num()`` result as a string: trailing zeros dropped (``"61.2"``, ``"0"``)."""
    return sfloat(mt(d))


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), tz=UTC)


def sql_datetime(ts: float) -> str:
    return utc(ts).strftime("%Y-%m-%d %H:%M:%S")


def day_start(ts: float) -> int:
    return int(ts) - int(ts) % 86400


def yymm(ts: float) -> str:
    return utc(ts).strftime("%y%m")


def as_ts(v: Any) -> int | None:
    """A date sent to the API: a Unix timestamp (int or numeric string), or a ``YYYY-MM-DD[ HH:MM:SS]``."""
    if v is None or v == "":
        return None
    if isinstance(v, int | float) and not isinstance(v, bool):
        return int(v)
    s = str(v).strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return int(datetime.strptime(s, fmt).replace(tzinfo=UTC).timestamp())
        except ValueError:
            continue
    return None


# ----------------------------------------------------------------------------------------------------------
# sanitizeVal()
# ----------------------------------------------------------------------------------------------------------
def alphanohtml(v: Any) -> Any:
    """``sanitizeVal($v, 'alphanohtml')``: what the REST layer applies to every field that is not a note or
    a description (labels, names, refs, every ``array_options`` value): tags removed, entities decoded, doubled
    spaces folded, double quotes and ``../`` removed, ``\\x`` turned into ``/x``, trimmed
    (``dolibarr_text.sanitize_alphanohtml``)."""
    return sanitize_alphanohtml(v)


_RESTRICT_DROP = re.compile(
    r"<\s*(script|style|iframe|object|embed|applet|form|input|button|link|meta)\b[^>]*>.*?<\s*/\s*\1\s*>"
    r"|<\s*/?\s*(script|style|iframe|object|embed|applet|form|input|button|link|meta)\b[^>]*>",
    re.IGNORECASE | re.DOTALL,
)
_EVENT_ATTR = re.compile(r"\s+on[a-z]+\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)


def restricthtml(v: Any) -> Any:
    """``sanitizeVal($v, 'restricthtml')`` (notes, descriptions, ``html`` extrafields set in the GUI): HTML is
    kept, script-like elements and ``on*=`` handlers are removed."""
    if not isinstance(v, str):
        return v
    out = _RESTRICT_DROP.sub("", v)
    out = _EVENT_ATTR.sub("", out)
    return out.replace("javascript:", "")
