"""The adaptive concurrency limit of the Dolibarr clients (service/dolibarr/limit.py): halves on a deadlock, at
most once per cool-down, never below 1, and climbs back by one after RAISE_AFTER calm requests, never above the
maximum."""

from __future__ import annotations

import asyncio

import pytest

from service.dolibarr.limit import COOL_DOWN, RAISE_AFTER, AdaptiveLimit


def run(limit: AdaptiveLimit, events: str) -> list[int]:
    """Feed ``b`` (busy: a deadlock) and ``o`` (ok) events; the limit after each."""
    seen = []
    for event in events:
        if event == "b":
            limit.busy("/products")
        else:
            limit.ok()
        seen.append(limit.limit)
    return seen


@pytest.mark.parametrize(
    ("maximum", "events", "limits", "decreases"),
    [
        (4, "b", [2], 1),  # halves
        (
            8,
            "b" + "o" * COOL_DOWN + "b" + "o" * COOL_DOWN + "b",
            [4] + [4] * COOL_DOWN + [2] + [2] * COOL_DOWN + [1],
            3,
        ),
        (4, "bbbb", [2, 2, 2, 2], 1),  # a burst of deadlocks from one moment counts once
        (4, "b" + "o" * (COOL_DOWN - 1) + "b", [2] + [2] * (COOL_DOWN - 1) + [2], 1),  # still cooling down
        (1, "bbb", [1, 1, 1], 0),  # floor 1: nothing to halve
        (3, "b", [1], 1),  # 3 // 2
        (4, "o" * (3 * RAISE_AFTER), [4] * (3 * RAISE_AFTER), 0),  # never above the maximum
    ],
)
def test_the_limit_halves_on_busy_with_a_cool_down_and_a_floor_of_1(
    maximum: int, events: str, limits: list[int], decreases: int
) -> None:
    limit = AdaptiveLimit(maximum)
    assert run(limit, events) == limits
    assert limit.decreases == decreases


def test_the_limit_climbs_back_one_step_per_raise_after_calm_requests_up_to_the_maximum() -> None:
    limit = AdaptiveLimit(4)
    run(limit, "b" + "o" * COOL_DOWN + "b")
    assert limit.limit == 1
    assert run(limit, "o" * (RAISE_AFTER - 1))[-1] == 1
    assert run(limit, "o")[-1] == 2  # the RAISE_AFTER-th calm request
    assert run(limit, "o" * RAISE_AFTER)[-1] == 3
    run(limit, "o" * (RAISE_AFTER - 1) + "b")  # a deadlock before the streak ends: down, streak lost
    assert limit.limit == 1
    assert run(limit, "o" * RAISE_AFTER)[-1] == 2
    assert run(limit, "o" * (5 * RAISE_AFTER))[-1] == 4  # and stops at the maximum
    assert limit.decreases == 3


def test_a_maximum_below_1_is_1() -> None:
    assert AdaptiveLimit(0).limit == AdaptiveLimit(0).maximum == 1


async def test_slots_wait_for_the_limit() -> None:
    limit = AdaptiveLimit(2)
    peak = 0

    async def request(deadlock: bool) -> None:
        nonlocal peak
        async with limit.slot():
            peak = max(peak, limit.in_flight)
            await asyncio.sleep(0.01)
            if deadlock:
                limit.busy("/orders")
            else:
                limit.ok()

    await asyncio.gather(*(request(False) for _ in range(6)))
    assert peak == 2 and limit.in_flight == 0
    await request(True)
    assert limit.limit == 1
    peak = 0
    await asyncio.gather(*(request(False) for _ in range(6)))
    assert peak == 1  # the lowered limit holds the next requests back
