"""Reading PrestaShop field values whatever shape the shop sent them in (pure functions, no I/O).

Records come back as the shop sent them: JSON from 1.7.8 gives numbers for ids/ints/flags and strings for
decimals (``"23.900000"``) and dates; older JSON and all XML give strings (XML cannot tell ``null`` from
``""``); PHP 7 even renders an integer 0 as an empty XML element. A multilingual field is a plain string with
one language and a list of ``{"id", "value"}`` with several. These functions read all of them and raise a
:class:`ValueError` naming the field when a value has a shape no PrestaShop sends (a list where a number is
expected, a dict where a string is expected…). The ``field`` argument is only used in those messages.

Empty values: ``None`` and ``""`` mean "no value" everywhere. :func:`as_int` reads them as ``0`` (PrestaShop's
own reading: id 0 = none) and :func:`as_decimal` as ``Decimal(0)``; :func:`as_opt_int` /
:func:`as_opt_decimal` give ``None`` instead when the caller must tell them apart.

Dates stay shop-local TEXT here (``"YYYY-MM-DD HH:MM:SS"``): PrestaShop stores and compares them in the shop's
time zone (PS_TIMEZONE) with no offset. :func:`to_timestamp` converts with an explicit zone when an instant is
needed; see its docstring for the daylight-saving rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

ZERO_DATES = frozenset({"0000-00-00", "0000-00-00 00:00:00"})
_INT = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false", ""})


class LanguageMissing(ValueError):
    """A multilingual value has no text for the requested language."""


def _name(field: str) -> str:
    return f"field {field!r}" if field else "value"


def _wrong(field: str, value: Any, expected: str) -> ValueError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValueError(f"{_name(field)}: expected {expected}, got {type(value).__name__} {shown}")


# ------------------------------------------------------------------------------------------- numbers


def as_opt_int(value: Any, field: str = "") -> int | None:
    """``7``, ``"7"``, ``"7.000000"``, ``7.0`` -> 7; ``None`` / ``""`` -> ``None``; others: ValueError."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
            raise _wrong(field, value, "a whole number")
        return int(value)
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 64 or value != value.to_integral_value():
            raise _wrong(field, value, "a whole number")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if len(text) > 64:
            raise _wrong(field, value, "a whole number")
        if _INT.match(text):
            return int(text)
        if _DECIMAL.match(text):
            number = Decimal(text)
            if number == number.to_integral_value():
                return int(number)
        raise _wrong(field, value, "a whole number")
    raise _wrong(field, value, "a whole number")


def as_int(value: Any, field: str = "") -> int:
    """Like :func:`as_opt_int` but ``None`` / ``""`` read as 0 (PrestaShop's "none" for ids, quantities…)."""
    result = as_opt_int(value, field)
    return 0 if result is None else result


def as_opt_decimal(value: Any, field: str = "") -> Decimal | None:
    """``"23.900000"`` / ``23.9`` / ``23`` -> ``Decimal``; ``None`` / ``""`` -> ``None``.

    Floats go through ``str()`` so ``23.9`` is ``Decimal("23.9")``, not its binary expansion. NaN and
    infinities, commas as decimal separators and anything that is not a number raise ValueError.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _wrong(field, value, "a decimal number")
        return Decimal(str(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _wrong(field, value, "a decimal number")
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not _DECIMAL.match(text) or len(text) > 64:
            raise _wrong(field, value, 'a decimal number such as "23.900000"')
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
            raise _wrong(field, value, "a decimal number") from None
    raise _wrong(field, value, "a decimal number")


def as_decimal(value: Any, field: str = "") -> Decimal:
    """Like :func:`as_opt_decimal` but ``None`` / ``""`` read as ``Decimal(0)``."""
    result = as_opt_decimal(value, field)
    return Decimal(0) if result is None else result


def as_bool(value: Any, field: str = "") -> bool:
    """PrestaShop flags: ``1``/``0``, ``"1"``/``"0"``, ``true``/``false`` (either case), ``None``/``""`` ->
    False.

    Any other number or text (``2``, ``"yes"``) raises ValueError: a flag that is neither 0 nor 1 is a shape
    ps2doli does not know, not a truthy value.
    """
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _wrong(field, value, "a flag (0 or 1)")


def as_text(value: Any, field: str = "") -> str:
    """A plain (not multilingual) text field: strings as they are, numbers as text, ``None`` -> ``""``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise _wrong(field, value, "a text")


# --------------------------------------------------------------------------------------------- dates


def as_date(value: Any, field: str = "") -> str | None:
    """A shop-local date or datetime TEXT, validated, or ``None`` for zero/empty dates.

    Accepts ``"YYYY-MM-DD HH:MM:SS"`` and ``"YYYY-MM-DD"`` (returned as given: no time zone is attached and
    nothing is converted); ``"0000-00-00"``, ``"0000-00-00 00:00:00"``, ``""`` and ``None`` -> ``None``. Any
    other text, or a date that does not exist in the calendar (``2026-02-30``, MySQL's ``2026-11-00``), raises
    ValueError.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong(field, value, 'a date text "YYYY-MM-DD HH:MM:SS"')
    text = value.strip()
    if not text or text in ZERO_DATES:
        return None
    try:
        if _DATETIME.match(text):
            datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        elif _DATE.match(text):
            datetime.strptime(text, "%Y-%m-%d")
        else:
            raise ValueError
    except ValueError:
        raise _wrong(field, value, 'a date text "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD"') from None
    return text


def _parse_local(text: str, field: str) -> datetime:
    checked = as_date(text, field)
    if checked is None:
        raise ValueError(f"{_name(field)}: a zero or empty date has no timestamp")
    pattern = "%Y-%m-%d %H:%M:%S" if len(checked) > 10 else "%Y-%m-%d"
    return datetime.strptime(checked, pattern)


def to_timestamp(text: str, zone: ZoneInfo, fold: int = 0, field: str = "") -> int:
    """A shop-local date TEXT -> Unix timestamp (whole seconds), reading it in ``zone``.

    Daylight-saving time is handled deterministically, following PEP 495:

    - a **repeated** local time (autumn: 02:30 happens twice in Europe/Paris) is read as its first occurrence
      (summer time, the earlier instant) with ``fold=0`` and as its second (winter time) with ``fold=1``;
    - a **skipped** local time (spring: 02:30 does not exist in Europe/Paris) is read with the offset in force
      *before* the jump with ``fold=0`` (02:30+01:00 = 03:30 summer time, the later instant) and with the
      offset *after* it with ``fold=1`` (02:30+02:00 = 01:30 winter time). PHP's ``date()`` never produces
      one, only a hand-entered date can be in the gap.

    A date without a time is midnight. Zero dates raise ValueError (there is no instant to give).
    """
    if fold not in (0, 1):
        raise ValueError("fold must be 0 or 1")
    local = _parse_local(text, field).replace(tzinfo=zone, fold=fold)
    return int(local.timestamp())


def from_timestamp(timestamp: int | float, zone: ZoneInfo) -> str:
    """A Unix timestamp -> the shop-local ``"YYYY-MM-DD HH:MM:SS"`` text PrestaShop stores and filters on."""
    return datetime.fromtimestamp(timestamp, tz=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def shift_local(text: str, seconds: int, field: str = "") -> str:
    """Wall-clock arithmetic on a shop-local datetime TEXT (no zone): ``("2026-01-01 00:00:01", -2)`` ->
    ``"2025-12-31 23:59:59"``. Used for overlap windows; results before year 1 clamp to the zero date."""
    base = _parse_local(text, field)
    try:
        return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
    except OverflowError:
        return "0000-00-00 00:00:00" if seconds < 0 else "9999-12-31 23:59:59"


# ------------------------------------------------------------------------------------ multilingual


def lang_text(value: Any, language_id: int, field: str = "") -> str:
    """The text of a multilingual field in ``language_id``, whatever shape it came in:

    - a plain string (JSON with one language, or a request made with ``language=N``) -> itself;
    - ``[{"id": "1", "value": "…"}, …]`` (JSON with several languages, and what :mod:`.xml` makes of
      ``<language id="1">`` nodes), ids as strings or numbers -> the entry for ``language_id``;
    - one ``{"id": …, "value": …}`` entry, or the xmltodict-style ``{"language": [{"@id": "1", "#text":
      "…"}]}``;
    - ``None`` -> ``""``; a value of ``None`` inside an entry -> ``""``.

    A list without ``language_id`` raises :class:`LanguageMissing` (a ValueError) naming the languages
    present: the configured language_id does not exist in this shop. Other shapes raise ValueError.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    entries: list[Any]
    if isinstance(value, Mapping):
        if "language" in value:
            inner = value["language"]
            entries = inner if isinstance(inner, list) else [inner]
        else:
            entries = [value]
    elif isinstance(value, list):
        entries = value
    else:
        raise _wrong(field, value, "a text or a list of {id, value} per language")
    seen: list[str] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise _wrong(field, entry, "a {id, value} entry per language")
        raw_id = entry.get("id", entry.get("@id"))
        try:
            entry_id = as_opt_int(raw_id, field)
        except ValueError:
            raise _wrong(field, raw_id, "a language id") from None
        seen.append(str(raw_id))
        if entry_id == language_id:
            text = entry.get("value", entry.get("#text"))
            if text is None:
                return ""
            if isinstance(text, str):
                return text
            if isinstance(text, (int, Decimal)) and not isinstance(text, bool):
                return str(text)
            raise _wrong(field, text, "a text")
    raise LanguageMissing(
        f"{_name(field)}: no text in language {language_id} (languages present: {', '.join(seen) or 'none'})"
    )


# ------------------------------------------------------------------------------------ associations


def _associations(record: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(record, Mapping):
        raise _wrong("", record, "a record (dict)")
    associations = record.get("associations")
    if associations is None or associations == "" or associations == []:
        return {}
    if not isinstance(associations, Mapping):
        raise _wrong("associations", associations, "a dict of associations")
    return associations


def assoc(record: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """The rows of association ``name`` of a record read with ``display=full`` (or a single GET).

    - missing ``associations`` or missing ``name`` -> ``[]`` (JSON leaves out associations without rows);
    - ``[{"id": 2}, …]`` / ``[{"id": "2"}, …]`` -> those dicts (copies);
    - the PHP-8 bug ``[[null], [null]]`` -> one empty dict ``{}`` per row: the number of rows is right, their
      ids are unknown. :func:`assoc_ids` turns that into ``None`` so the caller reads the ids another way (the
      XML output carries them, see :mod:`.xml`; option values also come from the product and the order rows).
    """
    associations = _associations(record)
    rows = associations.get(name)
    if rows is None or rows == "":
        return []
    if isinstance(rows, Mapping):
        # one row converted by a generic XML->dict tool
        rows = [rows]
    if not isinstance(rows, list):
        raise _wrong(f"associations.{name}", rows, "a list of rows")
    out: list[dict[str, Any]] = []
    for row in rows:
        if isinstance(row, Mapping):
            out.append(dict(row))
        elif row is None or (isinstance(row, list) and all(item is None for item in row)):
            out.append({})
        else:
            raise _wrong(f"associations.{name}", row, "a row {id: …}")
    return out


def assoc_ids(record: Mapping[str, Any], name: str) -> list[int] | None:
    """The ids of association ``name``: ``[]`` when it has no rows, ``None`` when the rows carry no
    readable id (the ``[[null]]`` bug) - then read them another way (e.g. ``client.get(...,
    output_format="xml")``)."""
    ids: list[int] = []
    for row in assoc(record, name):
        raw = row.get("id")
        if raw is None or raw == "":
            return None
        ids.append(as_int(raw, f"associations.{name}.id"))
    return ids


def get(record: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """``get(order, "associations.order_rows")``: a dotted path into nested dicts, ``default`` when absent."""
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return default
        current = current[part]
    return current
