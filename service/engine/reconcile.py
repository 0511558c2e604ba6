"""Deletions: what is gone from the shop, and what it becomes in Dolibarr.

PrestaShop keeps no tombstones (WEBSERVICE.md §8). Products, categories, combinations and orders are hard-deleted;
customers and addresses are soft-deleted (``deleted=1``, the row stays readable). A reconcile pass therefore:

1. lists every id of the resource with the id-only listing (``GET /api/products``, no ``display``: one SQL
   query, no object loaded) - plus ``combinations`` when products mapped from combinations are known, and the
   ``filter[deleted]=[1]`` id listing for soft-deleting resources;
2. compares them with the records this shop has in the state store;
3. applies the resource's ``on_delete`` policy to each record gone from the shop, and marks it
   ``records.deleted``:

   - ``deactivate`` (default): products and thirdparties/contacts get status 0; a category stays in Dolibarr
     but loses its links to our products (``deactivated``);
   - ``delete``: the object is deleted; when Dolibarr refuses (409 "probably used", a thirdparty with orders:
     :class:`~service.dolibarr.errors.ObjectInUse`) it is deactivated instead;
   - ``ignore``: Dolibarr is left alone, the record is only marked.

   Orders (and their invoices and payments) are never deleted nor changed: their disappearance is logged and
   shown by ``ps2doli status``.

A listing that would retire more than :data:`MASS_RETIRE_FRACTION` of a resource's records (an empty answer, a
wrong ``id_shop``...) is refused unless forced: a reconcile never empties a catalog by accident.

A retired record whose object still exists keeps its Dolibarr id (orders arriving late still link to the
deactivated product); a deleted one loses it (a late order would create it again, inactive). While the shop keeps
showing a soft-deleted record as deleted, passes and sweeps leave it alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from service.dolibarr.errors import ObjectInUse
from service.dolibarr.model import Ref
from service.engine.pipeline import PassReport, SyncEngine
from service.errors import NotFound, PermanentError, SyncError, Where
from service.prestashop.client import Filter, PrestaShopClient
from service.settings import ShopSettings
from service.state.store import RecordRow

log = structlog.get_logger("ps2doli.reconcile")

# refuse to retire more than this share of a kind's live records in one pass (unless forced) ...
MASS_RETIRE_FRACTION = 0.5
# ... once there are at least this many to retire
MASS_RETIRE_MIN = 10

SourceKey = tuple[int, int]  # (id in the listed resource, id in the sub-resource or 0)


def _plain_id(ps_id: str) -> SourceKey | None:
    return (int(ps_id), 0) if ps_id.isdigit() else None


def _product_id(ps_id: str) -> SourceKey | None:
    """``12`` -> (12, 0); ``12-3`` (combination 3 of product 12) -> (12, 3)."""
    main, _, sub = ps_id.partition("-")
    if not main.isdigit() or (sub and not sub.isdigit()):
        return None
    return int(main), int(sub or 0)


def _prefixed(prefix: str) -> Callable[[str], SourceKey | None]:
    """``customer-7`` -> (7, 0); guests (``guest-<digest>``, one thirdparty per e-mail) -> None: not one
    record of the shop, never retired."""

    def parse(ps_id: str) -> SourceKey | None:
        if ps_id.startswith(prefix):
            return _plain_id(ps_id.removeprefix(prefix))
        return _plain_id(ps_id)

    return parse


@dataclass(frozen=True)
class Target:
    """One kind of record checked against one PrestaShop listing."""

    kind: str  # records.kind
    source: str  # the PrestaShop resource listed by id
    parse: Callable[[str], SourceKey | None]
    sub_source: str = ""  # listed when a record names a sub-id (combinations of products)
    soft_delete: bool = False  # rows stay readable with deleted=1


@dataclass(frozen=True)
class ReconcileSpec:
    targets: tuple[Target, ...]
    report_only: bool = False  # orders: never mirrored, only reported


RECONCILE: dict[str, ReconcileSpec] = {
    "categories": ReconcileSpec((Target("category", "categories", _plain_id),)),
    "products": ReconcileSpec((Target("product", "products", _product_id, sub_source="combinations"),)),
    "customers": ReconcileSpec(
        (
            Target("thirdparty", "customers", _prefixed("customer-"), soft_delete=True),
            Target("contact", "addresses", _prefixed("address-"), soft_delete=True),
        )
    ),
    "orders": ReconcileSpec((Target("order", "orders", _plain_id),), report_only=True),
}


@dataclass(frozen=True)
class Gone:
    row: RecordRow
    reason: str


class MassDeletionRefused(SyncError):
    """The listing would retire too much at once: probably a wrong listing, not a wrong catalog."""


def retired_state(row: RecordRow, outcome: str) -> str:
    """``records.state`` of a retired record: what was there, plus how it was retired and when."""
    try:
        state = json.loads(row.state) if row.state.startswith("{") else {}
    except ValueError:
        state = {}
    state["retired"] = outcome
    state["retired_at"] = int(time.time())
    return json.dumps(state, sort_keys=True)


class Reconciler:
    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine

    async def run(self, shop_name: str, resource: str, *, force: bool = False) -> PassReport:
        shop = self.engine.settings.shop(shop_name)
        async with self.engine.pass_lock(shop_name, resource):
            return await self._run(shop, resource, force)

    async def _run(self, shop: ShopSettings, resource: str, force: bool) -> PassReport:
        engine = self.engine
        report = PassReport(shop.name, resource, mode="reconcile")
        spec = RECONCILE.get(resource)
        run_id = await engine.store.start_run(shop.name, resource, mode="reconcile")
        bound = log.bind(shop=shop.name, resource=resource)
        try:
            if spec is None:
                report.outcome = "ok"
                report.error = f"{resource}: nothing to reconcile (kept in step by its own sweep)"
            else:
                if resource == "categories" and not (await engine.context(shop)).categories_enabled:
                    report.outcome = "ok"
                else:
                    gone = await self.find_gone(shop, spec)
                    if not force:
                        await self._guard(shop, gone)
                    messages: list[str] = []
                    for item in gone:
                        outcome = await self.retire(shop, resource, item, report_only=spec.report_only)
                        report.deleted += 1
                        if len(messages) < 20:
                            messages.append(f"{item.row.kind} {item.row.ps_id}: {outcome}")
                    report.error = "; ".join(messages)
                    report.outcome = "ok"
        except MassDeletionRefused as exc:
            report.outcome = "refused"
            report.error = str(exc)
            bound.error("reconcile.refused", error=str(exc))
        except SyncError as exc:
            error = report.end_with_error(exc)
            bound.error("reconcile.failed", error=str(error), kind=type(exc).__name__)
        finally:
            if report.outcome == "running":
                report.outcome = "stopped"
        await engine.finish_run(run_id, report)
        bound.info("reconcile.done", outcome=report.outcome, retired=report.deleted)
        return report

    # ---------------------------------------------------------------------------------------- finding
    async def find_gone(self, shop: ShopSettings, spec: ReconcileSpec) -> list[Gone]:
        client = self.engine.clients[shop.name]
        gone: list[Gone] = []
        for target in spec.targets:
            rows = {
                ps_id: row
                for ps_id, row in (await self.engine.store.records(shop.name, target.kind)).items()
                if not row.deleted
            }
            keyed = {ps_id: key for ps_id, row in rows.items() if (key := target.parse(ps_id)) is not None}
            if not keyed:
                continue  # nothing of this kind synced: no listing needed
            present = set(await client.ids(target.source))
            subs: set[int] = set()
            if target.sub_source and any(sub for _, sub in keyed.values()):
                subs = set(await client.ids(target.sub_source))
            soft: set[int] = set()
            if target.soft_delete:
                soft = set(await _soft_deleted(client, target.source))
            # children (combinations) before their parent
            for ps_id in sorted(keyed, key=lambda p: (keyed[p][1] == 0, keyed[p])):
                main, sub = keyed[ps_id]
                if main not in present:
                    reason = f"{target.source} {main} is no longer in the shop"
                elif sub and sub not in subs:
                    reason = f"{target.sub_source} {sub} of {target.source} {main} is no longer in the shop"
                elif main in soft:
                    reason = f"{target.source} {main} is deleted in the shop (deleted=1)"
                else:
                    continue
                gone.append(Gone(rows[ps_id], reason))
        return gone

    async def _guard(self, shop: ShopSettings, gone: Sequence[Gone]) -> None:
        by_kind: dict[str, int] = {}
        for item in gone:
            by_kind[item.row.kind] = by_kind.get(item.row.kind, 0) + 1
        for kind, count in by_kind.items():
            live = await self.engine.store.count_records(shop.name, kind)
            if count >= MASS_RETIRE_MIN and count > live * MASS_RETIRE_FRACTION:
                raise MassDeletionRefused(
                    f"the shop's listing would retire {count} of {live} {kind} records at once; this looks like "
                    "a wrong listing (id_shop, permissions, a proxy) rather than a real deletion. Check the shop, "
                    f"then run 'ps2doli reconcile --shop {shop.name} --force' to apply it",
                    where=Where(shop=shop.name, resource=kind),
                )

    # --------------------------------------------------------------------------------------- retiring
    async def retire(
        self, shop: ShopSettings, resource: str, item: Gone, *, report_only: bool = False
    ) -> str:
        """Apply the policy to one record gone from the shop; returns what was done."""
        row = item.row
        policy = "report" if report_only else shop.resources[resource].on_delete
        object_id = row.dolibarr_id
        outcome = "ignored"
        if policy == "report":
            outcome = "reported"
            log.warning(
                "record.gone_from_shop",
                shop=shop.name,
                kind=row.kind,
                ps_id=row.ps_id,
                dolibarr_id=object_id,
                reason=item.reason,
                hint="orders are never deleted in Dolibarr: check why the shop lost it",
            )
        elif object_id and policy == "delete":
            outcome = await self._delete(row.kind, object_id)
        elif object_id and policy == "deactivate":
            outcome = await self._deactivate(shop, row.kind, object_id)
        kept_id = None if outcome == "deleted" else object_id
        await self.engine.store.save_record(
            shop.name,
            row.kind,
            row.ps_id,
            dolibarr_id=kept_id,
            ref_ext=row.ref_ext,
            ref=row.ref,
            hash=row.hash,
            state=retired_state(row, outcome),
            deleted=True,
        )
        if row.ref_ext:
            self.engine.forget(shop.name, Ref(row.kind, row.ref_ext))  # type: ignore[arg-type]
        if policy != "report":
            log.info(
                "record.retired",
                shop=shop.name,
                kind=row.kind,
                ps_id=row.ps_id,
                dolibarr_id=object_id,
                policy=policy,
                outcome=outcome,
                reason=item.reason,
            )
        return outcome

    async def _delete(self, kind: str, object_id: int) -> str:
        port = self.engine.port
        try:
            async with self.engine.lanes.slot():
                await port.delete(kind, object_id)  # type: ignore[arg-type]
        except ObjectInUse as exc:
            log.info(
                "dolibarr.delete_refused", kind=kind, id=object_id, error=exc.message, fallback="deactivate"
            )
            return await self._deactivate_object(kind, object_id)
        except NotFound:
            pass  # already gone
        return "deleted"

    async def _deactivate(self, shop: ShopSettings, kind: str, object_id: int) -> str:
        if kind != "category":
            return await self._deactivate_object(kind, object_id)
        # a Dolibarr category has no status: it stays, but our products leave it
        port = self.engine.port
        async with self.engine.lanes.slot():
            linked = await port.category_objects(object_id, "product")
        for product_id in sorted(linked):
            if await self.engine.store.record_by_dolibarr_id("product", product_id) is None:
                continue  # a product an ERP user put there by hand
            async with self.engine.lanes.slot():
                await port.unlink_category(object_id, "product", product_id)
        return "unlinked"

    async def _deactivate_object(self, kind: str, object_id: int) -> str:
        try:
            async with self.engine.lanes.slot():
                await self.engine.port.set_active(kind, object_id, False)  # type: ignore[arg-type]
        except NotFound:
            return "already gone"
        except PermanentError as exc:
            # e.g. an object kind Dolibarr cannot deactivate: the record is still marked, the admin is told
            log.warning("dolibarr.deactivate_refused", kind=kind, id=object_id, error=exc.message)
            return f"left as is ({exc.message})"
        return "deactivated"


async def _soft_deleted(client: PrestaShopClient, resource: str) -> list[int]:
    return await client.ids(resource, filters={"deleted": Filter.eq(1)})
