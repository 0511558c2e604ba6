"""Both simulators in a process of their own, over a generated shop, until SIGTERM or SIGINT.

    python -m service.sandbox serve --products 100000 --combination-share 0.2 --customers 50000 \\
        --orders 100000 [--categories 40] [--latency-ms N] [--seed S] [--host 127.0.0.1] \\
        [--shop-port 0] [--dolibarr-port 0]

Nothing of ps2doli runs here: a ``ps2doli`` process (or any client) talks to the printed URLs with the printed
keys, so its CPU time and memory are its own (``bench/scale.py``). Printed on stdout, in this order:

- what was generated, in how long, and the simulator process's peak RSS;
- the URLs and keys of both simulators, and a ``settings.toml`` snippet pointing at them;
- one line ``READY {json}`` with the same facts for scripts;
- at exit, one line ``STATS {json}``: the requests each simulator answered (also on ``GET /_stats`` of each).

``GET /_stats`` answers ``{"requests": N, "writes": N, "routes": {"GET /products?sqlfilters": N, ...}}`` and is
not counted itself; ``--latency-ms`` delays every Dolibarr request (13 ms is the median a real 20.0.2 answered
with on a 2-core machine). The Dolibarr simulator lists ``sqlfilters`` equalities on indexed columns through its
indexes (``dolibarr_indexes.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from service.sandbox import dolibarr_sim, prestashop_sim
from service.sandbox.dolibarr_model import DolibarrData
from service.sandbox.faults import FAULTS_KEY, REQUESTS_KEY, RequestLog
from service.sandbox.runner import RunningServer, start_app
from service.sandbox.shop_generator import generate_shop

WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_NUMBER = re.compile(r"/\d+(?=/|$)")
# a value in the path (/products/ref_ext/ps-main-product-12, /thirdparties/email/a@b.c): one route
_VALUE = re.compile(r"/(ref_ext|ref|email|barcode|code)/[^/]+")


def route_of(method: str, path: str, query: str = "") -> str:
    """``GET /api/index.php/products/12`` -> ``GET /products/{id}``; a listing with ``sqlfilters`` is its own
    route (``GET /products?sqlfilters``)."""
    tail = path.split("/api/index.php", 1)[-1] if "/api/index.php" in path else path
    tail = _VALUE.sub(lambda m: f"/{m.group(1)}/{{value}}", _NUMBER.sub("/{id}", tail))
    return f"{method} {tail}{'?sqlfilters' if 'sqlfilters=' in query else ''}"


class CountsOnly(RequestLog):
    """The request log without the list of every request (it grows by the request: 100 MB over a long run)."""

    def record(self, method: str, path: str, query: str = "") -> None:
        self.counts[(method, path)] += 1


@dataclass
class Stats:
    routes: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        total = sum(self.routes.values())
        writes = sum(n for r, n in self.routes.items() if r.split(" ", 1)[0] in WRITES)
        return {"requests": total, "writes": writes, "routes": dict(sorted(self.routes.items()))}


STATS_KEY = web.AppKey("serve_stats", Stats)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def stats_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    stats = request.app[STATS_KEY]
    if request.path == "/_stats":
        return web.json_response(stats.as_json())
    stats.routes[route_of(request.method, request.path, request.query_string)] += 1
    return await handler(request)


def with_stats(app: web.Application) -> Stats:
    """Count the app's requests by route and answer ``GET /_stats`` (outside the fault plan: not delayed)."""
    stats = Stats()
    app[STATS_KEY] = stats
    app[REQUESTS_KEY] = CountsOnly()
    app.middlewares.insert(0, stats_middleware)
    return stats


@dataclass
class Served:
    shop_server: RunningServer
    dolibarr_server: RunningServer
    shop_stats: Stats
    dolibarr_stats: Stats
    info: dict[str, Any]

    async def stop(self) -> None:
        await self.shop_server.stop()
        await self.dolibarr_server.stop()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


async def start(args: argparse.Namespace) -> Served:
    started = time.perf_counter()
    cpu = time.process_time()
    shop = generate_shop(
        args.seed,
        categories=args.categories,
        products=args.products,
        customers=args.customers,
        orders=args.orders,
        combination_share=args.combination_share,
        combinations_per_product=args.combinations_per_product,
    )
    generated = {
        "products": len(shop.tables["products"]),
        "combinations": len(shop.tables["combinations"]),
        "categories": len(shop.tables["categories"]),
        "customers": len(shop.tables["customers"]),
        "addresses": len(shop.tables["addresses"]),
        "orders": len(shop.tables["orders"]),
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    shop_app = prestashop_sim.create_app(shop, key=prestashop_sim.DEFAULT_KEY)
    model = DolibarrData()
    dolibarr_app = dolibarr_sim.create_app(
        model, key=dolibarr_sim.DEFAULT_KEY, options=dolibarr_sim.DolibarrSimOptions(bad_key_delay_s=0.0)
    )
    dolibarr_app[FAULTS_KEY].latency_s = args.latency_ms / 1000
    shop_stats, dolibarr_stats = with_stats(shop_app), with_stats(dolibarr_app)
    shop_server = await start_app(shop_app, host=args.host, port=args.shop_port)
    dolibarr_server = await start_app(dolibarr_app, host=args.host, port=args.dolibarr_port)
    info = {
        "prestashop_url": shop_server.url,
        "prestashop_key": prestashop_sim.DEFAULT_KEY,
        "timezone": shop.timezone,
        "dolibarr_url": dolibarr_server.url + dolibarr_sim.BASE,
        "dolibarr_key": dolibarr_sim.DEFAULT_KEY,
        "prestashop_stats": shop_server.url + "/_stats",
        "dolibarr_stats": dolibarr_server.url + "/_stats",
        "latency_ms": args.latency_ms,
        "generated": generated,
    }
    return Served(shop_server, dolibarr_server, shop_stats, dolibarr_stats, info)


def settings_snippet(info: dict[str, Any], state_path: str = "state.sqlite3") -> str:
    """A ``settings.toml`` that syncs the catalog, customers and orders of the served shop."""
    return "\n".join(
        [
            f'state_path = "{state_path}"',
            "",
            "[dolibarr]",
            f'url = "{info["dolibarr_url"]}"',
            f'api_key = "{info["dolibarr_key"]}"',
            "max_concurrency = 4",
            "",
            "[[shops]]",
            'name = "main"',
            f'url = "{info["prestashop_url"]}"',
            f'api_key = "{info["prestashop_key"]}"',
            f'timezone = "{info["timezone"]}"',
            "",
        ]
    )


def describe(info: dict[str, Any]) -> str:
    g = info["generated"]
    return "\n".join(
        [
            f"generated {g['products']} products ({g['combinations']} combinations), {g['categories']} categories, "
            f"{g['customers']} customers, {g['orders']} orders in {g['seconds']} s "
            f"({g['cpu_seconds']} s CPU, peak RSS {g['peak_rss_mb']} MB)",
            f"PrestaShop 1.7.8 simulator: {info['prestashop_url']}  (webservice key: {info['prestashop_key']})",
            f"Dolibarr 20.0.2 simulator:  {info['dolibarr_url']}  (DOLAPIKEY: {info['dolibarr_key']}), "
            f"latency {info['latency_ms']} ms",
            f"request counts: {info['prestashop_stats']}  {info['dolibarr_stats']}",
            "",
            "# settings.toml",
            settings_snippet(info),
        ]
    )


async def serve(args: argparse.Namespace) -> None:
    served = await start(args)
    print(describe(served.info), flush=True)
    print("READY " + json.dumps(served.info), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        stats = {
            "prestashop": served.shop_stats.as_json(),
            "dolibarr": served.dolibarr_stats.as_json(),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        print("STATS " + json.dumps(stats), flush=True)
        await served.stop()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m service.sandbox serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument(
        "--combination-share", type=float, default=0.2, help="share of products with combinations"
    )
    ap.add_argument("--combinations-per-product", type=int, default=4)
    ap.add_argument("--categories", type=int, default=40)
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--orders", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="delay of every Dolibarr request")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--shop-port", type=int, default=0, help="0: a free port")
    ap.add_argument("--dolibarr-port", type=int, default=0, help="0: a free port")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
