"""How many requests go to Dolibarr at once: ``dolibarr.max_concurrency`` at most, fewer while it deadlocks often.

A real Dolibarr on MariaDB deadlocks under parallel writes (``Deadlock found when trying to get lock``: HTTP 500 on
``POST /products`` and ``/orders``, 503 on ``POST /stockmovements``; four in parallel is enough on two cores). Each
deadlock is retried, which costs one request and a short backoff; running at half the concurrency costs far more
(the real pair creates 1.5-2.5 times as many objects per second at 4 as at 1, deadlocks included). So the limit
adapts to the *rate* of deadlocks, additive increase and multiplicative decrease as TCP does:

- when ``SLOW_AT`` of the last ``WINDOW`` completed requests were answered "database busy" (deadlock, lock wait
  timeout), the limit halves (never below 1) and the window starts again, so that a burst from one moment counts
  once; an occasional deadlock among calm requests changes nothing;
- every ``RAISE_AFTER`` requests in a row that complete without one raise it by 1, up to ``max_concurrency``.

(It used to halve on every deadlock, at most once per 10 requests: on the real pair at ``max_concurrency = 4`` the
catalog sync then spent most of its time at 1-2 and reached 0.52 of Dolibarr's own create rate, against 0.92 when
started from 8.)

The current limit is the ``ps2doli_dolibarr_concurrency`` gauge, and each change is one log line
(``dolibarr_concurrency``). Both clients (REST and SOAP) hold one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import structlog

log = structlog.get_logger("service.dolibarr.limit")

WINDOW: Final = 20
SLOW_AT: Final = 3  # busy answers within the window that halve the limit (15%)
RAISE_AFTER: Final = 50


class AdaptiveLimit:
    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.in_flight = 0
        self._changed = asyncio.Condition()
        self._good_streak = 0
        self._recent: deque[bool] = deque(maxlen=WINDOW)  # True: answered "database busy"
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
        """Dolibarr's database answered a deadlock or lock wait. Called from inside a slot."""
        self._good_streak = 0
        self._recent.append(True)
        if sum(self._recent) < SLOW_AT or self.limit == 1:
            return
        self._recent.clear()
        self.decreases += 1
        self._set(max(1, self.limit // 2), "deadlocks", route)

    def ok(self) -> None:
        """A request completed without a database conflict. Called from inside a slot."""
        self._recent.append(False)
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
