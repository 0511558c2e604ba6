"""Concurrency policy: one global bound on Dolibarr work, serial lanes where Dolibarr races, single-flight.

- ``slot()``: at most ``max_concurrency`` pushes talk to Dolibarr at once, whatever shop or resource they
  come from (one Dolibarr, one bound).
- ``serial(name)``: one at a time per lane. Dolibarr hands out duplicate refs when orders, invoices or
  payments are validated concurrently (see the reference quirks), so those calls queue on their lane.
  (Thirdparties race only with ``code_client: "auto"``, which ps2doli never sends, so they stay parallel.)
- :class:`SingleFlight`: concurrent requests for the same key share one execution (a customer needed by 50
  orders at the same moment is created once).
- :class:`Recent`: a map of at most ``max_len`` entries, the least recently used dropped first (what the engine
  remembers of ids the state store holds anyway: a miss costs one SQLite read).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class Lanes:
    def __init__(self, max_concurrency: int) -> None:
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self._serial: dict[str, asyncio.Lock] = {}
        self.in_flight = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            self.in_flight += 1
            try:
                yield
            finally:
                self.in_flight -= 1

    @asynccontextmanager
    async def serial(self, lane: str) -> AsyncIterator[None]:
        lock = self._serial.setdefault(lane, asyncio.Lock())
        async with lock:
            yield


class SingleFlight(Generic[K, T]):
    """Deduplicates concurrent calls by key. Results are not cached once the call is over."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[T]] = {}

    async def run(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await work()
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(result)
            return result
        finally:
            self._running.pop(key, None)


class Recent(Generic[K, T]):
    """A least-recently-used map of at most ``max_len`` entries: a cache of what another store holds, so
    forgetting one costs a read there, never an answer."""

    def __init__(self, max_len: int) -> None:
        self._items: OrderedDict[K, T] = OrderedDict()
        self._max_len = max_len

    def get(self, key: K) -> T | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: T) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._max_len:
            self._items.popitem(last=False)

    def pop(self, key: K) -> T | None:
        return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)
