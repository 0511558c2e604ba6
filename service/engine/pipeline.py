"""One pass of one (shop, resource): cursor -> pages -> map -> hash -> push -> commit -> advance.

Rules the pass keeps:

- A page's records are pushed concurrently (bounded by :class:`Lanes`); the cursor moves to the end of a page
  only once every record of that page is committed or filed in the failure queue.
- A record Dolibarr refuses (a permanent error) is filed with its payload and retried on a backoff schedule; it
  never holds back the others. A record whose dependency failed waits for it, filed the same way.
- A transient error (a side down, a timeout after retries) ends the pass: nothing after the last complete page is
  committed, and the next pass starts again from the stored cursor.
- Dependencies (a parent category, a customer) are ensured first and once: concurrent needs share one push.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from service.dolibarr.model import Ref, dependencies
from service.dolibarr.port import DolibarrPort
from service.engine.catalog_setup import CATALOG_SETUP_RESOURCES, prepare_catalog
from service.engine.catalog_streams import CATALOG_STREAMS
from service.engine.lanes import Lanes, Recent, SingleFlight
from service.engine.readahead import read_ahead
from service.engine.reference import ReferenceData
from service.engine.rounds import run_round
from service.engine.streams import STREAMS, Batch, Page, Stream, ps_id_of
from service.engine.writer import Item, ObjectWriter, Outcome, describe
from service.errors import ConfigError, PermanentError, SyncError, TransientError, Where
from service.mapping.context import MappingError, ShopContext
from service.prestashop.client import PrestaShopClient
from service.settings import Settings, ShopSettings
from service.state.store import RecordRow, StateStore

log = structlog.get_logger("ps2doli.pipeline")

# with this many records of a page unknown locally, list the shop's objects in Dolibarr once (one paged
# listing) instead of one lookup per record: the initial sync, or a sync after the state file was lost
BULK_LOOKUP_THRESHOLD = 20
# Ref -> Dolibarr id of the objects pushed or looked up lately (parents, categories, customers needed again soon);
# the state store holds every one (``_known_id`` reads it on a miss), so the memory stays this size at any scale
KNOWN_IDS = 20_000

Progress = Callable[["PassReport"], None]
StreamFactory = Callable[[ShopSettings, PrestaShopClient], Stream]


class DependencyFailed(PermanentError):
    """A record waits for another one that could not be pushed."""


class SourceGone(PermanentError):
    """A dependency to load is no longer in the shop (a product deleted since an order was placed)."""


# pushes a payload type the ObjectWriter does not know (an order and everything that goes with it)
Pusher = Callable[[ShopSettings, Item, RecordRow | None], Awaitable[Outcome]]


@dataclass
class PassReport:
    shop: str
    resource: str
    mode: str = "pass"
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    deleted: int = 0
    pages: int = 0
    # ok | partial | error | stopped, and refused (a reconcile whose listing would retire too much at once)
    outcome: str = "running"
    error: str = ""
    # with outcome "error": "config" (the admin must act: a refused key, a missing permission) or "transient"
    error_kind: str = ""
    # a side asked to wait longer than the clients retry (429 / 503 with Retry-After): the pause lasts that long
    retry_after: float | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def count(self, outcome: Outcome) -> None:
        if outcome is Outcome.CREATED:
            self.created += 1
        elif outcome is Outcome.UPDATED:
            self.updated += 1
        else:
            self.unchanged += 1

    @property
    def records(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed

    def end_with_error(self, exc: SyncError) -> SyncError:
        """The run ends on ``exc``: the report says so and why; returns the error as located in this report's
        shop and resource."""
        error = exc if exc.where.shop else exc.at(shop=self.shop, resource=self.resource)
        self.outcome = "error"
        self.error = str(error)
        self.error_kind = "config" if isinstance(exc, ConfigError) else "transient"
        self.retry_after = getattr(exc, "retry_after", None)
        return error

    def totals(self) -> dict[str, Any]:
        """What a run's closing log line says."""
        return {
            "outcome": self.outcome,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }


class SyncEngine:
    """Owns the policy: what is pushed, when, in which order, how often. Knows neither URLs nor SQL."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        port: DolibarrPort,
        clients: Mapping[str, PrestaShopClient],
        *,
        progress: Progress | None = None,
        streams: Mapping[str, StreamFactory] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.port = port
        self.clients = clients
        self.progress = progress
        self.lanes = Lanes(settings.dolibarr.max_concurrency)
        self.reference = ReferenceData()
        self.stopping = asyncio.Event()
        self._streams: dict[str, StreamFactory] = dict(streams or {**STREAMS, **CATALOG_STREAMS})
        self._catalog_ready: set[str] = set()  # shops whose catalog setup was checked (catalog_setup.py)
        self._told_aside: set[tuple[str, str]] = set()  # (shop, resource) told the backend cannot hold it
        self._writers: dict[str, ObjectWriter] = {}
        self._flights: SingleFlight[Ref, int] = SingleFlight()
        self._ids: Recent[Ref, int] = Recent(KNOWN_IDS)
        # outcomes of pushes made to satisfy a dependency, reported by the item's own pass when it comes
        self._dependency_outcomes: dict[Ref, Outcome] = {}
        self._pass_locks: dict[tuple[str, str], asyncio.Lock] = {}
        # a shop's context load and catalog setup: once, whichever of its passes running side by side comes first
        self._shop_locks: dict[str, asyncio.Lock] = {}
        self._pushers: dict[type, Pusher] = {}
        # kind token of a ref_ext (``product`` in ps-main-product-12) -> the stream that can load it
        self._loaders: dict[str, str] = {
            "category": "categories",
            "product": "products",
            "customer": "customers",
        }

    # ------------------------------------------------------------------------------------- plumbing
    def register_stream(self, resource: str, factory: StreamFactory, *, loads: Sequence[str] = ()) -> None:
        self._streams[resource] = factory
        for token in loads:
            self._loaders[token] = resource

    def register_pusher(self, payload_type: type, pusher: Pusher) -> None:
        """Items whose payload is of ``payload_type`` are pushed by ``pusher`` instead of the ObjectWriter."""
        self._pushers[payload_type] = pusher

    def stream(self, shop: ShopSettings, resource: str) -> Stream:
        try:
            factory = self._streams[resource]
        except KeyError:
            raise ConfigError(
                f"resource {resource!r} has no stream; known: {', '.join(self._streams)}"
            ) from None
        return factory(shop, self.clients[shop.name])

    def writer(self, shop: str) -> ObjectWriter:
        if shop not in self._writers:
            self._writers[shop] = ObjectWriter(shop, self.port, self.store, self.lanes)
            self._writers[shop].source = self.clients.get(shop)  # image bytes (catalog_writer.py)
            # an ambiguous create may still be running in Dolibarr: give it this long to land before another
            self._writers[shop].settle_s = self.settings.dolibarr.timeout_s
        return self._writers[shop]

    async def context(self, shop: ShopSettings) -> ShopContext:
        # passes of one shop run side by side (rounds.py): the first ones would each load the same context
        async with self._shop_locks.setdefault(shop.name, asyncio.Lock()):
            return await self._context(shop)

    async def _context(self, shop: ShopSettings) -> ShopContext:
        capabilities = await self.port.capabilities()
        ctx = await self.reference.context(
            shop, self.clients[shop.name], main_currency=capabilities.main_currency
        )
        if not capabilities.categories and ctx.categories_enabled:
            ctx = dataclasses.replace(ctx, categories_enabled=False)
        if not (capabilities.stock and capabilities.documents) and (ctx.stock_enabled or ctx.images_enabled):
            ctx = dataclasses.replace(
                ctx, stock_enabled=capabilities.stock, images_enabled=capabilities.documents
            )
        return ctx

    def pass_lock(self, shop: str, resource: str) -> asyncio.Lock:
        """The lock every pass, sweep and reconcile of one (shop, resource) holds: one at a time."""
        return self._pass_locks.setdefault((shop, resource), asyncio.Lock())

    def forget(self, shop: str, ref: Ref | None) -> None:
        """Drop what this process remembers of an object (it was retired: deleted or deactivated)."""
        if ref is None:
            return
        self._ids.pop(ref)
        if shop in self._writers:
            self._writers[shop].index.pop(ref.ref_ext, None)

    def busy(self) -> bool:
        """True while a pass or a push is in flight."""
        return self.lanes.in_flight > 0 or any(lock.locked() for lock in self._pass_locks.values())

    def stop(self) -> None:
        """Take no new page; in-flight pushes finish and commit."""
        self.stopping.set()

    # ------------------------------------------------------------------------------------------ passes
    async def run_pass(self, shop_name: str, resource: str) -> PassReport:
        shop = self.settings.shop(shop_name)
        async with self.pass_lock(shop_name, resource):
            return await self._run_pass(shop, resource)

    async def _run_pass(self, shop: ShopSettings, resource: str) -> PassReport:
        report = PassReport(shop.name, resource)
        run_id = await self.store.start_run(shop.name, resource)
        bound = log.bind(shop=shop.name, resource=resource)
        try:
            ctx = await self.context(shop)
            aside = {
                "categories": (ctx.categories_enabled, "categories"),
                "stock": (ctx.stock_enabled, "stock"),
                "images": (ctx.images_enabled, "attached files (images)"),
            }.get(resource)
            if aside is not None and not aside[0]:
                # once per shop and resource, not at every pass
                if (shop.name, resource) not in self._told_aside:
                    self._told_aside.add((shop.name, resource))
                    bound.warning(
                        "pass.skipped",
                        reason=f"this Dolibarr (module off, or the SOAP backend) cannot hold {aside[1]}",
                    )
                report.outcome = "ok"
                await self.finish_run(run_id, report)
                return report
            if resource in CATALOG_SETUP_RESOURCES and shop.name not in self._catalog_ready:
                async with self._shop_locks.setdefault(shop.name, asyncio.Lock()):
                    if shop.name not in self._catalog_ready:
                        await prepare_catalog(self.port, self.writer(shop.name), self.store, shop, ctx)
                        self._catalog_ready.add(shop.name)
            stream = self.stream(shop, resource)
            await self._retry_failures(shop, stream, ctx, report)
            cursor = await self.store.cursor(shop.name, resource)
            async for page in read_ahead(stream.pages(cursor)):
                await self.push_page(shop, stream, page, ctx, report)
                if page.position is not None:
                    await self.store.set_cursor(shop.name, resource, page.position)
                if self.page_done(report):
                    break
            if report.outcome == "running":
                report.outcome = "partial" if report.failed else "ok"
        except SyncError as exc:
            # a configuration error of one resource (e.g. the key may not read it) stops that resource only
            error = report.end_with_error(exc)
            bound.error("pass.failed", error=str(error), kind=type(exc).__name__)
        finally:
            if report.outcome == "running":  # cancelled
                report.outcome = "stopped"
                await asyncio.shield(self.finish_run(run_id, report))
        await self.finish_run(run_id, report)
        bound.info("pass.done", **report.totals())
        return report

    async def push_page(
        self, shop: ShopSettings, stream: Stream, page: Page, ctx: ShopContext, report: PassReport
    ) -> None:
        """A page read from the shop: what could not be read is filed, the rest mapped and pushed."""
        for failure in page.read_failures:
            await self._file_failure(shop.name, stream.resource, failure.kind, failure.ps_id, failure.error)
            report.failed += 1
        batch = await stream.batch(page.records, ctx)
        await self.push_batch(shop, stream.resource, batch, report)

    def page_done(self, report: PassReport) -> bool:
        """Counts a page done and reports progress; True when the run must stop before the next page."""
        report.pages += 1
        if self.progress:
            self.progress(report)
        if self.stopping.is_set():
            report.outcome = "stopped"
            return True
        return False

    async def finish_run(self, run_id: int, report: PassReport) -> None:
        """Closes the run's row in the state with the report's outcome and counts."""
        report.seconds = time.monotonic() - report.started
        await self.store.finish_run(
            run_id,
            outcome=report.outcome,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            failed=report.failed,
            deleted=report.deleted,
            message=report.error,
        )

    # ----------------------------------------------------------------------------------------- pushing
    async def push_batch(self, shop: ShopSettings, resource: str, batch: Batch, report: PassReport) -> None:
        """A mapped batch: its failures filed, its items pushed concurrently and counted in ``report``."""
        for failure in batch.failures:
            await self._file_failure(
                shop.name, resource, failure.kind, failure.ps_id, failure.error, failure.payload
            )
            report.failed += 1
        if not batch.items:
            return
        known: dict[tuple[str, str], RecordRow] = {}
        for kind in {item.kind for item in batch.items}:
            ps_ids = [item.ps_id for item in batch.items if item.kind == kind]
            rows = await self.store.records(shop.name, kind, ps_ids)
            known.update({(kind, ps_id): row for ps_id, row in rows.items()})
            unknown = sum(1 for p in ps_ids if (kind, p) not in known)
            if unknown >= BULK_LOOKUP_THRESHOLD:
                await self.writer(shop.name).load_index(kind)

        waiting: dict[tuple[str, str], str] = {}
        now = time.time()
        for kind in {item.kind for item in batch.items}:
            ps_ids = [item.ps_id for item in batch.items if item.kind == kind]
            due_later = await self.store.waiting_failures(shop.name, kind, ps_ids, now)
            waiting.update({(kind, ps_id): filed.payload for ps_id, filed in due_later.items()})

        items = []
        for item in batch.items:
            row = known.get((item.kind, item.ps_id))
            if row is not None and row.deleted and getattr(item.payload, "active", True) is False:
                # retired because the shop soft-deleted it, and the shop still shows it deleted: leave it
                report.count(Outcome.UNCHANGED)
            elif waiting.get((item.kind, item.ps_id)) == describe(item.payload):
                # refused as it is now, and its retry is not due: a sweep reading it again at every pass
                # must not send it again at every pass (the failure queue's backoff decides)
                report.failed += 1
            else:
                items.append(item)
        results = await asyncio.gather(
            *(self._push_item(shop, item, known.get((item.kind, item.ps_id))) for item in items),
            return_exceptions=True,
        )
        transient: BaseException | None = None
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Outcome):
                report.count(result)
            elif isinstance(result, TransientError | ConfigError):
                transient = transient or result
            elif isinstance(result, SyncError):
                await self._file_failure(
                    shop.name, resource, item.kind, item.ps_id, result, describe(item.payload)
                )
                report.failed += 1
            elif isinstance(result, BaseException):
                raise result
        if transient is not None:
            raise transient

    async def _push_item(self, shop: ShopSettings, item: Item, known: RecordRow | None) -> Outcome:
        pusher = self._pushers.get(type(item.payload))
        if pusher is not None:
            try:
                return await pusher(shop, item, known)
            except SyncError as exc:
                raise exc.at(shop=shop.name, resource=item.resource, record_id=item.ps_id) from exc
        ref = Ref(item.payload.kind, item.payload.ref_ext)
        outcomes: list[Outcome] = []

        async def push() -> int:
            # dependencies are ensured inside the flight: an item of the same page that depends on this one (an
            # image set on its product, a variant on its parent) joins it instead of loading it from the shop
            ids = await self._ensure_all(shop, dependencies(item.payload), item)
            row = known or await self.store.record(shop.name, item.kind, item.ps_id)
            outcome, object_id = await self.writer(shop.name).push(item, row, ids)
            outcomes.append(outcome)
            return object_id

        try:
            object_id = await self._flights.run(ref, push)
        except SyncError as exc:
            raise exc.at(shop=shop.name, resource=item.resource, record_id=item.ps_id) from exc
        self._ids.put(ref, object_id)
        # a push shared with a concurrent identical one (a dependency load) counts as unchanged here
        if outcomes:
            return outcomes[0]
        return self._dependency_outcomes.pop(ref, Outcome.UNCHANGED)

    async def _ensure_all(self, shop: ShopSettings, refs: Sequence[Ref], for_item: Item) -> dict[Ref, int]:
        if not refs:
            return {}
        results = await asyncio.gather(*(self.ensure(shop, ref) for ref in refs), return_exceptions=True)
        ids: dict[Ref, int] = {}
        for ref, result in zip(refs, results, strict=True):
            if isinstance(result, int):
                ids[ref] = result
            elif isinstance(result, TransientError | ConfigError):
                raise result
            elif isinstance(result, SyncError):
                raise DependencyFailed(
                    f"waits for {ref.ref_ext}, which could not be pushed: {result.message}"
                )
            elif isinstance(result, BaseException):
                raise result
        return ids

    async def ensure(self, shop: ShopSettings, ref: Ref) -> int:
        """The Dolibarr id of an object this shop owns, pushing it (once) if it is not there yet."""
        known = await self._known_id(ref)
        if known is not None:
            return known
        return await self._flights.run(ref, lambda: self._load_and_push(shop, ref))

    async def _known_id(self, ref: Ref) -> int | None:
        """The Dolibarr id of an object already synced (this process's memory, else the state store)."""
        known = self._ids.get(ref)
        if known is not None:
            return known
        row = await self.store.record_by_ref_ext(ref.kind, ref.ref_ext)
        # a record retired by a reconcile keeps its id while its object still exists (deactivated): a late
        # order links to it; a deleted one has no id and is pushed again
        if row is not None and row.dolibarr_id:
            self._ids.put(ref, row.dolibarr_id)
            return row.dolibarr_id
        return None

    async def ensure_item(self, shop: ShopSettings, item: Item) -> int:
        """Like :meth:`ensure` for an object already read and mapped (an order's customer, its addresses):
        its Dolibarr id, pushing it once (single-flight by its ``Ref``) when it is not synced yet."""
        ref = Ref(item.payload.kind, item.payload.ref_ext)
        known = await self._known_id(ref)
        if known is not None:
            return known
        return await self._flights.run(ref, lambda: self._push_loaded(shop, ref, item))

    async def _load_and_push(self, shop: ShopSettings, ref: Ref) -> int:
        token, ps_id = ps_id_of(ref, shop.name)
        resource = self._loaders.get(token)
        if resource is None:
            raise PermanentError(f"{ref.ref_ext} is not synced yet and cannot be loaded on its own")
        ctx = await self.context(shop)
        stream = self.stream(shop, resource)
        records = await stream.fetch([stream.source_id(ref.kind, ps_id)])
        batch = await stream.batch(records, ctx)
        item = next((i for i in batch.items if i.payload.ref_ext == ref.ref_ext), None)
        if item is None:
            if batch.failures:
                raise PermanentError(f"{ref.ref_ext}: {batch.failures[0].error}")
            raise SourceGone(f"{ref.ref_ext}: not found in the shop")
        return await self._push_loaded(shop, ref, item)

    async def _push_loaded(self, shop: ShopSettings, ref: Ref, item: Item) -> int:
        ids = await self._ensure_all(shop, dependencies(item.payload), item)
        known = await self.store.record(shop.name, item.kind, item.ps_id)
        outcome, object_id = await self.writer(shop.name).push(item, known, ids)
        if outcome is not Outcome.UNCHANGED and len(self._dependency_outcomes) < 10_000:
            self._dependency_outcomes[ref] = outcome
        self._ids.put(ref, object_id)
        return object_id

    # ---------------------------------------------------------------------------------------- failures
    async def _file_failure(
        self,
        shop: str,
        resource: str,
        kind: str,
        ps_id: str,
        error: SyncError | MappingError | BaseException,
        payload: Any = None,
    ) -> None:
        if isinstance(error, MappingError):
            where = Where(shop=shop, resource=resource, record_id=ps_id, field=error.field)
            message = f"cannot map {kind} {ps_id}: {error.reason} [{where.render()}]"
        else:
            message = str(error)
        failure = await self.store.record_failure(
            shop,
            resource,
            kind,
            ps_id,
            error_class=type(error).__name__,
            message=message,
            payload=payload,
            backoff_s=self.settings.retry.failure_backoff_s,
        )
        log.warning(
            "record.failed",
            shop=shop,
            resource=resource,
            kind=kind,
            ps_id=ps_id,
            error=message,
            attempts=failure.attempts,
        )

    async def _retry_failures(
        self, shop: ShopSettings, stream: Stream, ctx: ShopContext, report: PassReport
    ) -> None:
        """Failures whose backoff is over are read again from the shop and pushed with the pass."""
        due = await self.store.failures(shop.name, due_before=time.time(), resource=stream.resource)
        if not due:
            return
        sources = sorted({stream.source_id(f.kind, f.ps_id) for f in due})
        records = await stream.fetch(sources)
        found = {str(r.get("id")) for r in records}
        for failure in due:
            if stream.source_id(failure.kind, failure.ps_id) not in found:
                log.info("failure.source_gone", shop=shop.name, kind=failure.kind, ps_id=failure.ps_id)
                await self.store.forget_failure(failure.id)
        batch = await stream.batch(records, ctx)
        # A record-level failure (mapping, reading) whose record now maps is over; item-level failures are
        # cleared by their own successful push.
        still_failing = {f.ps_id for f in batch.failures}
        item_ids = {item.ps_id for item in batch.items}
        for failure in due:
            if (
                failure.ps_id in found
                and failure.ps_id not in still_failing
                and failure.ps_id not in item_ids
            ):
                await self.store.forget_failure(failure.id)
        await self.push_batch(shop, stream.resource, batch, report)

    # ------------------------------------------------------------------------------------------ helpers
    async def run_many(
        self,
        jobs: Sequence[tuple[str, str]],
        *,
        on_done: Callable[[PassReport], Awaitable[None]] | None = None,
    ) -> list[PassReport]:
        """One pass per job, each once the earlier ones it depends on ended (rounds.py: the given order is the
        dependency order; independent chains, customers beside the catalog, run side by side)."""
        return await run_round(jobs, self.run_pass, stopping=self.stopping, on_done=on_done)
