"""Read-ahead keeps pages in order, surfaces a read error after the pages before it, and stops reading when
the consumer stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from service.engine.readahead import read_ahead


async def pages(n: int, fail_at: int | None = None, log: list[int] | None = None) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        if i == fail_at:
            raise RuntimeError(f"page {i} broke")
        if log is not None:
            log.append(i)
        yield i


async def test_pages_come_in_order() -> None:
    assert [p async for p in read_ahead(pages(20))] == list(range(20))


async def test_a_read_error_arrives_after_the_pages_before_it() -> None:
    seen = []
    with pytest.raises(RuntimeError, match="page 3 broke"):
        async for page in read_ahead(pages(10, fail_at=3)):
            seen.append(page)
    assert seen == [0, 1, 2]


async def test_stopping_early_stops_reading() -> None:
    read: list[int] = []
    async for page in read_ahead(pages(100, log=read), depth=1):
        if page == 2:
            break
    await asyncio.sleep(0.01)
    assert len(read) <= 5
