"""Crash and fault harness, bigger than CI's: figures, and an exit status.

    .venv/bin/python bench/crash_harness.py [--products 600] [--customers 800] [--kills 60] [--fault-rate 0.15]
                                            [--seeds 1 2 3] [--json]

For each seed: a generated shop in the PrestaShop simulator, an empty Dolibarr simulator, and ``ps2doli sync`` run
in a subprocess, SIGKILLed at random moments (``--kills`` times) while the shop keeps changing, then let finish;
with ``--fault-rate`` > 0, that share of requests fails on both sides (5xx pages, resets, timeouts whose write
lands late, answers lost after the write). Then the check: every expected object exactly once in Dolibarr, the
shop's last values there, the state store agreeing with Dolibarr, and one more sync with nothing left to write.
Exit status 0 when every run passed. The CI-sized runs are tests/e2e/test_crash.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path

from service import logs
from service.sandbox.chaos import ChaosPlan, run_chaos, summary
from service.sandbox.harness import start_sandbox
from service.sandbox.shop_generator import generate_shop


async def one_seed(args: argparse.Namespace, seed: int) -> tuple[bool, dict[str, object]]:
    shop = generate_shop(seed, categories=args.categories, products=args.products, customers=args.customers)
    sandbox = await start_sandbox({"main": shop})
    try:
        with tempfile.TemporaryDirectory(prefix="ps2doli-crash-") as folder:
            plan = ChaosPlan(
                kills=args.kills,
                fault_rate=args.fault_rate,
                seed=seed,
                max_runs=args.kills * 3 + 40,
                client_timeout_s=args.timeout,
                fault_timeout_s=args.timeout * 1.5,
            )
            report = await run_chaos(sandbox, Path(folder), plan)
            if not args.json:
                print(f"\nseed {seed}: " + report.render(), flush=True)
            return report.ok, {"seed": seed, **summary(report)}
    finally:
        await sandbox.stop()


async def main(args: argparse.Namespace) -> int:
    logs.configure("error")
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # one traceback per injected reset
    results = [await one_seed(args, seed) for seed in args.seeds]
    if args.json:
        print(json.dumps([figures for _, figures in results], indent=2))
    else:
        passed = sum(ok for ok, _ in results)
        kills = sum(int(str(f["kills"])) for _, f in results)
        print(f"\n{passed}/{len(results)} runs passed, {kills} SIGKILLs in all")
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=600)
    parser.add_argument("--customers", type=int, default=800)
    parser.add_argument("--categories", type=int, default=40)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument(
        "--timeout", type=float, default=1.0, help="clients' timeout_s (injected stalls: x1.5)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--json", action="store_true", help="figures as JSON")
    sys.exit(asyncio.run(main(parser.parse_args())))
