"""The state database (SQLite through aiosqlite, WAL): cursors, synced records, failures, runs.

One connection, one writer at a time (an asyncio lock), each record's outcome committed in one transaction.
The file is created with owner-only permissions: it holds no secrets, but it does hold customer mappings.
Schema changes are numbered SQL files in ``migrations/``, applied in order and recorded in ``PRAGMA user_version``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite


@dataclass(frozen=True)
class Cursor:
    position: str  # date_upd text (shop-local) or "" for pure id watermarks
    last_id: int

    def as_tuple(self) -> tuple[str, int]:
        return (self.position, self.last_id)


@dataclass(frozen=True)
class RecordRow:
    shop: str
    kind: str
    ps_id: str
    dolibarr_id: int | None
    ref_ext: str
    ref: str
    hash: str
    state: str
    deleted: bool
    synced_at: float


@dataclass(frozen=True)
class Failure:
    id: int
    shop: str
    resource: str
    kind: str
    ps_id: str
    error_class: str
    message: str
    payload: str
    attempts: int
    first_at: float
    last_at: float
    next_at: float


@dataclass(frozen=True)
class Run:
    id: int
    shop: str
    resource: str
    mode: str
    started_at: float
    finished_at: float | None
    outcome: str
    created: int
    updated: int
    unchanged: int
    failed: int
    deleted: int
    message: str


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("service.state") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class StateStore:
    """All of ps2doli's memory. Open with :meth:`open`; every write goes through :meth:`transaction`."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._write_lock = asyncio.Lock()

    # ------------------------------------------------------------------------------------------- life
    @classmethod
    async def open(cls, path: Path) -> StateStore:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # owner-only from the first byte: create the file ourselves before SQLite does
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db, path)
        await store._migrate()
        return store

    async def close(self) -> None:
        await self._db.close()

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for version, sql in _migrations():
            if version <= current:
                continue
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in sql.split(";\n"):
                    if statement.strip():
                        await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {version}")
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One atomic unit: everything inside is committed together or not at all."""
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._db.execute(sql, params) as cur:
            row: aiosqlite.Row | None = await cur.fetchone()
            return row

    # ------------------------------------------------------------------------------------------ cursors
    async def cursor(self, shop: str, resource: str) -> Cursor | None:
        row = await self._fetchone(
            "SELECT position, last_id FROM cursors WHERE shop=? AND resource=?", (shop, resource)
        )
        return Cursor(row["position"], int(row["last_id"])) if row else None

    async def set_cursor(self, shop: str, resource: str, cursor: Cursor) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO cursors(shop, resource, position, last_id, updated_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(shop, resource) DO UPDATE SET position=excluded.position, "
                "last_id=excluded.last_id, updated_at=excluded.updated_at",
                (shop, resource, cursor.position, cursor.last_id, time.time()),
            )

    async def cursors(self) -> dict[tuple[str, str], Cursor]:
        rows = await self._fetchall("SELECT shop, resource, position, last_id FROM cursors")
        return {(r["shop"], r["resource"]): Cursor(r["position"], int(r["last_id"])) for r in rows}

    # ------------------------------------------------------------------------------------------ records
    @staticmethod
    def _record(row: aiosqlite.Row) -> RecordRow:
        return RecordRow(
            shop=row["shop"],
            kind=row["kind"],
            ps_id=row["ps_id"],
            dolibarr_id=row["dolibarr_id"],
            ref_ext=row["ref_ext"],
            ref=row["ref"],
            hash=row["hash"],
            state=row["state"],
            deleted=bool(row["deleted"]),
            synced_at=row["synced_at"],
        )

    async def record(self, shop: str, kind: str, ps_id: str) -> RecordRow | None:
        row = await self._fetchone(
            "SELECT * FROM records WHERE shop=? AND kind=? AND ps_id=?", (shop, kind, ps_id)
        )
        return self._record(row) if row else None

    async def records(
        self, shop: str, kind: str, ps_ids: Iterable[str] | None = None
    ) -> dict[str, RecordRow]:
        if ps_ids is None:
            rows = await self._fetchall("SELECT * FROM records WHERE shop=? AND kind=?", (shop, kind))
            return {r["ps_id"]: self._record(r) for r in rows}
        wanted = list(ps_ids)
        result: dict[str, RecordRow] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._fetchall(
                f"SELECT * FROM records WHERE shop=? AND kind=? AND ps_id IN ({marks})", (shop, kind, *chunk)
            )
            result.update({r["ps_id"]: self._record(r) for r in rows})
        return result

    async def record_by_ref_ext(self, kind: str, ref_ext: str) -> RecordRow | None:
        row = await self._fetchone("SELECT * FROM records WHERE kind=? AND ref_ext=?", (kind, ref_ext))
        return self._record(row) if row else None

    async def record_by_dolibarr_id(self, kind: str, dolibarr_id: int) -> RecordRow | None:
        row = await self._fetchone(
            "SELECT * FROM records WHERE kind=? AND dolibarr_id=? LIMIT 1", (kind, dolibarr_id)
        )
        return self._record(row) if row else None

    async def record_by_ref(self, kind: str, ref: str) -> RecordRow | None:
        """The record holding ``ref`` as Dolibarr's unique key compares refs (case aside: ASCII letters), the one
        holding exactly ``ref`` first."""
        row = await self._fetchone(
            "SELECT * FROM records WHERE kind=? AND ref=? COLLATE NOCASE ORDER BY ref=? DESC LIMIT 1",
            (kind, ref, ref),
        )
        return self._record(row) if row else None

    async def count_records(self, shop: str, kind: str | None = None) -> int:
        if kind is None:
            row = await self._fetchone("SELECT COUNT(*) FROM records WHERE shop=? AND deleted=0", (shop,))
        else:
            row = await self._fetchone(
                "SELECT COUNT(*) FROM records WHERE shop=? AND kind=? AND deleted=0", (shop, kind)
            )
        return int(row[0]) if row else 0

    async def count_deleted(self, shop: str, kind: str | None = None) -> int:
        """Records gone from the shop (the deletion policy was applied, or an order's disappearance reported)."""
        sql = "SELECT COUNT(*) FROM records WHERE shop=? AND deleted=1"
        params: tuple[str, ...] = (shop,)
        if kind is not None:
            sql += " AND kind=?"
            params = (shop, kind)
        row = await self._fetchone(sql, params)
        return int(row[0]) if row else 0

    async def last_run_of(self, shop: str, resource: str, mode: str) -> Run | None:
        row = await self._fetchone(
            "SELECT * FROM runs WHERE shop=? AND resource=? AND mode=? ORDER BY id DESC LIMIT 1",
            (shop, resource, mode),
        )
        return Run(**{k: row[k] for k in row.keys()}) if row else None  # noqa: SIM118

    async def save_record(
        self,
        shop: str,
        kind: str,
        ps_id: str,
        *,
        dolibarr_id: int | None,
        ref_ext: str = "",
        ref: str = "",
        hash: str = "",
        state: str = "",
        deleted: bool = False,
        clear_failure: bool = True,
    ) -> None:
        """Commit one record's outcome (mapping + hash) and clear its failure, in one transaction."""
        async with self.transaction() as db:
            await self._upsert_record(db, shop, kind, ps_id, dolibarr_id, ref_ext, ref, hash, state, deleted)
            if ref_ext:  # its outcome is known now: no later process waits for it (writes_sent)
                await db.execute("DELETE FROM writes_sent WHERE shop=? AND ref_ext=?", (shop, ref_ext))
            if clear_failure:
                await db.execute(
                    "DELETE FROM failures WHERE shop=? AND kind=? AND ps_id=?", (shop, kind, ps_id)
                )

    # -- writes in flight (writes_sent): a create or a payment sent, its record not committed yet
    async def note_write_sent(self, shop: str, kind: str, ref_ext: str, sent_at: float) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO writes_sent(shop, ref_ext, kind, sent_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(shop, ref_ext) DO UPDATE SET kind=excluded.kind, sent_at=excluded.sent_at",
                (shop, ref_ext, kind, sent_at),
            )

    async def forget_write_sent(self, shop: str, ref_ext: str) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM writes_sent WHERE shop=? AND ref_ext=?", (shop, ref_ext))

    async def writes_sent(self, shop: str) -> dict[str, float]:
        """ref_ext -> sent_at of the writes whose record was never committed (by this process or an earlier one)."""
        rows = await self._fetchall("SELECT ref_ext, sent_at FROM writes_sent WHERE shop=?", (shop,))
        return {str(row["ref_ext"]): float(row["sent_at"]) for row in rows}

    @staticmethod
    async def _upsert_record(
        db: aiosqlite.Connection,
        shop: str,
        kind: str,
        ps_id: str,
        dolibarr_id: int | None,
        ref_ext: str,
        ref: str,
        hash: str,
        state: str,
        deleted: bool,
    ) -> None:
        await db.execute(
            "INSERT INTO records(shop, kind, ps_id, dolibarr_id, ref_ext, ref, hash, state, deleted, synced_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(shop, kind, ps_id) DO UPDATE SET "
            "dolibarr_id=excluded.dolibarr_id, ref_ext=excluded.ref_ext, ref=excluded.ref, hash=excluded.hash, "
            "state=excluded.state, deleted=excluded.deleted, synced_at=excluded.synced_at",
            (shop, kind, ps_id, dolibarr_id, ref_ext, ref, hash, state, int(deleted), time.time()),
        )

    # ----------------------------------------------------------------------------------------- failures
    @staticmethod
    def _failure(row: aiosqlite.Row) -> Failure:
        return Failure(**{k: row[k] for k in row.keys()})  # noqa: SIM118 - aiosqlite.Row is not a Mapping

    async def record_failure(
        self,
        shop: str,
        resource: str,
        kind: str,
        ps_id: str,
        *,
        error_class: str,
        message: str,
        payload: Any = None,
        backoff_s: Sequence[int] = (60, 300, 900, 3600, 21600),
    ) -> Failure:
        """Store (or bump) a failure; the next retry is due after the backoff step for its attempt count."""
        now = time.time()
        text = payload if isinstance(payload, str) else json.dumps(payload, default=str) if payload else ""
        async with self.transaction() as db:
            existing = await (
                await db.execute(
                    "SELECT attempts FROM failures WHERE shop=? AND kind=? AND ps_id=?", (shop, kind, ps_id)
                )
            ).fetchone()
            attempts = int(existing[0]) + 1 if existing else 1
            delay = backoff_s[min(attempts - 1, len(backoff_s) - 1)] if backoff_s else 0
            await db.execute(
                "INSERT INTO failures(shop, resource, kind, ps_id, error_class, message, payload, attempts, "
                "first_at, last_at, next_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(shop, kind, ps_id) DO UPDATE SET error_class=excluded.error_class, "
                "message=excluded.message, payload=excluded.payload, attempts=excluded.attempts, "
                "last_at=excluded.last_at, next_at=excluded.next_at, resource=excluded.resource",
                (shop, resource, kind, ps_id, error_class, message, text, attempts, now, now, now + delay),
            )
        failure = await self.failure_for(shop, kind, ps_id)
        assert failure is not None
        return failure

    async def failure_for(self, shop: str, kind: str, ps_id: str) -> Failure | None:
        row = await self._fetchone(
            "SELECT * FROM failures WHERE shop=? AND kind=? AND ps_id=?", (shop, kind, ps_id)
        )
        return self._failure(row) if row else None

    async def failures(
        self, shop: str | None = None, *, due_before: float | None = None, resource: str | None = None
    ) -> list[Failure]:
        sql = "SELECT * FROM failures WHERE 1=1"
        params: list[Any] = []
        if shop is not None:
            sql += " AND shop=?"
            params.append(shop)
        if resource is not None:
            sql += " AND resource=?"
            params.append(resource)
        if due_before is not None:
            sql += " AND next_at<=?"
            params.append(due_before)
        rows = await self._fetchall(sql + " ORDER BY id", params)
        return [self._failure(r) for r in rows]

    async def waiting_failures(
        self, shop: str, kind: str, ps_ids: Iterable[str], now: float
    ) -> dict[str, Failure]:
        """The failures of these records whose next retry is not due yet, by ps_id."""
        wanted = list(ps_ids)
        result: dict[str, Failure] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._fetchall(
                f"SELECT * FROM failures WHERE shop=? AND kind=? AND next_at>? AND ps_id IN ({marks})",
                (shop, kind, now, *chunk),
            )
            result.update({r["ps_id"]: self._failure(r) for r in rows})
        return result

    async def failure(self, failure_id: int) -> Failure | None:
        row = await self._fetchone("SELECT * FROM failures WHERE id=?", (failure_id,))
        return self._failure(row) if row else None

    async def forget_failure(self, failure_id: int) -> bool:
        async with self.transaction() as db:
            cur = await db.execute("DELETE FROM failures WHERE id=?", (failure_id,))
            return (cur.rowcount or 0) > 0

    async def make_failures_due(self, failure_ids: Iterable[int] | None = None) -> int:
        async with self.transaction() as db:
            if failure_ids is None:
                cur = await db.execute("UPDATE failures SET next_at=0")
            else:
                ids = list(failure_ids)
                marks = ",".join("?" * len(ids)) or "NULL"
                cur = await db.execute(f"UPDATE failures SET next_at=0 WHERE id IN ({marks})", ids)
            return cur.rowcount or 0

    async def count_failures(self, shop: str, resource: str | None = None) -> int:
        if resource is None:
            row = await self._fetchone("SELECT COUNT(*) FROM failures WHERE shop=?", (shop,))
        else:
            row = await self._fetchone(
                "SELECT COUNT(*) FROM failures WHERE shop=? AND resource=?", (shop, resource)
            )
        return int(row[0]) if row else 0

    # --------------------------------------------------------------------------------------------- runs
    async def start_run(self, shop: str, resource: str, mode: str = "pass") -> int:
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO runs(shop, resource, mode, started_at) VALUES (?,?,?,?)",
                (shop, resource, mode, time.time()),
            )
            assert cur.lastrowid is not None
            return int(cur.lastrowid)

    async def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        created: int = 0,
        updated: int = 0,
        unchanged: int = 0,
        failed: int = 0,
        deleted: int = 0,
        message: str = "",
    ) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE runs SET finished_at=?, outcome=?, created=?, updated=?, unchanged=?, failed=?, "
                "deleted=?, message=? WHERE id=?",
                (time.time(), outcome, created, updated, unchanged, failed, deleted, message[:2000], run_id),
            )

    async def last_run(self, shop: str, resource: str) -> Run | None:
        row = await self._fetchone(
            "SELECT * FROM runs WHERE shop=? AND resource=? ORDER BY id DESC LIMIT 1", (shop, resource)
        )
        return Run(**{k: row[k] for k in row.keys()}) if row else None  # noqa: SIM118
