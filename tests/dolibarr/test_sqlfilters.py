"""sqlfilters builders against a model of Dolibarr 20's parser (``parse``/``matches``) and WAF
(``waf_refuses``): a built filter always parses, never trips the WAF, matches exactly the intended rows."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service.dolibarr.model import ref_ext
from service.dolibarr.sqlfilters import (
    And,
    Compare,
    FilterSyntaxError,
    UnsafeFilterValue,
    combine_and,
    escape_like,
    matches,
    parse,
    safe_like_prefix,
    sql_eq,
    sql_like_prefix,
    waf_refuses,
)

# Dolibarr variants the builders must be right for: explode with limit 3 (17.x-20.x) or without (forks), with
# or without trim of the value.
VARIANTS = [(3, False), (3, True), (None, False)]

HOSTILE = [
    "x') or (t.rowid:>:0",
    "' OR 1=1 -- ",
    "a%",
    "a_b",
    "\\",
    "a\\",
    "ps:main:product:1",
    "(",
    ")",
    '"',
    "O'Brien",
    "'",
    "''",
    "emoji \U0001f600",
    "nul\x00byte",
    "new\nline",
    "union all select 1",
    "delete from llx_product",
    "<script>alert(1)</script>",
    "x onload=1",
    "&#58;",
    "&quot;",
    "%' or '1'='1",
    "javascript:alert(1)",
    " trailing ",
    "Ünïcödé ß",
    "a AND b",
    "a or b",
    "t.rowid:>:0",
    "..%2f..%2f",
    "x @@version",
]

hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=40),
    st.text(alphabet="%_\\'\"():;&<>=@ aZ09-.", max_size=30),
)


def row(value: object) -> dict[str, object]:
    return {"t.ref_ext": value}


@pytest.mark.parametrize("limit,trim", VARIANTS)
def test_captured_filters_parse_like_dolibarr(limit: int | None, trim: bool) -> None:
    node = parse("(t.ref:like:'PS-SKU-190928%')", explode_limit=limit, trim_value=trim)
    assert node == Compare("t.ref", "LIKE", "PS-SKU-190928%")
    assert matches(node, {"t.ref": "PS-SKU-190928-S"})
    assert parse("(t.email:=:'acme190928@example.com')") == Compare("t.email", "=", "acme190928@example.com")
    numeric = parse("(t.fk_statut:=:1)")
    assert isinstance(numeric, Compare) and numeric.numeric and matches(numeric, {"t.fk_statut": "1"})


def test_captured_bad_operator_is_a_syntax_error() -> None:
    # rest/error.bad_payload_sqlfilters: (t.ref:xx:'a') -> 400 "Bad syntax of the search string"
    with pytest.raises(FilterSyntaxError, match="bad syntax"):
        parse("(t.ref:xx:'a')")


def test_model_shows_why_colons_are_refused() -> None:
    # A fork that explodes on every colon turns the value into the number 0, which matches other rows.
    node = parse("(t.ref_ext:=:'ps:main:product:1')", explode_limit=None)
    assert isinstance(node, Compare) and node.numeric
    assert matches(node, row("ps-other-product-9"))
    with pytest.raises(UnsafeFilterValue):
        sql_eq("t.ref_ext", "ps:main:product:1")


def test_unescaped_underscore_would_match_another_shop() -> None:
    raw = parse("(t.ref_ext:like:'ps-main_shop-product-%')")
    assert matches(raw, row("ps-mainXshop-product-1"))  # the danger
    built = parse(sql_like_prefix("t.ref_ext", "ps-main_shop-product-"))
    assert not matches(built, row("ps-mainXshop-product-1"))
    assert matches(built, row("ps-main_shop-product-1"))


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_examples_are_exact_or_refused(value: str) -> None:
    try:
        expression = sql_eq("t.ref_ext", value)
    except UnsafeFilterValue:
        return
    for limit, trim in VARIANTS:
        node = parse(expression, explode_limit=limit, trim_value=trim)
        assert node == Compare("t.ref_ext", "=", value)
    assert not waf_refuses(expression)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(value=hostile_text, others=st.lists(hostile_text, max_size=8))
def test_eq_matches_only_the_value(value: str, others: list[str]) -> None:
    try:
        expression = sql_eq("t.ref_ext", value)
    except UnsafeFilterValue:
        return
    assert not waf_refuses(expression)
    for limit, trim in VARIANTS:
        node = parse(expression, explode_limit=limit, trim_value=trim)
        assert matches(node, row(value))
        for other in others:
            assert matches(node, row(other)) == (other == value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=hostile_text, others=st.lists(hostile_text, max_size=8), tail=st.text(max_size=5))
def test_like_prefix_matches_exactly_the_prefixed_values(prefix: str, others: list[str], tail: str) -> None:
    try:
        expression = sql_like_prefix("t.ref_ext", prefix)
    except UnsafeFilterValue:
        return
    assert not waf_refuses(expression)
    for limit, trim in VARIANTS:
        node = parse(expression, explode_limit=limit, trim_value=trim)
        assert matches(node, row(prefix + tail))
        for other in others:
            assert matches(node, row(other)) == other.startswith(prefix)


@given(
    shop=st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True),
    kind=st.sampled_from(["category", "product", "customer", "order", "invoice", "payment", "contact"]),
    record=st.one_of(st.integers(min_value=0), st.from_regex(r"[0-9]{1,6}-[0-9]{1,6}", fullmatch=True)),
)
def test_ref_ext_contract_is_always_expressible(shop: str, kind: str, record: int | str) -> None:
    value = ref_ext(shop, kind, record)
    assert parse(sql_eq("t.ref_ext", value)) == Compare("t.ref_ext", "=", value)
    prefix = ref_ext(shop, kind, "")
    node = parse(sql_like_prefix("t.ref_ext", prefix))
    assert matches(node, row(value))


@given(a=hostile_text, b=hostile_text)
def test_combine_and_keeps_both_conditions(a: str, b: str) -> None:
    try:
        expression = combine_and(sql_eq("t.ref_ext", a), sql_eq("t.email", b))
    except UnsafeFilterValue:
        return
    assert not waf_refuses(expression)
    node = parse(expression)
    assert node == And(Compare("t.ref_ext", "=", a), Compare("t.email", "=", b))
    assert matches(node, {"t.ref_ext": a, "t.email": b})
    assume(a != b)
    assert not matches(node, {"t.ref_ext": b, "t.email": b})


def test_combine_and_refuses_what_the_waf_sees_across_values() -> None:
    with pytest.raises(UnsafeFilterValue):
        combine_and(sql_eq("t.ref", "union x"), sql_eq("t.label", "select y"))


def test_integers_are_bare() -> None:
    assert sql_eq("t.fk_product", 7) == "(t.fk_product:=:7)"
    with pytest.raises(TypeError):
        sql_eq("t.status", True)


def test_field_names_are_checked() -> None:
    with pytest.raises(ValueError):
        sql_eq("t.ref) or (1", "x")


def test_like_escapes() -> None:
    assert escape_like("a%b_c\\d") == "a\\%b\\_c\\\\d"
    assert sql_like_prefix("t.ref_ext", "ps-") == "(t.ref_ext:like:'ps-%')"
    with pytest.raises(UnsafeFilterValue):
        sql_like_prefix("t.ref_ext", "O'Brien")


@given(value=hostile_text)
def test_safe_like_prefix_is_a_usable_prefix(value: str) -> None:
    prefix = safe_like_prefix("t.email", value)
    assert value.startswith(prefix)
    if prefix:
        node = parse(sql_like_prefix("t.email", prefix))
        assert matches(node, {"t.email": value})


def test_waf_model_samples() -> None:
    assert waf_refuses('a"b')
    assert waf_refuses("x union select y")
    assert waf_refuses("&lt;script&gt;")  # entities are decoded first
    assert waf_refuses("a\x01b")
    assert not waf_refuses("(t.ref_ext:like:'ps-main-product-%')")
    assert not waf_refuses("(t.email:=:'acme190928@example.com')")
