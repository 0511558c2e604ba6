"""``/healthz`` and ``/metrics`` for the running service (aiohttp server, Prometheus text via prometheus_client).

Health is per shop: 200 while the last pass of every enabled resource of every shop ended ``ok`` or
``partial`` (records in the failure queue do not make the service unhealthy; a side down does), 503 otherwise,
with a JSON body saying which.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from service.dolibarr.limit import AdaptiveLimit
from service.engine.pipeline import PassReport

HEALTHY_OUTCOMES = frozenset({"ok", "partial", "stopped"})


class Metrics:
    """The service's metrics, in a registry of its own (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.records = Counter(
            "ps2doli_records",
            "Records handled by passes, by outcome",
            ["shop", "resource", "outcome"],
            registry=self.registry,
        )
        self.passes = Counter(
            "ps2doli_passes",
            "Passes run, by outcome",
            ["shop", "resource", "outcome"],
            registry=self.registry,
        )
        self.pass_seconds = Histogram(
            "ps2doli_pass_seconds",
            "Duration of a pass",
            ["shop", "resource"],
            buckets=(0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
            registry=self.registry,
        )
        self.last_pass = Gauge(
            "ps2doli_last_pass_timestamp_seconds",
            "When the last pass of a resource ended",
            ["shop", "resource"],
            registry=self.registry,
        )
        self.healthy = Gauge(
            "ps2doli_shop_healthy", "1 while a shop's passes succeed", ["shop"], registry=self.registry
        )
        self.dolibarr_concurrency = Gauge(
            "ps2doli_dolibarr_concurrency",
            "How many requests may go to Dolibarr at once: dolibarr.max_concurrency, halved while it deadlocks",
            registry=self.registry,
        )
        self.last_reports: dict[tuple[str, str], PassReport] = {}

    def watch_dolibarr(self, limit: AdaptiveLimit) -> None:
        """``ps2doli_dolibarr_concurrency`` reads the client's adaptive limit whenever /metrics is scraped."""
        self.dolibarr_concurrency.set_function(lambda: limit.limit)

    def observe(self, report: PassReport) -> None:
        labels = (report.shop, report.resource)
        for outcome, count in (
            ("created", report.created),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
            ("failed", report.failed),
            ("deleted", report.deleted),
        ):
            if count:
                self.records.labels(*labels, outcome).inc(count)
        self.passes.labels(*labels, report.outcome).inc()
        self.pass_seconds.labels(*labels).observe(report.seconds)
        self.last_pass.labels(*labels).set(time.time())
        self.last_reports[labels] = report
        shop_ok = all(
            r.outcome in HEALTHY_OUTCOMES for (shop, _), r in self.last_reports.items() if shop == report.shop
        )
        self.healthy.labels(report.shop).set(1 if shop_ok else 0)

    def health(self) -> tuple[bool, Mapping[str, object]]:
        problems = {
            f"{shop}/{resource}": report.error or report.outcome
            for (shop, resource), report in self.last_reports.items()
            if report.outcome not in HEALTHY_OUTCOMES
        }
        return not problems, {"healthy": not problems, "problems": problems, "passes": len(self.last_reports)}


def make_app(metrics: Metrics) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        ok, body = metrics.health()
        return web.json_response(body, status=200 if ok else 503)

    async def prometheus(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app


async def serve(metrics: Metrics, port: int, host: str = "127.0.0.1") -> web.AppRunner:
    """Serve the endpoints on loopback; the caller cleans the runner up."""
    runner = web.AppRunner(make_app(metrics), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
