"""Orders into Dolibarr: the push of an :class:`OrderBundle` (what to write, in which order, exactly once); what
is read for it is ``order_streams.py``.

One order's push, each step idempotent and remembered in the state database, so that a crash or a transient error
anywhere makes the next pass redo only what is missing:

1. its customer (thirdparty) and invoice/delivery addresses (contacts), ensured once even when 50 orders need
   them at the same moment (the engine's single-flight by ``Ref``); its products and the shipping / discount /
   gift-wrapping services, loaded and pushed when not synced yet (a product gone from the shop becomes a
   described free-text line and a warning);
2. the order document (created as a draft with its lines in one call; looked up by ``ref_ext`` first);
3. its status (validated / closed), validations one at a time (``order-validate`` lane);
4. a totals check: Dolibarr's total (from the validation's answer, else read back) recorded (``order_totals``);
5. its invoice when the order reached an invoicing state (``createfromorder``), validated one at a time;
6. its payments, each once (state per payment, and a look-up in the invoice's payments after an ambiguous write),
   one at a time (``payment`` lane);
7. credit notes for credit slips and for a cancellation after invoicing;
8. a cancellation (a draft is deleted; Dolibarr 20's REST API cannot cancel a validated order: a recorded
   failure tells the admin to do it by hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import structlog

from service.dolibarr.model import (
    DocumentPayload,
    DocumentStatus,
    PaymentPayload,
    Ref,
    ThirdpartyPayload,
    payload_hash,
)
from service.dolibarr.port import Capabilities, DocumentTotals
from service.engine.lanes import Lanes, SingleFlight
from service.engine.order_streams import AddressStream, OrderStream, ServiceStream
from service.engine.pipeline import DependencyFailed, SourceGone, SyncEngine
from service.engine.writer import AMBIGUOUS_RETRIES, Item, ObjectWriter, Outcome, may_still_run
from service.errors import AmbiguousWrite, ConfigError, NotFound, PermanentError, SyncError, TransientError
from service.mapping.orders import (
    ALL_PARTS,
    OrderBundle,
    in_main_currency,
    invoice_ref,
    order_ref,
    without_contacts,
)
from service.settings import ShopSettings
from service.state import order_totals
from service.state.store import RecordRow

log = structlog.get_logger("ps2doli.orders")


def _state(row: RecordRow | None) -> dict[str, Any]:
    if row is None or not row.state.startswith("{"):
        return {}
    try:
        data = json.loads(row.state)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# ------------------------------------------------------------------------------------------------- push


@dataclasses.dataclass
class _Work:
    """What one order's push did (for its outcome) and remembers (for the next one)."""

    state: dict[str, Any]
    created: bool = False
    writes: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)
    # the invoice this push created: no payment of an earlier try can be on it (payments are not looked for)
    new_invoice: int | None = None
    # the order's totals are to be checked once its status is set (its validation may answer them)
    totals_due: bool = False
    # what is left to pay on the invoice this push created and validated (its validation's answer)
    unpaid: _Unpaid | None = None


@dataclasses.dataclass
class _Unpaid:
    """The remainder of an invoice created and validated in this push, from its validation's answer instead of a
    read: nothing was paid on it before, so it owes its total, less what this push recorded on it since. In
    another currency than the main one (where Dolibarr's remainder is in the main currency) only the first
    payment uses it."""

    invoice_id: int
    ref: str
    currency: str
    remain: Decimal
    stale: bool = False

    def as_invoice(self) -> dict[str, Any]:
        """What a read of the invoice (``GET /invoices/{id}``) tells a payment."""
        return {
            "id": self.invoice_id,
            "ref": self.ref,
            "multicurrency_code": self.currency,
            "remaintopay": str(self.remain),
        }


class OrderSync:
    """Pushes :class:`OrderBundle` items (registered with the engine as their pusher)."""

    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self._flights: SingleFlight[tuple[str, str], Outcome] = SingleFlight()
        self._address_flights: SingleFlight[tuple[str, str], bool] = SingleFlight()
        self._told: set[str] = set()  # shops told what this backend's orders leave out

    @property
    def lanes(self) -> Lanes:
        return self.engine.lanes

    async def push(self, shop: ShopSettings, item: Item, known: RecordRow | None) -> Outcome:
        bundle = item.payload
        if not isinstance(bundle, OrderBundle):
            raise PermanentError(f"not an order: {type(bundle).__name__}")
        return await self._flights.run((shop.name, bundle.ref_ext), lambda: self._push(shop, item, bundle))

    # ------------------------------------------------------------------------------------ the steps
    async def _push(
        self, shop: ShopSettings, item: Item, bundle: OrderBundle, *, again: bool = False
    ) -> Outcome:
        store = self.engine.store
        row = await store.record(shop.name, "order", item.ps_id)
        state = _state(row)
        digest = payload_hash(bundle.digest_source())
        full = set(bundle.parts) == set(ALL_PARTS)
        in_dolibarr = row is not None and bool(row.dolibarr_id) and not row.deleted
        if full and row is not None and row.hash == digest and state.get("complete"):
            return Outcome.UNCHANGED
        cancelled_before_entry = bundle.status == "cancelled" and bundle.invoice is None
        if not in_dolibarr and (not bundle.entered or cancelled_before_entry or "order" not in bundle.parts):
            # not for Dolibarr (yet): not invoiced, or cancelled before it entered. An order invoiced and then
            # cancelled before the first sync enters all the same: its invoice is in the shop's books, so it is
            # made, invoiced, credited and cancelled in Dolibarr
            return Outcome.UNCHANGED
        work = _Work(state=dict(state))
        caps = await self.engine.port.capabilities()
        self._tell_what_steps_aside(shop, caps)
        if not caps.contacts:
            bundle = without_contacts(
                bundle
            )  # addresses on the notes and the thirdparty (docs/dolibarr-soap.md)
        if bundle.document.currency and not caps.multicurrency:
            bundle = in_main_currency(bundle, caps.main_currency)  # docs/orders.md, Currencies
        if bundle.credit_notes and not caps.credit_notes:
            # on the order's report totals line: its refunds are not in Dolibarr
            skipped = ", ".join(plan.ps_id for plan in bundle.credit_notes)
            bundle = dataclasses.replace(
                bundle,
                warnings=(
                    *bundle.warnings,
                    f"credit notes not made ({skipped}): this Dolibarr backend cannot create credit notes",
                ),
            )
        if bundle.totals.outcome == "refused":
            await self._save_totals(shop, bundle, None, "refused")
            raise PermanentError(
                f"order {bundle.order_id}: the shop's total_paid_tax_incl is {bundle.totals.expected} "
                f"{bundle.totals.currency} but its lines come to {bundle.totals.lines_total} in Dolibarr "
                f"(difference {bundle.totals.delta}, more than orders.total_tolerance "
                f"{shop.orders.total_tolerance})"
            )
        ids, document, gone = await self._dependencies(shop, bundle, work)

        order_id = row.dolibarr_id if in_dolibarr and row is not None else None
        deferred: PermanentError | None = None
        try:
            if "order" in bundle.parts or order_id is None:
                order_id = await self._order(shop, bundle, document, ids, order_id, work)
            ids[order_ref_of(bundle)] = order_id
            validated: DocumentTotals | None = None
            if "order" in bundle.parts:
                validated = await self._status(shop, bundle, order_id, work)
            if work.totals_due:
                # after the status: an order validated in this push has its totals in the validation's answer
                await self._check_totals(shop, bundle, order_id, validated)
                work.state["totals"] = True
        except NotFound:
            if again or not in_dolibarr or "order" not in bundle.parts:
                raise
            # deleted in Dolibarr by hand: made again rather than failing forever (as the ObjectWriter does)
            log.warning(
                "dolibarr.object_vanished", shop=shop.name, kind="order", ps_id=item.ps_id, id=order_id
            )
            await self.engine.writer(shop.name).save_record(
                "order", item.ps_id, dolibarr_id=None, ref_ext=bundle.ref_ext, clear_failure=False
            )
            self.engine.forget(shop.name, order_ref_of(bundle))
            return await self._push(shop, item, bundle, again=True)
        invoice_id: int | None = None
        if bundle.invoice is not None:
            invoice_id = await self._invoice(shop, bundle, gone, ids, order_id, work)
        if invoice_id is not None:
            ids[Ref("invoice", bundle.invoice.ref_ext if bundle.invoice else "")] = invoice_id
            if "payments" in bundle.parts and caps.payments:
                await self._payments(shop, bundle, invoice_id, ids, work)
            if "credit_notes" in bundle.parts and caps.credit_notes:
                await self._credit_notes(shop, bundle, gone, ids, invoice_id, work)
        if bundle.status == "cancelled" and "order" in bundle.parts:
            try:
                deleted = await self._cancel(shop, bundle, order_id, invoice_id, work)
            except PermanentError as exc:
                deferred = exc
            else:
                if deleted:
                    return Outcome.UPDATED
        work.state["warnings"] = sorted(set(bundle.warnings) | set(work.warnings))
        work.state["complete"] = full and deferred is None
        await self.engine.writer(shop.name).save_record(
            "order",
            item.ps_id,
            dolibarr_id=order_id,
            ref_ext=bundle.ref_ext,
            hash=digest if full and deferred is None else "",
            state=json.dumps(work.state, sort_keys=True),
            clear_failure=deferred is None,
        )
        for warning in work.warnings:
            log.warning("order.warning", shop=shop.name, order=bundle.order_id, warning=warning)
        if deferred is not None:
            raise deferred
        if work.created:
            return Outcome.CREATED
        return Outcome.UPDATED if work.writes else Outcome.UNCHANGED

    async def _dependencies(
        self, shop: ShopSettings, bundle: OrderBundle, work: _Work
    ) -> tuple[dict[Ref, int], DocumentPayload, set[Ref]]:
        """Customer, addresses, products and services in Dolibarr; lines of products gone from the shop become
        free text."""
        engine = self.engine
        ids: dict[Ref, int] = {}
        try:
            customer = Item("customers", "thirdparty", bundle.thirdparty_ps_id, bundle.thirdparty)
            thirdparty_id = await engine.ensure_item(shop, customer)
            ids[Ref("thirdparty", bundle.thirdparty.ref_ext)] = thirdparty_id
            if bundle.thirdparty_address is not None:
                address_id, with_address = bundle.thirdparty_address
                if await self._thirdparty_address(shop, address_id, with_address, thirdparty_id):
                    work.writes += 1
            if bundle.contacts:
                await self._index_like_orders(shop, "contact")
            for ps_id, contact in bundle.contacts:
                contact_item = Item("addresses", "contact", ps_id, contact)
                ids[Ref("contact", contact.ref_ext)] = await engine.ensure_item(shop, contact_item)
        except (TransientError, ConfigError):
            raise
        except SyncError as exc:
            raise _dependency_failed(bundle.thirdparty.ref_ext, exc) from exc
        refs = sorted(
            {
                line.product
                for doc in (bundle.document, *(n.document for n in bundle.credit_notes))
                for line in doc.lines
                if line.product is not None
            }
        )
        results = await asyncio.gather(*(engine.ensure(shop, ref) for ref in refs), return_exceptions=True)
        gone: set[Ref] = set()
        for ref, result in zip(refs, results, strict=True):
            if isinstance(result, int):
                ids[ref] = result
            elif isinstance(result, SourceGone):
                gone.add(ref)
            elif isinstance(result, TransientError | ConfigError):
                raise result
            elif isinstance(result, SyncError):
                raise _dependency_failed(ref.ref_ext, result)
            elif isinstance(result, BaseException):
                raise result
        for ref in sorted(gone):
            work.warnings.append(f"{ref.ref_ext} is no longer in the shop: its line is kept as free text")
        return ids, _without(bundle.document, gone), gone

    def _tell_what_steps_aside(self, shop: ShopSettings, caps: Capabilities) -> None:
        """Once per shop and process: what this Dolibarr backend cannot hold of an order, said before the first
        order is pushed, instead of one error per order."""
        if shop.name in self._told:
            return
        self._told.add(shop.name)
        aside = [
            what
            for what, able in (
                (
                    "contacts (addresses go on the documents' public note and the thirdparty's address)",
                    caps.contacts,
                ),
                ("payments", caps.payments or not shop.orders.payments),
                (
                    "credit notes (credit slips and cancellations after invoicing: listed by report totals)",
                    caps.credit_notes,
                ),
            )
            if not able
        ]
        if aside:
            log.warning("orders.steps_aside", shop=shop.name, resource="orders", backend_cannot=aside)

    async def _thirdparty_address(
        self, shop: ShopSettings, address_id: str, payload: ThirdpartyPayload, thirdparty_id: int
    ) -> bool:
        """The order's invoice address as its thirdparty's own address (a backend without contacts): written
        once per address (records of kind ``thirdparty_address``), whichever order brings it first. True when
        this call wrote it."""
        store = self.engine.store
        digest = payload_hash(payload)

        async def write() -> bool:
            row = await store.record(shop.name, "thirdparty_address", address_id)
            if row is not None and row.hash == digest and row.dolibarr_id == thirdparty_id:
                return False
            async with self.lanes.slot():
                await self.engine.port.update(thirdparty_id, payload, {})
            # the store's own call: the payload's ref_ext is the thirdparty's, whose index entry is not ours to drop
            await store.save_record(
                shop.name,
                "thirdparty_address",
                address_id,
                dolibarr_id=thirdparty_id,
                ref_ext=payload.ref_ext,
                hash=digest,
            )
            return True

        return await self._address_flights.run((shop.name, address_id), write)

    async def _order(
        self,
        shop: ShopSettings,
        bundle: OrderBundle,
        document: DocumentPayload,
        ids: Mapping[Ref, int],
        order_id: int | None,
        work: _Work,
    ) -> int:
        doc_hash = payload_hash(document)
        writer = self.engine.writer(shop.name)
        if order_id is None:
            found = await writer.find("order", document.ref_ext)
            if found is not None:
                order_id = found.id
                status = _status_name("order", found.status)
                work.state.update(status=status)
                if status == "draft":
                    await self._update(order_id, document, ids, work)
                work.state["doc"] = doc_hash
                log.info("dolibarr.adopted", shop=shop.name, kind="order", id=order_id)
            else:
                item = Item("orders", "order", str(bundle.order_id), document)
                order_id = await writer.create_once(item, document, ids)
                work.created = True
                work.writes += 1
                work.state.update(doc=doc_hash, status="draft")
            await self.engine.writer(shop.name).save_record(
                "order",
                str(bundle.order_id),
                dolibarr_id=order_id,
                ref_ext=bundle.ref_ext,
                state=json.dumps(work.state, sort_keys=True),
                clear_failure=False,
            )
            work.totals_due = True
            return order_id
        if work.state.get("doc") == doc_hash and not work.state.get("totals"):
            # stopped between the order's commit and its totals check (a crash): checked now, or report totals
            # would never list the order
            work.totals_due = True
        if work.state.get("doc") != doc_hash:
            if work.state.get("status", "draft") == "draft":
                await self._update(order_id, document, ids, work)
            elif not _has_invoice(work):
                async with self.lanes.serial("order-validate"), self.lanes.slot():
                    await self.engine.port.set_document_status("order", order_id, "draft")
                work.state["status"] = "draft"
                await self._update(order_id, document, ids, work)
            else:
                work.warnings.append(
                    "the order changed in the shop after it was invoiced in Dolibarr: its lines there are "
                    "left as they were invoiced"
                )
            work.state["doc"] = doc_hash
            work.totals_due = True
        return order_id

    async def _update(
        self, order_id: int, document: DocumentPayload, ids: Mapping[Ref, int], work: _Work
    ) -> None:
        async with self.lanes.slot():
            await self.engine.port.update(order_id, document, ids)
        work.writes += 1

    async def _status(
        self, shop: ShopSettings, bundle: OrderBundle, order_id: int, work: _Work
    ) -> DocumentTotals | None:
        """The order moved to the shop's status; the order's totals when this validated it and Dolibarr answered
        them."""
        current = work.state.get("status", "draft")
        if bundle.status not in ("validated", "closed") or current == bundle.status:
            return None
        wanted: DocumentStatus = "closed" if bundle.status == "closed" else "validated"
        warehouse = shop.orders.validate_warehouse_id
        port = self.engine.port
        if current == "draft":
            async with self.lanes.serial("order-validate"), self.lanes.slot():
                totals = await port.set_document_status("order", order_id, wanted, warehouse_id=warehouse)
        else:
            async with self.lanes.slot():
                totals = await port.set_document_status("order", order_id, wanted, warehouse_id=warehouse)
        work.state["status"] = wanted
        work.writes += 1
        return totals

    async def _check_totals(
        self, shop: ShopSettings, bundle: OrderBundle, order_id: int, validated: DocumentTotals | None = None
    ) -> None:
        """Dolibarr's total equal to the shop's, or recorded as a mismatch. ``validated``: the totals the order's
        validation in this push answered (Dolibarr's own sum of the lines, as a read gives it); otherwise the
        order is read (``POST /orders`` answers an id only)."""
        multicurrency = bool(bundle.document.currency)
        known = None
        if validated is not None:
            known = validated.multicurrency_total_ttc if multicurrency else validated.total_ttc
        if known is not None:
            total: Decimal | None = known.quantize(Decimal("0.01"))
        else:
            async with self.lanes.slot():
                raw = await self.engine.port.get("order", order_id)
            field = "multicurrency_total_ttc" if multicurrency else "total_ttc"
            try:
                total = Decimal(str(raw.get(field))).quantize(Decimal("0.01"))
            except (ArithmeticError, ValueError):
                total = None
        converted = bundle.totals.converted_total
        expected = bundle.totals.expected if converted is None else converted
        if total is not None and total != expected:
            log.warning(
                "order.totals_mismatch",
                shop=shop.name,
                order=bundle.order_id,
                shop_total=str(bundle.totals.expected),
                dolibarr_total=str(total),
            )
            await self._save_totals(shop, bundle, total, "mismatch")
        else:
            await self._save_totals(shop, bundle, total, bundle.totals.outcome)

    async def _save_totals(
        self, shop: ShopSettings, bundle: OrderBundle, dolibarr_total: Decimal | None, outcome: str
    ) -> None:
        await order_totals.save(
            self.engine.store,
            shop.name,
            bundle.order_id,
            reference=bundle.reference,
            currency=bundle.totals.currency,
            shop_total=bundle.totals.expected,
            lines_total=bundle.totals.lines_total,
            dolibarr_total=dolibarr_total,
            delta=bundle.totals.delta,
            outcome=outcome,
            note="; ".join(bundle.warnings),
        )

    async def _invoice(
        self,
        shop: ShopSettings,
        bundle: OrderBundle,
        gone: set[Ref],
        ids: Mapping[Ref, int],
        order_id: int,
        work: _Work,
    ) -> int | None:
        if bundle.invoice is None:
            return None
        ps_id = str(bundle.order_id)
        payload = _without(bundle.invoice, gone)
        invoice_id, state = await self._stored_invoice(shop, ps_id)
        if invoice_id is None:
            if "invoice" not in bundle.parts:
                return None
            await self._index_like_orders(shop, "invoice")
            make = functools.partial(self.engine.port.invoice_from_order, order_id, payload, ids)
            item = Item("orders", "invoice", ps_id, payload)
            create = functools.partial(self.engine.writer(shop.name).create_once, item, payload, ids, make)
            writes = work.writes
            invoice_id, state = await self._adopt_or_create_invoice(shop, ps_id, payload, create, work)
            if work.writes > writes:
                work.new_invoice = invoice_id
        work.state["invoice"] = invoice_id
        if state.get("status", "draft") == "draft" and "invoice" in bundle.parts:
            await self._validate_invoice(shop, ps_id, invoice_id, payload, work)
        return invoice_id

    async def _index_like_orders(self, shop: ShopSettings, kind: str) -> None:
        """On an initial pass - the orders were listed in bulk (the pipeline's ``load_index``: a page of orders
        mostly unknown here) - one paged listing of the shop's invoices (or contacts) by ``ref_ext`` answers the
        look-ups before their creates, instead of one request each. Exactly once holds as with any bulk index: an
        object made before the listing is in it, one made since is put in it by ``create_once``; a create with
        an unclear answer is looked up afresh."""
        writer = self.engine.writer(shop.name)
        if "order" not in writer.indexed_kinds or kind in writer.indexed_kinds:
            return
        with contextlib.suppress(ConfigError):  # a backend that cannot list them: looked up one by one
            await writer.load_index(kind)

    async def _stored_invoice(self, shop: ShopSettings, ps_id: str) -> tuple[int | None, dict[str, Any]]:
        """The Dolibarr id (None when not made yet) and state of an invoice or credit note, as stored."""
        row = await self.engine.store.record(shop.name, "invoice", ps_id)
        return (row.dolibarr_id if row is not None and row.dolibarr_id else None), _state(row)

    async def _adopt_or_create_invoice(
        self,
        shop: ShopSettings,
        ps_id: str,
        document: DocumentPayload,
        create: Callable[[], Awaitable[int]],
        work: _Work,
    ) -> tuple[int, dict[str, Any]]:
        """An invoice or credit note not stored yet: the one Dolibarr holds under its ``ref_ext``, or a new
        one; stored with its status either way."""
        found = await self.engine.writer(shop.name).find("invoice", document.ref_ext)
        if found is not None:
            document_id, state = found.id, {"status": _status_name("invoice", found.status)}
        else:
            document_id = await create()
            work.writes += 1
            state = {"status": "draft"}
        await self._save_invoice(shop, ps_id, document_id, document, state)
        return document_id, state

    async def _validate_invoice(
        self, shop: ShopSettings, ps_id: str, document_id: int, document: DocumentPayload, work: _Work
    ) -> None:
        async with self.lanes.serial("invoice-validate"), self.lanes.slot():
            totals = await self.engine.port.set_document_status("invoice", document_id, "validated")
        work.writes += 1
        await self._save_invoice(shop, ps_id, document_id, document, {"status": "validated"})
        if totals is not None and totals.total_ttc is not None and document_id == work.new_invoice:
            # created in this push: nothing is paid on it yet, it owes its total (no read for its payments)
            work.unpaid = _Unpaid(
                document_id, totals.ref, totals.multicurrency_code, totals.total_ttc.quantize(Decimal("0.01"))
            )

    async def _save_invoice(
        self,
        shop: ShopSettings,
        ps_id: str,
        document_id: int,
        document: DocumentPayload,
        state: dict[str, Any],
    ) -> None:
        await self.engine.writer(shop.name).save_record(
            "invoice",
            ps_id,
            dolibarr_id=document_id,
            ref_ext=document.ref_ext,
            hash=payload_hash(document),
            state=json.dumps(state),
        )

    async def _payments(
        self, shop: ShopSettings, bundle: OrderBundle, invoice_id: int, ids: Mapping[Ref, int], work: _Work
    ) -> None:
        store = self.engine.store
        for plan in bundle.payments:
            row = await store.record(shop.name, "payment", plan.ps_id)
            done = _state(row)
            if row is not None and (row.dolibarr_id or done.get("recorded") or done.get("skipped")):
                continue
            payment = plan.payment
            if plan.skipped or payment.amount <= 0:
                await self._payment_done(
                    shop, plan.ps_id, payment, None, {"skipped": plan.skipped or "nothing"}
                )
                continue
            unpaid = work.unpaid if work.unpaid is not None and work.unpaid.invoice_id == invoice_id else None
            async with self.lanes.serial("payment"):
                result = await self._add_payment(
                    self.engine.writer(shop.name),
                    invoice_id,
                    payment,
                    ids,
                    look_first=invoice_id != work.new_invoice,
                    unpaid=unpaid,
                )
            if isinstance(result, str):
                work.warnings.append(f"payment {plan.ps_id}: {result}")
                await self._payment_done(shop, plan.ps_id, payment, None, {"skipped": result})
                continue
            new_id, recorded = result
            if new_id is not None:
                work.writes += 1
            await self._payment_done(shop, plan.ps_id, payment, new_id, {"recorded": recorded})

    async def _payment_done(
        self,
        shop: ShopSettings,
        ps_id: str,
        payment: PaymentPayload,
        dolibarr_id: int | None,
        state: dict[str, Any],
    ) -> None:
        await self.engine.writer(shop.name).save_record(
            "payment",
            ps_id,
            dolibarr_id=dolibarr_id,
            ref_ext=payment.ref_ext,
            hash=payload_hash(payment),
            state=json.dumps(state, sort_keys=True),
        )

    async def _find_payment(self, invoice_id: int, payment: PaymentPayload) -> dict[str, Any] | None:
        async with self.lanes.slot():
            rows = await self.engine.port.invoice_payments(invoice_id)
        number = payment.number or payment.ref_ext
        for row in rows:
            if str(row.get("ref_ext") or "") == payment.ref_ext:
                return row
        for row in rows:
            if str(row.get("num") or row.get("num_payment") or "") == number:
                return row
        return None

    async def _add_payment(
        self,
        writer: ObjectWriter,
        invoice_id: int,
        payment: PaymentPayload,
        ids: Mapping[Ref, int],
        *,
        look_first: bool = True,
        unpaid: _Unpaid | None = None,
    ) -> tuple[int | None, str] | str:
        """(new id or None when found already recorded, its Dolibarr ref), or why it is not recorded.
        ``look_first``: look for it among the invoice's payments first (an earlier try may have recorded it);
        not on an invoice this push created. ``unpaid``: the remainder of an invoice this push created and
        validated (not read), brought up to date when the payment is recorded."""
        look = functools.partial(self._find_payment, invoice_id, payment)
        # sent by a process stopped before its commit: looked for until it must have landed
        found = await writer.landed_earlier("payment", payment.ref_ext, look)
        if found is None and look_first:
            found = await look()
        if found is not None:
            return None, str(found.get("ref") or "")
        if unpaid is not None and not unpaid.stale:
            invoice: Mapping[str, Any] = unpaid.as_invoice()
        else:
            # read once per payment: only GET /invoices/{id} computes remaintopay (the validation's answer has
            # no such field, a payment's answer is its id); add_payment reuses this read
            unpaid = None
            async with self.lanes.slot():
                invoice = await self.engine.port.get("invoice", invoice_id)
        remain_raw = invoice.get("remaintopay")
        foreign = str(invoice.get("multicurrency_code") or "") not in ("", (await self._main_currency()))
        if remain_raw not in (None, "") and not foreign:
            remain = Decimal(str(remain_raw)).quantize(Decimal("0.01"))
            if remain <= 0:
                return f"the invoice is already fully paid in Dolibarr; {payment.amount} not recorded"
            if payment.amount > remain:
                payment = dataclasses.replace(payment, amount=remain)
        if unpaid is not None:
            # what this payment leaves is known in the main currency only (another currency's remainder is
            # Dolibarr's conversion: read for the next payment), and only when the first try records it
            unpaid.stale = True
        try:
            for attempt in range(AMBIGUOUS_RETRIES + 1):
                try:
                    async with self.lanes.slot():
                        await writer.note_sent("payment", payment.ref_ext)  # in the slot: when it is sent
                        # the invoice read above is not read again (a retry after an unclear answer reads it)
                        new_id = await self.engine.port.add_payment(
                            payment, ids, invoice=invoice if attempt == 0 else None
                        )
                    if unpaid is not None and attempt == 0 and not foreign:
                        unpaid.remain -= payment.amount
                        unpaid.stale = False
                    return new_id, ""
                except AmbiguousWrite:
                    found = await look()
                    if found is not None:
                        return None, str(found.get("ref") or "")
                    if attempt == AMBIGUOUS_RETRIES:
                        raise
        except SyncError as exc:
            if not may_still_run(exc):  # answered or never sent: no later process needs to wait for it
                await self.engine.store.forget_write_sent(writer.shop, payment.ref_ext)
            raise
        raise AssertionError("unreachable")

    async def _main_currency(self) -> str:
        return (await self.engine.port.capabilities()).main_currency

    async def _credit_notes(
        self,
        shop: ShopSettings,
        bundle: OrderBundle,
        gone: set[Ref],
        ids: Mapping[Ref, int],
        invoice_id: int,
        work: _Work,
    ) -> None:
        writer = self.engine.writer(shop.name)
        for plan in bundle.credit_notes:
            document = _without(plan.document, gone)
            note_id, state = await self._stored_invoice(shop, plan.ps_id)
            if note_id is None:
                await self._index_like_orders(shop, "invoice")
                item = Item("orders", "invoice", plan.ps_id, document)
                note_ids = dict(ids)
                if document.credit_note_of is not None:
                    note_ids[document.credit_note_of] = invoice_id
                create = functools.partial(writer.create_once, item, document, note_ids)
                note_id, state = await self._adopt_or_create_invoice(shop, plan.ps_id, document, create, work)
            if state.get("status", "draft") == "draft":
                await self._validate_invoice(shop, plan.ps_id, note_id, document, work)

    async def _cancel(
        self, shop: ShopSettings, bundle: OrderBundle, order_id: int, invoice_id: int | None, work: _Work
    ) -> bool:
        """A cancelled order: a draft nobody invoiced is deleted (True); otherwise it is cancelled in Dolibarr
        (validated first when it is a draft: a cancelled order keeps its number)."""
        current = work.state.get("status", "draft")
        if current == "cancelled":
            return False
        if current == "draft" and invoice_id is None:
            async with self.lanes.slot():
                await self.engine.port.delete("order", order_id)
            await self.engine.writer(shop.name).save_record(
                "order",
                str(bundle.order_id),
                dolibarr_id=None,
                ref_ext=bundle.ref_ext,
                hash=payload_hash(bundle.digest_source()),
                state=json.dumps({"status": "cancelled", "complete": True, "deleted_draft": order_id}),
                deleted=True,
            )
            self.engine.forget(shop.name, order_ref_of(bundle))
            return True
        try:
            if current == "draft":
                async with self.lanes.serial("order-validate"), self.lanes.slot():
                    await self.engine.port.set_document_status("order", order_id, "cancelled")
            else:
                async with self.lanes.slot():
                    await self.engine.port.set_document_status("order", order_id, "cancelled")
        except NotFound:
            return False
        work.state["status"] = "cancelled"
        work.writes += 1
        return False


def order_ref_of(bundle: OrderBundle) -> Ref:
    return Ref("order", bundle.ref_ext)


def _has_invoice(work: _Work) -> bool:
    return bool(work.state.get("invoice"))


def _status_name(kind: str, raw: str) -> str:
    try:
        code = int(raw)
    except ValueError:
        return "draft"
    if kind == "order":
        return {0: "draft", 1: "validated", 2: "validated", 3: "closed", -1: "cancelled"}.get(code, "draft")
    return {0: "draft", 1: "validated", 2: "validated", 3: "cancelled"}.get(code, "draft")


def _without(document: DocumentPayload, gone: set[Ref]) -> DocumentPayload:
    if not gone or not any(line.product in gone for line in document.lines):
        return document
    lines = tuple(
        dataclasses.replace(
            line,
            product=None,
            description=f"{line.description} - {line.product.ref_ext} is no longer in the shop",
        )
        if line.product is not None and line.product in gone
        else line
        for line in document.lines
    )
    return dataclasses.replace(document, lines=lines)


def _dependency_failed(ref_ext: str, error: SyncError) -> PermanentError:
    return DependencyFailed(f"waits for {ref_ext}, which could not be pushed: {error.message}")


def install(engine: SyncEngine) -> OrderSync:
    """Teach an engine orders: the order stream, the loaders of addresses and services, the order pusher."""
    sync = OrderSync(engine)
    engine.register_stream("orders", OrderStream)
    engine.register_stream("addresses", AddressStream, loads=("address",))
    engine.register_stream("services", ServiceStream, loads=("service",))
    engine.register_pusher(OrderBundle, sync.push)
    return sync


__all__ = [
    "AddressStream",
    "OrderStream",
    "OrderSync",
    "ServiceStream",
    "install",
    "invoice_ref",
    "order_ref",
]
