"""The core pipeline end to end, over real sockets: a simulated shop into a simulated Dolibarr."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from service.dolibarr.model import ref_ext
from service.prestashop import values
from service.sandbox.faults import FaultPlan
from service.sandbox.harness import Sandbox
from service.sandbox.shop_model import ShopData
from tests.conftest import engine_for

CATALOG = ("categories", "products", "customers")


def expected_products(shop: ShopData) -> set[str]:
    """ref_ext of every Dolibarr product a flat sync must create: simple products, and combinations."""
    expected: set[str] = set()
    combos: dict[int, list[int]] = {}
    for cid, combination in shop.table("combinations").items():
        combos.setdefault(values.as_int(combination["id_product"]), []).append(cid)
    for pid in shop.table("products"):
        if combos.get(pid):
            expected |= {ref_ext("main", "product", f"{pid}-{cid}") for cid in combos[pid]}
        else:
            expected.add(ref_ext("main", "product", pid))
    return expected


def expected_categories(shop: ShopData) -> set[str]:
    return {
        ref_ext("main", "category", cid)
        for cid, c in shop.table("categories").items()
        if cid not in (1, 2) and not values.as_int(c.get("is_root_category"))
    }


def expected_thirdparties(sandbox: Sandbox) -> set[str]:
    from service.mapping.context import ShopContext
    from service.mapping.customers import customer_ref

    ctx = ShopContext(shop="main")
    return {customer_ref(ctx, c).ref_ext for c in sandbox.shop.data.table("customers").values()}


def ref_exts(rows: dict[int, dict[str, object]]) -> Counter[str]:
    return Counter(str(r.get("ref_ext") or "") for r in rows.values())


async def sync_all(sandbox: Sandbox, state: Path, resources: tuple[str, ...] = CATALOG) -> list[object]:
    async with engine_for(sandbox, state, resources=resources) as w:
        return list(await w.engine.run_many([("main", r) for r in resources]))


async def test_a_first_sync_creates_everything_once_with_parents_first(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    reports = await sync_all(sandbox, tmp_path / "state.sqlite3")
    assert all(r.outcome == "ok" for r in reports), [r.error for r in reports]  # type: ignore[attr-defined]

    data = sandbox.dolibarr
    categories = ref_exts(data.categories)
    assert set(categories) == expected_categories(sandbox.shop.data)
    assert max(categories.values()) == 1
    by_id = {int(c["id"]): c for c in data.categories.values()}
    for category in by_id.values():
        parent = int(category.get("fk_parent") or 0)
        if parent:
            assert parent in by_id and parent < int(category["id"]), "a parent is created before its child"

    products = ref_exts(data.products)
    assert set(products) == expected_products(sandbox.shop.data)
    assert max(products.values()) == 1

    thirdparties = ref_exts(data.thirdparties)
    assert set(thirdparties) == expected_thirdparties(sandbox)
    assert max(thirdparties.values()) == 1


async def test_a_second_sync_writes_nothing_and_one_price_change_is_one_update(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    await sync_all(sandbox, state)
    sandbox.dolibarr_requests.reset()
    await sync_all(sandbox, state)
    assert sandbox.dolibarr_requests.writes() == 0

    with_combinations = {
        values.as_int(c["id_product"]) for c in sandbox.shop.data.table("combinations").values()
    }
    simple = min(set(sandbox.shop.data.table("products")) - with_combinations)
    sandbox.shop.data.advance(5)
    sandbox.shop.data.update("products", simple, price="123.450000")
    sandbox.dolibarr_requests.reset()
    reports = await sync_all(sandbox, state)
    assert sandbox.dolibarr_requests.writes() == 1, sandbox.dolibarr_requests.counts
    assert sandbox.dolibarr_requests.total("PUT", "/products/") == 1
    assert [r.updated for r in reports] == [0, 1, 0]  # type: ignore[attr-defined]
    product = sandbox.dolibarr.find_one("products", ref_ext=ref_ext("main", "product", simple))
    assert product is not None and float(product["price"]) == 123.45


async def test_records_saved_in_the_cursors_second_or_late_inside_the_overlap_are_not_missed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    shop = sandbox.shop.data
    await sync_all(sandbox, state, ("customers",))
    async with engine_for(sandbox, state, resources=("customers",)) as w:
        cursor = await w.store.cursor("main", "customers")
    assert cursor is not None
    position, last_id = cursor.as_tuple()

    # another customer saved in exactly the cursor's second, with a lower id than the cursor's record
    same_second = min(i for i in shop.table("customers") if i != last_id)
    shop.update("customers", same_second, lastname="Samesecond")
    shop.table("customers")[same_second]["date_upd"] = position
    # and one whose save lands one second *before* the cursor (a slow transaction committing late)
    late = max(i for i in shop.table("customers") if i not in (last_id, same_second))
    shop.update("customers", late, lastname="Latecomer")
    shop.table("customers")[late]["date_upd"] = values.shift_local(position, -1)
    shop.touch()

    await sync_all(sandbox, state, ("customers",))
    names = {str(t.get("name")) for t in sandbox.dolibarr.thirdparties.values()}
    assert any("Samesecond" in n for n in names)
    assert any("Latecomer" in n for n in names)


async def test_a_broken_shop_page_stops_that_resource_only_and_keeps_its_cursor(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    await sync_all(sandbox, state)
    shop = sandbox.shop.data
    shop.advance(5)
    first_product = min(shop.table("products"))
    shop.update("products", first_product, price="99.000000")
    first_customer = min(shop.table("customers"))
    shop.update("customers", first_customer, lastname="Changed")

    async with engine_for(sandbox, state, resources=CATALOG) as w:
        before = await w.store.cursor("main", "products")
        for kind in ("html", "truncate"):
            sandbox.shop.faults.only_paths = ("/api/products",)
            sandbox.shop.faults.only_methods = frozenset({"GET"})
            sandbox.shop.faults.fail_next = 100
            sandbox.shop.faults.fail_next_kind = kind
            report = await w.engine.run_pass("main", "products")
            assert report.outcome == "error"
            assert "shop=main" in report.error and "resource=products" in report.error
            assert await w.store.cursor("main", "products") == before
            sandbox.shop.faults.clear()
        customers = await w.engine.run_pass("main", "customers")
        assert customers.outcome == "ok" and customers.updated == 1
        products = await w.engine.run_pass("main", "products")
        assert products.outcome == "ok" and products.updated >= 1


async def test_a_refused_key_stops_the_pass_with_a_configuration_error(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = sandbox.settings_data(tmp_path / "s.sqlite3", resources=("customers",))
    data["shops"][0]["api_key"] = "B" * 32
    from service.app import wired
    from service.settings import parse_settings

    async with wired(parse_settings(data, base_dir=tmp_path)) as w:
        report = await w.engine.run_pass("main", "customers")
        assert report.outcome == "error" and report.error_kind == "config"
        assert "B" * 32 not in report.error
        assert "shop=main" in report.error
        assert await w.store.cursor("main", "customers") is None


async def test_a_401_on_one_resource_stops_it_and_the_others_go_on(sandbox: Sandbox, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    sandbox.shop.faults.only_paths = ("/api/products",)
    sandbox.shop.faults.fail_next = 1000
    sandbox.shop.faults.fail_next_kind = "unauthorized"
    reports = await sync_all(sandbox, state)
    by_resource = {r.resource: r for r in reports}  # type: ignore[attr-defined]
    assert by_resource["products"].outcome == "error" and by_resource["products"].error_kind == "config"
    assert "resource=products" in by_resource["products"].error
    assert by_resource["categories"].outcome == "ok" and by_resource["customers"].outcome == "ok"
    assert by_resource["customers"].created > 0
    async with engine_for(sandbox, state, resources=CATALOG) as w:
        assert await w.store.cursor("main", "products") is None


async def test_fault_plan_is_seeded() -> None:
    a, b = FaultPlan(error_rate=0.5, seed=3), FaultPlan(error_rate=0.5, seed=3)
    assert [a.draw("GET", "/x") for _ in range(20)] == [b.draw("GET", "/x") for _ in range(20)]
