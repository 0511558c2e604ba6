"""The catalog's sweep streams: resources without ``date_upd`` (combinations, stock) and the images check.

Each reads every row of its resource by id (``client.sweep``: ``filter[id]=>[last]&sort=[id_ASC]``, few fields,
pages of ``page_size``), maps it, and lets the writer compare payload hashes: an unchanged row costs no Dolibarr
request. They never move a cursor (``Page.position`` is ``None``).

- ``combinations``: a combination's impact, reference or barcode can change without its product's
  ``date_upd`` moving (an import, a module, a stock-side edit). The sweep reads the fields the mapping needs
  (``catalog.COMBINATION_FIELDS`` and the option values and images associations) plus, per page, the products
  of those combinations (one request), and maps them exactly as the product stream does: the payloads, so the
  hashes, are the same, and only a combination that really changed is pushed.
- ``stock``: ``stock_availables`` rows (``id, id_product, id_product_attribute, quantity, id_shop,
  id_shop_group``) -> a :class:`~service.dolibarr.model.StockPayload` per row, hashed per row; the product-level
  row of a product with combinations is skipped (see ``catalog.map_stock``). Multistore: the shop's rows (its
  ``id_shop``) and the rows it shares with its group (``id_shop`` 0 + ``id_shop_group``) - the webservice
  already restricts the listing to the ``id_shop`` context, the stream checks it again.
- ``images``: every product's image ids (``display=[id,images[id],combinations[id]]``) and their combinations';
  the items it makes also check the bytes of images already attached (``catalog_writer``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import structlog

from service.engine import catalog_read
from service.engine.streams import Batch, Page, RecordFailure, Stream, record_summary
from service.engine.writer import Item
from service.mapping import catalog
from service.mapping.context import MappingError, ShopContext
from service.prestashop import values
from service.prestashop.client import Filter, PrestaShopClient
from service.settings import ShopSettings
from service.state.store import Cursor

log = structlog.get_logger("ps2doli.catalog")

Record = dict[str, Any]
CHUNK = catalog_read.CHUNK
_TOLD: set[str] = set()  # shops already told their stock is not mirrored (once per process)


def _int(record: Mapping[str, Any], name: str) -> int:
    try:
        return values.as_int(record.get(name))
    except ValueError:
        return 0


def _failures(kind: str, page: Any) -> list[RecordFailure]:
    return [RecordFailure(kind, err.where.record_id or "?", err) for err in page.failed]


async def _by_ids(
    client: PrestaShopClient, resource: str, ids: Sequence[int], display: Any = "full"
) -> list[Record]:
    wanted = sorted({i for i in ids if i > 0})
    found: list[Record] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found += await client.fetch(resource, filters={"id": Filter.any_of(*chunk)}, display=display)
    return found


class _Sweep:
    """What the catalog sweeps share: the shop, its client, pages by id without a cursor."""

    resource: str = ""
    kind: str = ""
    source: str = ""  # the webservice resource swept
    display: tuple[str, ...] = ("id",)

    def __init__(self, shop: ShopSettings, client: PrestaShopClient) -> None:
        self.shop = shop
        self.client = client

    def enabled(self) -> bool:
        return True

    async def pages(self, cursor: Cursor | None) -> AsyncIterator[Page]:
        if not self.enabled():
            return
        async for page in self.client.sweep(self.source, self.display, page_size=self.shop.page_size):
            yield Page(list(page.records), None, _failures(self.kind, page))

    def source_id(self, kind: str, ps_id: str) -> str:
        return ps_id

    def sweep_pages(self) -> AsyncIterator[Page]:
        """What ``service.engine.sweeps`` reads when this resource is swept: the same walk as a pass."""
        return self.pages(None)

    async def fetch(self, ps_ids: Sequence[str]) -> list[Record]:
        ids = [int(self.source_id(self.kind, p)) for p in ps_ids if self.source_id(self.kind, p).isdigit()]
        return await _by_ids(self.client, self.source, ids, self.display)


# --------------------------------------------------------------------------------------------- combinations


class CombinationSweepStream(_Sweep):
    resource = "combinations"
    kind = "product"
    source = "combinations"
    display = catalog.COMBINATION_FIELDS + tuple(f"{a}[id]" for a in catalog.COMBINATION_ASSOCIATIONS)

    def source_id(self, kind: str, ps_id: str) -> str:
        """``12-3`` (product 12, combination 3) -> ``3``."""
        return ps_id.rpartition("-")[2]

    async def batch(self, records: Sequence[Record], ctx: ShopContext) -> Batch:
        records = await catalog_read.with_association_ids(
            self.client, "combinations", records, catalog.COMBINATION_ASSOCIATIONS
        )
        by_product: dict[int, list[Record]] = {}
        for combination in records:
            by_product.setdefault(_int(combination, "id_product"), []).append(combination)
        products = await _by_ids(self.client, "products", list(by_product))
        products = await catalog_read.with_association_ids(self.client, "products", products, ("images",))
        known = {_int(p, "id"): p for p in products}
        batch = Batch()
        for id_product, combinations in sorted(by_product.items()):
            product = known.get(id_product)
            keys = {catalog.product_key(id_product, _int(c, "id")) for c in combinations}
            if product is None:
                # not in this shop's context (multistore), or deleted since: the reconcile pass deals with it
                log.info("prestashop.combination_without_product", shop=self.shop.name, product=id_product)
                continue
            try:
                items = catalog_read.family_items(self.resource, product, combinations, ctx)
            except MappingError as exc:
                for key in sorted(keys):
                    batch.failures.append(RecordFailure(self.kind, key, exc, record_summary(product)))
                continue
            # the parent (variants) and the product's own image set are the product stream's
            batch.items += [item for item in items if item.ps_id in keys]
        return batch


# ------------------------------------------------------------------------------------------------- stock


class StockStream(_Sweep):
    resource = "stock"
    kind = "stock"
    source = "stock_availables"
    display = ("id", "id_product", "id_product_attribute", "quantity", "id_shop", "id_shop_group")

    def enabled(self) -> bool:
        catalog_settings = self.shop.catalog
        if not catalog_settings.warehouse_id or catalog_settings.stock_mode == "off":
            if self.shop.name in _TOLD:
                return False
            _TOLD.add(self.shop.name)
            log.info(
                "stock.not_mirrored",
                shop=self.shop.name,
                reason="catalog.stock_mode is off"
                if catalog_settings.warehouse_id
                else "no catalog.warehouse_id",
            )
            return False
        return True

    def in_scope(self, row: Mapping[str, Any]) -> bool:
        """A row of this shop: its own (``id_shop``) or shared with its group (``id_shop`` 0)."""
        if self.shop.id_shop is None:
            return True
        return _int(row, "id_shop") in (self.shop.id_shop, 0)

    async def _products(self, product_ids: Sequence[int]) -> dict[int, Record]:
        """The products of this shop among these (multistore: a shared stock row can name a product of
        another shop of the group), with what decides whether their stock is mirrored (combinations, virtual):
        one listing per 50 products."""
        fields = ("id", "type", "product_type", "combinations[id]")
        return {_int(r, "id"): r for r in await _by_ids(self.client, "products", product_ids, fields)}

    async def batch(self, records: Sequence[Record], ctx: ShopContext) -> Batch:
        batch = Batch()
        rows = [r for r in records if self.in_scope(r)]
        if not rows or not ctx.stock_enabled:
            return batch
        products = await self._products([_int(r, "id_product") for r in rows])
        with_combinations = frozenset(p for p, r in products.items() if catalog_read.has_combinations(r))
        services = frozenset(p for p, r in products.items() if catalog.is_virtual(r))
        for row in rows:
            ps_id = str(_int(row, "id"))
            if _int(row, "id_product") not in products:
                continue  # not a product of this shop (or deleted since): nothing to mirror
            try:
                payload = catalog.map_stock(row, ctx, with_combinations=with_combinations, services=services)
            except MappingError as exc:
                batch.failures.append(RecordFailure(self.kind, ps_id, exc, record_summary(row)))
                continue
            if payload is not None:
                batch.items.append(Item(self.resource, self.kind, ps_id, payload))
        return batch


# ------------------------------------------------------------------------------------------------ images


class ImageSweepStream(_Sweep):
    resource = "images"
    kind = "images"
    source = "products"
    display = ("id", "images[id]", "combinations[id]")

    def enabled(self) -> bool:
        return self.shop.catalog.images

    def source_id(self, kind: str, ps_id: str) -> str:
        """``12`` or ``12-3`` -> the product, ``12``."""
        return ps_id.partition("-")[0]

    async def batch(self, records: Sequence[Record], ctx: ShopContext) -> Batch:
        batch = Batch()
        if not ctx.images_enabled:
            return batch
        records = await catalog_read.with_association_ids(self.client, "products", records, ("images",))
        with_combinations = [_int(r, "id") for r in records if catalog_read.has_combinations(r)]
        combos = await catalog_read.combinations_of(self.client, with_combinations)
        for record in records:
            try:
                sets = catalog.image_sets(record, combos.get(_int(record, "id"), []), ctx)
            except MappingError as exc:
                ps_id = str(_int(record, "id"))
                batch.failures.append(RecordFailure(self.kind, ps_id, exc, record_summary(record)))
                continue
            batch.items += [Item(self.resource, self.kind, ps_id, payload) for ps_id, payload in sets]
        return batch


CATALOG_STREAMS: Mapping[str, Callable[[ShopSettings, PrestaShopClient], Stream]] = {
    "combinations": CombinationSweepStream,
    "stock": StockStream,
    "images": ImageSweepStream,
}
