"""Read the next page from the shop while the current one is pushed to Dolibarr.

Pages are still handed over strictly in order, and the cursor still moves page by page after each commit; only
the shop's latency is hidden behind Dolibarr's. At most ``depth`` pages wait in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


async def read_ahead(source: AsyncIterator[T], depth: int = 1) -> AsyncIterator[T]:
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=depth)

    async def produce() -> None:
        try:
            async for item in source:
                await queue.put(item)
        except Exception as exc:  # handed to the consumer, in order, after the pages read before it
            await queue.put(_Failure(exc))
            return
        await queue.put(_DONE)

    producer = asyncio.create_task(produce())
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
