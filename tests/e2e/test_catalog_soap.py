"""The catalog into a Dolibarr reached over SOAP (no categories, stock, files or variants there): products and
flat combinations land, every other part of the catalog steps aside instead of failing."""

from __future__ import annotations

from pathlib import Path

from service.app import wired
from service.sandbox import prestashop_sim
from service.sandbox.dolibarr_soap_sim import (
    STORE_KEY,
    create_app,
)
from service.sandbox.runner import start_app
from service.sandbox.shop_generator import generate_shop
from service.settings import parse_settings
from tests.dolibarr.soap_support import soap_sync_document
from tests.e2e.catalog_support import CATALOG, combinations_of


async def test_the_catalog_over_soap_syncs_products_and_skips_what_soap_cannot_hold(tmp_path: Path) -> None:
    shop = generate_shop(31, categories=4, products=8, customers=2, combinations_per_product=2)
    shop_server = await start_app(prestashop_sim.create_app(shop, key=prestashop_sim.DEFAULT_KEY))
    soap_server = await start_app(create_app())
    document = soap_sync_document(
        tmp_path / "s.sqlite3",
        soap_server.url,
        shop_server.url,
        shop.timezone,
        resources={r: {"enabled": r in CATALOG} for r in ("customers", "orders")},
        catalog={"warehouse_id": 1},
    )
    try:
        async with wired(parse_settings(document, base_dir=tmp_path)) as w:
            reports = await w.engine.run_many([("main", r) for r in CATALOG])
            assert [(r.resource, r.outcome, r.failed) for r in reports] == [(r, "ok", 0) for r in CATALOG]
            assert await w.store.records("main", "images") == {}
            assert await w.store.records("main", "stock") == {}
        products = soap_server.app[STORE_KEY].products.values()
        expected = sum(len(combinations_of(shop, p)) or 1 for p in shop.table("products"))
        assert len({p["ref_ext"] for p in products}) == expected
    finally:
        await soap_server.stop()
        await shop_server.stop()
