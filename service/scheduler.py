"""``ps2doli run``: one APScheduler interval job per enabled (shop, resource), until SIGTERM/SIGINT.

Each (shop, resource) also gets a sweep job (``sweep_interval_s``: re-read everything, push what differs) and a
reconcile job (``reconcile_interval_s``: deletions) when those intervals are set; all three share one lock.

- ``max_instances=1`` and ``coalesce=True``: a slow pass is never overlapped by the next tick, and missed ticks
  collapse into one.
- Each job starts at its own fixed offset (up to a tenth of its interval, from a hash of its id), so shops and
  resources with equal intervals do not all hit Dolibarr in the same second, while every job keeps its exact
  period: a change waits at most one interval plus a pass (a random jitter per fire would add up to that tenth
  to every wait).
- A pass that fails with a transient error (a side down) pauses that shop's jobs with an exponential backoff;
  they resume by themselves once a pass succeeds. No cursor moves while a side is down.
- On SIGTERM/SIGINT: no new pass starts, passes in flight finish their current page (their pushes complete and
  are committed), then the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from service.engine.pipeline import PassReport, SyncEngine
from service.engine.reconcile import RECONCILE, Reconciler
from service.engine.rounds import run_round
from service.engine.streams import STREAMS
from service.engine.sweeps import Sweeper
from service.observe import Metrics, serve
from service.settings import Settings, ShopSettings
from service.state.store import StateStore

log = structlog.get_logger("ps2doli.scheduler")

MAX_PAUSE_S = 600.0
# the longest Retry-After a pause honours (a side asking for more is believed for an hour)
MAX_RETRY_AFTER_S = 3600.0
# resources the generic sweep re-reads (the catalog's stock and combinations are sweeps by nature)
SWEEPABLE = frozenset(STREAMS)
# resources checked less often than this are not re-run at start-up when their last pass is recent enough
SLOW_INTERVAL_S = 3600


@dataclass
class ShopHealth:
    """Per-shop pause after transient failures (a side down)."""

    failures: int = 0
    paused_until: float = 0.0
    last_error: str = ""
    last_reports: dict[str, PassReport] = field(default_factory=dict)

    def record(self, report: PassReport, base_delay: float) -> None:
        self.last_reports[report.resource] = report
        if report.outcome == "error":
            self.failures += 1
            delay = min(MAX_PAUSE_S, base_delay * 2 ** (self.failures - 1))
            # a Retry-After longer than the clients would wait is honoured here, by the pause
            delay = max(delay, min(report.retry_after or 0.0, MAX_RETRY_AFTER_S))
            self.paused_until = time.monotonic() + delay
            self.last_error = report.error
        elif report.outcome in ("ok", "partial"):
            if self.failures:
                log.info("shop.resumed", shop=report.shop)
            self.failures = 0
            self.paused_until = 0.0


async def done_lately(store: StateStore, shop: ShopSettings, resource: str) -> bool:
    """A slow check (run less often than hourly, e.g. the images check that downloads every image) whose last
    pass ended well within its interval: a restart (or a ``ps2doli sync`` from cron) need not run it again."""
    interval = shop.resources[resource].interval_s
    if interval < SLOW_INTERVAL_S:
        return False
    last = await store.last_run(shop.name, resource)
    if last is None or last.finished_at is None or last.outcome not in ("ok", "partial"):
        return False
    if time.time() - last.finished_at >= interval:
        return False
    log.info("pass.skipped_recent", shop=shop.name, resource=resource, finished_at=last.finished_at)
    return True


def stagger_s(job_id: str, interval: float) -> float:
    """A job's fixed offset within the first tenth of its interval, the same on every start (a hash of its id):
    spreads equal intervals without adding a random delay to each pass."""
    return (zlib.crc32(job_id.encode()) % 1000) / 1000 * interval / 10


def first_run(job_id: str, interval: float) -> datetime:
    """One interval after now (the start-up round runs every pass once before), plus the job's stagger."""
    return datetime.now().astimezone() + timedelta(seconds=interval + stagger_s(job_id, interval))


class Service:
    def __init__(self, settings: Settings, engine: SyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.scheduler = AsyncIOScheduler()
        self.health: dict[str, ShopHealth] = {shop.name: ShopHealth() for shop in settings.shops}
        self.metrics = Metrics()
        self.metrics.watch_dolibarr(engine.port.limit)
        self._stopped = asyncio.Event()

    def schedule(self) -> None:
        """One interval job per enabled (shop, resource), plus its sweep and reconcile jobs when their intervals
        are set. The first run of each comes one interval after the start (the first round runs every pass once
        before)."""
        for shop in self.settings.shops:
            for resource in shop.enabled():
                settings = shop.resources[resource]
                for mode, interval in (
                    ("pass", settings.interval_s),
                    ("sweep", settings.sweep_interval_s if resource in SWEEPABLE else 0),
                    ("reconcile", settings.reconcile_interval_s if resource in RECONCILE else 0),
                ):
                    if interval <= 0:
                        continue
                    suffix = "" if mode == "pass" else f":{mode}"
                    job_id = f"{shop.name}:{resource}{suffix}"
                    # no next_run_time: APScheduler 3 adds a job given next_run_time=None *paused* (it would
                    # never run after the first round)
                    self.scheduler.add_job(
                        self._tick,
                        IntervalTrigger(seconds=interval, start_date=first_run(job_id, interval)),
                        args=(shop.name, resource, mode),
                        id=job_id,
                        name=f"{'sync' if mode == 'pass' else mode} {shop.name} {resource}",
                        max_instances=1,
                        coalesce=True,
                        misfire_grace_time=interval,
                    )

    async def _tick(self, shop: str, resource: str, mode: str = "pass") -> None:
        health = self.health[shop]
        if self.engine.stopping.is_set():
            return
        if time.monotonic() < health.paused_until:
            log.info("pass.skipped_paused", shop=shop, resource=resource, mode=mode, error=health.last_error)
            return
        try:
            if mode == "sweep":
                report = await Sweeper(self.engine).run(shop, resource)
            elif mode == "reconcile":
                report = await Reconciler(self.engine).run(shop, resource)
            else:
                report = await self.engine.run_pass(shop, resource)
        except Exception as exc:  # a ConfigError mid-run: keep the service up, report loudly
            log.error("pass.crashed", shop=shop, resource=resource, mode=mode, error=str(exc))
            report = PassReport(shop, resource, mode=mode, outcome="error", error=str(exc))
        self.metrics.observe(report)
        if report.outcome == "error":
            log.warning("shop.paused", shop=shop, resource=resource, mode=mode, error=report.error)
        health.record(report, self.settings.retry.base_delay_s * 10)

    async def first_round(self) -> None:
        """Every job once before the intervals take over, each after those it depends on (rounds.py)."""

        async def first(shop: str, resource: str) -> None:
            if not await done_lately(self.engine.store, self.settings.shop(shop), resource):
                await self._tick(shop, resource)

        jobs = [(shop.name, resource) for shop in self.settings.shops for resource in shop.enabled()]
        await run_round(jobs, first, stopping=self.engine.stopping)

    def request_stop(self) -> None:
        if not self.engine.stopping.is_set():
            log.info("service.stopping")
        self.engine.stop()
        self._stopped.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        self.schedule()
        observer = (
            await serve(self.metrics, self.settings.metrics_port) if self.settings.metrics_port else None
        )
        if observer is not None:
            log.info("service.metrics", url=f"http://127.0.0.1:{self.settings.metrics_port}/metrics")
        self.scheduler.start(paused=True)
        log.info("service.started", shops=[s.name for s in self.settings.shops])
        first = asyncio.create_task(self.first_round())
        first.add_done_callback(lambda _: None if self._stopped.is_set() else self.scheduler.resume())
        await self._stopped.wait()
        # no new ticks; wait for passes in flight (each ends after its current page)
        self.scheduler.shutdown(wait=False)
        await asyncio.gather(first, return_exceptions=True)
        while self.engine.busy():  # noqa: ASYNC110 - passes and pushes end on their own; just wait for both
            await asyncio.sleep(0.05)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if observer is not None:
            await observer.cleanup()
        log.info("service.stopped")
        return 0
