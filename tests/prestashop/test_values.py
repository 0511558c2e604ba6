"""service.prestashop.values: every shape a PrestaShop version sends, and clear errors for the others."""

from __future__ import annotations

import contextlib
import json
import math
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.prestashop import values
from service.prestashop import xml as psxml

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "prestashop" / "samples"
PARIS = ZoneInfo("Europe/Paris")
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"reference samples not found at {SAMPLES}")


def load(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


# ------------------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (6, 6),
        ("6", 6),
        (" 6 ", 6),
        ("-3", -3),
        ("7.000000", 7),
        (7.0, 7),
        (Decimal("8"), 8),
        ("", 0),
        (None, 0),
    ],
)
def test_as_int(raw: Any, expected: int) -> None:
    assert values.as_int(raw) == expected


def test_as_opt_int_keeps_empty_apart() -> None:
    assert values.as_opt_int("") is None and values.as_opt_int(None) is None and values.as_opt_int("0") == 0


@pytest.mark.parametrize("raw", ["abc", "1.5", 2.5, [1], {"id": 1}, "1e3", "9" * 80, float("nan"), "١٢x"])
def test_as_int_refuses_with_the_field_name(raw: Any) -> None:
    with pytest.raises(ValueError, match="field 'quantity'"):
        values.as_int(raw, "quantity")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("23.900000", Decimal("23.900000")),
        ("0.01", Decimal("0.01")),
        (23.9, Decimal("23.9")),
        (12, Decimal(12)),
        ("-4.5", Decimal("-4.5")),
        ("", Decimal(0)),
        (None, Decimal(0)),
        (".5", Decimal("0.5")),
    ],
)
def test_as_decimal(raw: Any, expected: Decimal) -> None:
    assert values.as_decimal(raw) == expected


def test_as_opt_decimal_empty_is_none() -> None:
    assert values.as_opt_decimal("") is None and values.as_opt_decimal(None) is None


@pytest.mark.parametrize(
    "raw", ["23,90", "NaN", "Infinity", "1e5", "12 EUR", {"value": "1"}, ["1"], float("inf")]
)
def test_as_decimal_refuses(raw: Any) -> None:
    with pytest.raises(ValueError, match="field 'price'"):
        values.as_decimal(raw, "price")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, True),
        (0, False),
        ("1", True),
        ("0", False),
        ("", False),
        (None, False),
        (True, True),
        ("false", False),
    ],
)
def test_as_bool(raw: Any, expected: bool) -> None:
    assert values.as_bool(raw) is expected


@pytest.mark.parametrize("raw", [2, "yes", "2", [1], {"a": 1}, 1.0])
def test_as_bool_refuses(raw: Any) -> None:
    with pytest.raises(ValueError, match="field 'active'"):
        values.as_bool(raw, "active")


def test_as_text() -> None:
    assert values.as_text(None) == "" and values.as_text(12) == "12" and values.as_text("x") == "x"
    with pytest.raises(ValueError, match="field 'reference'"):
        values.as_text({"language": "x"}, "reference")


# -------------------------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-26 20:14:07", "2026-11-26 20:14:07"),
        ("2026-11-26", "2026-11-26"),
        ("0000-00-00 00:00:00", None),
        ("0000-00-00", None),
        ("", None),
        (None, None),
    ],
)
def test_as_date_keeps_local_text(raw: Any, expected: str | None) -> None:
    assert values.as_date(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "2026-02-30 10:00:00",
        "2026-11-00",
        "2026-11-26T20:14:07",
        "2026-11-26 20:14",
        "26/11/2026",
        1764184447,
    ],
)
def test_as_date_refuses(raw: Any) -> None:
    with pytest.raises(ValueError, match="field 'date_upd'"):
        values.as_date(raw, "date_upd")


def test_to_timestamp_plain_and_date_only() -> None:
    assert values.to_timestamp("2026-01-01 00:00:00", ZoneInfo("UTC")) == 1767225600
    assert values.to_timestamp("2026-07-01", PARIS) == values.to_timestamp("2026-07-01 00:00:00", PARIS)
    assert values.to_timestamp("2026-07-01 12:00:00", PARIS) == 1782900000  # CEST: 10:00 UTC


def test_to_timestamp_repeated_autumn_hour() -> None:
    first = values.to_timestamp("2026-10-25 02:30:00", PARIS, fold=0)
    second = values.to_timestamp("2026-10-25 02:30:00", PARIS, fold=1)
    assert first == 1792888200  # 00:30 UTC, still summer time
    assert second - first == 3600  # the second 02:30 is an hour later


def test_to_timestamp_skipped_spring_hour() -> None:
    before = values.to_timestamp("2026-03-29 02:30:00", PARIS, fold=0)
    after = values.to_timestamp("2026-03-29 02:30:00", PARIS, fold=1)
    assert before == values.to_timestamp("2026-03-29 03:30:00", PARIS)  # offset before the jump
    assert before - after == 3600


def test_to_timestamp_refuses_zero_dates_and_bad_fold() -> None:
    with pytest.raises(ValueError, match="zero or empty date"):
        values.to_timestamp("0000-00-00 00:00:00", PARIS)
    with pytest.raises(ValueError):
        values.to_timestamp("2026-01-01 00:00:00", PARIS, fold=2)


def test_year_end_and_shift() -> None:
    assert values.shift_local("2026-01-01 00:00:01", -2) == "2025-12-31 23:59:59"
    assert values.shift_local("0001-01-01 00:00:01", -5) == "0000-00-00 00:00:00"
    assert values.from_timestamp(1767225599, PARIS) == "2026-01-01 00:59:59"


@settings(max_examples=200)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)))
def test_timestamp_round_trip_outside_transitions(moment: datetime) -> None:
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    ts = values.to_timestamp(text, PARIS)
    back = values.from_timestamp(ts, PARIS)
    # a text in the skipped hour comes back one hour later; everywhere else it round-trips
    assert back == text or values.to_timestamp(back, PARIS) == ts


# ------------------------------------------------------------------------------------ multilingual


@pytest.mark.parametrize(
    "raw",
    [
        "Mug",
        [{"id": "1", "value": "Mug"}, {"id": "2", "value": "Tasse"}],
        [{"id": 1, "value": "Mug"}, {"id": 2, "value": "Tasse"}],
        {"id": "1", "value": "Mug"},
        {"language": [{"@id": "1", "#text": "Mug"}, {"@id": "2", "#text": "Tasse"}]},
        {"language": {"@id": "1", "#text": "Mug"}},
    ],
)
def test_lang_text_shapes(raw: Any) -> None:
    assert values.lang_text(raw, 1) == "Mug"


def test_lang_text_from_the_xml_parser() -> None:
    body = (
        b'<?xml version="1.0"?><prestashop xmlns:xlink="http://www.w3.org/1999/xlink"><product><id>1</id><name>'
        b'<language id="1" xlink:href="http://s/api/languages/1"><![CDATA[Mug]]></language>'
        b'<language id="2" xlink:href="http://s/api/languages/2"><![CDATA[Tasse]]></language></name></product>'
        b"</prestashop>"
    )
    record = psxml.parse(body)["product"]
    assert values.lang_text(record["name"], 2) == "Tasse"


def test_lang_text_missing_language_and_wrong_shapes() -> None:
    assert values.lang_text(None, 1) == "" and values.lang_text([{"id": "1", "value": None}], 1) == ""
    with pytest.raises(values.LanguageMissing, match="languages present: 2, 3"):
        values.lang_text([{"id": "2", "value": "a"}, {"id": "3", "value": "b"}], 1, "name")
    for raw in (["Mug"], [{"id": "1", "value": {"x": 1}}], 3.5, [{"id": "x", "value": "a"}]):
        with pytest.raises(ValueError, match="field 'name'"):
            values.lang_text(raw, 1, "name")


# ------------------------------------------------------------------------------------ associations


@needs_samples
def test_assoc_on_real_samples() -> None:
    product = load("products_list_full_simple_and_combinations.json")["products"][0]
    assert values.assoc_ids(product, "categories") == [2, 3, 4]
    assert values.assoc(product, "stock_availables")[0] == {"id": 1, "id_product_attribute": 0}
    simple = load("product_single_get.json")["product"]
    assert values.assoc_ids(simple, "combinations") == []  # no rows: JSON leaves the key out
    combination = load("combinations_full.json")["combinations"][0]
    assert values.assoc(combination, "product_option_values") == [{}]  # [[null]]: one row, id unknown
    assert values.assoc_ids(combination, "product_option_values") is None
    category = load("categories_full.json")["categories"][1]
    assert len(values.assoc(category, "products")) == 19 and values.assoc_ids(category, "products") is None


def test_assoc_shapes() -> None:
    assert values.assoc({}, "categories") == [] and values.assoc({"associations": []}, "x") == []
    assert values.assoc_ids({"associations": {"images": [{"id": "3"}, {"id": 4}]}}, "images") == [3, 4]
    assert values.assoc_ids({"associations": {"images": {"id": "3"}}}, "images") == [3]
    assert values.assoc_ids({"associations": {"images": [{"id": ""}]}}, "images") is None
    for record in (
        {"associations": {"images": 3}},
        {"associations": "x"},
        {"associations": {"images": ["3"]}},
    ):
        with pytest.raises(ValueError, match="associations"):
            values.assoc(record, "images")
    assert values.get({"associations": {"order_rows": [1]}}, "associations.order_rows") == [1]
    assert values.get({}, "a.b", "none") == "none"


# -------------------------------------------------------------------------------- property tests

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | st.decimals(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(_JSON)
def test_readers_raise_only_value_error(raw: Any) -> None:
    for reader in (
        values.as_int,
        values.as_opt_int,
        values.as_decimal,
        values.as_opt_decimal,
        values.as_bool,
        values.as_text,
        values.as_date,
        lambda v, f="": values.lang_text(v, 1, f),
        lambda v, f="": values.assoc({"associations": {"x": v}}, "x"),
        lambda v, f="": values.assoc_ids({"associations": {"x": v}}, "x"),
        lambda v, f="": values.assoc(v, "x"),
    ):
        with contextlib.suppress(ValueError):
            reader(raw, "f")


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_int_round_trips_as_text_and_number(number: int) -> None:
    assert values.as_int(str(number)) == number == values.as_int(number)
    assert values.as_int(f"{number}.000000") == number


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**9), max_value=10**9))
def test_decimal_round_trips_as_text(number: Decimal) -> None:
    assert values.as_decimal(f"{number:f}") == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_decimal_from_float_is_its_shortest_text(number: float) -> None:
    assume(abs(number) < 1e300)
    assert values.as_decimal(number) == Decimal(repr(number))
    assert math.isclose(float(values.as_decimal(number)), number)


@given(st.dictionaries(st.integers(1, 50), st.text(max_size=20), min_size=1, max_size=5), st.booleans())
def test_lang_text_finds_every_language(texts: dict[int, str], ids_as_text: bool) -> None:
    entries = [{"id": str(i) if ids_as_text else i, "value": t} for i, t in texts.items()]
    for language_id, text in texts.items():
        assert values.lang_text(entries, language_id) == text
