"""Sweeps: what ``date_upd`` misses, found by re-reading every row on a slow interval.

``date_upd`` is a good change marker, but not a perfect one: a module or an import that writes SQL directly does
not touch it; deleting a category removes product links without touching the products; a tax rule edit changes
every price tax included; in multishop the filter reads the main table while the value lives in the shop table
(PrestaShop#12385); a record saved with a clock set back lands behind the cursor. A sweep reads the whole resource
again - by id (``filter[id]=>[last]&sort=[id_ASC]``, never offsets) - maps every record and lets the writer compare
payload hashes: an unchanged shop costs reads only, no Dolibarr request; a record whose payload differs is pushed.

What a sweep costs on a real shop: PrestaShop builds a listing with one SQL query for the ids and then loads each
object (``new ObjectModel(id)``: a few queries per row) - also with ``display=[a,b]`` - plus one query per
association per row with ``display=full``. So the sweep asks only for the fields the mapper reads where that saves
the association queries: categories (whose ``products`` association lists every product of the category) and
customers (no ``groups`` association, and the password hash and ``secure_key`` never travel). Products are read
with ``display=full``: their payload depends on most fields and on the ``categories`` association. A sweep of 10 000
products is the same load on the shop as the first sync's read, once per ``sweep_interval_s`` (default one hour for
products and customers; make it daily on a large catalog); the id-only listing used by reconcile passes
(``service.engine.reconcile``) is a single query.

Sweeps never move a cursor. They run under the same per-(shop, resource) lock as passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import structlog

from service.engine.pipeline import PassReport, SyncEngine
from service.engine.streams import DateUpdStream, Page, RecordFailure, Stream
from service.errors import ConfigError, SyncError
from service.mapping import catalog
from service.prestashop.client import Display
from service.prestashop.client import Page as ShopPage
from service.settings import ShopSettings

log = structlog.get_logger("ps2doli.sweeps")

# what a sweep asks for, per resource (the fields its mapper reads; tests check the mapping is the same as with
# display=full). A resource not listed is read with display=full.
SWEEP_DISPLAY: Mapping[str, Display] = {
    "categories": catalog.CATEGORY_FIELDS,
    "customers": (
        "id",
        "is_guest",
        "deleted",
        "active",
        "email",
        "company",
        "firstname",
        "lastname",
        "siret",
        "ape",
        "date_upd",
    ),
}


async def sweep_pages(stream: Stream, shop: ShopSettings) -> AsyncIterator[Page]:
    """Every row of the stream's resource, by id. A stream may bring its own (``sweep_pages()``)."""
    own = getattr(stream, "sweep_pages", None)
    if own is not None:
        async for page in own():
            yield page
        return
    if not isinstance(stream, DateUpdStream):
        raise ConfigError(f"resource {stream.resource!r} cannot be swept (its stream has no sweep_pages)")
    display = SWEEP_DISPLAY.get(stream.resource, "full")
    fields = ("id",) if display == "full" or display is None else tuple(display)
    pages = (
        stream.client.sweep(stream.resource, fields, page_size=shop.page_size)
        if display != "full"
        else _full_walk(stream, shop)
    )
    async for page in pages:
        failures = [RecordFailure(stream.kind, err.where.record_id or "?", err) for err in page.failed]
        yield Page(list(page.records), None, failures)


async def _full_walk(stream: DateUpdStream, shop: ShopSettings) -> AsyncIterator[ShopPage]:
    async for page in stream.client.changes(
        stream.resource, None, page_size=shop.page_size, overlap_s=0, change_field="id", display="full"
    ):
        yield page


class Sweeper:
    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine

    async def run(self, shop_name: str, resource: str) -> PassReport:
        shop = self.engine.settings.shop(shop_name)
        async with self.engine.pass_lock(shop_name, resource):
            return await self._run(shop, resource)

    async def _run(self, shop: ShopSettings, resource: str) -> PassReport:
        engine = self.engine
        report = PassReport(shop.name, resource, mode="sweep")
        run_id = await engine.store.start_run(shop.name, resource, mode="sweep")
        bound = log.bind(shop=shop.name, resource=resource)
        try:
            ctx = await engine.context(shop)
            if resource == "categories" and not ctx.categories_enabled:
                report.outcome = "ok"
            else:
                stream = engine.stream(shop, resource)
                async for page in sweep_pages(stream, shop):
                    await engine.push_page(shop, stream, page, ctx, report)
                    if engine.page_done(report):
                        break
                if report.outcome == "running":
                    report.outcome = "partial" if report.failed else "ok"
        except SyncError as exc:
            error = report.end_with_error(exc)
            bound.error("sweep.failed", error=str(error), kind=type(exc).__name__)
        finally:
            if report.outcome == "running":
                report.outcome = "stopped"
        await engine.finish_run(run_id, report)
        bound.info("sweep.done", **report.totals())
        return report
