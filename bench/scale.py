"""ps2doli at scale, in a process of its own, against the simulators in another: figures, not assertions.

    .venv/bin/python bench/scale.py [--quick] [--products 1000 10000 100000] [--combination-share 0.2]
        [--customers 50000] [--orders 100000] [--latency-ms 0] [--concurrency 4]

Each step starts ``python -m service.sandbox serve`` over a generated shop, writes a settings file pointing at
it, and runs the console script ``ps2doli sync`` as a child (``os.wait4``: the child's own CPU time and peak
RSS). Steps:

- ``products N``: categories and products of a shop with N products (a share of them with 4 combinations, each
  combination a Dolibarr product: ``combinations = "flat"``), images and stock off;
- ``customers N``: customers (thirdparties and their addresses as contacts) of a shop with N customers;
- ``orders N``: the catalog and customers synced first (not measured), then the orders alone (with their
  invoices, payments and credit notes).

Dolibarr's requests are counted by the simulator (``GET /_stats`` before and after). The table says whether
the time and CPU per record stay flat: a step whose figure per record is more than 1.5 times the smallest
one of its kind grows faster than the records.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
GROWTH = 1.5  # a figure per record this many times the smallest of its kind: not flat


@dataclass
class Step:
    kind: str  # products | customers | orders
    size: int
    serve_args: list[str]
    measured: list[str]  # resources of the measured sync
    before: list[str] = field(default_factory=list)  # resources synced first, not measured


@dataclass
class Figures:
    step: Step
    records: int = 0
    failed: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    dolibarr_requests: int = 0
    dolibarr_writes: int = 0
    shop_requests: int = 0
    generate_s: float = 0.0
    exit_status: int = 0
    routes: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[int, str]] = field(default_factory=list)  # (how many, kind: message), most first

    @property
    def ms_per_record(self) -> float:
        return 1000 * self.wall_s / max(self.records, 1)

    @property
    def cpu_ms_per_record(self) -> float:
        return 1000 * self.cpu_s / max(self.records, 1)

    @property
    def requests_per_record(self) -> float:
        return self.dolibarr_requests / max(self.records, 1)


class Simulator:
    """``python -m service.sandbox serve`` in a child process."""

    def __init__(self, args: list[str], latency_ms: float) -> None:
        cmd = [sys.executable, "-m", "service.sandbox", "serve", *args, "--latency-ms", str(latency_ms)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.info: dict[str, Any] = {}
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        for line in out:
            if line.startswith("READY "):
                self.info = json.loads(line[len("READY ") :])
                break
        if not self.info:
            raise SystemExit(f"the simulator did not start (exit status {self.proc.wait()})")

    def stats(self, which: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.info[f"{which}_stats"], timeout=60) as answer:
            result: dict[str, Any] = json.load(answer)
            return result

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


def settings_toml(info: dict[str, Any], state: Path, enabled: list[str], concurrency: int) -> str:
    resources = ("categories", "products", "combinations", "stock", "images", "customers", "orders")
    table = ", ".join(f"{r} = {{ enabled = {'true' if r in enabled else 'false'} }}" for r in resources)
    return "\n".join(
        [
            f'state_path = "{state}"',
            'log_level = "error"',
            "[dolibarr]",
            f'url = "{info["dolibarr_url"]}"',
            f'api_key = "{info["dolibarr_key"]}"',
            f"max_concurrency = {concurrency}",
            "[[shops]]",
            'name = "main"',
            f'url = "{info["prestashop_url"]}"',
            f'api_key = "{info["prestashop_key"]}"',
            f'timezone = "{info["timezone"]}"',
            "page_size = 100",
            f"resources = {{ {table} }}",
            "[shops.catalog]",
            "images = false",
            'long_description_extrafield = ""',
            "",
        ]
    )


def ps2doli() -> str:
    found = shutil.which("ps2doli", path=str(Path(sys.executable).parent)) or shutil.which("ps2doli")
    if found is None:
        raise SystemExit("the ps2doli console script is not installed (pip install -e .)")
    return found


def run_sync(config: Path, resource: str | None = None) -> tuple[int, float, float, float]:
    """``ps2doli sync`` as a child: exit status, wall seconds, CPU seconds (user + system), peak RSS in MB."""
    cmd = [ps2doli(), "sync", "--config", str(config)]
    if resource:
        cmd += ["--resource", resource]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=config.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_counts(state: Path, after_run: int) -> tuple[int, int]:
    with sqlite3.connect(state) as db:
        row = db.execute(
            "SELECT COALESCE(SUM(created + updated + unchanged), 0), COALESCE(SUM(failed), 0) "
            "FROM runs WHERE id > ?",
            (after_run,),
        ).fetchone()
    return int(row[0]), int(row[1])


def failure_reasons(state: Path, top: int = 5) -> list[tuple[int, str]]:
    """The failure queue grouped by kind and message (ids and numbers folded), most first: what to look at when a
    step's ``failed`` is not 0."""
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT kind, message FROM failures").fetchall()
    reasons: dict[str, int] = {}
    for kind, message in rows:
        key = f"{kind}: {re.sub(r'[0-9]+', 'N', str(message))[:160]}"
        reasons[key] = reasons.get(key, 0) + 1
    return sorted(((n, r) for r, n in reasons.items()), reverse=True)[:top]


def last_run(state: Path) -> int:
    if not state.exists():
        return 0
    with sqlite3.connect(state) as db:
        return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0])


def one_step(step: Step, latency_ms: float, concurrency: int) -> Figures:
    figures = Figures(step)
    sim = Simulator(step.serve_args, latency_ms)
    figures.generate_s = float(sim.info["generated"]["seconds"])
    try:
        with tempfile.TemporaryDirectory(prefix="ps2doli-scale-") as folder:
            state = Path(folder) / "state.sqlite3"
            if step.before:
                config = Path(folder) / "before.toml"
                config.write_text(settings_toml(sim.info, state, step.before, concurrency))
                run_sync(config)
            config = Path(folder) / "settings.toml"
            config.write_text(settings_toml(sim.info, state, step.measured, concurrency))
            first_run = last_run(state)
            dolibarr_before, shop_before = sim.stats("dolibarr"), sim.stats("prestashop")
            figures.exit_status, figures.wall_s, figures.cpu_s, figures.peak_rss_mb = run_sync(config)
            dolibarr_after, shop_after = sim.stats("dolibarr"), sim.stats("prestashop")
            figures.records, figures.failed = run_counts(state, first_run)
            figures.failures = failure_reasons(state)
            figures.dolibarr_requests = dolibarr_after["requests"] - dolibarr_before["requests"]
            figures.dolibarr_writes = dolibarr_after["writes"] - dolibarr_before["writes"]
            figures.shop_requests = shop_after["requests"] - shop_before["requests"]
            figures.routes = {
                route: n - dolibarr_before["routes"].get(route, 0)
                for route, n in dolibarr_after["routes"].items()
                if n - dolibarr_before["routes"].get(route, 0)
            }
    finally:
        sim.stop()
    return figures


def steps(args: argparse.Namespace) -> list[Step]:
    share = ["--combination-share", str(args.combination_share)]
    out = [
        Step("products", n, ["--products", str(n), "--customers", "0", *share], ["categories", "products"])
        for n in args.products
    ]
    out += [
        Step("customers", n, ["--products", "10", "--customers", str(n)], ["customers"])
        for n in args.customers
    ]
    out += [
        Step(
            "orders",
            n,
            [
                *("--products", str(args.order_products), "--customers", str(args.order_customers)),
                *("--orders", str(n), *share),
            ],
            ["orders"],
            before=["categories", "products", "customers"],
        )
        for n in args.orders
    ]
    return out


def flat(figures: list[Figures], attr: str) -> dict[int, bool]:
    """Per step (by position): whether its figure per record stays within GROWTH of the smallest of its kind."""
    out: dict[int, bool] = {}
    for kind in {f.step.kind for f in figures}:
        same = [(i, getattr(f, attr)) for i, f in enumerate(figures) if f.step.kind == kind and f.records]
        if not same:
            continue
        least = min(v for _, v in same)
        out.update({i: v <= GROWTH * least for i, v in same})
    return out


def table(figures: list[Figures]) -> str:
    time_flat, cpu_flat = flat(figures, "ms_per_record"), flat(figures, "cpu_ms_per_record")
    head = (
        f"{'step':<18} {'records':>8} {'failed':>6} {'wall s':>8} {'ms/rec':>7} {'CPU ms/rec':>10} "
        f"{'peak RSS MB':>11} {'Doli req/rec':>12} {'writes/rec':>10} {'shop req':>8} {'flat':>5}"
    )
    lines = [head, "-" * len(head)]
    for i, f in enumerate(figures):
        ok = time_flat.get(i, True) and cpu_flat.get(i, True)
        lines.append(
            f"{f.step.kind + ' ' + format(f.step.size, ','):<18} {f.records:>8} {f.failed:>6} {f.wall_s:>8.1f} "
            f"{f.ms_per_record:>7.2f} {f.cpu_ms_per_record:>10.2f} {f.peak_rss_mb:>11.0f} "
            f"{f.requests_per_record:>12.2f} {f.dolibarr_writes / max(f.records, 1):>10.2f} "
            f"{f.shop_requests:>8} {'yes' if ok else 'NO':>5}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="a smoke run: 300 and 1,000 products, 500 customers, 300 orders"
    )
    ap.add_argument("--products", type=int, nargs="*", default=[1000, 10000, 100000])
    ap.add_argument("--combination-share", type=float, default=0.2)
    ap.add_argument("--customers", type=int, nargs="*", default=[50000])
    ap.add_argument("--orders", type=int, nargs="*", default=[100000])
    ap.add_argument("--order-products", type=int, default=1000, help="products of the orders step's shop")
    ap.add_argument("--order-customers", type=int, default=5000, help="customers of the orders step's shop")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="delay of every Dolibarr request")
    ap.add_argument("--concurrency", type=int, default=4, help="ps2doli's dolibarr.max_concurrency")
    ap.add_argument("--routes", action="store_true", help="also print Dolibarr's requests by route per step")
    args = ap.parse_args()
    if args.quick:
        args.products, args.customers, args.orders = [300, 1000], [500], [300]
        args.order_products, args.order_customers = 200, 200
    print(
        f"ps2doli {ps2doli()} on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"Dolibarr latency {args.latency_ms} ms, max_concurrency {args.concurrency}",
        flush=True,
    )
    results: list[Figures] = []
    for step in steps(args):
        f = one_step(step, args.latency_ms, args.concurrency)
        results.append(f)
        print(
            f"  {step.kind} {step.size:,}: {f.records} records in {f.wall_s:.1f} s "
            f"(shop generated in {f.generate_s:.1f} s, ps2doli exit status {f.exit_status})",
            flush=True,
        )
        for n, reason in f.failures:
            print(f"      failed {n:>6}  {reason}")
        if args.routes:
            for route, n in sorted(f.routes.items(), key=lambda kv: -kv[1]):
                print(f"      {n:>8}  {n / max(f.records, 1):6.2f}/rec  {route}")
    print()
    print(table(results))
    growing = [i for i, ok in flat(results, "cpu_ms_per_record").items() if not ok]
    growing += [i for i, ok in flat(results, "ms_per_record").items() if not ok and i not in growing]
    if growing:
        names = ", ".join(f"{results[i].step.kind} {results[i].step.size:,}" for i in sorted(growing))
        print(f"\nnot flat: {names} (time or CPU per record above {GROWTH}x the smallest of its kind)")
    else:
        print(f"\nflat: no step's time or CPU per record above {GROWTH}x the smallest of its kind")


if __name__ == "__main__":
    main()
