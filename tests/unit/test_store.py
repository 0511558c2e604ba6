"""The state store: migrations, owner-only file, cursors, records, failures with backoff, runs."""

from __future__ import annotations

import stat
from pathlib import Path

from service.state.store import Cursor, StateStore


async def test_a_new_state_file_is_migrated_and_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.sqlite3"
    store = await StateStore.open(path)
    try:
        assert await store.schema_version() >= 1
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        await store.close()
    again = await StateStore.open(path)  # re-opening applies nothing twice
    await again.close()


async def test_cursor_record_failure_and_run_round_trip(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "s.sqlite3")
    try:
        assert await store.cursor("main", "products") is None
        await store.set_cursor("main", "products", Cursor("2026-01-01 10:00:00", 12))
        assert await store.cursor("main", "products") == Cursor("2026-01-01 10:00:00", 12)

        failure = await store.record_failure(
            "main",
            "products",
            "product",
            "12",
            error_class="PermanentError",
            message="no",
            backoff_s=(10, 20),
        )
        assert failure.attempts == 1 and failure.next_at - failure.last_at == 10
        again = await store.record_failure(
            "main",
            "products",
            "product",
            "12",
            error_class="PermanentError",
            message="no",
            backoff_s=(10, 20),
        )
        assert again.id == failure.id and again.attempts == 2 and again.next_at - again.last_at == 20

        await store.save_record(
            "main", "product", "12", dolibarr_id=7, ref_ext="ps-main-product-12", hash="h"
        )
        assert await store.failures("main") == []  # a committed record clears its failure
        row = await store.record_by_ref_ext("product", "ps-main-product-12")
        assert row is not None and row.dolibarr_id == 7

        run_id = await store.start_run("main", "products")
        await store.finish_run(run_id, outcome="ok", created=3)
        last = await store.last_run("main", "products")
        assert last is not None and last.outcome == "ok" and last.created == 3
    finally:
        await store.close()


async def test_a_ref_is_found_as_dolibarrs_unique_key_compares_it_the_exact_holder_first(
    tmp_path: Path,
) -> None:
    """Dolibarr refuses ``dup-1`` once ``DUP-1`` exists (uk_product_ref ignores case): the state answers the same,
    so the writer skips that number instead of sending a create to be refused (migration 0004)."""
    store = await StateStore.open(tmp_path / "s.sqlite3")
    try:
        await store.save_record("main", "product", "3", dolibarr_id=30, ref="DUP-1")
        found = await store.record_by_ref("product", "dup-1")
        assert found is not None and found.ps_id == "3"
        assert await store.record_by_ref("product", "DUP-2") is None
        assert await store.record_by_ref("category", "DUP-1") is None
        await store.save_record("other", "product", "4", dolibarr_id=40, ref="dup-1")
        exact = await store.record_by_ref("product", "dup-1")
        assert exact is not None and exact.ps_id == "4"
        first = await store.record_by_ref("product", "DUP-1")
        assert first is not None and first.ps_id == "3"
    finally:
        await store.close()
