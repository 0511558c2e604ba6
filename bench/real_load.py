"""The service under a shop that keeps changing, on the real pair: ``ps2doli run`` with short intervals for
``--minutes`` while a script changes the real PrestaShop through its webservice (prices, stock levels, orders
shipped, new orders placed); each change is watched for in the real Dolibarr.

    REALPAIR_HOME=/srv/realpair2 .venv/bin/python bench/real_load.py [--minutes 10] [--interval 15] [--json]

Prints, per kind of change, how many were made and arrived, the latency from the change to Dolibarr (p50, p95,
max) against the bound "one interval plus one pass", the service's memory (RSS) over the run, and then: no
ref_ext twice in Dolibarr, and the Dolibarr writes of a last ``ps2doli sync`` (0: nothing was left behind).
Starts from the seeded shop already synced (reset ``clean-mc`` and one ``ps2doli sync`` first). Not in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.real.apis import Dolibarr, Shop  # noqa: E402
from tests.real.faults import start  # noqa: E402
from tests.real.ledger import full_settings, money, read_ledger  # noqa: E402
from tests.real.realpair import Pair, up  # noqa: E402
from tests.real.shop_traffic import (  # noqa: E402
    PAYMENT_ACCEPTED,
    SHIPPED,
    TEMPLATES,
    place_order,
    set_order_state,
    set_price,
    set_stock,
)

WATCH_SLACK_S = 2.0


@dataclass
class Change:
    kind: str  # price | stock | shipped | new_order
    key: str  # what to look at in Dolibarr
    expected: Any
    made: float  # monotonic time the shop answered the change
    seen: float | None = None


@dataclass
class Load:
    changes: list[Change] = field(default_factory=list)
    rss_kb: list[tuple[float, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def shop_candidates(shop: Shop) -> tuple[list[int], list[int]]:
    """Simple physical products whose price and stock may change (none of the template orders' products), and
    orders in 'payment accepted' that can be shipped."""
    blocked: set[int] = set()
    for template in TEMPLATES:
        order = (await shop.get(f"orders/{template}"))["order"]
        blocked |= {int(r["product_id"]) for r in order["associations"]["order_rows"]}
    products = await shop.all("products", display="[id,type,active]")
    combos = {int(c["id_product"]) for c in await shop.all("combinations", display="[id,id_product]")}
    simple = [
        int(p["id"])
        for p in products
        if p["type"] == "simple" and str(p["active"]) == "1" and int(p["id"]) not in combos | blocked
    ]
    orders = await shop.all("orders", display="[id,current_state]")
    accepted = [int(o["id"]) for o in orders if int(o["current_state"]) == PAYMENT_ACCEPTED]
    return sorted(simple)[:40], sorted(accepted)


async def change_shop(shop: Shop, load: Load, minutes: float, every_s: float, seed: int) -> None:
    rng = random.Random(seed)
    products, accepted = await shop_candidates(shop)
    end = time.monotonic() + minutes * 60
    step = 0
    while time.monotonic() < end:
        step += 1
        kind = ("price", "stock", "price", "shipped", "stock", "new_order")[step % 6]
        try:
            if kind == "price":
                pid = rng.choice(products)
                price = Decimal(rng.randint(500, 9000)) / 100
                await set_price(shop, pid, price)
                load.changes.append(Change("price", f"ps-main-product-{pid}", money(price), time.monotonic()))
            elif kind == "stock":
                pid = rng.choice(products)
                quantity = rng.randint(0, 500)
                await set_stock(shop, pid, quantity)
                load.changes.append(Change("stock", f"ps-main-product-{pid}", quantity, time.monotonic()))
            elif kind == "shipped" and accepted:
                oid = accepted.pop(0)
                await set_order_state(shop, oid, SHIPPED)
                load.changes.append(Change("shipped", f"ps-main-order-{oid}", "3", time.monotonic()))
            elif kind == "new_order":
                placed = await place_order(shop, rng.choice(TEMPLATES))
                total = money(placed["total_paid_tax_incl"])
                load.changes.append(
                    Change("new_order", f"ps-main-order-{placed['id']}", total, time.monotonic())
                )
        except (AssertionError, aiohttp.ClientError) as exc:
            load.errors.append(f"{kind}: {exc}")
        await asyncio.sleep(every_s)


async def arrived(doli: Dolibarr, change: Change, warehouse: int) -> bool:
    if change.kind in ("price", "stock"):
        product = await doli.get(f"/products/ref_ext/{change.key}")
        if change.kind == "price":
            return product is not None and money(product["price"]) == change.expected
        stock = await doli.get(f"/products/{product['id']}/stock") if product else None
        rows = (stock or {}).get("stock_warehouses") or {}
        real = rows.get(str(warehouse), {}).get("real") if isinstance(rows, dict) else None
        return int(Decimal(str(real or 0))) == change.expected
    order = await doli.get(f"/orders/ref_ext/{change.key}")
    if order is None:
        return False
    if change.kind == "shipped":
        return str(order["statut"]) == change.expected
    return money(order["total_ttc"]) == change.expected


async def watch_dolibarr(doli: Dolibarr, load: Load, warehouse: int, done: asyncio.Event) -> None:
    while True:
        now = time.monotonic()
        for change in load.changes:
            if change.seen is None:
                # only the latest change of a key counts: an earlier one was overwritten in the shop
                latest = [c for c in load.changes if c.key == change.key and c.kind == change.kind][-1]
                if latest is not change:
                    change.seen = -1.0
                elif await arrived(doli, change, warehouse):
                    change.seen = now
        if done.is_set() and all(c.seen is not None for c in load.changes):
            return
        await asyncio.sleep(1)


async def sample_memory(pid: int, load: Load, done: asyncio.Event) -> None:
    t0 = time.monotonic()
    while not done.is_set():
        try:
            status = await asyncio.to_thread(Path(f"/proc/{pid}/status").read_text)
        except OSError:
            return
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        load.rss_kb.append((time.monotonic() - t0, rss))
        await asyncio.sleep(5)


def pass_seconds(log: Path) -> dict[str, float]:
    """The longest pass of each resource in the service's log (``pass.done`` events)."""
    longest: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        if '"pass.done"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        name = str(event.get("resource"))
        longest[name] = max(longest.get(name, 0.0), float(event.get("seconds") or 0))
    return longest


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main_async(args: argparse.Namespace) -> int:
    pair = Pair(up())
    folder = args.folder or Path(tempfile.mkdtemp(prefix="ps2doli-real-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    pair.reset("clean-mc")
    quick = {"interval_s": args.interval}
    resources = {
        "products": quick,
        "stock": quick,
        "customers": quick,
        "orders": quick,
        "categories": {"interval_s": 120},
    }
    settings = full_settings(pair, folder, resources=resources)
    first = pair.ps2doli(settings, "sync")
    if first.returncode != 0:
        print(f"the first sync exited {first.returncode}: see {folder}")
        return 2
    load = Load()
    process, log = start(pair, settings, "run")
    done = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        shop = Shop(pair.ps_url, pair.ps_key, session)
        doli = Dolibarr(pair.doli_api, pair.doli_key, session)
        watcher = asyncio.create_task(watch_dolibarr(doli, load, pair.warehouse_id, done))
        sampler = asyncio.create_task(sample_memory(process.pid, load, done))
        await asyncio.sleep(args.interval)  # the service's first round
        await change_shop(shop, load, args.minutes, args.every, args.seed)
        done.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher, timeout=args.interval * 4 + 120)
        await sampler
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=120)
        ledger = await read_ledger(doli)
    pair.mark_writes()
    last = pair.ps2doli(settings, "sync")
    last_writes = pair.writes()

    passes = pass_seconds(log)
    resource_of = {"price": "products", "stock": "stock", "shipped": "orders", "new_order": "orders"}
    report: dict[str, Any] = {"kinds": {}}
    all_latencies: list[float] = []
    late = 0
    for kind, resource in resource_of.items():
        counted = [c for c in load.changes if c.kind == kind and (c.seen is None or c.seen >= 0)]
        latencies = [c.seen - c.made for c in counted if c.seen is not None]
        # the watcher looks every second and needs a moment for its round of reads: 2 s of slack
        bound = args.interval + passes.get(resource, 0.0) + WATCH_SLACK_S
        late += sum(1 for v in latencies if v > bound)
        all_latencies += latencies
        report["kinds"][kind] = {
            "made": len(counted),
            "arrived": len(latencies),
            "p50_s": round(percentile(latencies, 0.5), 1),
            "p95_s": round(percentile(latencies, 0.95), 1),
            "max_s": round(max(latencies, default=0.0), 1),
            "bound_s": round(bound, 1),
        }
    rss = [kb for t, kb in load.rss_kb if t >= 60] or [kb for _, kb in load.rss_kb]
    report.update(
        {
            "minutes": args.minutes,
            "interval_s": args.interval,
            "changes": len(load.changes),
            "missing": sum(1 for c in load.changes if c.seen is None),
            "late": late,
            "p50_s": round(percentile(all_latencies, 0.5), 1),
            "p95_s": round(percentile(all_latencies, 0.95), 1),
            "rss_mb_first_last_max": [
                round(rss[0] / 1024, 1),
                round(rss[-1] / 1024, 1),
                round(max(rss) / 1024, 1),
            ]
            if rss
            else [],
            "duplicates": ledger.total_duplicates(),
            "last_sync_exit": last.returncode,
            "last_sync_writes": len(last_writes),
            "shop_errors": load.errors,
            "longest_pass_s": passes,
        }
    )
    flat = bool(rss) and rss[-1] <= rss[0] * 1.25 + 16 * 1024  # kB: within a quarter and 16 MB of the start
    report["memory_flat"] = flat
    ok = (
        flat
        and report["missing"] == 0
        and late == 0
        and report["duplicates"] == 0
        and last.returncode == 0
        and not last_writes
    )
    if args.json:
        print(json.dumps({**report, "ok": ok}, indent=2))
    else:
        print(
            f"real load: ps2doli run for {args.minutes} min, intervals {args.interval}s, {len(load.changes)} changes"
        )
        for kind, figures in report["kinds"].items():
            print(
                f"  {kind:<10} made {figures['made']:>4}  arrived {figures['arrived']:>4}  p50 {figures['p50_s']:>5}s"
                f"  p95 {figures['p95_s']:>5}s  max {figures['max_s']:>5}s  (bound {figures['bound_s']}s)"
            )
        print(
            f"  all changes: p50 {report['p50_s']}s, p95 {report['p95_s']}s; late {late}, missing {report['missing']}"
        )
        print(
            f"  memory (RSS MB after the first minute: first, last, max): {report['rss_mb_first_last_max']}"
        )
        print(
            f"  duplicates {report['duplicates']}; last sync exit {last.returncode}, {len(last_writes)} writes; "
            f"shop errors {len(load.errors)} -> {'OK' if ok else 'FAILED'} (logs in {folder})"
        )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument(
        "--interval", type=int, default=15, help="interval_s of products, stock, customers, orders"
    )
    parser.add_argument("--every", type=float, default=4.0, help="seconds between two shop changes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
