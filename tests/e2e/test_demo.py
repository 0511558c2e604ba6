"""``ps2doli demo`` with orders: both syncs clean, the second one pushing the changed orders only."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from service.demo import run_demo


async def test_the_demo_syncs_orders_and_pushes_the_changed_ones_in_its_second_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = structlog.get_config()
    try:
        code = await run_demo(products=40, categories=6, customers=20, orders=30, seed=7, state_dir=tmp_path)
    finally:
        structlog.configure(
            **saved
        )  # the demo quiets the logs of the whole process: the next tests read them
    out = capsys.readouterr().out
    assert code == 0, out
    assert "and orders: 1 shipped, 1 paid" in out
    second = out.split("Second sync: only the changes were pushed")[1]
    [orders] = [line.split() for line in second.splitlines() if line.strip().startswith("orders")]
    created, updated = int(orders[1]), int(orders[2])
    assert (created, updated) == (1, 1), second


async def test_a_full_debug_log_of_the_demo_holds_no_key(tmp_path: Path) -> None:
    """The simulators' keys are not given to the redactor: none may reach a log line at all."""
    import asyncio
    import sys

    from service.sandbox import dolibarr_sim, prestashop_sim

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "demo",
        "--products",
        "30",
        "--categories",
        "5",
        "--customers",
        "15",
        "--orders",
        "10",
        "--log-level",
        "debug",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    log = out + err
    assert process.returncode == 0, log.decode()[-3000:]
    assert b'"level": "debug"' in log or b"[debug" in log, "the run did log at debug level"
    assert log.count(b"\n") > 200
    import base64

    basic = base64.b64encode(f"{prestashop_sim.DEFAULT_KEY}:".encode())
    for secret in (prestashop_sim.DEFAULT_KEY.encode(), dolibarr_sim.DEFAULT_KEY.encode(), basic):
        assert secret not in log
