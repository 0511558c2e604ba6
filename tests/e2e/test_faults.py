"""Transient faults over real sockets: a side down pauses the shop and the service resumes by itself; ambiguous
writes are looked up before they are retried; faults on both sides never duplicate nor lose an object."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from service.app import wired
from service.dolibarr.model import ref_ext
from service.sandbox.harness import Sandbox
from service.scheduler import Service
from tests.conftest import engine_for
from tests.e2e.test_core_pipeline import expected_categories, expected_products, expected_thirdparties

CATALOG = ("categories", "products", "customers")


async def wait_until(predicate: Callable[[], bool], within_s: float = 30.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)


def thirdparty_name(sandbox: Sandbox, customer_id: int) -> str:
    found = sandbox.dolibarr.find_one("thirdparties", ref_ext=ref_ext("main", "customer", customer_id))
    return str(found["name"]) if found else ""


async def test_the_service_polls_pauses_while_dolibarr_is_down_and_resumes_by_itself(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Regression: jobs were added with next_run_time=None, which APScheduler 3 reads as *paused*: the service
    ran its first round and never polled again."""
    settings = sandbox.settings(tmp_path / "s.sqlite3", resources=("customers",))
    settings.shops[0].resources["customers"].__dict__.update(interval_s=1)  # frozen: test-only tweak
    shop = sandbox.shop.data
    customer = min(i for i, c in shop.table("customers").items() if not int(c.get("is_guest") or 0))
    async with wired(settings) as w:
        service = Service(settings, w.engine)
        running = asyncio.create_task(service.run())
        try:
            expected = len(expected_thirdparties(sandbox))
            await wait_until(lambda: len(sandbox.dolibarr.thirdparties) == expected, what="first round")

            # a change is picked up by the interval job, not only by the first round
            shop.advance(5)
            shop.update("customers", customer, lastname="Polled")
            await wait_until(lambda: "Polled" in thirdparty_name(sandbox, customer), what="a periodic pass")

            # Dolibarr down: the shop pauses, the cursor stays before the change it could not store. (Compared
            # with the change's date, not with the cursor read before: the pass that stored "Polled" may still
            # be committing its cursor when the test reads it, which made this test flaky.)
            sandbox.dolibarr_faults.down = True
            while_down = shop.advance(5)
            shop.update("customers", customer, lastname="WhileDown")
            health = service.health["main"]
            await wait_until(lambda: health.failures >= 2, what="passes failing while Dolibarr is down")
            assert health.paused_until > 0 and "503" in health.last_error
            cursor = await w.store.cursor("main", "customers")
            assert cursor is not None and cursor.position < while_down
            assert "WhileDown" not in thirdparty_name(sandbox, customer)

            # back up: the service resumes by itself and catches up
            sandbox.dolibarr_faults.down = False
            await wait_until(lambda: "WhileDown" in thirdparty_name(sandbox, customer), what="resume")
            await wait_until(lambda: health.failures == 0, what="health reset")
            after = await w.store.cursor("main", "customers")
            assert after is not None and after.position >= while_down
        finally:
            service.request_stop()
            assert await asyncio.wait_for(running, 30) == 0


async def test_ambiguous_creates_are_looked_up_by_ref_ext_and_never_duplicated(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """error_after: Dolibarr stores the object, then the answer is lost (502 or a reset)."""
    faults = sandbox.dolibarr_faults
    faults.error_after_rate = 0.3
    faults.only_methods = frozenset({"POST"})
    faults.seed = 11
    faults.rng.seed(11)
    state = tmp_path / "s.sqlite3"
    reports = []
    for _ in range(8):  # passes until everything is in (an ambiguous create may fail its pass after retries)
        # a lost answer (a reset) leaves a new category without its ref_ext (set by a PUT after the create): the
        # lookup misses it and waits dolibarr.timeout_s before the create is sent again (and adopts it)
        async with engine_for(sandbox, state, resources=CATALOG, dolibarr={"timeout_s": 1}) as w:
            reports = [await w.engine.run_pass("main", r) for r in CATALOG]
        if all(r.outcome == "ok" for r in reports):
            break
    assert all(r.outcome == "ok" for r in reports), [r.error for r in reports]
    assert faults.injected["error_after"] > 5, faults.injected
    data = sandbox.dolibarr
    for kind, expected in (
        ("categories", expected_categories(sandbox.shop.data)),
        ("products", expected_products(sandbox.shop.data)),
        ("thirdparties", expected_thirdparties(sandbox)),
    ):
        counts = Counter(str(row.get("ref_ext") or "") for row in data.table(kind).values())
        assert set(counts) == expected, kind
        assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]


async def test_a_create_that_times_out_and_lands_late_is_adopted_not_made_twice(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Regression (crash harness): a POST that times out may still be running in Dolibarr. The lookup right after
    the timeout missed it, the create was sent again, and the first one landed a moment later: two thirdparties
    with one ref_ext. The writer now gives an ambiguous create dolibarr.timeout_s to land before creating again."""
    faults = sandbox.dolibarr_faults
    faults.only_methods = frozenset({"POST"})
    faults.only_paths = ("/thirdparties",)
    faults.fail_next, faults.fail_next_kind, faults.timeout_s = 2, "timeout", 0.8
    async with engine_for(
        sandbox, tmp_path / "s.sqlite3", resources=("customers",), dolibarr={"timeout_s": 0.5}
    ) as w:
        report = await w.engine.run_pass("main", "customers")
    await asyncio.sleep(1.0)  # anything still in flight has landed
    assert faults.injected["timeout"] == 2
    assert report.outcome == "ok", report.error
    counts = Counter(str(t.get("ref_ext")) for t in sandbox.dolibarr.thirdparties.values())
    assert set(counts) == expected_thirdparties(sandbox)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]


async def test_a_retry_after_longer_than_the_clients_wait_pauses_the_shop_that_long(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """429 with Retry-After: 45 while the clients retry for at most max_delay_s (0.1 s in the sandbox): the pass
    ends without moving the cursor, and the shop's pause lasts the 45 s asked for (not 10 x base_delay_s)."""
    from service.scheduler import ShopHealth

    faults = sandbox.dolibarr_faults
    faults.fail_next, faults.fail_next_kind, faults.retry_after_s = 100, "throttle", 45
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("customers",)) as w:
        report = await w.engine.run_pass("main", "customers")
        assert report.outcome == "error" and report.retry_after == 45.0, report.error
        assert "429" in report.error
        health = ShopHealth()
        health.record(report, base_delay=0.1)
        assert health.paused_until - asyncio.get_running_loop().time() > 40
        assert await w.store.cursor("main", "customers") is None
