"""Figures against the real pair (../shared/realpair): ps2doli side by side with what Dolibarr itself can do.

    .venv/bin/python bench/real.py [--concurrency 1 2 4 8] [--limit-posts 200] [--skip-orders] [--latency N]

Every figure is taken in this one run on this machine (reset before each), and printed as one table:

- the limit: Dolibarr's own rate of ``POST /products`` with minimal bodies at each concurrency (plain aiohttp);
- ps2doli's first catalog sync of the seeded shop (categories, products, combinations, stock, images, customers)
  at each ``dolibarr.max_concurrency`` (the adaptive limit works under it): records per second, Dolibarr requests
  per second (from Dolibarr's access log), and the ratio to the limit's best request rate;
- the requests per created object against the minimum Dolibarr's API needs (one create per object, one call per
  category link, per stock movement, per image upload), reads listed apart;
- an idle pass: Dolibarr requests (goal 0), the shop's requests per resource and the pass time;
- orders: a first sync of the seeded shop's year of orders (orders per second, and how many of the writes ran in
  the serial lanes: validations and payments);
- ``--latency N``: N changes of a product's price while ``ps2doli run`` runs at its default intervals, the time
  from each change to Dolibarr (p50, p95).

Figures, not assertions. Needs root (reset.sh) and the pair up (up.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.real.realpair import Pair, up  # noqa: E402  (the harness of the real tests)

LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[^"]*" (?P<status>\d{3})')


class AccessLog:
    """Requests a server's nginx access log received since a mark."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since(self) -> list[tuple[str, str, int]]:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            text = handle.read().decode("utf-8", "replace")
        return [
            (m["method"], m["path"], int(m["status"]))
            for m in (LINE.search(line) for line in text.splitlines())
            if m is not None
        ]


def family(method: str, path: str) -> str:
    path = path.split("?", 1)[0].replace("/api/index.php", "")
    path = re.sub(r"/\d+", "/N", path)
    path = re.sub(r"/ref_ext/[^/]+", "/ref_ext/X", path)
    return f"{method} {path}"


async def limit_rate(pair: Pair, concurrency: int, posts: int) -> float:
    """Dolibarr's own rate of minimal product creates, requests per second."""
    gate = asyncio.Semaphore(concurrency)
    stamp = int(time.time())
    async with aiohttp.ClientSession(headers={"DOLAPIKEY": pair.doli_key}) as session:

        async def one(n: int) -> None:
            async with gate:
                body = {"ref": f"BENCH-{stamp}-{concurrency}-{n}", "label": f"bench {n}"}
                async with session.post(f"{pair.doli_api}/products", json=body) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(posts)))
        return posts / (time.perf_counter() - started)


@dataclass
class SyncFigures:
    seconds: float
    records: int
    requests: list[tuple[str, str, int]]
    output: str


def sync(pair: Pair, folder: Path, *args: str, **overrides: object) -> SyncFigures:
    settings = pair.settings(folder, **overrides)  # type: ignore[arg-type]
    log = AccessLog(Path(pair.env["REALPAIR_DOLI_ACCESS_LOG"]))
    log.mark()
    started = time.perf_counter()
    done = pair.ps2doli(settings, "sync", *args, timeout=3600)
    seconds = time.perf_counter() - started
    records = 0
    for line in done.stdout.splitlines():
        m = re.search(r"created\s+(\d+)\s+updated\s+(\d+)", line)
        if m:
            records += int(m[1]) + int(m[2])
    return SyncFigures(seconds, records, log.since(), done.stdout)


def minimum_writes(requests: list[tuple[str, str, int]]) -> tuple[int, int, Counter[str]]:
    """(the writes Dolibarr's API cannot do without, all writes, the writes by route family).

    The minimum is what succeeded of: each create, category link, stock movement and image upload; a category's
    ``ref_ext`` PUT (the create ignores it); in a first sync into an empty Dolibarr, a product's PUT (its price has
    more than 2 decimals: ``Product::create`` keeps the cent, an update 5 decimals; on the seeded shop 132 PUTs for
    132 such products). What is above it was refused or rolled back and sent again (a duplicate ref, a deadlock,
    a stock movement Dolibarr answered 200 to without keeping it)."""
    writes = Counter(family(m, p) for m, p, _ in requests if m in ("POST", "PUT", "DELETE"))
    needed = {
        "POST /products",
        "POST /categories",
        "POST /thirdparties",
        "POST /categories/N/objects/product/N",
        "POST /stockmovements",
        "POST /documents/upload",
        "POST /products/N/variants",
        "PUT /categories/N",
        "PUT /products/N",
    }
    essential = sum(1 for m, p, status in requests if status < 300 and family(m, p) in needed)
    return essential, sum(writes.values()), writes


def per_kind(requests: list[tuple[str, str, int]]) -> str:
    """Reads per object made, for the reads tied to one kind: stock reads per movement, image reads per upload,
    thirdparty look-ups per customer."""
    routes = Counter(family(m, p) for m, p, _ in requests)
    moves = routes["POST /stockmovements"]
    uploads = routes["POST /documents/upload"]
    customers = routes["POST /thirdparties"]
    return (
        f"stock reads {routes['GET /products/N/stock']} for {moves} movements, "
        f"product + documents reads {routes['GET /products/N'] + routes['GET /documents']} for {uploads} uploads, "
        f"thirdparty look-ups {routes['GET /thirdparties']} for {customers} customers"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--limit-posts", type=int, default=200)
    parser.add_argument("--skip-orders", action="store_true")
    parser.add_argument(
        "--orders-only", action="store_true", help="only the orders figure (and its requests by route)"
    )
    parser.add_argument("--latency", type=int, default=0, help="changes for the latency figure (0: skip)")
    parser.add_argument("--latency-only", action="store_true", help="only the latency figure")
    args = parser.parse_args()
    pair = Pair(up())
    rows: list[str] = []
    if args.latency_only:
        print(latency(pair, args.latency or 20))
        return 0

    limits: dict[int, float] = {}
    for concurrency in [] if args.orders_only else args.concurrency:
        pair.reset("clean")
        limits[concurrency] = asyncio.run(limit_rate(pair, concurrency, args.limit_posts))
    best = max(limits.values(), default=1.0)
    if limits:
        rows.append("limit: Dolibarr's own POST /products (minimal bodies)")
    for concurrency, rate in limits.items():
        rows.append(f"  concurrency {concurrency}: {rate:7.1f} creates/s")

    if not args.orders_only:
        rows.append("ps2doli first catalog sync of the seeded shop (flat)")
    detail: Counter[str] | None = None
    for concurrency in [] if args.orders_only else args.concurrency:
        pair.reset("clean")
        with tempfile.TemporaryDirectory() as folder:
            figures = sync(pair, Path(folder), dolibarr={"max_concurrency": concurrency})
            rate = len(figures.requests) / figures.seconds
            essential, writes, by_route = minimum_writes(figures.requests)
            reads = len(figures.requests) - writes
            rows.append(
                f"  max_concurrency {concurrency}: {figures.seconds:6.1f} s, {figures.records / figures.seconds:6.1f}"
                f" records/s, {rate:6.1f} Dolibarr requests/s ({rate / best:4.2f} of the limit's best {best:.1f}), "
                f"writes {writes} for a minimum of {essential} ({writes / max(essential, 1):4.2f}x), reads {reads}"
            )
            if concurrency == 4 or detail is None:
                detail = by_route
                reads_by_route = Counter(family(m, p) for m, p, _ in figures.requests if m == "GET")
                created = per_kind(figures.requests)
            if concurrency == args.concurrency[-1]:
                idle_log = AccessLog(Path(pair.env["REALPAIR_HOME"]) / "logs" / "prestashop-access.log")
                idle_log.mark()
                idle = sync(pair, Path(folder), dolibarr={"max_concurrency": concurrency})
                shop_requests = Counter(
                    re.sub(r"\?.*", "", p).replace("/api/", "") for _, p, _ in idle_log.since()
                )
                rows.append(
                    f"idle pass: {len(idle.requests)} Dolibarr requests "
                    f"({Counter(family(m, p) for m, p, _ in idle.requests).most_common(5)}), "
                    f"{sum(shop_requests.values())} shop requests in {idle.seconds:.1f} s: "
                    + ", ".join(f"{k} {v}" for k, v in shop_requests.most_common())
                )
    if detail is not None:
        rows.append(
            "writes by route (max_concurrency 4 or the first run): "
            + ", ".join(f"{route} {n}" for route, n in detail.most_common())
        )
        rows.append(
            "reads by route: " + ", ".join(f"{route} {n}" for route, n in reads_by_route.most_common(12))
        )
        rows.append("reads per created object: " + created)

    if not args.skip_orders:
        pair.reset("clean-mc")
        with tempfile.TemporaryDirectory() as folder:
            catalog = sync(
                pair, Path(folder), shop={"catalog_only": False}, resources={"orders": {"enabled": False}}
            )
            orders = sync(pair, Path(folder), "--resource", "orders", shop={"catalog_only": False})
            made = Counter(family(m, p) for m, p, _ in orders.requests if m in ("POST", "PUT", "DELETE"))
            serial = sum(n for r, n in made.items() if r.endswith("/validate") or "payments" in r)
            count = made["POST /orders"]
            reads = Counter(family(m, p) for m, p, _ in orders.requests if m == "GET")
            rows.append(
                f"orders: {count} orders in {orders.seconds:.1f} s = {count / orders.seconds:.2f} orders/s "
                f"(catalog first: {catalog.seconds:.1f} s); {sum(made.values())} writes, {serial} of them in the "
                "serial lanes (validations, payments)"
            )
            rows.append(
                f"orders: {len(orders.requests)} Dolibarr requests = {len(orders.requests) / max(count, 1):.2f} "
                f"per order ({sum(made.values()) / max(count, 1):.2f} writes, {sum(reads.values()) / max(count, 1):.2f}"
                " reads)"
            )
            rows.append("orders: writes by route: " + ", ".join(f"{r} {n}" for r, n in made.most_common()))
            rows.append("orders: reads by route: " + ", ".join(f"{r} {n}" for r, n in reads.most_common()))

    if args.latency:
        rows.append(latency(pair, args.latency))
    print("\n".join(rows))
    return 0


def latency(pair: Pair, changes: int) -> str:
    """Price changes of product 20 while the service runs at its default intervals: change -> Dolibarr."""
    pair.reset("clean")
    with tempfile.TemporaryDirectory() as folder:
        settings = pair.settings(Path(folder))
        first = pair.ps2doli(settings, "sync")
        assert first.returncode == 0, first.stdout
        service = subprocess.Popen(
            [str(ROOT / ".venv/bin/ps2doli"), "run", "--config", str(settings)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        seconds: list[float] = []
        try:
            for n in range(changes):
                price = f"{10 + n}.500000"
                from tests.real.apis import Dolibarr, Shop
                from tests.real.shop_edits import set_fields

                async def change_and_wait(price: str = price) -> float:
                    async with aiohttp.ClientSession() as session:
                        shop = Shop(pair.ps_url, pair.ps_key, session)
                        doli = Dolibarr(pair.doli_api, pair.doli_key, session)
                        await set_fields(shop, "products", 20, {"price": price})
                        started = time.perf_counter()
                        while time.perf_counter() - started < 600:
                            row = await doli.get("/products/ref_ext/ps-main-product-20")
                            if str(row["price"]).startswith(price[:5]):
                                return time.perf_counter() - started
                            await asyncio.sleep(0.5)
                        return float("inf")

                seconds.append(asyncio.run(change_and_wait()))
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=60)
    p95 = statistics.quantiles(seconds, n=20)[-1] if len(seconds) > 1 else seconds[0]
    return (
        f"latency of a price change (products interval 60 s, {changes} changes): p50 "
        f"{statistics.median(seconds):.1f} s, p95 {p95:.1f} s"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
