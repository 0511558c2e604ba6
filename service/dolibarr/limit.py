"""How many requests go to Dolibarr at once: ``dolibarr.max_concurrency`` at most, fewer while it deadlocks.

A real Dolibarr on MariaDB deadlocks under parallel writes (``Deadlock found when trying to get lock``: HTTP 500 on
``POST /products`` and ``/orders``, 503 on ``POST /stockmovements``; four in parallel is enough on two cores). Each
deadlock is retried, but retrying at the same concurrency deadlocks again. So the limit adapts, additive increase
and multiplicative decrease as TCP does:

- a request answered "database busy" (deadlock, lock wait timeout) halves the limit (never below 1), at most once
  per ``COOL_DOWN`` completed requests, so that a burst of deadlocks from one moment counts once;
- every ``RAISE_AFTER`` requests in a row that complete without one raise it by 1, up to ``max_concurrency``.

The current limit is the ``ps2doli_dolibarr_concurrency`` gauge, and each change is one log line
(``dolibarr_concurrency``). Both clients (REST and SOAP) hold one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import structlog

log = structlog.get_logger("service.dolibarr.limit")

RAISE_AFTER: Final = 50
COOL_DOWN: Final = 10


class AdaptiveLimit:
    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.in_flight = 0
        self._changed = asyncio.Condition()
        self._good_streak = 0
        self._since_decrease = COOL_DOWN
        self.decreases = 0  # how many times it went down (tests, metrics)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        try:
            yield
        finally:
            async with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    def busy(self, route: str = "") -> None:
        """Dolibarr's database answered a deadlock or lock wait: go slower. Called from inside a slot."""
        self._good_streak = 0
        if self._since_decrease < COOL_DOWN or self.limit == 1:
            return
        self._since_decrease = 0
        self.decreases += 1
        self._set(max(1, self.limit // 2), "deadlock", route)

    def ok(self) -> None:
        """A request completed without a database conflict. Called from inside a slot."""
        self._since_decrease += 1
        if self.limit >= self.maximum:
            return
        self._good_streak += 1
        if self._good_streak >= RAISE_AFTER:
            self._good_streak = 0
            self._set(self.limit + 1, "calm", "")

    def _set(self, limit: int, why: str, route: str) -> None:
        log.warning(
            "dolibarr_concurrency",
            limit=limit,
            previous=self.limit,
            maximum=self.maximum,
            why=why,
            **({"route": route} if route else {}),
        )
        # waiters see a raised limit when the slot that reported it is released (ok() and busy() are called
        # from inside a slot), so nothing needs waking here
        self.limit = limit
