"""``ps2doli backfill --since``: the shop's order history from a date on, resumable, idempotent, apart from the live
cursor. Over real sockets, through the real command line."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import tomli_w

from service.dolibarr.model import ref_ext
from service.engine.backfill import backfill, cursor_name
from service.prestashop import values
from service.sandbox.harness import Sandbox
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import ShopData
from tests.conftest import SandboxFactory, engine_for

CANCELED = 6


async def ps2doli(*args: str, config: Path) -> tuple[int, str, str]:
    command = [sys.executable, "-m", "service.cli", *args, "--config", str(config)]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ}
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def settings_data(sandbox: Sandbox, tmp_path: Path, **orders: Any) -> dict[str, Any]:
    return sandbox.settings_data(
        tmp_path / "state.sqlite3",
        resources=("orders",),
        shop_overrides={"main": {"orders": {"entry": "created", **orders}, "page_size": 7}},
    )


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(tomli_w.dumps(data))
    path.chmod(0o600)
    return path


def history_shop() -> ShopData:
    return generate_shop(11, categories=4, products=24, customers=10, orders=36)


def expected_since(shop: ShopData, since: dt.date) -> set[str]:
    """Orders placed on or after ``since`` that enter Dolibarr with ``orders.entry = "created"``: all but those
    cancelled before they entered (one in another currency enters too, in the main currency at its rate: the
    Multicurrency module is off)."""
    wanted = set()
    for oid, order in shop.table("orders").items():
        if str(order["date_add"]) < f"{since.isoformat()} 00:00:00":
            continue
        if values.as_int(order["current_state"]) == CANCELED:
            continue
        wanted.add(ref_ext("main", "order", oid))
    return wanted


def middle_day(shop: ShopData) -> dt.date:
    days = sorted(str(o["date_add"])[:10] for o in shop.table("orders").values())
    return dt.date.fromisoformat(days[len(days) // 2])


def orders_in_dolibarr(sandbox: Sandbox) -> set[str]:
    return {str(o["ref_ext"]) for o in sandbox.dolibarr.orders.values()}


async def test_backfill_since_imports_exactly_the_orders_from_that_day_and_twice_changes_nothing(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = history_shop()
    sandbox = await make_sandbox({"main": shop})
    since = middle_day(shop)
    expected = expected_since(shop, since)
    assert 5 < len(expected) < len(shop.table("orders")), "the day splits the history"
    config = write_config(tmp_path, settings_data(sandbox, tmp_path))

    code, out, err = await ps2doli("backfill", "--since", since.isoformat(), config=config)
    assert code in (0, 1), out + err
    assert orders_in_dolibarr(sandbox) == expected
    assert "orders read" in out, "progress on screen"
    counts = {
        kind: sandbox.dolibarr.count(kind) for kind in ("orders", "invoices", "payments", "thirdparties")
    }

    sandbox.dolibarr_requests.reset()
    code, out, err = await ps2doli("backfill", "--since", since.isoformat(), config=config)
    assert code in (0, 1), out + err
    assert sandbox.dolibarr_requests.writes() == 0, sandbox.dolibarr_requests.counts
    code, out, err = await ps2doli("backfill", "--since", since.isoformat(), "--restart", config=config)
    assert code in (0, 1), out + err
    assert sandbox.dolibarr_requests.writes() == 0, sandbox.dolibarr_requests.counts
    assert {kind: sandbox.dolibarr.count(kind) for kind in counts} == counts

    async with engine_for(sandbox, tmp_path / "state.sqlite3", resources=("orders",)) as w:
        assert await w.store.cursor("main", "orders") is None, "the live cursor is never touched"
        assert await w.store.cursor("main", cursor_name("orders", since)) is not None


async def test_an_interrupted_backfill_resumes_where_it_stopped(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = history_shop()
    sandbox = await make_sandbox({"main": shop})
    since = middle_day(shop)
    expected = expected_since(shop, since)
    settings = settings_data(sandbox, tmp_path)
    from service.settings import parse_settings

    parsed = parse_settings(settings, base_dir=tmp_path)
    from service.app import wired

    async with wired(parsed) as w:

        def stop_after_first_page(report: Any, read: int, total: int) -> None:
            w.engine.stop()

        first = await backfill(w.engine, "main", since, progress=stop_after_first_page)
        assert first.outcome == "stopped" and first.pages == 1
    partial = orders_in_dolibarr(sandbox)
    assert partial and partial < expected

    async with wired(parsed) as w:
        second = await backfill(w.engine, "main", since)
    assert second.outcome in ("ok", "partial")
    assert orders_in_dolibarr(sandbox) == expected
    assert first.created + second.created == len(expected)


async def test_with_first_pass_new_the_live_stream_starts_now_and_the_history_is_backfilled(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = history_shop()
    sandbox = await make_sandbox({"main": shop})
    since = middle_day(shop)
    from service.app import wired
    from service.settings import parse_settings

    data = settings_data(sandbox, tmp_path, first_pass="new")
    data["shops"][0]["overlap_s"] = (
        0  # else the orders of the last seconds before the first pass are read too
    )
    settings = parse_settings(data, base_dir=tmp_path)
    async with wired(settings) as w:
        first = await w.engine.run_pass("main", "orders")
        assert first.outcome == "ok" and first.created == 0 and sandbox.dolibarr.count("orders") == 0
        assert await w.store.cursor("main", "orders") is not None
        customer = min(c for c, row in shop.table("customers").items() if not values.as_int(row["is_guest"]))
        product = min(shop.table("products"))
        shop.advance(3600)
        new = shop.create_order(customer, [(product, 1)], state_id=2)
        second = await w.engine.run_pass("main", "orders")
        assert second.created == 1 and orders_in_dolibarr(sandbox) == {ref_ext("main", "order", new)}
        await backfill(w.engine, "main", since)
    assert orders_in_dolibarr(sandbox) == expected_since(shop, since) | {ref_ext("main", "order", new)}


async def test_with_first_pass_new_a_shop_without_orders_yet_gets_its_first_one(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = generate_shop(12, categories=3, products=10, customers=4, orders=0)
    sandbox = await make_sandbox({"main": shop})
    from service.app import wired
    from service.settings import parse_settings

    settings = parse_settings(settings_data(sandbox, tmp_path, first_pass="new"), base_dir=tmp_path)
    async with wired(settings) as w:
        await w.engine.run_pass("main", "orders")
        shop.advance(60)
        customer = min(c for c, row in shop.table("customers").items() if not values.as_int(row["is_guest"]))
        oid = shop.create_order(customer, [(min(shop.table("products")), 1)], state_id=2)
        report = await w.engine.run_pass("main", "orders")
    assert report.created == 1 and orders_in_dolibarr(sandbox) == {ref_ext("main", "order", oid)}
