"""Concurrency policy: one global bound on Dolibarr work, serial lanes where Dolibarr races, single-flight.

- ``slot()``: at most ``max_concurrency`` pushes talk to Dolibarr at once, whatever shop or resource they
  come from (one Dolibarr, one bound).
- ``serial(name)``: one at a time per lane. Dolibarr hands out duplicate refs when orders, invoices or
  payments are validated concurrently (see the reference quirks), so those calls queue on their lane.
  (Thirdparties race only with ``code_client: "auto"``, which ps2doli never sends, so they stay parallel.)
- :class:`SingleFlight`: concurrent requests for the same key share one execution (a customer needed by 50
  orders at the same moment is created once).
"""

from __future__ import annotations

import asyncio
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
