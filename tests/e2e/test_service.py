"""``ps2doli run`` as an admin runs it: a subprocess on a settings file, health and metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import tomli_w

from service.dolibarr.limit import AdaptiveLimit
from service.observe import Metrics, serve
from service.sandbox.harness import Sandbox


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(predicate: object, within_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


async def test_the_service_syncs_reports_health_and_stops_gracefully_on_sigterm(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    port = free_port()
    data = sandbox.settings_data(tmp_path / "state.sqlite3")
    data["metrics_port"] = port
    config = tmp_path / "settings.toml"
    config.write_text(tomli_w.dumps(data))
    config.chmod(0o600)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        expected_customers = len(sandbox.shop.data.table("customers"))
        await wait_for(lambda: len(sandbox.dolibarr.thirdparties) >= expected_customers * 0.9)
        async with aiohttp.ClientSession() as http:

            async def health() -> int:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    return response.status

            for _ in range(100):
                try:
                    if await health() == 200:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            assert await health() == 200
            # 90 % of the customers can be in while their pass still runs: its metric comes when it ends
            wanted = 'ps2doli_passes_total{outcome="ok",resource="customers",shop="main"}'
            text = ""
            for _ in range(150):
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    text = await response.text()
                if wanted in text:
                    break
                await asyncio.sleep(0.1)
            assert wanted in text
            assert "ps2doli_dolibarr_concurrency 4.0" in text  # dolibarr.max_concurrency, no deadlock seen
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"service.stopped" in stderr
    assert sandbox.shop.key.encode() not in stderr and sandbox.dolibarr_key.encode() not in stderr


async def test_the_dolibarr_concurrency_gauge_follows_the_adaptive_limit() -> None:
    limit = AdaptiveLimit(8)
    metrics = Metrics()
    metrics.watch_dolibarr(limit)
    port = free_port()
    runner = await serve(metrics, port)
    try:
        async with aiohttp.ClientSession() as http:

            async def gauge() -> str:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    text = await response.text()
                return next(
                    line for line in text.splitlines() if line.startswith("ps2doli_dolibarr_concurrency ")
                )

            assert await gauge() == "ps2doli_dolibarr_concurrency 8.0"
            async with limit.slot():
                limit.busy("/products")  # Dolibarr deadlocked
            assert await gauge() == "ps2doli_dolibarr_concurrency 4.0"
    finally:
        await runner.cleanup()
