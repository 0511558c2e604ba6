"""``ps2doli backfill`` and ``ps2doli report totals``: the order commands. ``service/cli.py`` calls
:func:`register` with its own helpers (this module never imports it: ``python -m service.cli`` would load it
twice)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from service.app import wired
from service.engine.backfill import PARTS, backfill
from service.engine.pipeline import PassReport
from service.errors import ConfigError
from service.settings import Settings

EXIT_OK = 0


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since {value!r} is not a date: give YYYY-MM-DD") from None


class _Helpers:
    def __init__(
        self,
        load: Callable[[str | None, str | None], Settings],
        print_report: Callable[[PassReport], None],
        exit_status: Callable[[list[PassReport]], int],
    ) -> None:
        self.load = load
        self.print_report = print_report
        self.exit_status = exit_status


class _Bar:
    """Progress on screen: a bar on a terminal, a line every few pages otherwise (logs, CI)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.shown = 0

    def __call__(self, report: PassReport, read: int, total: int) -> None:
        if not sys.stdout.isatty():
            if report.pages % 10 == 1 or read >= total:
                click.echo(
                    f"  {self.label}: {read}/{total} orders read, created {report.created}, "
                    f"updated {report.updated}, unchanged {report.unchanged}, failed {report.failed}"
                )
            return
        if self.bar is None:
            # click's own bar: a terminal-width bar with percentage and ETA, nothing to install
            self.bar = click.progressbar(length=total, label=self.label, show_pos=True)
            self.bar.__enter__()
        self.bar.length = max(self.bar.length or 0, total)
        self.bar.update(read - self.shown)
        self.shown = read

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


async def backfill_command(
    h: _Helpers, config: str | None, since: str, shop: str | None, resource: str, restart: bool
) -> int:
    """Import the shop's order history from a date on, in resumable batches, with progress on screen."""
    settings = h.load(config, None)
    day = _date(since)
    shops = [settings.shop(shop)] if shop else [s for s in settings.shops if "orders" in s.enabled()]
    if not shops:
        raise ConfigError("no shop has orders enabled: there is nothing to backfill")
    reports: list[PassReport] = []
    async with wired(settings) as w:
        for s in shops:
            bar = _Bar(f"{s.name} {resource} since {day.isoformat()}")
            try:
                reports.append(await backfill(w.engine, s.name, day, resource, progress=bar, restart=restart))
            finally:
                bar.close()
    for report in reports:
        h.print_report(report)
    return h.exit_status(reports)


async def report_totals(
    h: _Helpers, config: str | None, shop: str | None, show_all: bool, as_json: bool
) -> int:
    """Orders whose Dolibarr total is not simply the shop's: a rounding line made up a difference (adjusted),
    the difference was above orders.total_tolerance (refused), or Dolibarr's total read back differs
    (mismatch)."""
    from service.state import order_totals
    from service.state.store import StateStore

    settings = h.load(config, "warning")
    if shop is not None:
        settings.shop(shop)
    store = await StateStore.open(settings.state_path)
    try:
        rows = await order_totals.rows(store, shop, differing_only=not show_all)
    finally:
        await store.close()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "shop": r.shop,
                        "order": r.order_id,
                        "reference": r.reference,
                        "currency": r.currency,
                        "shop_total": str(r.shop_total),
                        "lines_total": str(r.lines_total),
                        "dolibarr_total": None if r.dolibarr_total is None else str(r.dolibarr_total),
                        "delta": str(r.delta),
                        "outcome": r.outcome,
                        "note": r.note,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return EXIT_OK
    if not rows:
        click.echo(
            "every order's Dolibarr total equals the shop's" if not show_all else "no order pushed yet"
        )
        return EXIT_OK
    click.echo(
        f"{'shop':<10} {'order':>7} {'reference':<10} {'cur':<4} {'shop total':>11} {'lines':>11} "
        f"{'dolibarr':>11} {'delta':>8}  outcome"
    )
    for r in rows:
        dolibarr = "-" if r.dolibarr_total is None else str(r.dolibarr_total)
        click.echo(
            f"{r.shop:<10} {r.order_id:>7} {r.reference:<10} {r.currency:<4} {r.shop_total!s:>11} "
            f"{r.lines_total!s:>11} {dolibarr:>11} {r.delta!s:>8}  {r.outcome}"
        )
        if r.note:
            for note in r.note.split("; "):
                click.echo(f"{'':>19}{note}")
    differing = sum(1 for r in rows if r.outcome != "exact")
    noted = sum(1 for r in rows if r.outcome == "exact" and r.note)
    click.echo(
        f"{differing} order(s) whose totals differ"
        + (
            f", {noted} more with a note (payments the shop recorded that Dolibarr could not take)"
            if noted
            else ""
        )
    )
    return EXIT_OK


def register(
    main: click.Group,
    *,
    config_option: Callable[[Any], Any],
    handled: Callable[[Any], Any],
    load: Callable[[str | None, str | None], Settings],
    print_report: Callable[[PassReport], None],
    exit_status: Callable[[list[PassReport]], int],
) -> None:
    """Add ``backfill`` and ``report totals`` to the ``ps2doli`` group."""
    helpers = _Helpers(load, print_report, exit_status)

    @main.command(name="backfill")
    @config_option
    @click.option("--since", "since", required=True, help="the first day to import (YYYY-MM-DD, shop time)")
    @click.option("--shop", default=None, help="only this shop (default: every shop with orders on)")
    @click.option(
        "--resource",
        type=click.Choice(sorted(PARTS)),
        default="orders",
        show_default=True,
        help="orders: everything; invoices / payments: only those, for orders already in Dolibarr",
    )
    @click.option("--restart", is_flag=True, help="start again from --since instead of the saved position")
    @handled
    async def backfill_cmd(
        config: str | None, since: str, shop: str | None, resource: str, restart: bool
    ) -> int:
        """Import the shop's order history from a date on, in resumable batches, with progress on screen."""
        return await backfill_command(helpers, config, since, shop, resource, restart)

    @main.group(name="report")
    def report() -> None:
        """Reports read from the state file."""

    @report.command(name="totals")
    @config_option
    @click.option("--shop", default=None, help="only this shop")
    @click.option("--all", "show_all", is_flag=True, help="every order, also those whose totals are equal")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @handled
    async def totals(config: str | None, shop: str | None, show_all: bool, as_json: bool) -> int:
        """Orders whose Dolibarr total is not simply the shop's: a rounding line made up a difference
        (adjusted), the difference was above orders.total_tolerance (refused), Dolibarr's total read back
        differs (mismatch), entered in the main currency (converted); and orders with a note (a payment the
        shop recorded that Dolibarr cannot take: an overpayment, a payment recorded twice)."""
        return await report_totals(helpers, config, shop, show_all, as_json)
