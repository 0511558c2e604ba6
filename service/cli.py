"""The ``ps2doli`` command line (click).

Exit statuses: 0 all synced; 1 some records failed and were recorded; 2 configuration error; 3 a side
unreachable.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
import structlog

from service import logs
from service.app import wired
from service.engine.catalog_setup import extrafield_problems
from service.engine.pipeline import PassReport
from service.errors import ConfigError, SyncError, TransientError
from service.features import feature_findings
from service.settings import Settings, config_path, load_settings, readable_by_others

EXIT_OK, EXIT_FAILED_RECORDS, EXIT_CONFIG, EXIT_UNREACHABLE = 0, 1, 2, 3

P = ParamSpec("P")
R = TypeVar("R")

log = structlog.get_logger("ps2doli.cli")


def _secrets(settings: Settings) -> list[str]:
    found = [settings.dolibarr.api_key.reveal(), settings.dolibarr.password.reveal()]
    found += [shop.api_key.reveal() for shop in settings.shops]
    return found


def _load(config: str | None, level: str | None = None) -> Settings:
    path = config_path(config)
    settings = load_settings(path)
    logs.configure(level or settings.log_level, secrets=_secrets(settings))
    if readable_by_others(path):
        log.warning(
            "settings.readable_by_others",
            path=str(path),
            hint=f"the file may hold API keys: chmod 600 {path}",
        )
    for shop in settings.shops:
        if not shop.verify_tls:
            log.warning("tls.verification_off", shop=shop.name, url=shop.url)
    if not settings.dolibarr.verify_tls:
        log.warning("tls.verification_off", side="dolibarr", url=settings.dolibarr.url)
    return settings


def handled(func: Callable[P, Coroutine[Any, Any, int]]) -> Callable[P, None]:
    """Run an async command; turn the error family into exit statuses and one readable line."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            code = asyncio.run(func(*args, **kwargs))
        except ConfigError as exc:
            click.echo(f"configuration error: {exc}", err=True)
            code = EXIT_CONFIG
        except TransientError as exc:
            click.echo(f"unreachable: {exc}", err=True)
            code = EXIT_UNREACHABLE
        except SyncError as exc:
            click.echo(f"error: {exc}", err=True)
            code = EXIT_FAILED_RECORDS
        except KeyboardInterrupt:
            code = 130
        sys.exit(code)

    return wrapper


config_option = click.option(
    "--config", "config", default=None, help="settings file (default: $PS2DOLI_CONFIG, else ./settings.toml)"
)


@click.group()
@click.version_option(package_name="ps2doli")
def main() -> None:
    """Keep a Dolibarr ERP/CRM in step with PrestaShop shops, by polling their webservice."""


@main.command()
@config_option
@handled
async def run(config: str | None) -> int:
    """Run the service: poll every enabled resource of every shop on its interval until SIGTERM."""
    from service.scheduler import Service

    settings = _load(config)
    async with wired(settings) as w:
        return await Service(settings, w.engine).run()


def _jobs(settings: Settings, shop: str | None, resource: str | None) -> list[tuple[str, str]]:
    shops = [settings.shop(shop)] if shop else list(settings.shops)
    jobs = []
    for s in shops:
        enabled = s.enabled()
        if resource is not None:
            if resource not in s.resources:
                raise ConfigError(f"unknown resource {resource!r}; allowed: {', '.join(s.resources)}")
            if resource not in enabled:
                raise ConfigError(f"resource {resource!r} is disabled for shop {s.name!r} in the settings")
            enabled = [resource]
        jobs += [(s.name, r) for r in enabled]
    return jobs


def print_report(report: PassReport) -> None:
    if report.mode == "reconcile":
        line = (
            f"{report.shop:<10} {report.resource:<12} {report.outcome:<8} reconcile: retired {report.deleted:>5}  "
            f"{report.seconds:6.2f}s"
        )
    else:
        line = (
            f"{report.shop:<10} {report.resource:<12} {report.outcome:<8} created {report.created:>5}  "
            f"updated {report.updated:>5}  unchanged {report.unchanged:>5}  failed {report.failed:>4}  "
            f"{report.seconds:6.2f}s" + (f"  ({report.mode})" if report.mode != "pass" else "")
        )
    click.echo(line)
    if report.error:
        click.echo(f"    {report.error}")


def exit_status(reports: list[PassReport]) -> int:
    if any(r.outcome == "error" and r.error_kind == "config" for r in reports):
        return EXIT_CONFIG
    if any(r.outcome == "error" for r in reports):
        return EXIT_UNREACHABLE
    if any(r.failed for r in reports):
        return EXIT_FAILED_RECORDS
    return EXIT_OK


@main.command()
@config_option
@click.option("--shop", default=None, help="only this shop")
@click.option("--resource", default=None, help="only this resource")
@handled
async def sync(config: str | None, shop: str | None, resource: str | None) -> int:
    """One pass over what is enabled, then exit (0 synced, 1 records failed, 2 config, 3 unreachable)."""
    settings = _load(config)
    jobs = _jobs(settings, shop, resource)
    async with wired(settings) as w:
        if resource is None:  # a slow check done lately (the daily images check) runs when asked by name only
            from service.scheduler import done_lately

            for job in list(jobs):
                if await done_lately(w.store, settings.shop(job[0]), job[1]):
                    jobs.remove(job)
                    click.echo(
                        f"{job[0]:<10} {job[1]:<12} skipped: checked lately (--resource {job[1]} forces it)"
                    )
        reports = await w.engine.run_many(jobs)
    for report in reports:
        print_report(report)
    return exit_status(reports)


@main.command()
@config_option
@click.option("--shop", default=None, help="only this shop")
@click.option("--resource", default=None, help="only this resource")
@click.option("--force", is_flag=True, help="apply even when the listing would retire most records at once")
@handled
async def reconcile(config: str | None, shop: str | None, resource: str | None, force: bool) -> int:
    """Find what was deleted in the shop and apply each resource's on_delete policy (orders: report only)."""
    from service.engine.reconcile import RECONCILE, Reconciler

    settings = _load(config)
    jobs = [(s, r) for s, r in _jobs(settings, shop, resource) if r in RECONCILE or resource]
    async with wired(settings) as w:
        reports = [await Reconciler(w.engine).run(s, r, force=force) for s, r in jobs]
    for report in reports:
        print_report(report)
    if any(r.outcome == "refused" for r in reports):
        return EXIT_FAILED_RECORDS
    return exit_status(reports)


@main.command()
@config_option
@click.option("--shop", default=None, help="only this shop")
@click.option("--resource", default=None, help="only this resource")
@handled
async def sweep(config: str | None, shop: str | None, resource: str | None) -> int:
    """Re-read every record of a resource and push what differs (what date_upd misses); moves no cursor."""
    from service.engine.sweeps import Sweeper
    from service.scheduler import SWEEPABLE

    settings = _load(config)
    jobs = [(s, r) for s, r in _jobs(settings, shop, resource) if r in SWEEPABLE or resource]
    async with wired(settings) as w:
        reports = []
        for s, r in jobs:
            if w.engine.stopping.is_set():
                break
            reports.append(await Sweeper(w.engine).run(s, r))
    for report in reports:
        print_report(report)
    return exit_status(reports)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@handled
async def status(config: str | None, as_json: bool) -> int:
    """Per shop and resource: cursor, records mapped, failures, last pass and its outcome."""
    from service.state.store import StateStore

    settings = _load(config, "warning")
    store = await StateStore.open(settings.state_path)
    try:
        rows: list[dict[str, Any]] = []
        cursors = await store.cursors()
        for shop in settings.shops:
            for resource in shop.resources:
                run_ = await store.last_run_of(shop.name, resource, "pass")
                maintenance = {
                    mode: await store.last_run_of(shop.name, resource, mode)
                    for mode in ("sweep", "reconcile")
                }
                cursor = cursors.get((shop.name, resource))
                rows.append(
                    {
                        "shop": shop.name,
                        "resource": resource,
                        "enabled": shop.resources[resource].enabled,
                        "cursor": list(cursor.as_tuple()) if cursor else None,
                        "failures": await store.count_failures(shop.name, resource),
                        "last_pass": None
                        if run_ is None
                        else {
                            "outcome": run_.outcome,
                            "started_at": run_.started_at,
                            "finished_at": run_.finished_at,
                            "created": run_.created,
                            "updated": run_.updated,
                            "unchanged": run_.unchanged,
                            "failed": run_.failed,
                            "message": run_.message,
                        },
                        **{
                            f"last_{mode}": None
                            if m is None
                            else {
                                "outcome": m.outcome,
                                "started_at": m.started_at,
                                "updated": m.updated,
                                "failed": m.failed,
                                "retired": m.deleted,
                                "message": m.message,
                            }
                            for mode, m in maintenance.items()
                        },
                    }
                )
            kinds = ("category", "product", "thirdparty", "contact", "order", "invoice", "payment")
            mapped = {kind: await store.count_records(shop.name, kind) for kind in kinds}
            # records gone from the shop (on_delete applied; orders: their disappearance reported)
            gone = {kind: n for kind in kinds if (n := await store.count_deleted(shop.name, kind))}
            for row in rows:
                if row["shop"] == shop.name:
                    row["mapped"] = mapped
                    row["gone"] = gone
    finally:
        await store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        last = row["last_pass"]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["started_at"])) if last else "never"
        position = " / ".join(str(c) for c in row["cursor"]) if row["cursor"] else "-"
        click.echo(
            f"{row['shop']:<10} {row['resource']:<12} {'on ' if row['enabled'] else 'off'} "
            f"cursor {position:<28} failures {row['failures']:>4}  last {when} "
            f"{last['outcome'] if last else ''}"
        )
        reconciled = row.get("last_reconcile")
        if reconciled and (reconciled["retired"] or reconciled["outcome"] not in ("ok",)):
            click.echo(
                f"{'':<10} {'':<12} reconcile {reconciled['outcome']}: retired {reconciled['retired']}"
                + (f" - {reconciled['message'][:300]}" if reconciled["message"] else "")
            )
    shops_gone = {row["shop"]: row["gone"] for row in rows if row.get("gone")}
    for name, gone in shops_gone.items():
        listed = ", ".join(f"{kind} {n}" for kind, n in gone.items())
        click.echo(f"{name}: gone from the shop: {listed}")
        if gone.get("order"):
            click.echo(
                f"{name}: {gone['order']} order(s) disappeared from the shop; they stay in Dolibarr "
                "(see the reconcile lines above and the 'record.gone_from_shop' log events)"
            )
    waiting = sum(row["failures"] for row in rows)
    if waiting:
        click.echo(f"{waiting} record(s) wait in the failure queue: see 'ps2doli failures list'")
    return EXIT_OK


@main.command()
@config_option
@handled
async def check(config: str | None) -> int:
    """Reach both sides and check the keys' permissions on every enabled resource."""
    settings = _load(config, "warning")
    problems: list[str] = []
    async with wired(settings) as w:
        try:
            caps = await w.port.capabilities()
            click.echo(f"dolibarr   reachable, version {caps.version} ({settings.dolibarr.backend})")
            for finding in feature_findings(caps, settings.shops):
                if finding.blocking:
                    problems.append(f"dolibarr: {finding.text}")
                else:
                    click.echo(f"NOTE     dolibarr: {finding.text}")
            problems += [f"dolibarr: {p}" for p in await w.port.check_access()]
            for shop in settings.shops:  # the catalog's setup in Dolibarr (the long-description extrafield)
                problems += [f"dolibarr: {p}" for p in await extrafield_problems(w.port, shop)]
        except SyncError as exc:
            problems.append(f"dolibarr: {exc}")
        for shop in settings.shops:
            try:
                permissions = await w.clients[shop.name].permissions()
            except SyncError as exc:
                problems.append(f"shop {shop.name}: {exc}")
                continue
            click.echo(f"shop {shop.name:<5} reachable, {len(permissions)} resources readable")
            for resource in _needed_resources(shop.enabled()):
                if "GET" not in {m.upper() for m in permissions.get(resource, set())}:
                    problems.append(f"shop {shop.name}: the webservice key cannot read '{resource}' (GET)")
    for problem in problems:
        click.echo(f"MISSING  {problem}")
    if not problems:
        click.echo("all good")
    return EXIT_CONFIG if problems else EXIT_OK


def _needed_resources(enabled: list[str]) -> list[str]:
    needs = {
        "categories": ["categories"],
        "products": [
            "products",
            "combinations",
            "product_options",
            "product_option_values",
            "taxes",
            "tax_rules",
            "countries",
            "images",
        ],
        "combinations": ["combinations"],
        "stock": ["stock_availables"],
        "customers": ["customers", "addresses"],
        "orders": [
            "orders",
            "order_details",
            "order_histories",
            "order_states",
            "order_payments",
            "order_invoices",
            "addresses",
            "currencies",
        ],
    }
    seen: list[str] = []
    for resource in enabled:
        for name in needs.get(resource, [resource]):
            if name not in seen:
                seen.append(name)
    return seen


@main.group()
def failures() -> None:
    """The failure queue: records Dolibarr refused, retried on a backoff schedule."""


@failures.command("list")
@config_option
@click.option("--shop", default=None)
@handled
async def failures_list(config: str | None, shop: str | None) -> int:
    from service.state.store import StateStore

    settings = _load(config, "warning")
    store = await StateStore.open(settings.state_path)
    try:
        rows = await store.failures(shop)
    finally:
        await store.close()
    if not rows:
        click.echo("no failures")
    for f in rows:
        due = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(f.next_at))
        click.echo(
            f"#{f.id:<5} {f.shop:<10} {f.resource:<11} {f.kind} {f.ps_id:<10} attempts {f.attempts}  "
            f"next {due}\n       {f.error_class}: {f.message}"
        )
    return EXIT_OK


@failures.command("retry")
@config_option
@click.argument("failure_id", required=False, type=int)
@click.option("--all", "retry_all", is_flag=True, help="every failure")
@handled
async def failures_retry(config: str | None, failure_id: int | None, retry_all: bool) -> int:
    """Retry one failure (by its #id) or all of them now."""
    if failure_id is None and not retry_all:
        raise ConfigError("give a failure id (see 'ps2doli failures list') or --all")
    settings = _load(config)
    async with wired(settings) as w:
        if retry_all:
            targets = await w.store.failures()
        else:
            assert failure_id is not None
            failure = await w.store.failure(failure_id)
            if failure is None:
                raise ConfigError(f"no failure #{failure_id}; see 'ps2doli failures list'")
            targets = [failure]
        await w.store.make_failures_due(None if retry_all else [f.id for f in targets])
        jobs = sorted({(f.shop, f.resource) for f in targets}, key=lambda j: _order(settings, j))
        reports = await w.engine.run_many(jobs)
        left = await w.store.failures()
    for report in reports:
        print_report(report)
    click.echo(f"{len(left)} failure(s) left")
    return EXIT_FAILED_RECORDS if any(f.id in {t.id for t in targets} for f in left) else exit_status(reports)


def _order(settings: Settings, job: tuple[str, str]) -> tuple[int, int]:
    from service.settings import ALL_RESOURCES

    shops = [s.name for s in settings.shops]
    return (
        shops.index(job[0]) if job[0] in shops else 0,
        ALL_RESOURCES.index(job[1]) if job[1] in ALL_RESOURCES else 99,
    )


@failures.command("forget")
@config_option
@click.argument("failure_id", type=int)
@handled
async def failures_forget(config: str | None, failure_id: int) -> int:
    """Drop a failure from the queue (the record is not pushed)."""
    from service.state.store import StateStore

    settings = _load(config, "warning")
    store = await StateStore.open(settings.state_path)
    try:
        gone = await store.forget_failure(failure_id)
    finally:
        await store.close()
    if not gone:
        raise ConfigError(f"no failure #{failure_id}")
    click.echo(f"failure #{failure_id} forgotten")
    return EXIT_OK


@main.command()
@click.option("--products", default=500, show_default=True)
@click.option("--categories", default=30, show_default=True)
@click.option("--customers", default=300, show_default=True)
@click.option("--orders", default=40, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--state", "state_dir", default=None, help="keep the state file in this folder")
@click.option(
    "--log-level",
    default="error",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="log events (to stderr) at this level and above",
)
@handled
async def demo(
    products: int,
    categories: int,
    customers: int,
    orders: int,
    seed: int,
    state_dir: str | None,
    log_level: str,
) -> int:
    """Run the sync on the bundled simulators: a generated shop into a simulated Dolibarr, twice."""
    from service.demo import run_demo

    code: int = await run_demo(
        products=products,
        categories=categories,
        customers=customers,
        orders=orders,
        seed=seed,
        state_dir=Path(state_dir) if state_dir else None,
        log_level=log_level,
    )
    return code


def _add_order_commands() -> None:
    """``backfill`` and ``report totals`` live in cli_orders.py, built with this module's helpers."""
    from service import cli_orders

    cli_orders.register(
        main,
        config_option=config_option,
        handled=handled,
        load=_load,
        print_report=print_report,
        exit_status=exit_status,
    )


_add_order_commands()


if __name__ == "__main__":
    main()
