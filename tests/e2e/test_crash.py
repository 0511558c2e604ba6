"""Crash safety, proven: ``ps2doli sync`` in a subprocess, SIGKILLed at random moments while the shop keeps
changing, restarted each time - then with transient faults on both sides too. Dolibarr must end up holding exactly
the expected objects (none missing, none twice), with the shop's last values, and one more sync must have nothing
left to write. Each test prints what it did (bench/crash_harness.py runs the same harness bigger)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest
import tomli_w

from service.sandbox.chaos import ChaosPlan, expected_objects, run_chaos
from service.sandbox.shop_generator import generate_shop
from tests.conftest import SandboxFactory


@pytest.fixture(autouse=True)
def quiet_injected_resets() -> None:
    # each injected reset makes aiohttp log a traceback; the report counts them instead
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)


@pytest.mark.timeout(120)
async def test_sigkill_at_random_moments_never_loses_nor_duplicates_anything(
    make_sandbox: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = generate_shop(21, categories=15, products=160, customers=200)
    sandbox = await make_sandbox({"main": shop})
    report = await run_chaos(sandbox, tmp_path, ChaosPlan(kills=25, seed=21))
    with capsys.disabled():
        print("\n" + report.render())
    assert report.kills == 25
    assert sum(report.expected.values()) > 300
    assert report.ok, report.render()


@pytest.mark.timeout(150)
async def test_sigkill_with_five_percent_of_each_fault_on_both_sides(
    make_sandbox: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """5xx pages, resets, timeouts whose write lands late, and answers lost after the write: 20% of requests."""
    shop = generate_shop(22, categories=12, products=70, customers=90)
    sandbox = await make_sandbox({"main": shop})
    plan = ChaosPlan(kills=8, fault_rate=0.2, seed=22, client_timeout_s=0.6, fault_timeout_s=0.9)
    report = await run_chaos(sandbox, tmp_path, plan)
    with capsys.disabled():
        print("\n" + report.render())
    assert report.kills == 8
    assert sum(report.injected_dolibarr.values()) > 50 and sum(report.injected_shop.values()) > 20
    assert report.injected_dolibarr["timeout"] and report.injected_dolibarr["error_after"]
    assert report.ok, report.render()


LANDS_AFTER_S = 5.0  # Dolibarr holds the create this long before it commits it


@pytest.mark.timeout(120)
async def test_a_create_in_flight_when_the_process_is_killed_lands_late_and_is_adopted_not_made_again(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Found on the real pair (SOAP, CI): ``ps2doli sync`` SIGKILLed while Dolibarr still ran one of its creates;
    the next run, started at once, looked the object up before that create committed, missed it, and made it
    again - an invoice twice. Now the create was noted in ``writes_sent`` before it was sent, and the next run
    looks for it until it must have landed, then adopts it."""
    shop = generate_shop(5, categories=2, products=4, customers=6)
    sandbox = await make_sandbox({"main": shop})
    faults = sandbox.dolibarr_faults
    faults.only_methods = frozenset({"POST"})
    faults.only_paths = ("/thirdparties",)
    faults.fail_next, faults.fail_next_kind, faults.timeout_s = 1, "timeout", LANDS_AFTER_S
    data = sandbox.settings_data(tmp_path / "state.sqlite3", resources=("customers",))
    data["dolibarr"].update(timeout_s=20, max_concurrency=1)
    config = tmp_path / "settings.toml"
    config.write_text(tomli_w.dumps(data))
    config.chmod(0o600)
    command = [sys.executable, "-m", "service.cli", "sync", "--config", str(config)]

    first = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    for _ in range(6000):
        if faults.injected["timeout"]:  # Dolibarr holds the first thirdparty's create now
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("no thirdparty create reached Dolibarr in 60 s")
    first.kill()
    await first.wait()

    second = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(second.communicate(), timeout=90)
    await asyncio.sleep(LANDS_AFTER_S)  # anything still held has landed by now
    wanted = expected_objects(shop)["thirdparties"]
    made = {key: len(sandbox.dolibarr.find("thirdparties", ref_ext=key)) for key in wanted}
    assert made == dict.fromkeys(wanted, 1), (out + err).decode()[-6000:]
    assert second.returncode == 0, (out + err).decode()[-3000:]
    assert b'"event": "dolibarr.earlier_write"' in out + err
