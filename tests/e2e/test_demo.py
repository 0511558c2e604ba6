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
