"""Crash safety, proven: ``ps2doli sync`` in a subprocess, SIGKILLed at random moments while the shop keeps
changing, restarted each time - then with transient faults on both sides too. Dolibarr must end up holding exactly
the expected objects (none missing, none twice), with the shop's last values, and one more sync must have nothing
left to write. Each test prints what it did (bench/crash_harness.py runs the same harness bigger)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from service.sandbox.chaos import ChaosPlan, run_chaos
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
