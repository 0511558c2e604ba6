"""Several shops into one Dolibarr, over real sockets: two PrestaShop installs side by side, and two shops of
one multistore install (their own prices, shared stock rows)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from service.app import wired
from service.dolibarr.model import ref_ext
from service.sandbox.dolibarr_model import DolibarrData
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import ShopData
from service.settings import parse_settings
from service.state.store import Cursor
from tests.conftest import SandboxFactory
from tests.e2e.catalog_support import CATALOG, combinations_of, money, product_of, stock, sync, writes


def expected_keys(shop: ShopData) -> set[str]:
    """The products (flat) a shop's catalog becomes, as record ps_ids."""
    keys: set[str] = set()
    for pid in shop.table("products"):
        combos = combinations_of(shop, pid)
        keys |= {f"{pid}-{c['id']}" for c in combos} if combos else {str(pid)}
    return keys


def last_position(shop: ShopData, resource: str) -> Cursor:
    rows = shop.table(resource).values()
    date, rid = max((str(r["date_upd"]), int(r["id"])) for r in rows)
    return Cursor(date, rid)


async def test_two_shops_side_by_side_never_mix_cursors_mappings_or_stock(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    a = generate_shop(21, categories=6, products=12, customers=2, combinations_per_product=2)
    b = generate_shop(22, categories=6, products=9, customers=2, combinations_per_product=2)
    b.update("products", 3, reference="")  # shop b's ref rule applies
    dolibarr = DolibarrData()
    second = dolibarr.add_warehouse("WH2", "Second warehouse")
    sandbox = await make_sandbox({"a": a, "b": b}, dolibarr=dolibarr)
    overrides = {
        "a": {"catalog": {"warehouse_id": 1, "root_category": "Shop A"}},
        "b": {"catalog": {"warehouse_id": second, "root_category": "Shop B", "ref_template": "B{id}"}},
    }
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state, CATALOG, shops=("a", "b"), overrides=overrides)

    settings = sandbox.settings(state, resources=CATALOG, shop_overrides=overrides)
    async with wired(settings) as w:
        for name, shop in (("a", a), ("b", b)):
            # cursors: each shop's own keyset position
            assert await w.store.cursor(name, "products") == last_position(shop, "products")
            assert await w.store.cursor(name, "categories") == last_position(shop, "categories")
            # mappings: each shop's own records, pointing at objects carrying that shop's ref_ext
            records = await w.store.records(name, "product")
            assert set(records) == expected_keys(shop)
            for key, row in records.items():
                assert row.ref_ext == ref_ext(name, "product", key)
                assert dolibarr.products[int(row.dolibarr_id or 0)]["ref_ext"] == row.ref_ext
        ids_a = {r.dolibarr_id for r in (await w.store.records("a", "product")).values()}
        ids_b = {r.dolibarr_id for r in (await w.store.records("b", "product")).values()}
        assert not ids_a & ids_b
    assert {p["ref_ext"].split("-")[1] for p in dolibarr.products.values()} == {"a", "b"}
    assert product_of(dolibarr, "b", 3)["ref"] == "B3"

    # stock: each shop's quantities in its own warehouse only
    for name, shop, warehouse, other in (("a", a, 1, second), ("b", b, second, 1)):
        for key in expected_keys(shop):
            pid, _, cid = key.partition("-")
            product = product_of(dolibarr, name, key)
            assert stock(dolibarr, product["id"], warehouse) == shop.stock_quantity(int(pid), int(cid or 0))
            assert stock(dolibarr, product["id"], other) == 0

    # a change in shop a moves shop a's warehouse only; a price change in shop b updates shop b's product only
    pid = next(p for p in sorted(a.table("products")) if not combinations_of(a, p))
    a.set_stock(pid, 0, a.stock_quantity(pid) + 5)
    bpid = next(p for p in sorted(b.table("products")) if not combinations_of(b, p))
    b.advance(5)
    b.update("products", bpid, price=Decimal("77.000000"))
    sandbox.dolibarr_requests.reset()
    known = set(dolibarr.stock_movements)
    await sync(sandbox, state, ("products", "stock"), shops=("a", "b"), overrides=overrides)
    moved = [m for i, m in dolibarr.stock_movements.items() if i not in known]
    assert len(moved) == 1 and int(moved[0]["warehouse_id"]) == 1 and Decimal(moved[0]["qty"]) == 5
    assert int(moved[0]["product_id"]) == int(product_of(dolibarr, "a", pid)["id"])
    target = product_of(dolibarr, "b", bpid)
    assert sorted(writes(sandbox)) == sorted(
        [("POST", "/stockmovements"), ("PUT", f"/products/{target['id']}")]
    )
    assert money(target["price"]) == money(77)


async def test_two_shops_of_one_multistore_install_keep_their_prices_and_mirror_shared_stock(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = generate_shop(23, categories=6, products=14, customers=2, shops=2, combinations_per_product=2)
    assert shop.group_shares(1, "share_stock") and shop.group_shares(2, "share_stock")
    dolibarr = DolibarrData()
    second = dolibarr.add_warehouse("WH2")
    sandbox = await make_sandbox({"one": shop}, dolibarr=dolibarr)
    state = tmp_path / "s.sqlite3"
    data = sandbox.settings_data(state, resources=CATALOG)
    base: dict[str, Any] = data["shops"][0]
    data["shops"] = [
        {**base, "name": "s1", "id_shop": 1, "catalog": {"warehouse_id": 1, "root_category": "Store 1"}},
        {**base, "name": "s2", "id_shop": 2, "catalog": {"warehouse_id": second, "root_category": "Store 2"}},
    ]
    settings = parse_settings(data, base_dir=tmp_path)
    async with wired(settings) as w:
        reports = await w.engine.run_many([(s, r) for s in ("s1", "s2") for r in CATALOG])
        assert all(r.outcome == "ok" for r in reports), [(r.shop, r.resource, r.error) for r in reports]
        records = {s: await w.store.records(s, "product") for s in ("s1", "s2")}

    for name, id_shop, warehouse in (("s1", 1, 1), ("s2", 2, second)):
        in_shop = {p for p in shop.table("products") if id_shop in shop.product_shops(p)}
        expected = {k for k in expected_keys(shop) if int(k.partition("-")[0]) in in_shop}
        assert set(records[name]) == expected
        for key in expected:
            pid, _, cid = key.partition("-")
            product = product_of(dolibarr, name, key)
            view = shop.product_view(int(pid), id_shop)
            impact = Decimal(str(shop.table("combinations")[int(cid)]["price"])) if cid else Decimal(0)
            assert money(product["price"]) == money(Decimal(view["price"]) + impact), (name, key)
            # shared stock: the group's row (id_shop 0) mirrored into each shop's warehouse
            quantity = shop.stock_quantity(int(pid), int(cid or 0), id_shop=id_shop)
            assert stock(dolibarr, product["id"], warehouse) == quantity
    differing = [
        p
        for p in shop.table("products")
        if set(shop.product_shops(p)) == {1, 2}
        and shop.product_view(p, 1)["price"] != shop.product_view(p, 2)["price"]
    ]
    assert differing, "the generated shop has products priced per shop"
