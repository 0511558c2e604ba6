"""The simulator's indexed listings (prestashop_keyset.py) answer byte for byte what the generic scan answers.

Random queries of the shapes ps2doli sends (keyset windows, the rest of a second, id walks, id batches), with
variations around them (offsets, other filters, other shops, reversed or unreadable bounds, sorts the index
does not serve), over a two-shop shop whose rows share seconds, carry zero dates and, for some products, a
shop row dated otherwise than the main row (PrestaShop#12385).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from service.sandbox.prestashop_sim import (
    DEFAULT_KEY,
    EmptyResult,
    Params,
    PrestaShopSimulator,
    View,
    WsError,
)
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import RESOURCES, ShopData

END = "9999-12-31 23:59:59"
RESOURCES_LISTED = (
    "products",
    "combinations",
    "stock_availables",
    "categories",
    "customers",
    "addresses",
    "orders",
    "order_histories",
    "order_details",
    "order_payments",
    "order_invoices",
)


def _shop() -> ShopData:
    shop = generate_shop(7, products=120, customers=60, orders=40, shops=2)
    rng = random.Random(3)
    products = sorted(shop.tables["products"])
    for pid in rng.sample(products, 30):  # several saves in one second
        shop.update("products", pid, price="12.5")
    shop.advance(1)
    for pid in rng.sample(products, 10):  # saved in the second shop: its shop row and the main row move
        if 2 in shop.product_shop.get(pid, {}):
            shop.update("products", pid, id_shop=2, price="13")
    shop.advance(2)
    customers = sorted(shop.tables["customers"])
    for cid in rng.sample(customers, 15):
        shop.update("customers", cid, lastname="Same")
    shop.update("customers", customers[0], date_upd="0000-00-00 00:00:00")
    shop.delete("products", products[5])
    return shop


def _dates(shop: ShopData, resource: str, name: str) -> list[str]:
    return sorted({str(r[name]) for r in shop.tables[resource].values() if r.get(name) is not None})


def _query(rng: random.Random, shop: ShopData) -> list[tuple[str, str]]:
    resource = rng.choice(RESOURCES_LISTED)
    spec = RESOURCES[resource]
    ids = sorted(shop.tables[resource]) or [1]
    date_names = [n for n in ("date_upd", "date_add") if spec.field(n) is not None]
    name = rng.choice(date_names) if date_names and rng.random() < 0.8 else "date_upd"
    known = _dates(shop, resource, name) if date_names else []
    some_date = (
        rng.choice(known)
        if known and rng.random() < 0.85
        else rng.choice(
            [
                "0000-00-00 00:00:00",
                "2025-10-26 02:30:00",
                "2026-01-01",
                "2025-1-5 3:4:5",
                "2025-13-45 99:99:99",
            ]
        )
    )
    items: list[tuple[str, str]] = [("resource", resource)]
    shape = rng.choice(["window", "same", "after", "walk", "batch", "one", "wide", "nosort", "odd"])
    sort: str | None = None
    if shape == "window":
        items.append((f"filter[{name}]", f"[{some_date},{END}]"))
        sort = f"[{name}_ASC,id_ASC]"
    elif shape == "same":
        items.append((f"filter[{name}]", f"[{some_date},{some_date}]"))
        items.append(("filter[id]", f">[{rng.choice(ids) - rng.randint(0, 1)}]"))
        sort = "[id_ASC]"
    elif shape == "after":
        items.append((f"filter[{name}]", f">[{some_date}]"))
        sort = f"[{name}_ASC,id_ASC]"
    elif shape == "walk":
        items.append(("filter[id]", f">[{rng.choice([0, *ids])}]"))
        sort = "[id_ASC]"
    elif shape == "batch":
        chosen = [*rng.sample(ids, min(len(ids), rng.randint(1, 12))), rng.randint(1, 10**6)]
        field = (
            "id" if rng.random() < 0.6 else rng.choice(["id_product", "id_order", "id_customer", "reference"])
        )
        if field == "reference":
            refs = sorted({str(r["reference"]) for r in shop.tables["orders"].values()})
            chosen = [*rng.sample(refs, 3), "nope", refs[0].lower()]
        items.append((f"filter[{field}]", "[" + "|".join(str(i) for i in chosen) + "]"))
    elif shape == "one":
        items.append(("filter[id]", f"[{rng.choice(ids)}]"))
    elif shape == "wide":
        other = rng.choice(known) if known else some_date
        items.append((f"filter[{name}]", f"[{other},{some_date}]"))  # either order
        sort = "[id_ASC]"
    elif shape == "nosort":
        if rng.random() < 0.5:
            items.append((f"filter[{name}]", f"[{some_date},{END}]"))
    else:  # sorts and filters the indexes do not serve: the generic path answers
        items.append(
            (f"filter[{name}]", rng.choice([f"<[{some_date}]", f"[{some_date}]", f"![{some_date}]"]))
        )
        sort = rng.choice([f"[{name}_DESC,id_ASC]", "[id_DESC]", f"[{name}_ASC]", f"[id_ASC,{name}_ASC]"])
    if sort is not None:
        items.append(("sort", sort))
    if rng.random() < 0.3:
        extra = {"products": "active", "customers": "active", "orders": "current_state"}.get(resource)
        if extra is not None:
            items.append((f"filter[{extra}]", rng.choice(["[1]", "[0]", "[1|2|3]"])))
    if rng.random() < 0.9:
        offset = 0 if rng.random() < 0.8 else rng.randint(1, 30)
        items.append(("limit", f"{offset},{rng.choice([1, 5, 20, 100])}"))
    if any(k.startswith("filter[date") or "date_" in v for k, v in items) or rng.random() < 0.1:
        items.append(("date", "1"))
    if rng.random() < 0.3:
        items.append(("id_shop", rng.choice(["1", "2", "all"])))
    items.append(("display", rng.choice(["full", "[id,date_upd]" if date_names else "[id]", "minimum"])))
    items.append(("output_format", rng.choice(["JSON", "XML"])))
    return items


def _answer(sim: PrestaShopSimulator, items: list[tuple[str, str]]) -> tuple[Any, ...]:
    params = Params.parse(items[1:])
    resource = items[0][1]
    fmt = "json" if params.get("output_format") == "JSON" else "xml"
    try:
        shop_ids, ctx_shop, all_shops = sim._shop_context(params)
        view = View(
            sim.shop,
            RESOURCES[resource],
            sim._languages(params),
            "http://x/api/",
            ctx_shop,
            shop_ids,
            all_shops,
        )
        answer = sim._list(view, params, fmt)  # type: ignore[arg-type]
    except EmptyResult:
        return ("empty",)
    except WsError as err:
        return ("error", err.status, err.errors)
    return (answer.status, answer.body)


@pytest.mark.parametrize("seed", [1, 2])
def test_indexed_listings_answer_what_the_generic_scan_answers(seed: int) -> None:
    shop = _shop()
    fast = PrestaShopSimulator(shop, DEFAULT_KEY)
    generic = PrestaShopSimulator(shop, DEFAULT_KEY)
    generic._keyset_rows = lambda *args: None  # type: ignore[method-assign]
    indexed = 0
    keyset_rows = fast._keyset_rows

    def counted(*args: Any) -> Any:
        nonlocal indexed
        rows = keyset_rows(*args)
        indexed += rows is not None
        return rows

    fast._keyset_rows = counted  # type: ignore[method-assign]
    rng = random.Random(seed)
    served = 0
    for n in range(400):
        items = _query(rng, shop)
        expected = _answer(generic, items)
        assert _answer(fast, items) == expected, (n, items)
        served += expected[0] == 200
        if n % 100 == 99:  # the shop moves on: the indexes follow
            shop.advance(5)
            pid = rng.choice(sorted(shop.tables["products"]))
            shop.update("products", pid, price="9")
            shop.add("customers", lastname="New", firstname="Row", email=f"new{n}@example.com")
    assert served > 150 and indexed > 200  # most queries went through an index


def test_an_index_follows_a_row_edited_by_hand() -> None:
    shop = _shop()
    sim = PrestaShopSimulator(shop, DEFAULT_KEY)
    query = [
        ("resource", "customers"),
        ("filter[date_upd]", f"[2000-01-01 00:00:00,{END}]"),
        ("sort", "[date_upd_ASC,id_ASC]"),
        ("limit", "0,3"),
        ("date", "1"),
        ("display", "[id,date_upd]"),
        ("output_format", "JSON"),
    ]
    first = _answer(sim, query)
    assert first[0] == 200
    oldest = min(
        (r for r in shop.tables["customers"].values() if r["date_upd"] >= "2000"),
        key=lambda r: (r["date_upd"], r["id"]),
    )
    oldest["date_upd"] = "2099-01-01 00:00:00"  # no touch(): the index entry is stale
    generic = PrestaShopSimulator(shop, DEFAULT_KEY)
    generic._keyset_rows = lambda *args: None  # type: ignore[method-assign]
    assert _answer(sim, query) == _answer(generic, query) != first
