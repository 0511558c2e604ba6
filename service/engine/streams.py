"""Streams: for each shop resource, how its changes are read and what its records become.

A stream knows its PrestaShop side (which resource, how changes are found) and which mapper turns a page of
records into :class:`Item` values; it never talks to Dolibarr. The pipeline drives it.

- ``DateUpdStream``: resources with ``date_upd`` (categories, products, customers, orders): keyset paging from the
  stored cursor minus an overlap window.
- Streams without ``date_upd`` (stock, combinations) are sweeps: every row, few fields, compared by hash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

import structlog

from service.dolibarr.model import Ref
from service.engine import catalog_read
from service.engine.writer import Item
from service.errors import SyncError
from service.mapping import catalog, customers
from service.mapping.context import MappingError, ShopContext
from service.prestashop import values
from service.prestashop.client import Display, Filter, PrestaShopClient
from service.settings import ShopSettings
from service.state.store import Cursor

Record = dict[str, Any]
log = structlog.get_logger("ps2doli.streams")


@dataclass(frozen=True)
class RecordFailure:
    """A record that could not be read or mapped: filed in the failure queue under its source id."""

    kind: str
    ps_id: str
    error: SyncError | MappingError
    payload: Any = None


@dataclass
class Batch:
    """What one page of records becomes."""

    items: list[Item] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    records: Sequence[Record]
    # the keyset position after this page: (date_upd text, id) of its last record
    position: Cursor | None
    read_failures: Sequence[RecordFailure] = ()


class Stream(Protocol):
    resource: str

    def pages(self, cursor: Cursor | None) -> AsyncIterator[Page]: ...

    async def fetch(self, ps_ids: Sequence[str]) -> list[Record]:
        """Records by source id (failure retries, dependency loading)."""
        ...

    async def batch(self, records: Sequence[Record], ctx: ShopContext) -> Batch: ...

    def source_id(self, kind: str, ps_id: str) -> str:
        """The source record id behind an item's ps_id (``12-3`` -> ``12`` for a combination)."""
        ...


def _id(record: Mapping[str, Any]) -> int:
    return values.as_int(record.get("id"))


class DateUpdStream:
    """Base of the streams whose changes are found by ``date_upd``."""

    resource: str = ""
    kind: ClassVar[str] = ""
    display: ClassVar[Display] = "full"  # what a pass and a fetch by id ask for

    def __init__(self, shop: ShopSettings, client: PrestaShopClient) -> None:
        self.shop = shop
        self.client = client

    async def pages(self, cursor: Cursor | None) -> AsyncIterator[Page]:
        since = cursor.as_tuple() if cursor is not None else None
        if cursor is not None:
            # a cursor stored ahead of the shop's clock (by an older version, a first pass that only notes where
            # the shop is): start from the clock instead (as last seen: earlier, so never too late)
            known_now = self.client.shop_now()
            if known_now and cursor.position > known_now:
                since = (known_now, 0)
            elif earlier := before_repeated_hour(cursor.position, self.shop.zone):
                since = (earlier, 0)
        started: str | None = None
        async for page in self.client.changes(
            self.resource,
            since,
            page_size=self.shop.page_size,
            overlap_s=self.shop.overlap_s,
            display=self.display,
        ):
            records = list(page.records)
            if started is None:
                started = self.client.shop_now() or ""
            position = not_after(Cursor(*page.cursor), started) if page.cursor is not None else None
            failures = [RecordFailure(self.kind, err.where.record_id or "?", err) for err in page.failed]
            yield Page(records, position, failures)

    async def fetch(self, ps_ids: Sequence[str]) -> list[Record]:
        ids = sorted({int(i) for i in ps_ids if i.isdigit()})
        if not ids:
            return []
        found: list[Record] = []
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            found += await self.client.fetch(
                self.resource, filters={"id": Filter.any_of(*chunk)}, display=self.display
            )
        return found

    def source_id(self, kind: str, ps_id: str) -> str:
        return ps_id.split("-", 1)[0]

    async def batch(self, records: Sequence[Record], ctx: ShopContext) -> Batch:
        batch = Batch()
        for record in records:
            ps_id = self.failure_id(record)
            try:
                batch.items.extend(self.map_record(record, ctx))
            except MAPPER_BUGS as exc:
                batch.failures.append(
                    RecordFailure(self.kind, ps_id, as_mapping_error(exc), record_summary(record))
                )
        return batch

    def map_record(self, record: Record, ctx: ShopContext) -> list[Item]:
        raise NotImplementedError

    def failure_id(self, record: Record) -> str:
        """The ps_id a record that cannot be mapped is filed under: its item's, so that the item's first good push
        clears the failure."""
        return str(record.get("id", "?"))


def before_repeated_hour(position: str, zone: ZoneInfo) -> str | None:
    """When the wall time ``position`` occurs twice in ``zone`` (the hour repeated when clocks go back in
    autumn), the wall time one shift earlier, else None.

    PrestaShop stores ``date_upd`` as shop-local text: a record saved in the second 02:10 sorts *before* a cursor
    left at the first 02:40, and a keyset walk from the cursor would never see it. While the cursor sits in the
    repeated hour, passes read from one shift before it instead (re-reading a few records, unchanged)."""
    try:
        naive = datetime.strptime(position.strip()[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    first = naive.replace(tzinfo=zone, fold=0).utcoffset()
    second = naive.replace(tzinfo=zone, fold=1).utcoffset()
    if first is None or second is None or first <= second:
        return None
    return (naive - (first - second)).strftime("%Y-%m-%d %H:%M:%S")


def not_after(position: Cursor, shop_now: str) -> Cursor:
    """The cursor to store after a page: never later than the shop's clock when the pass began.

    A ``date_upd`` in the future (a clock set wrong, an import, a generator) would otherwise carry the cursor past
    every record saved until the clock catches up: they would all be missed. Stored as ``(now, 0)`` instead, the
    future-dated rows are read again each pass (unchanged: no Dolibarr request) until their time comes."""
    if shop_now and position.position > shop_now:
        return Cursor(shop_now, 0)
    return position


# what a mapper may raise besides MappingError when a record is stranger than it expected (a bug of the mapper):
# that record is filed as a failure instead of ending the pass for every record after it
MAPPER_BUGS = (ValueError, TypeError, ArithmeticError, LookupError, AttributeError)


def as_mapping_error(exc: Exception) -> MappingError:
    if isinstance(exc, MappingError):
        return exc
    log.error(
        "mapper.unexpected_error", error=f"{type(exc).__name__}: {exc}", hint="a mapper bug: please report it"
    )
    return MappingError("?", f"unexpected {type(exc).__name__} in the mapper: {exc}")


def record_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """What of a source record is kept with its failure: no customer secrets, nothing huge."""
    hidden = {"passwd", "secure_key", "last_passwd_gen", "reset_password_token"}
    summary: dict[str, Any] = {}
    for key, value in record.items():
        if key in hidden or key == "associations":
            continue
        text = value if isinstance(value, (int, float, bool)) or value is None else str(value)
        summary[key] = text[:500] if isinstance(text, str) else text
    return summary


class CategoryStream(DateUpdStream):
    resource = "categories"
    kind = "category"
    display = catalog.CATEGORY_FIELDS  # not full: its associations list every product of the category

    def map_record(self, record: Record, ctx: ShopContext) -> list[Item]:
        payload = catalog.map_category(record, ctx)
        if payload is None:
            return []
        return [Item(self.resource, self.kind, str(_id(record)), payload)]


class ProductStream(DateUpdStream):
    """Products, and their combinations whenever the product's ``date_upd`` moved."""

    resource = "products"
    kind = "product"

    async def batch(self, records: Sequence[Record], ctx: ShopContext) -> Batch:
        # combinations with the ids the JSON output may lose, image sets: service/engine/catalog_read.py
        records = await catalog_read.with_association_ids(self.client, self.resource, records, ("images",))
        with_combinations = [_id(r) for r in records if catalog_read.has_combinations(r)]
        combos = await catalog_read.combinations_of(self.client, with_combinations)
        batch = Batch()
        for record in records:
            try:
                family = catalog_read.family_items(self.resource, record, combos.get(_id(record), []), ctx)
            except MAPPER_BUGS as exc:
                batch.failures.append(
                    RecordFailure(
                        self.kind, str(record.get("id", "?")), as_mapping_error(exc), record_summary(record)
                    )
                )
                continue
            batch.items.extend(family)
        return batch


class CustomerStream(DateUpdStream):
    resource = "customers"
    kind = "thirdparty"

    def map_record(self, record: Record, ctx: ShopContext) -> list[Item]:
        if customers.is_guest(record) and ctx.orders.guest_policy == "shared":
            # one shared thirdparty for every guest: ensured when an order needs it
            return []
        payload = customers.map_customer(record, ctx)
        ps_id = payload.ref_ext.removeprefix(f"ps-{ctx.shop}-")
        return [Item(self.resource, self.kind, ps_id, payload)]

    def source_id(self, kind: str, ps_id: str) -> str:
        return ps_id.removeprefix("customer-")

    def failure_id(self, record: Record) -> str:
        try:
            guest = customers.is_guest(record)
        except MappingError:
            guest = False
        # a guest's thirdparty is named by its e-mail, which may be what is wrong: filed under the record id
        return str(record.get("id", "?")) if guest else f"customer-{record.get('id', '?')}"


def ps_id_of(ref: Ref, shop: str) -> tuple[str, str]:
    """``Ref(product, ps-main-product-12-3)`` -> ``("product", "12-3")``: the kind token and the id."""
    rest = ref.ref_ext.removeprefix(f"ps-{shop}-")
    token, _, ps_id = rest.partition("-")
    return token, ps_id


STREAMS: Mapping[str, type[DateUpdStream]] = {
    "categories": CategoryStream,
    "products": ProductStream,
    "customers": CustomerStream,
}
