"""What a long-running process keeps per object synced (issue 12: RSS flat from 1k to 100k records). The writer's
bulk index holds only what Dolibarr has and the state does not map yet; once a record is committed, the state
answers its look-ups. Real sockets, both simulators."""

from __future__ import annotations

from pathlib import Path

from service.sandbox.shop_generator import generate_shop
from tests.conftest import SandboxFactory, engine_for

RESOURCES = ("categories", "products", "combinations", "customers", "orders")


async def test_after_an_initial_sync_the_writer_index_keeps_nothing_committed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # more unknown records per batch than BULK_LOOKUP_THRESHOLD: every kind is listed in bulk (the index filled)
    shop = generate_shop(7, categories=25, products=40, customers=30, orders=40, combination_share=0.2)
    sandbox = await make_sandbox({"main": shop})
    async with engine_for(sandbox, tmp_path / "state.sqlite3", resources=RESOURCES) as w:
        reports = await w.engine.run_many([("main", r) for r in RESOURCES])
        assert all(r.outcome == "ok" for r in reports), [r.error for r in reports]
        writer = w.engine.writer("main")
        assert {"product", "thirdparty", "order", "invoice"} <= writer.indexed_kinds
        assert sum(r.created for r in reports) > 150
        # orders and invoices once stayed here, one entry per order for the life of the process
        assert dict(writer.index) == {}
