"""Bad input, by property: whatever a shop or Dolibarr sends - wrong types, missing fields, zero dates, enormous
or control-character strings, quotes and parentheses, broken JSON/XML/HTML - the mappers give a payload or a
MappingError naming the field, and the parsers give a value or one error of the family. Never anything else: an
unexpected exception would end a pass (or the service) instead of filing one record."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import json
import os
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.dolibarr import errors as dolibarr_errors
from service.dolibarr.model import canonical, payload_hash
from service.errors import SyncError, Where
from service.mapping import catalog, customers
from service.mapping import orders as order_mapping
from service.mapping.context import MappingError, OrderState, ShopContext
from service.prestashop import errors as shop_errors
from service.prestashop import values
from service.prestashop import xml as psxml
from service.sandbox.shop_generator import generate_shop
from service.settings import CatalogSettings

# PS2DOLI_PROPERTY_EXAMPLES=5000 for a deeper run than CI's
PROPERTY = settings(
    max_examples=int(os.environ.get("PS2DOLI_PROPERTY_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

NASTY_TEXT = [
    "",
    " ",
    "0000-00-00",
    "0000-00-00 00:00:00",
    "2025-02-30 25:61:61",
    "1e400",
    "-1e-400",
    "NaN",
    "Infinity",
    "-0",
    "12.5.3",
    "0x1F",
    "\x00\x01\x1b[31m",
    "\u202e\ufeff\ud7ff",
    "x" * 70_000,
    'O\'Neil "Classic" (XL) %_\\',
    "') or (t.ref:like:'%",
    "<![CDATA[x]]><b>",
    "9" * 400,
    "-5",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(NASTY_TEXT),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

SHOP = generate_shop(5, categories=6, products=12, customers=10, orders=4, combination_share=0.5)
CTX = ShopContext(
    shop="main",
    tax_rates={1: Decimal("20"), 2: Decimal("5.5")},
    countries={8: "FR"},
    catalog=CatalogSettings(warehouse_id=1),
    option_values={v: ("Size", f"V{v}") for v in SHOP.table("product_option_values")},
    order_states={s: OrderState(id=s, name=f"state {s}", invoice=s in (2, 4, 5)) for s in range(1, 15)},
)
VARIANTS = dataclasses.replace(CTX, catalog=CatalogSettings(combinations="variants", warehouse_id=1))


def read_samples() -> dict[str, list[dict[str, Any]]]:
    """Records as the webservice sends them: read from the simulator over a socket, once."""
    from service.prestashop.client import PrestaShopClient
    from service.sandbox.prestashop_sim import DEFAULT_KEY, create_app
    from service.sandbox.runner import start_app
    from service.settings import RetrySettings, Secret, ShopSettings

    async def read() -> dict[str, list[dict[str, Any]]]:
        server = await start_app(create_app(SHOP, key=DEFAULT_KEY))
        shop = ShopSettings(name="main", url=server.url, api_key=Secret(DEFAULT_KEY))
        found: dict[str, list[dict[str, Any]]] = {}
        async with PrestaShopClient(shop, RetrySettings()) as client:
            for resource in (
                "categories",
                "products",
                "combinations",
                "customers",
                "addresses",
                "stock_availables",
                "orders",
                "order_details",
                "order_histories",
            ):
                found[resource] = await client.fetch(resource, display="full")
        await server.stop()
        return found

    return asyncio.run(read())


SAMPLES = read_samples()


def corrupt(record: dict[str, Any], changes: dict[str, Any], drops: set[str]) -> dict[str, Any]:
    broken = {k: v for k, v in dict(record).items() if k not in drops}
    broken.update(changes)
    return broken


def record_edits(record: dict[str, Any]) -> st.SearchStrategy[tuple[dict[str, Any], set[str]]]:
    keys = [*dict(record), "associations", "id"]
    return st.tuples(
        st.dictionaries(st.sampled_from(keys), json_values, min_size=1, max_size=4),
        st.sets(st.sampled_from(keys), max_size=3),
    )


def payload_or_mapping_error(mapper: Callable[[], Any]) -> None:
    """The property: a payload that hashes, or a MappingError naming a field."""
    try:
        result = mapper()
    except MappingError as exc:
        assert exc.field and exc.reason
        return
    for item in result if isinstance(result, list) else [result]:
        payload = item[1] if isinstance(item, tuple) else item
        if payload is not None:
            payload_hash(payload)
            canonical(payload)


def sample(resource: str) -> list[dict[str, Any]]:
    return SAMPLES[resource][:6]


@PROPERTY
@given(st.sampled_from(sample("categories")), st.data())
def test_categories_map_or_name_the_field(record: dict[str, Any], data: st.DataObject) -> None:
    changes, drops = data.draw(record_edits(record))
    payload_or_mapping_error(lambda: catalog.map_category(corrupt(record, changes, drops), CTX))


@PROPERTY
@given(st.sampled_from(sample("products")), st.data(), st.sampled_from([CTX, VARIANTS]))
def test_products_and_their_combinations_map_or_name_the_field(
    record: dict[str, Any], data: st.DataObject, ctx: ShopContext
) -> None:
    changes, drops = data.draw(record_edits(record))
    combos = [
        dict(c)
        for c in SAMPLES["combinations"]
        if values.as_int(c["id_product"]) == values.as_int(record["id"])
    ]
    if combos and data.draw(st.booleans()):
        combo_changes, combo_drops = data.draw(record_edits(combos[0]))
        combos[0] = corrupt(combos[0], combo_changes, combo_drops)
    product = corrupt(record, changes, drops)
    payload_or_mapping_error(lambda: catalog.map_product_family(product, combos, ctx))


@PROPERTY
@given(st.sampled_from(sample("customers")), st.data())
def test_customers_map_or_name_the_field(record: dict[str, Any], data: st.DataObject) -> None:
    changes, drops = data.draw(record_edits(record))
    payload_or_mapping_error(lambda: customers.map_customer(corrupt(record, changes, drops), CTX))


@PROPERTY
@given(st.sampled_from(sample("addresses")), st.data())
def test_addresses_map_or_name_the_field(record: dict[str, Any], data: st.DataObject) -> None:
    from service.dolibarr.model import Ref

    changes, drops = data.draw(record_edits(record))
    owner = Ref("thirdparty", "ps-main-customer-1")
    payload_or_mapping_error(lambda: customers.map_address(corrupt(record, changes, drops), owner, CTX))


@PROPERTY
@given(st.sampled_from(sample("stock_availables")), st.data())
def test_stock_rows_map_or_name_the_field(record: dict[str, Any], data: st.DataObject) -> None:
    changes, drops = data.draw(record_edits(record))
    payload_or_mapping_error(
        lambda: catalog.map_stock(corrupt(record, changes, drops), CTX, with_combinations=frozenset({1, 2}))
    )


@PROPERTY
@given(st.sampled_from(SAMPLES["orders"]), st.data())
def test_orders_map_or_name_the_field(order: dict[str, Any], data: st.DataObject) -> None:
    """Orders with broken fields, unknown states, negative quantities, zero dates, odd lines."""
    order_id = values.as_int(order["id"])
    details = [dict(d) for d in SAMPLES["order_details"] if values.as_int(d["id_order"]) == order_id]
    histories = [dict(h) for h in SAMPLES["order_histories"] if values.as_int(h["id_order"]) == order_id]
    changes, drops = data.draw(record_edits(order))
    changes.update(data.draw(st.dictionaries(st.sampled_from(["current_state"]), st.integers(-5, 10**6))))
    if details and data.draw(st.booleans()):
        detail_changes, detail_drops = data.draw(record_edits(details[0]))
        detail_changes.update(
            data.draw(st.dictionaries(st.sampled_from(["product_quantity"]), st.integers(-(10**6), 10**6)))
        )
        details[0] = corrupt(details[0], detail_changes, detail_drops)
    customer = next(
        (c for c in SAMPLES["customers"] if values.as_int(c["id"]) == values.as_int(order["id_customer"])),
        None,
    )
    source = order_mapping.OrderSource(
        order=corrupt(order, changes, drops),
        details=details,
        histories=histories,
        customer=dict(customer) if customer else None,
        addresses={values.as_int(a["id"]): dict(a) for a in SAMPLES["addresses"]},
    )
    payload_or_mapping_error(lambda: order_mapping.map_order(source, CTX))


# ------------------------------------------------------------------------------------------- values.py

VALUE_PARSERS: list[Callable[[Any], Any]] = [
    values.as_int,
    values.as_opt_int,
    values.as_decimal,
    values.as_opt_decimal,
    values.as_bool,
    values.as_text,
    values.as_date,
    lambda v: values.lang_text(v, 1),
    lambda v: values.assoc({"associations": v}, "categories"),
    lambda v: values.assoc_ids({"associations": {"categories": v}}, "categories"),
    lambda v: values.shift_local(v, 5) if isinstance(v, str) else values.as_text(v),
]


@PROPERTY
@given(json_values, st.sampled_from(range(len(VALUE_PARSERS))))
def test_value_parsers_return_a_value_or_raise_value_error(value: Any, which: int) -> None:
    with contextlib.suppress(ValueError):
        VALUE_PARSERS[which](value)


@PROPERTY
@given(json_values)
def test_a_decimal_that_parses_is_finite(value: Any) -> None:
    try:
        number = values.as_decimal(value)
    except ValueError:
        return
    assert number.is_finite()


# ------------------------------------------------------------------------------------- shop responses

WHERE = Where(side="prestashop", shop="main", resource="products")
JSON_HEADERS = {"Content-Type": "application/json", "PSWS-Version": "1.7.8.8"}
XML_HEADERS = {"Content-Type": "text/xml;charset=utf-8", "PSWS-Version": "1.7.8.8"}
GOOD_JSON = json.dumps({"products": sample("products")}, default=str).encode()
GOOD_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><prestashop xmlns:xlink="http://www.w3.org/1999/xlink"><products>'
    b'<product><id><![CDATA[1]]></id><name><language id="1"><![CDATA[Tee]]></language></name>'
    b"<associations><categories><category><id><![CDATA[4]]></id></category></categories></associations>"
    b"</product></products></prestashop>"
)


def damaged(data: st.DataObject, good: bytes) -> bytes:
    kind = data.draw(st.sampled_from(["cut", "insert", "replace", "html", "random"]))
    if kind == "cut":
        return good[: data.draw(st.integers(0, len(good)))]
    if kind == "insert":
        at = data.draw(st.integers(0, len(good)))
        return good[:at] + data.draw(st.binary(max_size=20)) + good[at:]
    if kind == "replace":
        at = data.draw(st.integers(0, max(0, len(good) - 1)))
        return good[:at] + data.draw(st.binary(min_size=1, max_size=3)) + good[at + 3 :]
    if kind == "html":
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    return data.draw(st.binary(max_size=200))


@PROPERTY
@given(st.data(), st.sampled_from([("json", GOOD_JSON, JSON_HEADERS), ("xml", GOOD_XML, XML_HEADERS)]))
def test_a_damaged_shop_answer_is_a_value_or_one_error_of_the_family(
    data: st.DataObject, case: tuple[str, bytes, dict[str, str]]
) -> None:
    expected, good, headers = case
    body = damaged(data, good)
    status = data.draw(st.sampled_from([200, 200, 200, 400, 401, 404, 429, 500, 502, 503]))
    try:
        document = shop_errors.check(status, headers, body, expected=expected, where=WHERE)  # type: ignore[arg-type]
        if expected == "xml":
            psxml.to_data(document, where=WHERE, expect="list")
    except SyncError as error:
        assert "shop=main" in str(error) and "resource=products" in str(error)


@PROPERTY
@given(st.binary(max_size=300))
def test_xml_parsing_of_anything_is_data_or_bad_response(body: bytes) -> None:
    with contextlib.suppress(SyncError):
        psxml.parse(body, where=WHERE, expect="list")


@PROPERTY
@given(json_values)
def test_a_listing_of_the_wrong_shape_is_a_bad_response(document: Any) -> None:
    """A number where a list is expected, a list where an object is expected..."""
    from service.prestashop.client import PrestaShopClient
    from service.settings import RetrySettings, Secret, ShopSettings

    client = PrestaShopClient(
        ShopSettings(name="main", url="http://shop", api_key=Secret("k" * 32)), RetrySettings()
    )
    try:
        rows = client._records("products", document, "json", WHERE)
    except SyncError as error:
        assert "shop=main" in str(error)
    else:
        assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)


# --------------------------------------------------------------------------------- Dolibarr responses


@PROPERTY
@given(
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    st.one_of(
        st.none(), st.sampled_from([200, 201, 204, 304, 400, 401, 403, 404, 409, 429, 500, 501, 502, 503])
    ),
    st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())),
    st.dictionaries(
        st.sampled_from(["Retry-After", "Content-Encoding", "Content-Type"]), st.text(max_size=20)
    ),
)
def test_any_dolibarr_answer_classifies_as_success_or_one_error_of_the_family(
    method: str, status: int | None, body: bytes, headers: dict[str, str]
) -> None:
    where = Where(side="dolibarr", resource="product", record_id="7")
    decoded = dolibarr_errors.read_body(body, headers)
    error = dolibarr_errors.classify(
        method, status, headers, decoded, where, route="/products", error=None if status else TimeoutError()
    )
    assert error is None or isinstance(error, SyncError)
    dolibarr_errors.dolibarr_message(body)


@PROPERTY
@given(st.binary(max_size=100), st.integers(0, 60))
def test_a_lying_gzip_body_is_read_without_an_exception(prefix: bytes, cut: int) -> None:
    raw = prefix + gzip.compress(b'{"error": {"code": 500, "message": "x"}}')[: cut or None]
    dolibarr_errors.read_body(raw, {"Content-Encoding": "gzip"})


@pytest.mark.parametrize(
    ("reference", "stored"),
    [
        ('O\'Neil "Classic" (XL)', "O_Neil_Classic_(XL)"),
        ("') or (t.ref:like:'%", "_)_or_(t.ref_like__%"),
        ("a\\b%c_d", "a_b%c_d"),
        ("x" * 64, "x" * 64),
    ],
)
def test_hostile_references_map_to_what_dolibarr_stores(reference: str, stored: str) -> None:
    record = dict(sample("products")[0]) | {"reference": reference}
    payload = catalog.map_product(record, CTX)
    assert payload.ref == stored
