"""Pushing one mapped record to Dolibarr, exactly once.

The :class:`ObjectWriter` is where idempotency lives:

1. A record whose payload hash equals the stored one is skipped (no request at all).
2. A record with no local mapping is first looked for by ``ref_ext`` (from the pass's bulk index when there is
   one, else one lookup), so a crash between Dolibarr's answer and our commit never creates a duplicate. The
   object found is adopted with only the parts written that it does not hold already (the port compares:
   ``DolibarrPort.unchanged_parts``), so a lost state file costs no write for what did not change.
3. A create whose outcome is unknown (:class:`AmbiguousWrite`) is looked up by ``ref_ext`` again before any
   retry.
4. A product ref already taken by another object gets the next free suffix (``-1``, ``-2``...), and the ref
   handed out is stored so it stays the same on later syncs.
5. The outcome (Dolibarr id, ref, hash, sub-hashes) is committed in one transaction with the failure cleared.

Sub-hashes in ``records.state`` let an update touch only what changed: a product moved to another category
costs the category link calls, not a product PUT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import structlog

from service.dolibarr.errors import DatabaseBusy, RefAlreadyExists
from service.dolibarr.model import (
    ImagesPayload,
    ProductPayload,
    Ref,
    StockPayload,
    ThirdpartyPayload,
    canonical,
    payload_hash,
)
from service.dolibarr.port import DolibarrPort, RemoteObject
from service.engine.lanes import Lanes
from service.errors import AmbiguousWrite, ConfigError, NotFound, PermanentError, SyncError
from service.mapping.catalog import numbered_ref, own_ref
from service.state.store import RecordRow, StateStore

log = structlog.get_logger("ps2doli.writer")

_T = TypeVar("_T")


def may_still_run(exc: SyncError) -> bool:
    """Whether a write that raised ``exc`` may still be running in Dolibarr: no answer came (a timeout, a cut
    connection) or a gateway gave up waiting (504). Any other answer ends the request."""
    return isinstance(exc, AmbiguousWrite) and exc.status in (None, 504)


AMBIGUOUS_RETRIES = 3
MAX_REF_SUFFIX = 50
BUSY_BASE_DELAY_S = 0.2
# record kinds that are not Dolibarr objects with a ref_ext (pushed by service.engine.catalog_writer)
SIDE_KINDS = frozenset({"stock", "images"})


class Outcome(Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Item:
    """One thing to push: a mapped payload and where it came from."""

    resource: str  # the shop resource it was read from (failures are filed under it)
    kind: str  # records.kind
    ps_id: str
    payload: Any  # a payload dataclass from service.dolibarr.model

    @property
    def hash(self) -> str:
        return payload_hash(self.payload)


def _sub_hashes(payload: Any) -> dict[str, str]:
    """Parts of a payload that are pushed by separate calls, hashed separately."""
    if isinstance(payload, ProductPayload):
        core = dataclasses.replace(payload, categories=())
        subs = {"core": payload_hash(core), "categories": payload_hash(payload.categories)}
        if payload.variant_of is not None:
            impacts = (payload.variant_price_impact, payload.variant_weight_impact)
            subs["variant"] = payload_hash(impacts)
        return subs
    return {"core": payload_hash(payload)}


class ObjectWriter:
    def __init__(self, shop: str, port: DolibarrPort, store: StateStore, lanes: Lanes) -> None:
        self.shop = shop
        self.port = port
        self.store = store
        self.lanes = lanes
        # ref_ext -> remote object, filled by a bulk lookup at the start of a pass (initial syncs) and by each
        # create; an entry leaves once its record is committed (``_commit``): the state maps it from then on, and
        # ``find`` reads it there. What stays is what Dolibarr holds and the state does not (yet): a listing's
        # objects not adopted yet, an object created whose commit failed - not one entry per object synced.
        self.index: dict[str, RemoteObject] = {}
        self.indexed_kinds: set[str] = set()
        self._index_lock = asyncio.Lock()  # one listing per kind, however many pushes ask for it at once
        # the shop's client (a PrestaShopClient), for what a payload names but does not carry: image bytes
        self.source: Any = None
        # (kind, ps_id) of products just attached to another shop's product (shared_refs)
        self._shared: dict[tuple[str, str], bool] = {}
        # product refs (casefolded, as Dolibarr's unique key compares) a create of this writer is sending and the
        # state does not hold yet: products of one page are pushed side by side, and two under one reference
        # would otherwise both send it, one to be refused (a request and a look-up per number each)
        self._refs_claimed: dict[tuple[str, str], str] = {}
        # after an ambiguous create that a lookup does not find, wait this long and look again before creating
        # again: a create that timed out may still be running in Dolibarr (its late write would be a duplicate)
        self.settle_s = 0.0
        # writes an earlier process sent and never committed (``writes_sent``), read at the first write: ref_ext ->
        # sent_at; each is looked for once, before this process writes it again (``landed_earlier``)
        self._earlier: dict[str, float] | None = None
        self._earlier_lock = asyncio.Lock()

    async def load_index(self, kind: str) -> None:
        """Bulk lookup of every object of ``kind`` this shop owns in Dolibarr (one paged listing)."""
        if kind in self.indexed_kinds or kind in SIDE_KINDS:
            return
        async with self._index_lock:
            if kind in self.indexed_kinds:
                return
            found = await self.port.list_ref_ext(kind, f"ps-{self.shop}-")  # type: ignore[arg-type]
            # update, never replace: an object created while the listing ran is already in (create_once)
            self.index.update(found)
            self.indexed_kinds.add(kind)

    async def find(self, kind: str, ref_ext: str, *, fresh: bool = False) -> RemoteObject | None:
        """The Dolibarr object holding ``ref_ext`` (from the bulk index when this kind was listed, unless
        ``fresh``), or None.

        When the kind was listed, the index and the state together answer: an object listed or created in this
        process is in the index until its record is committed, then in the state (an index miss costs one SQLite
        read, never a Dolibarr request, and is "not there" only when neither holds it)."""
        if not fresh and kind in self.indexed_kinds:
            found = self.index.get(ref_ext)
            if found is not None:
                return found
            row = await self.store.record_by_ref_ext(kind, ref_ext)
            if row is None or not row.dolibarr_id:
                return None
            return RemoteObject(id=row.dolibarr_id, ref=row.ref, ref_ext=ref_ext)
        return await self.port.find_by_ref_ext(kind, ref_ext)  # type: ignore[arg-type]

    async def landed_earlier(
        self, kind: str, ref_ext: str, look: Callable[[], Awaitable[_T | None]]
    ) -> _T | None:
        """What a write of ``ref_ext`` made that an earlier process sent and never committed, or None.

        A process stopped (SIGKILL, OOM, power cut) while its create was in flight: Dolibarr may still be running
        that request and commit it after the next process looked the object up and missed it - a duplicate
        (real pair, SOAP: an invoice made twice after a kill). So when ``writes_sent`` names ``ref_ext``, ``look``
        runs, and again with growing pauses until the write must be over (``settle_s`` after it was sent). Only
        for the writes a stopped process left: this process's own are looked up by ``create_once``."""
        if self._earlier is None:
            async with self._earlier_lock:
                if self._earlier is None:
                    self._earlier = await self.store.writes_sent(self.shop)
        sent_at = self._earlier.pop(ref_ext, None)
        if sent_at is None:
            return None
        deadline = sent_at + self.settle_s
        pause = 0.5
        while True:
            found = await look()
            if found is not None or time.time() >= deadline:
                log.info(
                    "dolibarr.earlier_write",
                    shop=self.shop,
                    kind=kind,
                    ref_ext=ref_ext,
                    landed=found is not None,
                    seconds_since_sent=round(time.time() - sent_at, 1),
                )
                return found
            await asyncio.sleep(max(0.0, min(pause, deadline - time.time())))
            pause = min(pause * 2, 5.0)

    async def note_sent(self, kind: str, ref_ext: str) -> None:
        """Committed before a create or a payment is sent: a process stopped before its record's commit leaves
        it for the next one (``landed_earlier``); the record's commit deletes it."""
        await self.store.note_write_sent(self.shop, kind, ref_ext, time.time())

    async def push(self, item: Item, known: RecordRow | None, ids: Mapping[Ref, int]) -> tuple[Outcome, int]:
        """Create or update one object. Returns the outcome and the Dolibarr id. Raises the error family."""
        payload = item.payload
        if isinstance(payload, StockPayload | ImagesPayload):
            from service.engine.catalog_writer import push_side  # stock and image files

            return await push_side(self, item, known, ids)
        digest = item.hash
        subs = _sub_hashes(payload)
        if known is not None and known.hash == digest and known.dolibarr_id and not known.deleted:
            return Outcome.UNCHANGED, known.dolibarr_id

        if known is not None and known.dolibarr_id:
            object_id = known.dolibarr_id
            ref = known.ref
            state = json.loads(known.state or "{}") if known.state.startswith("{") else {}
            previous = state.get("subs", {})
            if state.get("shared") and isinstance(payload, ProductPayload) and not known.deleted:
                # shared_refs: the product belongs to the shop that created it; this one adds its links only
                await self._share(item, payload, object_id, ref, ids)
                await self._commit(item, object_id, ref, digest, subs, shared=True)
                return Outcome.UPDATED, object_id
            try:
                ref, _ = await self._update(item, object_id, ref, ids, previous, subs, known.deleted)
            except NotFound:
                # deleted in Dolibarr by hand: create it again rather than failing forever
                log.warning("dolibarr.object_vanished", shop=self.shop, kind=item.kind, ps_id=item.ps_id)
                object_id, ref = await self._create(item, ids)
                await self._commit(item, object_id, ref, digest, subs)
                return Outcome.CREATED, object_id
            await self._commit(item, object_id, ref, digest, subs)
            return Outcome.UPDATED, object_id

        existing = await self.find(item.kind, payload.ref_ext)
        if existing is None and isinstance(payload, ThirdpartyPayload) and payload.email:
            existing = await self._thirdparty_by_email(payload)
        if existing is not None:
            # no sub-hashes to compare with (a lost state file, a crash before the commit): the parts Dolibarr
            # already holds, as the port compares them, count as written; only the others are
            ref = existing.ref or getattr(payload, "ref", "")
            held = await self._held(item, existing, ref, ids)
            previous = {part: subs[part] for part in held if part in subs}
            ref, wrote = await self._update(item, existing.id, ref, ids, previous, subs, False)
            await self._commit(item, existing.id, ref, digest, subs)
            log.info(
                "dolibarr.adopted",
                shop=self.shop,
                kind=item.kind,
                ps_id=item.ps_id,
                id=existing.id,
                written=wrote,
            )
            return (Outcome.UPDATED if wrote else Outcome.UNCHANGED), existing.id

        try:
            object_id, ref = await self._create(item, ids)
            shared = self._shared.pop((item.kind, item.ps_id), False)
            await self._commit(item, object_id, ref, digest, subs, shared=shared)
        finally:
            # the state holds the ref now (or nothing was made)
            self._refs_claimed.pop((item.kind, item.ps_id), None)
        return Outcome.CREATED, object_id

    async def _held(
        self, item: Item, found: RemoteObject, ref: str, ids: Mapping[Ref, int]
    ) -> frozenset[str]:
        """The sub-parts of ``payload`` that the Dolibarr object ``found`` already holds (the port compares: the
        engine never knows field names nor formats). A product is compared with the ref it would be sent with."""
        payload = item.payload
        if isinstance(payload, ProductPayload):
            payload = dataclasses.replace(payload, ref=self._keep_ref(item, ref))
        async with self.lanes.slot():
            return frozenset(await self.port.unchanged_parts(found, payload, ids))

    async def _thirdparty_by_email(self, payload: ThirdpartyPayload) -> RemoteObject | None:
        """Never two thirdparties for one customer: a thirdparty made in Dolibarr without ps2doli (no ref_ext of
        a shop) carrying the customer's e-mail is adopted; two or more of them are ambiguous, a failure rather
        than a guess."""
        try:
            async with self.lanes.slot():
                if "thirdparty" in self.indexed_kinds:
                    # an initial pass (load_index): one listing of the thirdparties made without ps2doli
                    found = await self.port.find_foreign_thirdparties_by_email(payload.email)
                else:
                    found = await self.port.find_thirdparties_by_email(payload.email)
        except ConfigError:
            return None  # a backend that cannot look e-mails up (SOAP)
        foreign = [t for t in found if not t.ref_ext.startswith("ps-")]
        if len(foreign) > 1:
            raise PermanentError(
                f"Dolibarr already has {len(foreign)} thirdparties with the e-mail {payload.email!r} "
                f"(ids {', '.join(str(t.id) for t in foreign)}) that ps2doli did not create: set the ref_ext "
                f"of the right one to {payload.ref_ext} (or merge them) and retry"
            )
        if foreign:
            log.info(
                "dolibarr.thirdparty_matched_by_email",
                shop=self.shop,
                id=foreign[0].id,
                ref_ext=payload.ref_ext,
            )
        return foreign[0] if foreign else None

    async def save_record(
        self, kind: str, ps_id: str, *, dolibarr_id: int | None, ref_ext: str, **fields: Any
    ) -> None:
        """Commit a record the orders pass wrote (``StateStore.save_record``); its object leaves the index, as in
        ``_commit``: the state maps it from then on."""
        await self.store.save_record(
            self.shop, kind, ps_id, dolibarr_id=dolibarr_id, ref_ext=ref_ext, **fields
        )
        if dolibarr_id:
            self.index.pop(ref_ext, None)

    async def _commit(
        self, item: Item, object_id: int, ref: str, digest: str, subs: dict[str, str], *, shared: bool = False
    ) -> None:
        ref_ext = item.payload.ref_ext
        if not shared:
            # in the index until the state holds it: a commit that fails leaves it there for a later look-up
            self.index[ref_ext] = RemoteObject(id=object_id, ref=ref, ref_ext=ref_ext)
        await self.store.save_record(
            self.shop,
            item.kind,
            item.ps_id,
            dolibarr_id=object_id,
            ref_ext=item.payload.ref_ext,
            ref=ref,
            hash=digest,
            state=json.dumps({"subs": subs, "shared": True} if shared else {"subs": subs}),
        )
        if not shared:
            self.index.pop(ref_ext, None)  # the state maps it now (``find`` reads it there)

    # ------------------------------------------------------------------------------------------ create
    async def _create(self, item: Item, ids: Mapping[Ref, int]) -> tuple[int, str]:
        payload = item.payload
        if isinstance(payload, ProductPayload):
            return await self._create_product(item, payload, ids)
        object_id = await self.create_once(item, payload, ids)
        return object_id, ""

    async def create_once(
        self,
        item: Item,
        payload: Any,
        ids: Mapping[Ref, int],
        make: Callable[[], Awaitable[int]] | None = None,
    ) -> int:
        """One create, made safe against ambiguous outcomes: look up by ref_ext before each retry. ``make``: the
        port call that creates it, when not ``port.create`` (an invoice made from its order).

        The object created is in the bulk index at once (as ``_commit`` puts it; also when the listing of its kind
        is running now) until its record is committed: a look-up from the index later in this process (after its
        record's commit failed, say) finds it there, as a fresh look-up would; after the commit, in the state."""
        object_id = await self._create_once(item, payload, ids, make)
        self.index[payload.ref_ext] = RemoteObject(id=object_id, ref_ext=payload.ref_ext)
        return object_id

    async def _create_once(
        self,
        item: Item,
        payload: Any,
        ids: Mapping[Ref, int],
        make: Callable[[], Awaitable[int]] | None,
    ) -> int:
        ref_ext = payload.ref_ext
        earlier = await self.landed_earlier(
            item.kind, ref_ext, lambda: self.find(item.kind, ref_ext, fresh=True)
        )
        if earlier is not None:
            return earlier.id
        try:
            return await self._send_create(item, payload, ids, make)
        except SyncError as exc:
            if not may_still_run(exc):  # answered or never sent: no later process needs to wait for it
                await self.store.forget_write_sent(self.shop, ref_ext)
            raise

    async def _send_create(
        self,
        item: Item,
        payload: Any,
        ids: Mapping[Ref, int],
        make: Callable[[], Awaitable[int]] | None,
    ) -> int:
        ref_ext = payload.ref_ext
        for attempt in range(AMBIGUOUS_RETRIES + 1):
            try:
                async with self.lanes.slot():
                    # in the slot: noted when it is sent, not while it waits for one (a write never sent
                    # would make the next process wait for it)
                    await self.note_sent(item.kind, ref_ext)
                    if make is not None:
                        return await make()
                    # thirdparties are created in parallel: we never send code_client "auto", the only thing
                    # that races (reference quirks: without it, 8 concurrent creates all succeed)
                    if isinstance(payload, ProductPayload) and payload.variant_of is not None:
                        parent_id = ids[payload.variant_of]
                        return await self.port.create_variant(
                            parent_id, payload.variant_features, payload, ids
                        )
                    return await self.port.create(payload, ids)
            except DatabaseBusy as exc:
                # a deadlock rolled the create back; the lookup makes the retry safe all the same
                found = await self.find(item.kind, payload.ref_ext, fresh=True)
                if found is not None:
                    return found.id
                if attempt == AMBIGUOUS_RETRIES:
                    # this record only: into the failure queue, the pass goes on
                    raise PermanentError(
                        f"still refused after {attempt + 1} tries: {exc.message}",
                        where=exc.where,
                        status=exc.status,
                    ) from None
                delay = busy_delay(attempt)
                log.info(
                    "dolibarr.busy_retry",
                    shop=self.shop,
                    kind=item.kind,
                    ps_id=item.ps_id,
                    delay_s=round(delay, 2),
                    error=exc.message,
                )
                await asyncio.sleep(delay)
            except AmbiguousWrite as exc:
                found = await self.find(item.kind, ref_ext, fresh=True)
                if found is None and self.settle_s > 0 and exc.status in (None, 504):
                    # not there (yet): with no answer (a timeout, a broken connection) or a gateway timeout, the
                    # create may still be running; creating again now would make a second object once it lands.
                    # (An answered 5xx means the request is over: no wait.)
                    await asyncio.sleep(self.settle_s)
                    found = await self.find(item.kind, payload.ref_ext, fresh=True)
                log.warning(
                    "dolibarr.ambiguous_write",
                    shop=self.shop,
                    kind=item.kind,
                    ps_id=item.ps_id,
                    found=found is not None,
                    error=exc.message,
                )
                if found is not None:
                    return found.id
                if attempt == AMBIGUOUS_RETRIES:
                    raise
        raise AssertionError("unreachable")

    async def _create_product(
        self, item: Item, payload: ProductPayload, ids: Mapping[Ref, int]
    ) -> tuple[int, str]:
        base = payload.ref
        for n, candidate in enumerate(_ref_candidates(base, self.shop, item.ps_id)):
            owner = await self.store.record_by_ref("product", candidate)
            if owner is not None and (owner.shop, owner.ps_id) != (self.shop, item.ps_id):
                if n == 0 and payload.ref_shared and owner.shop != self.shop and owner.dolibarr_id:
                    self._shared[(item.kind, item.ps_id)] = True
                    return await self._share(item, payload, owner.dolibarr_id, candidate, ids)
                continue  # one of ours already holds it (another product, or another shop)
            if candidate.casefold() in self._refs_claimed.values():
                continue  # another create of this writer is sending it
            self._refs_claimed[(item.kind, item.ps_id)] = candidate.casefold()
            try:
                object_id = await self.create_once(item, dataclasses.replace(payload, ref=candidate), ids)
            except RefAlreadyExists:
                # our own create of this record may have landed late (after a timeout and a lookup that missed
                # it): asked by ref_ext, one request whatever the ref is (a ref with quotes or parentheses can
                # be looked up neither by path nor by sqlfilters: that was a listing of every product)
                landed = await self.find(item.kind, payload.ref_ext, fresh=True)
                if landed is not None:
                    log.warning("dolibarr.create_landed_late", shop=self.shop, ps_id=item.ps_id, id=landed.id)
                    held = landed.ref or candidate
                    async with self.lanes.slot():
                        await self.port.update(landed.id, dataclasses.replace(payload, ref=held), ids)
                    await self._sync_categories(landed.id, payload.categories, ids, created=False)
                    return landed.id, held
                if n == 0 and payload.ref_shared:
                    found = await self._shareable(candidate)
                    if found is not None and found.ref_ext:
                        self._shared[(item.kind, item.ps_id)] = True
                        return await self._share(item, payload, found.id, candidate, ids)
                    if found is not None:
                        # made in Dolibarr, with the shop's reference: this shop takes it over
                        log.info("dolibarr.ref_adopted", shop=self.shop, ps_id=item.ps_id, id=found.id)
                        async with self.lanes.slot():
                            await self.port.update(found.id, dataclasses.replace(payload, ref=candidate), ids)
                        await self._sync_categories(found.id, payload.categories, ids, created=False)
                        return found.id, candidate
                continue
            if n:
                log.info(
                    "dolibarr.ref_taken",
                    shop=self.shop,
                    ps_id=item.ps_id,
                    wanted=base,
                    given=candidate,
                )
            await self._sync_categories(object_id, payload.categories, ids, created=True)
            return object_id, candidate
        raise PermanentError(
            f"product ref {base!r}, its {MAX_REF_SUFFIX} numbered alternatives and "
            f"{own_ref(base, self.shop, item.ps_id)!r} are all taken in Dolibarr"
        )

    async def _shareable(self, ref: str) -> RemoteObject | None:
        """With ``shared_refs``: the Dolibarr product holding ``ref`` when it may be this product too - one
        made in Dolibarr (no ref_ext) or one of another of our shops; never another product of this shop."""
        found = await self.port.find_product_by_ref(ref)
        if found is None:
            return None
        if found.ref_ext.startswith(f"ps-{self.shop}-"):
            return None
        if found.ref_ext and not (found.ref_ext.startswith("ps-") and "-product-" in found.ref_ext):
            return None
        return found

    async def _share(
        self, item: Item, payload: ProductPayload, object_id: int, ref: str, ids: Mapping[Ref, int]
    ) -> tuple[int, str]:
        """``shared_refs``: the same reference in two shops is one Dolibarr product. Its ref_ext stays the first
        shop's; this shop's record points at it, and its categories are added (never removed: the other
        shop's links are the other shop's)."""
        log.info("dolibarr.ref_shared", shop=self.shop, ps_id=item.ps_id, ref=ref, id=object_id)
        target = {ids[r] for r in payload.categories if r in ids}
        async with self.lanes.slot():
            current = await self.port.object_categories("product", object_id)
            for category_id in sorted(target - current):
                await self.port.link_category(category_id, "product", object_id)
        return object_id, ref

    # ------------------------------------------------------------------------------------------ update
    async def _update(
        self,
        item: Item,
        object_id: int,
        ref: str,
        ids: Mapping[Ref, int],
        previous: Mapping[str, str],
        subs: Mapping[str, str],
        reactivate: bool,
    ) -> tuple[str, bool]:
        """Write the parts whose sub-hash differs from ``previous``. Returns the ref and whether it wrote."""
        payload = item.payload
        wrote = False
        if isinstance(payload, ProductPayload):
            ref = self._keep_ref(item, ref)
            parent = payload.variant_of
            changed = "variant" in subs and previous.get("variant") != subs["variant"]
            if parent is not None and parent in ids and changed:
                # the impacts live on Dolibarr's combination: every save of the parent recomputes the child
                # from them (updateProperties), so they are set there, never by posting the features again
                async with self.lanes.slot():
                    await self.port.update_variant(ids[parent], object_id, payload, ids)
                wrote = True
            if previous.get("core") != subs["core"] or reactivate:
                async with self.lanes.slot():
                    await self.port.update(object_id, dataclasses.replace(payload, ref=ref), ids)
                wrote = True
            if previous.get("categories") != subs["categories"]:
                wrote = (
                    await self._sync_categories(object_id, payload.categories, ids, created=False) or wrote
                )
            return ref, wrote
        if previous.get("core") != subs["core"] or reactivate:
            async with self.lanes.slot():
                await self.port.update(object_id, payload, ids)
            wrote = True
        return ref, wrote

    def _keep_ref(self, item: Item, given: str) -> str:
        """Keep the ref handed out earlier while the shop's reference is the same (``base``, ``base-N`` or
        ``base-<shop>-<ps_id>``)."""
        base: str = item.payload.ref
        if given and (
            given == base or _is_numbered(base, given) or given == own_ref(base, self.shop, item.ps_id)
        ):
            return given
        return base

    async def _sync_categories(
        self, object_id: int, wanted: tuple[Ref, ...], ids: Mapping[Ref, int], *, created: bool
    ) -> bool:
        """Link and unlink what differs from Dolibarr's links (read first). True when it wrote."""
        target = {ids[ref] for ref in wanted if ref in ids}
        wrote = False
        async with self.lanes.slot():
            current = set() if created else await self.port.object_categories("product", object_id)
            for category_id in sorted(target - current):
                await self.port.link_category(category_id, "product", object_id)
                wrote = True
            for category_id in sorted(current - target):
                if await self._is_ours("category", category_id):
                    await self.port.unlink_category(category_id, "product", object_id)
                    wrote = True
        return wrote

    async def _is_ours(self, kind: str, dolibarr_id: int) -> bool:
        """Links to categories an ERP user made by hand are left alone."""
        return await self.store.record_by_dolibarr_id(kind, dolibarr_id) is not None


def busy_delay(attempt: int) -> float:
    """Full-jitter backoff after a deadlock (0.2 s, 0.4 s, 0.8 s ... at most): concurrent losers spread out."""
    return random.random() * BUSY_BASE_DELAY_S * float(2**attempt)


def _ref_candidates(base: str, shop: str, ps_id: str) -> Iterator[str]:
    """``base``, ``base-1`` ... ``base-50``, then ``base-<shop>-<ps_id>``: each made only when the one before is
    taken (the first is nearly always free, and cleaning a ref is not free)."""
    for n in range(MAX_REF_SUFFIX + 1):
        yield numbered_ref(base, n)
    yield own_ref(base, shop, ps_id)


def _is_numbered(base: str, given: str) -> bool:
    return any(numbered_ref(base, n) == given for n in range(1, MAX_REF_SUFFIX + 1))


def describe(payload: Any) -> str:
    """The payload as stored with a failure (canonical JSON, no secrets: payloads never hold any)."""
    return canonical(payload)
