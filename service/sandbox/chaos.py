"""Crash and fault harness: ``ps2doli sync`` in a subprocess, killed with SIGKILL at random moments, restarted,
until it completes - optionally with transient faults injected on both sides - then a check that the Dolibarr
simulator holds exactly the expected objects: none missing, none twice, nothing unexpected.

Both simulators run in the calling process (their state is read directly); only the sync runs in a subprocess,
as an admin runs it (``python -m service.cli sync --config FILE``). Used by ``tests/e2e/test_crash.py`` (CI size)
and ``bench/crash_harness.py`` (bigger runs, figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.dolibarr.model import ref_ext
from service.mapping.context import ShopContext
from service.mapping.customers import customer_ref
from service.prestashop import values
from service.sandbox.harness import Sandbox
from service.sandbox.shop_model import ShopData

CATALOG = ("categories", "products", "customers")
# Dolibarr table -> records.kind of what ps2doli puts there
TABLES = {"categories": "category", "products": "product", "thirdparties": "thirdparty"}


@dataclass
class ChaosPlan:
    kills: int = 10  # SIGKILLs before the sync is let run to its end
    # each kill comes this long after the start: uniform between the first bound and the duration of the last
    # complete run (at most the second bound), so that kills land while there is work, whatever the machine
    kill_after_s: tuple[float, float] = (0.35, 3.0)
    fault_rate: float = (
        0.0  # share of requests that fail on each side (split: 5xx, reset, timeout, lost answer)
    )
    fault_timeout_s: float = 1.5  # how long an injected timeout stalls: longer than the clients wait
    client_timeout_s: float = 1.0  # both clients' timeout_s (and how long an ambiguous create may land)
    seed: int = 1
    max_runs: int = 80
    resources: tuple[str, ...] = CATALOG
    page_size: int = 50
    mutate_every_s: float = 0.25  # while the runs that get killed go, the shop keeps changing (0 = never)


@dataclass
class RunOutcome:
    seconds: float
    exit: int | None  # None: killed


@dataclass
class ChaosReport:
    plan: ChaosPlan
    runs: list[RunOutcome] = field(default_factory=list)
    injected_shop: Counter[str] = field(default_factory=Counter)
    injected_dolibarr: Counter[str] = field(default_factory=Counter)
    expected: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    unexpected: dict[str, list[str]] = field(default_factory=dict)
    state_mismatches: list[str] = field(default_factory=list)
    wrong_values: list[str] = field(default_factory=list)  # a change of the shop that did not arrive
    mutations: int = 0
    final_writes: int = -1  # Dolibarr writes of one more clean sync after the chaos (0 = nothing left)
    final_exit: int | None = None
    seconds: float = 0.0

    @property
    def kills(self) -> int:
        return sum(1 for r in self.runs if r.exit is None)

    @property
    def ok(self) -> bool:
        return (
            not any(self.missing.values())
            and not any(self.duplicates.values())
            and not any(self.unexpected.values())
            and not self.state_mismatches
            and not self.wrong_values
            and self.final_writes == 0
            and self.final_exit == 0
        )

    def render(self) -> str:
        exits = Counter("killed" if r.exit is None else f"exit {r.exit}" for r in self.runs)
        lines = [
            f"crash harness: {len(self.runs)} runs of 'ps2doli sync' in {self.seconds:.1f}s "
            f"({', '.join(f'{n} {k}' for k, n in sorted(exits.items()))}), {self.kills} SIGKILLs",
            f"  faults injected: shop {dict(self.injected_shop) or 'none'}, "
            f"dolibarr {dict(self.injected_dolibarr) or 'none'} (rate {self.plan.fault_rate:.0%} per request)",
            f"  shop changes made while the syncs ran: {self.mutations}",
        ]
        for table in TABLES:
            lines.append(
                f"  {table:<13} expected {self.expected.get(table, 0):>5}  found {self.found.get(table, 0):>5}  "
                f"missing {len(self.missing.get(table, [])):>3}  twice {len(self.duplicates.get(table, [])):>3}  "
                f"unexpected {len(self.unexpected.get(table, [])):>3}"
            )
        lines.append(
            f"  values checked after the changes: {len(self.wrong_values)} wrong; "
            f"state store mismatches {len(self.state_mismatches)}; a clean sync afterwards: exit "
            f"{self.final_exit}, {self.final_writes} Dolibarr writes -> {'OK' if self.ok else 'FAILED'}"
        )
        for name, problems in (
            ("missing", self.missing),
            ("twice", self.duplicates),
            ("unexpected", self.unexpected),
        ):
            for table, refs in problems.items():
                if refs:
                    lines.append(f"  {name} {table}: {', '.join(refs[:10])}")
        lines += [f"  state: {m}" for m in self.state_mismatches[:10]]
        lines += [f"  value: {m}" for m in self.wrong_values[:10]]
        return "\n".join(lines)


def expected_objects(shop: ShopData, name: str = "main") -> dict[str, set[str]]:
    """ref_ext of every Dolibarr object a flat catalog sync of ``shop`` must leave, per Dolibarr table."""
    combos: dict[int, list[int]] = {}
    for cid, combination in shop.table("combinations").items():
        combos.setdefault(values.as_int(combination["id_product"]), []).append(cid)
    products: set[str] = set()
    for pid in shop.table("products"):
        if combos.get(pid):
            products |= {ref_ext(name, "product", f"{pid}-{cid}") for cid in combos[pid]}
        else:
            products.add(ref_ext(name, "product", pid))
    categories = {
        ref_ext(name, "category", cid)
        for cid, c in shop.table("categories").items()
        if cid not in (1, 2) and not values.as_int(c.get("is_root_category"))
    }
    ctx = ShopContext(shop=name)
    thirdparties = {customer_ref(ctx, c).ref_ext for c in shop.table("customers").values()}
    return {"categories": categories, "products": products, "thirdparties": thirdparties}


def write_settings(sandbox: Sandbox, workdir: Path, plan: ChaosPlan) -> Path:
    import tomli_w  # a test dependency: imported only when a harness runs

    data: dict[str, Any] = sandbox.settings_data(
        workdir / "state.sqlite3",
        resources=plan.resources,
        shop_overrides={
            name: {"timeout_s": plan.client_timeout_s, "page_size": plan.page_size} for name in sandbox.shops
        },
        dolibarr={"timeout_s": plan.client_timeout_s},
        retry={"attempts": 4, "base_delay_s": 0.02, "max_delay_s": 0.2},
    )
    path = workdir / "settings.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    path.chmod(0o600)
    return path


def set_faults(sandbox: Sandbox, plan: ChaosPlan, on: bool) -> None:
    for number, faults in enumerate([*(s.faults for s in sandbox.shops.values()), sandbox.dolibarr_faults]):
        faults.clear()
        if not on or not plan.fault_rate:
            continue
        share = plan.fault_rate / 4
        faults.error_rate = share
        faults.reset_rate = share
        faults.timeout_rate = share
        faults.timeout_s = plan.fault_timeout_s
        faults.error_after_rate = share
        faults.seed = plan.seed * 31 + number
        faults.rng.seed(faults.seed)


async def _sync_once(config: Path, workdir: Path, number: int, kill_after: float | None) -> RunOutcome:
    log = (workdir / "logs" / f"run-{number:03d}.log").open("wb")
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.cli",
            "sync",
            "--config",
            str(config),
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            await asyncio.wait_for(process.wait(), timeout=kill_after if kill_after is not None else 300)
        except TimeoutError:
            try:
                process.send_signal(signal.SIGKILL)
            except ProcessLookupError:  # it ended just before the kill
                return RunOutcome(time.monotonic() - started, await process.wait())
            await process.wait()
            return RunOutcome(time.monotonic() - started, None if kill_after is not None else -9)
        return RunOutcome(time.monotonic() - started, process.returncode)
    finally:
        log.close()


class Mutator:
    """Changes the shop while syncs run: prices of simple products, customers' names, new customers. Remembers
    the last value given, which Dolibarr must end up holding."""

    def __init__(self, shop: ShopData, seed: int) -> None:
        self.shop = shop
        self.rng = random.Random(seed * 7 + 3)
        with_combinations = {values.as_int(c["id_product"]) for c in shop.table("combinations").values()}
        self.simple = sorted(set(shop.table("products")) - with_combinations)
        self.prices: dict[int, str] = {}
        self.names: dict[int, tuple[str, str]] = {}
        self.count = 0

    def customers(self) -> list[int]:
        return sorted(
            i
            for i, c in self.shop.table("customers").items()
            if not values.as_int(c.get("is_guest")) and not str(c.get("company") or "").strip()
        )

    def step(self) -> None:
        self.count += 1
        self.shop.advance(self.rng.randint(1, 3))
        for pid in self.rng.sample(self.simple, min(3, len(self.simple))):
            price = f"{self.rng.randint(100, 999_999) / 100:.6f}"
            self.shop.update("products", pid, price=price)
            self.prices[pid] = price
        for cid in self.rng.sample(self.customers(), 3):
            name = ("Chaos", f"Change{self.count}x{cid}")
            self.shop.update("customers", cid, firstname=name[0], lastname=name[1])
            self.names[cid] = name
        if self.count % 3 == 0:
            cid = self.shop.add(
                "customers",
                firstname="New",
                lastname=f"Customer{self.count}",
                email=f"chaos{self.count}@example.org",
                is_guest=0,
                company="",
            )
            self.names[cid] = ("New", f"Customer{self.count}")

    async def run(self, every_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    def wrong(self, sandbox: Sandbox, name: str) -> list[str]:
        from decimal import Decimal

        problems = []
        data = sandbox.dolibarr
        for pid, price in self.prices.items():
            found = data.find_one("products", ref_ext=ref_ext(name, "product", pid))
            if found is None or Decimal(str(found["price"])) != Decimal(price):
                problems.append(f"product {pid}: price {found and found['price']} instead of {price}")
        for cid, (first, last) in self.names.items():
            found = data.find_one("thirdparties", ref_ext=ref_ext(name, "customer", cid))
            if found is None or found["name"] != f"{first} {last}":
                problems.append(f"customer {cid}: {found and found['name']!r} instead of {first} {last}")
        return problems


async def run_chaos(sandbox: Sandbox, workdir: Path, plan: ChaosPlan) -> ChaosReport:
    """Kill and restart ``ps2doli sync`` (while the shop keeps changing) until it completes, then check
    Dolibarr against the shop."""
    started = time.monotonic()
    report = ChaosReport(plan)
    rng = random.Random(plan.seed)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    config = write_settings(sandbox, workdir, plan)
    name, shop = next(iter(sandbox.shops.items()))
    mutator = Mutator(shop.data, plan.seed)
    set_faults(sandbox, plan, on=True)
    # an injected reset makes aiohttp log a traceback per request: noise, the counts say it all
    server_log = logging.getLogger("aiohttp.server")
    level = server_log.level
    server_log.setLevel(logging.CRITICAL)
    try:
        typical = plan.kill_after_s[1]
        for number in range(plan.max_runs):
            killing = report.kills < plan.kills
            low = plan.kill_after_s[0]
            kill_after = (
                rng.uniform(low, max(low + 0.05, min(typical, plan.kill_after_s[1]))) if killing else None
            )
            stop = asyncio.Event()
            changing = (
                asyncio.create_task(mutator.run(plan.mutate_every_s, stop))
                if killing and plan.mutate_every_s
                else None
            )
            try:
                outcome = await _sync_once(config, workdir, number, kill_after)
            finally:
                stop.set()
                if changing is not None:
                    await changing
            report.runs.append(outcome)
            if outcome.exit is not None:
                typical = outcome.seconds
            if outcome.exit == 0 and not killing:
                break
    finally:
        for sandbox_shop in sandbox.shops.values():
            report.injected_shop.update(sandbox_shop.faults.injected)
        report.injected_dolibarr.update(sandbox.dolibarr_faults.injected)
        set_faults(sandbox, plan, on=False)
        server_log.setLevel(level)
    report.mutations = mutator.count

    # one more sync, without faults: nothing may be left to write
    sandbox.dolibarr_requests.reset()
    final = await _sync_once(config, workdir, len(report.runs), None)
    report.final_exit = final.exit
    report.final_writes = sandbox.dolibarr_requests.writes()
    await check(sandbox, workdir / "state.sqlite3", report)
    report.wrong_values = mutator.wrong(sandbox, name)
    report.seconds = time.monotonic() - started
    return report


async def check(sandbox: Sandbox, state_path: Path, report: ChaosReport) -> None:
    """Compare the Dolibarr simulator with the shops, and the state store with Dolibarr."""
    expected: dict[str, set[str]] = {table: set() for table in TABLES}
    for name, shop in sandbox.shops.items():
        for table, refs in expected_objects(shop.data, name).items():
            expected[table] |= refs
    data = sandbox.dolibarr
    by_ref: dict[str, dict[str, list[int]]] = {}
    for table in TABLES:
        counts: dict[str, list[int]] = {}
        for object_id, row in data.table(table).items():
            counts.setdefault(str(row.get("ref_ext") or ""), []).append(int(object_id))
        by_ref[table] = counts
        found = Counter({ref: len(ids) for ref, ids in counts.items()})
        report.expected[table] = len(expected[table])
        report.found[table] = sum(found.values())
        report.missing[table] = sorted(expected[table] - set(found))
        report.duplicates[table] = sorted(ref for ref, n in found.items() if n > 1)
        report.unexpected[table] = sorted(set(found) - expected[table])

    from service.state.store import StateStore

    store = await StateStore.open(state_path)
    try:
        for table, kind in TABLES.items():
            for name in sandbox.shops:
                for ps_id, record in (await store.records(name, kind)).items():
                    ids = by_ref[table].get(record.ref_ext, [])
                    if record.dolibarr_id not in ids:
                        report.state_mismatches.append(
                            f"{kind} {ps_id}: the state says #{record.dolibarr_id}, Dolibarr has {ids or 'none'} "
                            f"for {record.ref_ext}"
                        )
        failures = await store.failures()
        report.state_mismatches += [f"failure left: {f.kind} {f.ps_id}: {f.message}" for f in failures]
    finally:
        await store.close()


def summary(report: ChaosReport) -> Mapping[str, Any]:
    """The figures of a run, for machine-readable output."""
    return {
        "runs": len(report.runs),
        "kills": report.kills,
        "seconds": round(report.seconds, 1),
        "faults_shop": dict(report.injected_shop),
        "faults_dolibarr": dict(report.injected_dolibarr),
        "expected": report.expected,
        "found": report.found,
        "missing": {k: len(v) for k, v in report.missing.items()},
        "twice": {k: len(v) for k, v in report.duplicates.items()},
        "unexpected": {k: len(v) for k, v in report.unexpected.items()},
        "final_writes": report.final_writes,
        "shop_changes": report.mutations,
        "wrong_values": len(report.wrong_values),
        "ok": report.ok,
    }
