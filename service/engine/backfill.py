"""History backfill: import a shop's orders placed on or after a date, in resumable batches.

``ps2doli backfill --since 2025-01-01`` walks the shop's orders by ``(date_add, id)`` (keyset paging, the same
walk as the live passes use on ``date_upd``) and pushes each page through the live order pusher, so everything an
order's push guarantees holds here too (customer once, validations one at a time, payments once, totals to the
cent) and a second run changes nothing. Its position is its own cursor, ``backfill:{resource}:{since}`` in the
``cursors`` table, committed after each page: an interrupted backfill resumes where it stopped, a backfill from
another date starts on its own, and the live ``orders`` cursor is never read nor moved.

``resource`` narrows what is done for each order: ``orders`` (everything), ``invoices`` (invoices and credit notes
of orders already in Dolibarr), ``payments`` (payments of invoices already in Dolibarr).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import structlog

from service.engine.pipeline import PassReport, SyncEngine
from service.engine.streams import RecordFailure
from service.errors import ConfigError, SyncError
from service.mapping.orders import ALL_PARTS, OrderBundle
from service.prestashop.client import END_OF_TIME, Filter
from service.state.store import Cursor

log = structlog.get_logger("ps2doli.backfill")

PARTS: dict[str, tuple[str, ...]] = {
    "orders": ALL_PARTS,
    "invoices": ("invoice", "credit_notes"),
    "payments": ("payments",),
}

# (report so far, orders read so far, orders to read in all)
BackfillProgress = Callable[[PassReport, int, int], None]


def cursor_name(resource: str, since: dt.date) -> str:
    return f"backfill:{resource}:{since.isoformat()}"


async def backfill(
    engine: SyncEngine,
    shop_name: str,
    since: dt.date,
    resource: str = "orders",
    *,
    progress: BackfillProgress | None = None,
    restart: bool = False,
) -> PassReport:
    if resource not in PARTS:
        raise ConfigError(f"backfill --resource must be one of {', '.join(PARTS)}, not {resource!r}")
    shop = engine.settings.shop(shop_name)
    if "orders" not in shop.enabled():
        raise ConfigError(
            f"orders are off for shop {shop.name!r} (catalog_only, or resources.orders.enabled = false): "
            "there is nothing to backfill"
        )
    name = cursor_name(resource, since)
    start = f"{since.isoformat()} 00:00:00"
    report = PassReport(shop.name, "orders", mode="backfill")
    async with engine.pass_lock(shop.name, f"backfill:{resource}"):
        run_id = await engine.store.start_run(shop.name, "orders", mode="backfill")
        stored = None if restart else await engine.store.cursor(shop.name, name)
        position = stored.as_tuple() if stored is not None else (start, 0)
        client = engine.clients[shop.name]
        bound = log.bind(shop=shop.name, resource=resource, since=since.isoformat())
        read = 0
        try:
            remaining = await client.ids(
                "orders", filters={"date_add": Filter.between(position[0], END_OF_TIME)}
            )
            total = len(remaining)
            ctx = await engine.context(shop)
            stream = engine.stream(shop, "orders")
            parts = PARTS[resource]
            async for page in client.changes(
                "orders",
                position,
                page_size=shop.page_size,
                overlap_s=0,
                change_field="date_add",
            ):
                batch = await stream.batch(page.records, ctx)
                if parts != ALL_PARTS:
                    batch.items = [
                        dataclasses.replace(item, payload=dataclasses.replace(item.payload, parts=parts))
                        if isinstance(item.payload, OrderBundle)
                        else item
                        for item in batch.items
                    ]
                batch.failures += [
                    RecordFailure("order", str(failure.where.record_id or "?"), failure)
                    for failure in page.failed
                ]
                await engine.push_batch(shop, "orders", batch, report)
                if page.cursor is not None:
                    await engine.store.set_cursor(shop.name, name, Cursor(*page.cursor))
                read += len(page.records) + len(page.failed)
                report.pages += 1
                if progress is not None:
                    progress(report, read, max(total, read))
                if engine.stopping.is_set():
                    report.outcome = "stopped"
                    break
            if report.outcome == "running":
                report.outcome = "partial" if report.failed else "ok"
        except SyncError as exc:
            bound.error("backfill.failed", error=str(report.end_with_error(exc)))
            if isinstance(exc, ConfigError):
                raise
        finally:
            if report.outcome == "running":
                report.outcome = "stopped"
            await engine.finish_run(run_id, report)
        bound.info(
            "backfill.done",
            outcome=report.outcome,
            read=read,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            failed=report.failed,
        )
    return report
