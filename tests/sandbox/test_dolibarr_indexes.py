"""sqlfilters listings through the model's indexes (``dolibarr_indexes``) answer exactly what reading every row
answers: unit tests of ``index_candidates`` over a Table, and the simulator's list routes with and without the
indexes installed."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from service.sandbox import dolibarr_sqlfilters as sqlf
from service.sandbox.dolibarr_sim import DATA_KEY, DEFAULT_KEY, SIM_KEY, DolibarrSimOptions, create_app
from service.sandbox.dolibarr_table import Table
from service.sandbox.runner import RunningServer, start_app

COLUMNS: sqlf.Columns = {
    "t.rowid": ("int", lambda o: o.get("id")),
    "t.ref": ("str", lambda o: o.get("ref")),
    "t.ref_ext": ("str", lambda o: o.get("ref_ext")),
    "t.label": ("str", lambda o: o.get("label")),
}

FILTERS = [
    "(t.ref_ext:=:'ps-main-product-3')",
    "(t.ref_ext:=:'PS-MAIN-PRODUCT-3   ')",  # the collation: case and trailing spaces ignored
    "(ref_ext:=:'ps-main-product-3')",  # no table prefix
    "(t.ref_ext:=:'ps-main-product-404')",
    "(t.ref_ext:=:'')",  # empty values are not indexed: read every row
    "(t.ref:=:'A-2') and (t.label:like:'Label%')",
    "(t.ref:=:'a-2') and (t.ref_ext:=:'ps-main-product-2')",
    "(t.ref:=:'A-2') and (t.ref_ext:=:'ps-main-product-9')",
    "(t.ref:=:'A-2') or (t.ref_ext:=:'ps-main-product-4')",  # an OR: no index
    "((t.ref:=:'A-5') and (t.label:!=:'x')) and (t.rowid:>:0)",
    "(t.ref:=:5)",  # unquoted: compared as a number, no index
    "(t.ref:like:'A-%')",
    "(t.ref_ext:=:'dup')",
    "(t.label:=:'Label 3')",  # a column without an index
    "(t.ref_ext:in:'ps-main-product-3','ps-main-product-4')",
]


def _table() -> Table:
    table = Table("product", ("ref", "ref_ext"))
    for i in range(1, 30):
        ref_ext = "dup" if i % 10 == 0 else ("" if i % 7 == 0 else f"ps-main-product-{i}")
        table.add(i, {"id": i, "ref": f"A-{i}", "ref_ext": ref_ext, "label": f"Label {i}"})
    table.update_obj(4, ref_ext="ps-main-product-3 ")  # two objects with one ref_ext
    table.update_obj(5, ref="5")
    table.remove(6)
    table.update_obj(8, ref_ext=None)
    return table


@pytest.mark.parametrize("sqlfilters", FILTERS)
def test_index_candidates_never_change_what_matches(sqlfilters: str) -> None:
    table = _table()
    node = sqlf.parse(sqlfilters)
    scanned = [o for o in table.values() if sqlf.matches(node, o, COLUMNS)]
    lookups = {f"t.{k}": functools.partial(table.ids_by, k) for k in table.indexed}
    ids = sqlf.index_candidates(node, COLUMNS, lookups)
    candidates = table.values() if ids is None else [table[i] for i in sorted(ids)]
    assert [o for o in candidates if sqlf.matches(node, o, COLUMNS)] == scanned


def test_index_candidates_use_an_index_only_where_every_match_must_be_in_it() -> None:
    table = _table()
    lookups = {f"t.{k}": functools.partial(table.ids_by, k) for k in table.indexed}

    def candidates(f: str) -> set[int] | None:
        return sqlf.index_candidates(sqlf.parse(f), COLUMNS, lookups)

    assert candidates("(t.ref_ext:=:'ps-main-product-3')") == {3, 4}
    assert candidates("(t.ref_ext:=:'ps-main-product-3') and (t.ref:=:'A-4')") == {4}  # the smaller
    assert candidates("(t.ref:=:'A-2') or (t.ref_ext:=:'ps-main-product-4')") is None
    assert candidates("(t.ref_ext:=:'')") is None
    assert candidates("(t.ref:=:5)") is None
    assert candidates("(t.label:=:'Label 3')") is None


# --------------------------------------------------------------------------------------- the simulator
@pytest.fixture
async def sim() -> AsyncIterator[tuple[RunningServer, aiohttp.ClientSession]]:
    app = create_app(options=DolibarrSimOptions(bad_key_delay_s=0))
    server = await start_app(app)
    try:
        async with aiohttp.ClientSession(headers={"DOLAPIKEY": DEFAULT_KEY}) as session:
            yield server, session
    finally:
        await server.stop()


async def _get(server: RunningServer, session: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with session.get(server.url + "/api/index.php" + path) as answer:
        return answer.status, await answer.json(content_type=None)


LISTINGS = [
    ("/products", "(t.ref_ext:=:'ps-main-product-3')"),
    ("/products", "(t.ref_ext:=:'PS-MAIN-PRODUCT-3')"),
    ("/products", "(t.ref:=:'P-2') and (t.tosell:=:1)"),
    ("/products", "(t.ref:=:'P-2') or (t.ref:=:'P-3')"),
    ("/products", "(t.ref_ext:=:'ps-main-product-404')"),
    ("/products", "(t.ref_ext:like:'ps-main-%')"),
    ("/products", "(t.ref_ext:=:'ps-main-product-3'"),  # bad syntax: the same 400
    ("/products", "(t.nope:=:'x')"),  # unknown column: the same 503
    ("/thirdparties", "(t.email:=:'Ann@Example.com')"),
    ("/thirdparties", "(t.email:=:'nobody@example.com')"),
    ("/thirdparties", "(t.ref_ext:=:'ps-main-customer-2') and (t.client:=:1)"),
    ("/contacts", "(t.email:=:'ann@example.com')"),
]


@pytest.mark.parametrize(("path", "sqlfilters"), LISTINGS)
async def test_listings_answer_the_same_with_and_without_indexes(
    sim: tuple[RunningServer, aiohttp.ClientSession], path: str, sqlfilters: str
) -> None:
    server, session = sim
    data = server.app[DATA_KEY]
    for i in range(1, 8):
        data.create_product(
            {"ref": f"P-{i}", "label": f"P {i}", "ref_ext": f"ps-main-product-{i}", "price": 1}
        )
    data.update_product(4, {"ref_ext": "ps-main-product-3"})
    data.update_product(5, {"ref_ext": "other"})
    for i, email in enumerate(["ann@example.com", "ANN@example.com", "bob@example.com"], start=1):
        tid = data.create_thirdparty(
            {"name": f"T {i}", "email": email, "ref_ext": f"ps-main-customer-{i}", "client": 1}
        )
        data.create_contact({"lastname": f"C {i}", "email": email, "socid": tid})
    query = f"?sqlfilters={quote(sqlfilters)}&sortfield=t.rowid&limit=100"
    indexed = await _get(server, session, path + query)
    server.app[SIM_KEY].use_indexes = False  # every row read
    assert await _get(server, session, path + query) == indexed
