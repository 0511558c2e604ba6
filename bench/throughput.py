"""Sync throughput on the simulators: figures, not assertions.

    .venv/bin/python bench/throughput.py [--products 2000] [--customers 1000] [--latency-ms 13] [--concurrency 1 4 8]

For each concurrency: an initial sync of a generated shop into an empty Dolibarr, a second pass with nothing
changed, and a pass after 1% of the products changed. Dolibarr's latency is injected per request
(13 ms is the median a real Dolibarr 20 answered with on a 2-core machine: ../shared/reference/dolibarr/throughput.json).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from service import logs
from service.app import wired
from service.sandbox.harness import start_sandbox
from service.sandbox.shop_generator import generate_shop

RESOURCES = ("categories", "products", "customers")


async def one_run(products: int, customers: int, latency_s: float, concurrency: int) -> dict[str, float]:
    shop = generate_shop(11, categories=40, products=products, customers=customers)
    sandbox = await start_sandbox({"main": shop})
    sandbox.dolibarr_faults.latency_s = latency_s
    figures: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = sandbox.settings(
                Path(folder) / "state.sqlite3",
                resources=RESOURCES,
                dolibarr={"max_concurrency": concurrency},
                shop_overrides={"main": {"page_size": 100}},
            )
            async with wired(settings) as w:
                started = time.perf_counter()
                reports = [await w.engine.run_pass("main", r) for r in RESOURCES]
                elapsed = time.perf_counter() - started
                records = sum(r.created + r.updated for r in reports)
                figures["initial_records"] = records
                figures["initial_s"] = elapsed
                figures["initial_rps"] = records / elapsed
                figures["requests_per_record"] = sandbox.dolibarr_requests.total() / max(records, 1)

                sandbox.dolibarr_requests.reset()
                started = time.perf_counter()
                for r in RESOURCES:
                    await w.engine.run_pass("main", r)
                figures["idle_pass_s"] = time.perf_counter() - started
                figures["idle_pass_writes"] = sandbox.dolibarr_requests.writes()

                shop.advance(5)
                changed = sorted(shop.table("products"))[: max(1, products // 100)]
                for pid in changed:
                    shop.update("products", pid, price=f"{float(shop.get('products', pid)['price']) + 1:.6f}")
                sandbox.dolibarr_requests.reset()
                started = time.perf_counter()
                report = await w.engine.run_pass("main", "products")
                figures["incremental_s"] = time.perf_counter() - started
                figures["incremental_updates"] = report.updated
                figures["incremental_writes"] = sandbox.dolibarr_requests.writes()
    finally:
        await sandbox.stop()
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=13.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    logs.configure("error")
    print(
        f"shop: {args.products} products, {args.customers} customers; Dolibarr latency {args.latency_ms} ms/request"
    )
    header = (
        f"{'conc':>4} {'records':>8} {'initial s':>10} {'rec/s':>7} {'req/rec':>8} "
        f"{'idle pass s':>12} {'idle writes':>12} {'1% pass s':>10} {'updates':>8} {'writes':>7}"
    )
    print(header)
    for concurrency in args.concurrency:
        f = await one_run(args.products, args.customers, args.latency_ms / 1000, concurrency)
        print(
            f"{concurrency:>4} {f['initial_records']:>8.0f} {f['initial_s']:>10.2f} {f['initial_rps']:>7.1f} "
            f"{f['requests_per_record']:>8.2f} {f['idle_pass_s']:>12.2f} {f['idle_pass_writes']:>12.0f} "
            f"{f['incremental_s']:>10.2f} {f['incremental_updates']:>8.0f} {f['incremental_writes']:>7.0f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
