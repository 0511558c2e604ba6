"""The order streams: what is read from the shop for orders, and for the addresses and services an order's push
loads when they are not synced yet. The push itself is ``orders.py``.

Changes are found by ``date_upd`` (the order's moves on every state change and payment) and, as a safety net,
by the ``date_add`` of order histories, payments and credit slips in the same window (they have no ``date_upd``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from service.engine.streams import Batch, DateUpdStream, Page, Record, RecordFailure, record_summary
from service.engine.writer import Item
from service.mapping import customers
from service.mapping.context import MappingError, ShopContext
from service.mapping.orders import SERVICES, OrderSource, map_order, service_payload
from service.prestashop import values
from service.prestashop.client import END_OF_TIME, Filter, PrestaShopClient
from service.settings import ShopSettings
from service.state.store import Cursor

CHUNK = 50
# what payments are shared out by among the orders of one reference (a split cart)
SIBLING_FIELDS = ("id", "reference", "id_currency", "total_paid_tax_incl")
# the live cursor of a shop without orders whose first pass only noted where the shop was (first_pass = "new")
NO_ORDER_YET = "1970-01-01 00:00:00"


def _ints(items: Sequence[Any]) -> list[int]:
    out = []
    for item in items:
        try:
            number = values.as_int(item)
        except (ValueError, TypeError):
            continue
        if number > 0:
            out.append(number)
    return sorted(set(out))


class OrderStream(DateUpdStream):
    """Orders by ``date_upd``, read with everything an order's push needs (lines, history, payments of its
    reference and the other orders of that reference, invoices, credit slips, customer, addresses, carrier)."""

    resource = "orders"
    kind = "order"

    async def pages(self, cursor: Cursor | None) -> AsyncIterator[Page]:
        if cursor is None and self.shop.orders.first_pass == "new":
            # the first pass only notes where the shop is: the history is ps2doli backfill's
            latest = await self.client.fetch(
                "orders", display=("id", "date_upd"), sort=("date_upd_DESC", "id_DESC"), limit=(0, 1)
            )
            if latest:
                yield Page([], Cursor(str(latest[0].get("date_upd")), _int(latest[0].get("id"))))
            else:  # no order yet: every order to come is new
                yield Page([], Cursor(NO_ORDER_YET, 0))
            return
        seen: set[int] = set()
        async for page in super().pages(cursor):
            seen.update(_int(r.get("id")) for r in page.records)
            yield page
        if cursor is not None and cursor.position:
            changed = [oid for oid in await self._children_changed(cursor) if oid not in seen]
            if changed:
                yield Page(await self.fetch([str(i) for i in changed]), None)

    async def _children_changed(self, cursor: Cursor) -> list[int]:
        """Orders whose history, payments or credit slips gained a row in the cursor's window (these have no
        ``date_upd``; the order's own ``date_upd`` normally moves with them, this is the safety net)."""
        if self.shop.overlap_s:
            since = values.shift_local(cursor.position, -self.shop.overlap_s)
            window = {"date_add": Filter.between(since, END_OF_TIME)}
        else:  # no overlap asked: strictly after the cursor's second, as the walk of the orders themselves
            window = {"date_add": Filter.gt(cursor.position)}
        ids: list[Any] = []
        for resource in ("order_histories", "order_slip"):
            rows = await self.client.fetch(resource, filters=window, display=("id", "id_order"))
            ids += [r.get("id_order") for r in rows]
        payments = await self.client.fetch(
            "order_payments", filters=window, display=("id", "order_reference")
        )
        references = sorted({str(p.get("order_reference") or "") for p in payments} - {""})
        for start in range(0, len(references), CHUNK):
            chunk = [r for r in references[start : start + CHUNK] if _safe_filter_value(r)]
            if chunk:
                ids += await self.client.ids("orders", filters={"reference": Filter.any_of(*chunk)})
        return _ints(ids)

    async def _by(
        self, resource: str, field: str, wanted: Sequence[Any], display: tuple[str, ...] | None = None
    ) -> list[Record]:
        wanted = sorted({w for w in wanted if w not in (None, "", 0)})
        found: list[Record] = []
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            found += await self.client.fetch(
                resource, filters={field: Filter.any_of(*chunk)}, display=display or "full"
            )
        return found

    async def batch(self, records: Sequence[Record], ctx: ShopContext) -> Batch:
        batch = Batch()
        orders = [r for r in records if values.as_int(r.get("id"), "id") > 0]
        if not orders:
            return batch
        order_ids = _ints([o.get("id") for o in orders])
        references = sorted(
            {
                str(o.get("reference") or "")
                for o in orders
                if _safe_filter_value(str(o.get("reference") or ""))
            }
            - {""}
        )
        details = await self._by("order_details", "id_order", order_ids)
        histories = await self._by("order_histories", "id_order", order_ids)
        invoices = await self._by("order_invoices", "id_order", order_ids)
        slips = await self._by("order_slip", "id_order", order_ids)
        payments = await self._by("order_payments", "order_reference", references) if references else []
        siblings = await self._by("orders", "reference", references, SIBLING_FIELDS) if references else []
        customer_rows = await self._by("customers", "id", _ints([o.get("id_customer") for o in orders]))
        address_ids = _ints([o.get(f) for o in orders for f in ("id_address_invoice", "id_address_delivery")])
        address_rows = await self._by("addresses", "id", address_ids)
        carrier_rows = await self._by("carriers", "id", _ints([o.get("id_carrier") for o in orders]))

        def group(rows: Sequence[Record], key: str) -> dict[Any, list[Record]]:
            out: dict[Any, list[Record]] = {}
            for row in rows:
                value = row.get(key)
                out.setdefault(
                    str(value) if key in ("order_reference", "reference") else _int(value), []
                ).append(row)
            return out

        details_by = group(details, "id_order")
        histories_by = group(histories, "id_order")
        invoices_by = group(invoices, "id_order")
        slips_by = group(slips, "id_order")
        payments_by = group(payments, "order_reference")
        siblings_by = group(siblings, "reference")
        customers_by = {_int(c.get("id")): c for c in customer_rows}
        addresses_by = {_int(a.get("id")): a for a in address_rows}
        carriers_by = {_int(c.get("id")): c for c in carrier_rows}
        for order in orders:
            oid = _int(order.get("id"))
            reference = str(order.get("reference") or "")
            carrier = carriers_by.get(_int(order.get("id_carrier"))) or {}
            source = OrderSource(
                order=order,
                details=details_by.get(oid, []),
                histories=histories_by.get(oid, []),
                payments=payments_by.get(reference, []) if reference else [],
                siblings=siblings_by.get(reference, []) if reference else [],
                invoices=invoices_by.get(oid, []),
                slips=slips_by.get(oid, []),
                customer=customers_by.get(_int(order.get("id_customer"))),
                addresses={
                    aid: addresses_by[aid]
                    for aid in (_int(order.get("id_address_invoice")), _int(order.get("id_address_delivery")))
                    if aid in addresses_by
                },
                carrier_name=str(carrier.get("name") or ""),
            )
            try:
                bundle = map_order(source, ctx)
            except MappingError as exc:
                batch.failures.append(RecordFailure(self.kind, str(oid), exc, record_summary(order)))
                continue
            batch.items.append(Item(self.resource, self.kind, str(oid), bundle))
        return batch


def _int(value: Any) -> int:
    try:
        return values.as_int(value)
    except (ValueError, TypeError):
        return 0


def _safe_filter_value(text: str) -> bool:
    """Order references are 9 letters; anything that cannot travel inside ``[a|b]`` is read another way."""
    return bool(text) and not any(c in text for c in "[]|,%") and text.isprintable()


class AddressStream(DateUpdStream):
    """Addresses as contacts of their customer's thirdparty: the loader of ``ps-{shop}-address-{id}``."""

    resource = "addresses"
    kind = "contact"

    async def batch(self, records: Sequence[Record], ctx: ShopContext) -> Batch:
        batch = Batch()
        owners = _ints([r.get("id_customer") for r in records])
        found = await self.client.fetch("customers", filters={"id": Filter.any_of(*owners)}) if owners else []
        by_id = {_int(c.get("id")): c for c in found}
        for address in records:
            aid = str(address.get("id", "?"))
            customer = by_id.get(_int(address.get("id_customer")))
            try:
                if customer is None:
                    raise MappingError("id_customer", "the address belongs to no customer of the shop")
                owner = customers.customer_ref(ctx, customer)
                payload = customers.map_address(address, owner, ctx)
            except MappingError as exc:
                batch.failures.append(RecordFailure(self.kind, aid, exc, record_summary(address)))
                continue
            batch.items.append(Item(self.resource, self.kind, aid, payload))
        return batch


class ServiceStream:
    """The shipping, discount and gift-wrapping service products order lines use: made up, one per shop, from
    the settings (``orders.shipping_ref``...). The loader of ``ps-{shop}-service-{name}``."""

    resource = "services"
    kind = "product"

    def __init__(self, shop: ShopSettings, client: PrestaShopClient) -> None:
        self.shop = shop

    async def pages(self, cursor: Cursor | None) -> AsyncIterator[Page]:
        for _ in ():
            yield Page([], None)

    async def fetch(self, ps_ids: Sequence[str]) -> list[Record]:
        return [{"id": name} for name in ps_ids if name in SERVICES]

    async def batch(self, records: Sequence[Record], ctx: ShopContext) -> Batch:
        batch = Batch()
        for record in records:
            name = str(record.get("id"))
            batch.items.append(Item(self.resource, self.kind, f"service-{name}", service_payload(ctx, name)))
        return batch

    def source_id(self, kind: str, ps_id: str) -> str:
        return ps_id


__all__ = ["AddressStream", "OrderStream", "ServiceStream"]
