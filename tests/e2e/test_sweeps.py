"""Sweeps: what date_upd misses is found by re-reading everything on a slow interval; an unchanged shop costs reads
only. The service schedules sweeps and reconcile passes on their own intervals."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from service.app import wired
from service.dolibarr.model import ref_ext
from service.engine.streams import STREAMS
from service.engine.sweeps import SWEEP_DISPLAY, Sweeper
from service.prestashop import values
from service.sandbox.harness import Sandbox
from service.scheduler import Service
from service.settings import ResourceSettings
from tests.conftest import engine_for
from tests.e2e.test_faults import wait_until

CATALOG = ("categories", "products", "customers")


def simple_products(sandbox: Sandbox) -> list[int]:
    shop = sandbox.shop.data
    with_combinations = {values.as_int(c["id_product"]) for c in shop.table("combinations").values()}
    return sorted(set(shop.table("products")) - with_combinations)


def price_in_dolibarr(sandbox: Sandbox, product_id: int) -> float:
    found = sandbox.dolibarr.find_one("products", ref_ext=ref_ext("main", "product", product_id))
    return float(found["price"]) if found else -1.0


async def test_an_unchanged_shop_costs_reads_only_and_a_change_date_upd_missed_is_pushed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shop = sandbox.shop.data
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=CATALOG) as w:
        for resource in CATALOG:
            assert (await w.engine.run_pass("main", resource)).outcome == "ok"
        sandbox.dolibarr_requests.reset()
        for resource in CATALOG:
            report = await Sweeper(w.engine).run("main", resource)
            assert report.outcome == "ok" and report.created == report.updated == 0, report
        assert sandbox.dolibarr_requests.writes() == 0, sandbox.dolibarr_requests.counts

        # a module writes the price and a customer's name straight into the database: date_upd does not move
        product = simple_products(sandbox)[0]
        shop.table("products")[product]["price"] = "77.700000"
        for row in shop.product_shop[product].values():
            row["price"] = "77.700000"
        customer = min(i for i, c in shop.table("customers").items() if not int(c.get("is_guest") or 0))
        shop.table("customers")[customer]["lastname"] = "Straightintodb"
        shop.touch()
        assert (await w.engine.run_pass("main", "products")).updated == 0, "the pass cannot see it"
        assert (await w.engine.run_pass("main", "customers")).updated == 0
        cursors = await w.store.cursors()

        products = await Sweeper(w.engine).run("main", "products")
        customers = await Sweeper(w.engine).run("main", "customers")
        assert (products.updated, customers.updated) == (1, 1)
        assert price_in_dolibarr(sandbox, product) == 77.7
        found = sandbox.dolibarr.find_one("thirdparties", ref_ext=ref_ext("main", "customer", customer))
        assert found is not None and "Straightintodb" in found["name"]
        assert await w.store.cursors() == cursors, "a sweep moves no cursor"
        assert (await w.store.last_run_of("main", "products", "sweep")) is not None


async def test_the_fields_a_sweep_reads_map_exactly_like_full_records(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A sweep reads only the fields the mapper uses (SWEEP_DISPLAY). If a mapper starts reading another field,
    this fails: add the field to SWEEP_DISPLAY in service/engine/sweeps.py."""
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=CATALOG) as w:
        shop = sandbox.settings(tmp_path / "s.sqlite3").shop("main")
        ctx = await w.engine.context(shop)
        client = w.clients["main"]
        for resource, display in SWEEP_DISPLAY.items():
            assert display != "full" and display is not None
            stream = STREAMS[resource](shop, client)
            full = await client.fetch(resource, display="full")
            few = await client.fetch(resource, display=("id", *display))
            assert len(full) == len(few) > 0
            mapped_full = await stream.batch(full, ctx)
            mapped_few = await stream.batch(few, ctx)
            assert [(i.ps_id, i.hash) for i in mapped_full.items] == [
                (i.ps_id, i.hash) for i in mapped_few.items
            ]
            assert len(mapped_full.failures) == len(mapped_few.failures)


async def test_the_service_runs_sweeps_and_reconciles_on_their_own_intervals(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = sandbox.settings(tmp_path / "s.sqlite3", resources=("categories", "products"))
    quick = {
        name: dataclasses.replace(r, interval_s=3600, sweep_interval_s=1, reconcile_interval_s=1)
        for name, r in settings.shops[0].resources.items()
    }
    settings = dataclasses.replace(settings, shops=(dataclasses.replace(settings.shops[0], resources=quick),))
    assert isinstance(quick["products"], ResourceSettings)
    shop = sandbox.shop.data
    changed, deleted = simple_products(sandbox)[:2]
    async with wired(settings) as w:
        service = Service(settings, w.engine)
        running = asyncio.create_task(service.run())
        try:
            await wait_until(lambda: price_in_dolibarr(sandbox, deleted) >= 0, what="first round")
            jobs = {job.id for job in service.scheduler.get_jobs()}
            assert {"main:products", "main:products:sweep", "main:products:reconcile"} <= jobs
            shop.table("products")[changed]["price"] = "55.500000"
            for row in shop.product_shop[changed].values():
                row["price"] = "55.500000"
            shop.delete("products", deleted)
            shop.touch()

            def status_of_deleted() -> str:
                found = sandbox.dolibarr.find_one("products", ref_ext=ref_ext("main", "product", deleted))
                return str(found["status"]) if found else ""

            await wait_until(lambda: price_in_dolibarr(sandbox, changed) == 55.5, what="the sweep job")
            await wait_until(lambda: status_of_deleted() == "0", what="the reconcile job")
        finally:
            service.request_stop()
            assert await asyncio.wait_for(running, 30) == 0


async def test_ps2doli_sweep_over_the_cli(sandbox: Sandbox, tmp_path: Path) -> None:
    from tests.e2e.test_cli import ps2doli, write_config

    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "s.sqlite3"))
    assert (await ps2doli("sync", config=config))[0] == 0
    product = simple_products(sandbox)[0]
    sandbox.shop.data.table("products")[product]["price"] = "33.300000"
    for row in sandbox.shop.data.product_shop[product].values():
        row["price"] = "33.300000"
    sandbox.shop.data.touch()
    code, out, err = await ps2doli("sweep", config=config)
    assert code == 0, out + err
    assert [line.split()[1] for line in out.splitlines() if "(sweep)" in line] == list(CATALOG)
    assert price_in_dolibarr(sandbox, product) == 33.3
