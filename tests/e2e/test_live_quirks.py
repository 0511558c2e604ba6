"""What the live Dolibarr 20.0.2 showed, end to end over real sockets, with the simulator behaving the same way:
deadlocks under parallel writes, stock of a virtual product (a Dolibarr service), text a 3-byte ``utf8``
database connection cannot store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import structlog

from service.dolibarr.model import ref_ext
from service.dolibarr.rest import DolibarrRestClient
from service.sandbox.dolibarr_sim import SIM_KEY, DolibarrSimOptions
from service.sandbox.shop_generator import generate_shop
from tests.conftest import SandboxFactory, engine_for
from tests.e2e.catalog_support import catalog_overrides, product_of, stock, text
from tests.e2e.test_core_pipeline import expected_categories, expected_products

CATALOG = ("categories", "products", "stock")


async def test_a_catalog_sync_under_deadlocks_lands_every_object_once_and_lowers_the_limit(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Two writes in flight on POST /products, /orders or /stockmovements: the later one may deadlock (the live
    server did with four). Each deadlock is retried after a ref_ext lookup (stock: after reading the level
    again), and the client halves its concurrency: nothing twice, nothing lost, no pass ended on a deadlock."""
    shop = generate_shop(9, categories=6, products=40, customers=2)
    options = DolibarrSimOptions(
        bad_key_delay_s=0.0, deadlock_above=1, deadlock_probability=0.5, write_hold_s=0.02
    )
    sandbox = await make_sandbox({"main": shop}, dolibarr_options=options)
    async with engine_for(
        sandbox, tmp_path / "s.sqlite3", resources=CATALOG, shop_overrides=catalog_overrides()
    ) as w:
        reports = [await w.engine.run_pass("main", resource) for resource in CATALOG]
        assert isinstance(w.port, DolibarrRestClient)
        limit = w.port.limit
    assert [(r.resource, r.outcome, r.failed, r.error or "") for r in reports] == [
        (r, "ok", 0, "") for r in CATALOG
    ]
    contention = sandbox.dolibarr_server.app[SIM_KEY].contention
    assert contention is not None and contention.deadlocks > 0
    assert limit.decreases > 0 and limit.limit < limit.maximum
    data = sandbox.dolibarr
    for kind, expected in (("categories", expected_categories(shop)), ("products", expected_products(shop))):
        counts = Counter(str(row.get("ref_ext") or "") for row in data.table(kind).values())
        assert set(counts) == expected, kind
        assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    for pid, product in shop.table("products").items():
        if str(product.get("product_type")) == "standard":
            assert stock(data, product_of(data, "main", pid)["id"]) == shop.stock_quantity(pid), pid


async def test_a_virtual_product_becomes_a_service_whose_stock_is_not_moved(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Dolibarr keeps no stock of a service: its movements are refused (503 "Error when create stock movement : "
    with nothing after the colon). A virtual product's stock row is not mirrored, and the stock pass is clean."""
    shop = generate_shop(5, categories=4, products=8, customers=2, combination_share=0.0)
    simple = [p for p, row in shop.table("products").items() if row["product_type"] == "standard"]
    virtual = simple[-1]
    shop.update("products", virtual, type="virtual", product_type="virtual", is_virtual=1)
    assert shop.stock_quantity(virtual) > 0
    sandbox = await make_sandbox({"main": shop})
    async with engine_for(
        sandbox, tmp_path / "s.sqlite3", resources=CATALOG, shop_overrides=catalog_overrides()
    ) as w:
        reports = [await w.engine.run_pass("main", resource) for resource in CATALOG]
    assert [(r.outcome, r.failed) for r in reports] == [("ok", 0)] * 3
    data = sandbox.dolibarr
    service = product_of(data, "main", virtual)
    assert service["type"] == "1" and data.product_stock(int(service["id"])) == {}
    other = simple[0]
    assert stock(data, product_of(data, "main", other)["id"]) == shop.stock_quantity(other)


GIFT = "🎁 Carte cadeau"


async def test_an_emoji_is_left_out_for_a_utf8_connection_and_bites_when_sent(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """The simulator in the live server's 3-byte mode: with ``dolibarr.charset = "utf8"`` (the default) the
    product lands without its emoji and a warning says so; sent as is (``utf8mb4``), Dolibarr refuses it."""
    options = DolibarrSimOptions(bad_key_delay_s=0.0, connection_charset="utf8")
    shop = generate_shop(5, categories=4, products=6, customers=2, combination_share=0.0)
    gift = max(p for p, row in shop.table("products").items() if row["product_type"] == "standard")
    shop.update("products", gift, name={lang: GIFT for lang in shop.table("products")[gift]["name"]})
    sandbox = await make_sandbox({"main": shop}, dolibarr_options=options)
    resources = ("categories", "products")
    with structlog.testing.capture_logs() as logs:
        async with engine_for(
            sandbox, tmp_path / "s.sqlite3", resources=resources, shop_overrides=catalog_overrides()
        ) as w:
            reports = [await w.engine.run_pass("main", resource) for resource in resources]
    assert [(r.outcome, r.failed) for r in reports] == [("ok", 0)] * 2
    assert product_of(sandbox.dolibarr, "main", gift)["label"] == "Carte cadeau"
    warned = [e for e in logs if e["event"] == "dolibarr_text_not_storable"]
    assert warned and warned[0]["log_level"] == "warning" and warned[0]["charset"] == "utf8"
    assert text(shop.table("products")[gift]["name"]) == GIFT  # the shop keeps it

    # the same shop with the emoji sent as is: the simulator refuses it as the live server did
    other = await make_sandbox({"main": shop}, dolibarr_options=options)
    async with engine_for(
        other,
        tmp_path / "mb4.sqlite3",
        resources=resources,
        shop_overrides=catalog_overrides(),
        dolibarr={"charset": "utf8mb4"},
    ) as w:
        reports = [await w.engine.run_pass("main", resource) for resource in resources]
    assert (reports[1].outcome, reports[1].failed) == ("partial", 2)  # the product and its image set
    assert not other.dolibarr.find("products", ref_ext=ref_ext("main", "product", gift))


async def test_stock_movements_answered_200_but_not_kept_still_end_at_the_shops_level(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Under parallel writes the live server answered 200 to movements it did not keep (5 of 255). The engine
    reads the level again after every movement and moves what is still missing: every level ends right, and the
    next pass moves nothing."""
    shop = generate_shop(13, categories=4, products=30, customers=2, combination_share=0.0)
    options = DolibarrSimOptions(bad_key_delay_s=0.0, lost_movement_rate=0.2, write_hold_s=0.02)
    sandbox = await make_sandbox({"main": shop}, dolibarr_options=options)
    state = tmp_path / "s.sqlite3"
    async with engine_for(sandbox, state, resources=CATALOG, shop_overrides=catalog_overrides()) as w:
        reports = [await w.engine.run_pass("main", resource) for resource in CATALOG]
    assert [(r.resource, r.outcome, r.failed, r.error or "") for r in reports] == [
        (r, "ok", 0, "") for r in CATALOG
    ]
    lost = sandbox.dolibarr_server.app[SIM_KEY].lost_movements
    assert lost is not None and lost.strikes_count > 0, "some movements were answered 200 and not kept"
    data = sandbox.dolibarr
    standard = [pid for pid, p in shop.table("products").items() if str(p.get("product_type")) == "standard"]
    assert standard
    for pid in standard:
        assert stock(data, product_of(data, "main", pid)["id"]) == shop.stock_quantity(pid), pid

    sandbox.dolibarr_requests.reset()
    async with engine_for(sandbox, state, resources=("stock",), shop_overrides=catalog_overrides()) as w:
        report = await w.engine.run_pass("main", "stock")
    assert report.outcome == "ok" and sandbox.dolibarr_requests.writes() == 0


async def test_variant_creates_that_fail_under_parallel_writes_land_every_variant_once(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Under parallel writes the live server answered ``POST /products/{id}/variants`` with 500 "Error creating
    new product variant" and kept nothing. The client reads it as a lock conflict (DatabaseBusy); the engine
    looks the variant up by ref_ext and creates it again: one child per combination, none twice, no failure."""
    shop = generate_shop(17, categories=4, products=12, customers=2, combination_share=0.6)
    options = DolibarrSimOptions(bad_key_delay_s=0.0, variant_failure_rate=0.5, write_hold_s=0.02)
    sandbox = await make_sandbox({"main": shop}, dolibarr_options=options)
    overrides = catalog_overrides(combinations="variants")
    resources = ("categories", "products", "combinations", "stock")
    async with engine_for(
        sandbox, tmp_path / "s.sqlite3", resources=resources, shop_overrides=overrides
    ) as w:
        reports = [await w.engine.run_pass("main", resource) for resource in resources]
    assert [(r.resource, r.outcome, r.failed, r.error or "") for r in reports] == [
        (r, "ok", 0, "") for r in resources
    ]
    failures = sandbox.dolibarr_server.app[SIM_KEY].variant_failures
    assert failures is not None and failures.strikes_count > 0, "some variant creates failed"
    data = sandbox.dolibarr
    combos: dict[int, list[int]] = {}
    for cid, combination in shop.table("combinations").items():
        combos.setdefault(int(combination["id_product"]), []).append(cid)
    assert len(combos) >= 3, "several parents, so that variant creates run in parallel"
    for pid, cids in combos.items():
        parent = product_of(data, "main", pid)
        children = {
            int(c["fk_product_child"])
            for c in data.combinations.values()
            if int(c["fk_product_parent"]) == int(parent["id"])
        }
        mine = {int(product_of(data, "main", f"{pid}-{cid}")["id"]) for cid in cids}  # each exactly once
        assert children == mine, pid
    # no child left over by a failed create: every product is a shop product, a parent or one of its children
    assert data.count("products") == len(expected_products(shop)) + len(combos)
