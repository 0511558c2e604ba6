"""Time: shop-local ``date_upd`` text across the autumn and spring clock changes (Europe/Paris), and a shop clock
that puts records in the future. Nothing saved after a pass may be missed by the next one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from service.app import Wired
from service.dolibarr.model import ref_ext
from service.sandbox.harness import Sandbox
from service.sandbox.shop_model import ShopData
from tests.conftest import engine_for


def registered(shop: ShopData) -> list[int]:
    return sorted(
        i
        for i, c in shop.table("customers").items()
        if not int(c.get("is_guest") or 0) and not str(c.get("company") or "").strip()
    )


def name_in_dolibarr(sandbox: Sandbox, customer_id: int) -> str:
    found = sandbox.dolibarr.find_one("thirdparties", ref_ext=ref_ext("main", "customer", customer_id))
    return str(found["name"]) if found else ""


async def save_and_pass(w: Wired, sandbox: Sandbox, when: datetime, customer_id: int, lastname: str) -> None:
    sandbox.shop.data.set_clock(when)
    sandbox.shop.data.update("customers", customer_id, lastname=lastname)
    report = await w.engine.run_pass("main", "customers")
    assert report.outcome == "ok", report.error


async def test_records_saved_in_the_repeated_autumn_hour_are_not_missed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shop = sandbox.shop.data
    assert shop.timezone == "Europe/Paris"
    first, second, third, fourth = registered(shop)[:4]
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("customers",)) as w:
        shop.set_clock("2025-10-26 01:30:00")
        # customers of the generated shop are dated up to a month ahead: bring them back before the change
        for customer in shop.table("customers").values():
            customer["date_upd"] = "2025-10-01 10:00:00"
        shop.touch()
        assert (await w.engine.run_pass("main", "customers")).outcome == "ok"

        # 02:40 CEST (first time round), then 02:10 CET (the same wall hour again, one real hour later)
        await save_and_pass(w, sandbox, datetime(2025, 10, 26, 2, 40, 0, fold=0), first, "Firstround")
        assert "Firstround" in name_in_dolibarr(sandbox, first)
        await save_and_pass(w, sandbox, datetime(2025, 10, 26, 2, 10, 0, fold=1), second, "Secondround")
        assert "Secondround" in name_in_dolibarr(sandbox, second), (
            "saved in the repeated hour, behind the cursor"
        )
        await save_and_pass(w, sandbox, datetime(2025, 10, 26, 2, 55, 0, fold=1), third, "Lateround")
        await save_and_pass(w, sandbox, datetime(2025, 10, 26, 3, 5, 0), fourth, "Afterwards")
        assert "Lateround" in name_in_dolibarr(sandbox, third)
        assert "Afterwards" in name_in_dolibarr(sandbox, fourth)
        # once past the repeated hour, passes read from the cursor again: nothing is pushed twice
        sandbox.dolibarr_requests.reset()
        report = await w.engine.run_pass("main", "customers")
        assert report.updated == 0 and sandbox.dolibarr_requests.writes() == 0


async def test_the_skipped_spring_hour_loses_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    shop = sandbox.shop.data
    before, after = registered(shop)[:2]
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("customers",)) as w:
        shop.set_clock("2026-03-29 01:00:00")
        for customer in shop.table("customers").values():
            customer["date_upd"] = "2026-03-01 10:00:00"
        shop.touch()
        assert (await w.engine.run_pass("main", "customers")).outcome == "ok"
        await save_and_pass(w, sandbox, datetime(2026, 3, 29, 1, 59, 59), before, "Beforejump")
        await save_and_pass(w, sandbox, datetime(2026, 3, 29, 3, 0, 0), after, "Afterjump")
        assert "Beforejump" in name_in_dolibarr(sandbox, before)
        assert "Afterjump" in name_in_dolibarr(sandbox, after)


async def test_a_record_dated_in_the_future_does_not_carry_the_cursor_past_later_changes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Regression: the generated shop dates customers up to a month after its clock; the cursor followed them and
    every change saved in between was missed until the clock caught up (found by the crash harness)."""
    shop = sandbox.shop.data
    ahead, later = registered(shop)[:2]
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("customers",)) as w:
        shop.set_clock("2026-01-05 09:00:00")
        shop.update("customers", ahead, lastname="Fromthefuture", date_upd="2026-02-20 12:00:00")
        assert (await w.engine.run_pass("main", "customers")).outcome == "ok"
        cursor = await w.store.cursor("main", "customers")
        assert cursor is not None and cursor.position <= "2026-01-05 09:00:00"

        shop.advance(60)
        shop.update("customers", later, lastname="Savedtoday")
        sandbox.dolibarr_requests.reset()
        report = await w.engine.run_pass("main", "customers")
        assert "Savedtoday" in name_in_dolibarr(sandbox, later)
        # the future-dated record is read again until its time comes, but never pushed again
        assert report.updated == 1 and sandbox.dolibarr_requests.writes() == 1


async def test_a_cursor_already_stored_ahead_of_the_shop_clock_is_read_from_the_clock(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A cursor left in the future (by an earlier version, or a first pass that only noted the newest record)
    would read nothing until the clock catches up: passes start from the shop's clock instead."""
    from service.state.store import Cursor

    shop = sandbox.shop.data
    customer = registered(shop)[0]
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("customers",)) as w:
        shop.set_clock("2026-01-05 09:00:00")
        assert (await w.engine.run_pass("main", "customers")).outcome == "ok"
        await w.store.set_cursor("main", "customers", Cursor("2026-03-01 00:00:00", 7))
        shop.advance(60)
        shop.update("customers", customer, lastname="Stillseen")
        report = await w.engine.run_pass("main", "customers")
        assert report.updated == 1 and "Stillseen" in name_in_dolibarr(sandbox, customer)
