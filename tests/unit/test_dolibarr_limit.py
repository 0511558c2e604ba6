"""The adaptive concurrency limit of the Dolibarr clients (service/dolibarr/limit.py): halves when SLOW_AT of the
last WINDOW requests were deadlocks (a burst counts once, an occasional deadlock changes nothing), never below 1,
and climbs back by one after RAISE_AFTER calm requests, never above the maximum."""

from __future__ import annotations

import asyncio

import pytest

from service.dolibarr.limit import RAISE_AFTER, SLOW_AT, WINDOW, AdaptiveLimit


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


SPREAD = (
    "b" + "o" * (WINDOW // (SLOW_AT - 1))
) * 10  # a deadlock now and then, fewer than SLOW_AT per WINDOW


@pytest.mark.parametrize(
    ("maximum", "events", "limits", "decreases"),
    [
        (4, "b" * (SLOW_AT - 1), [4] * (SLOW_AT - 1), 0),  # fewer than SLOW_AT: nothing
        (4, "b" * SLOW_AT, [4] * (SLOW_AT - 1) + [2], 1),  # SLOW_AT in the window: halves
        (4, "b" * (2 * SLOW_AT - 1), [4] * (SLOW_AT - 1) + [2] * SLOW_AT, 1),  # the window starts again
        (8, "b" * (3 * SLOW_AT), [8] * (SLOW_AT - 1) + [4] * SLOW_AT + [2] * SLOW_AT + [1], 3),
        (  # within one window: they count together
            4,
            "b" + "o" * (WINDOW - SLOW_AT) + "b" * (SLOW_AT - 1),
            [4] * (WINDOW - 1) + [2],
            1,
        ),
        (  # the first fell out of the window
            4,
            "b" + "o" * (WINDOW - SLOW_AT + 1) + "b" * (SLOW_AT - 1),
            [4] * (WINDOW + 1),
            0,
        ),
        (4, SPREAD, [4] * len(SPREAD), 0),  # occasional deadlocks: the concurrency stays
        (1, "b" * (3 * SLOW_AT), [1] * (3 * SLOW_AT), 0),  # floor 1: nothing to halve
        (3, "b" * SLOW_AT, [3] * (SLOW_AT - 1) + [1], 1),  # 3 // 2
        (4, "o" * (3 * RAISE_AFTER), [4] * (3 * RAISE_AFTER), 0),  # never above the maximum
    ],
)
def test_the_limit_halves_when_deadlocks_are_frequent_with_a_floor_of_1(
    maximum: int, events: str, limits: list[int], decreases: int
) -> None:
    limit = AdaptiveLimit(maximum)
    assert run(limit, events) == limits
    assert limit.decreases == decreases


def test_the_limit_climbs_back_one_step_per_raise_after_calm_requests_up_to_the_maximum() -> None:
    limit = AdaptiveLimit(4)
    run(limit, "b" * (2 * SLOW_AT))
    assert limit.limit == 1
    assert run(limit, "o" * (RAISE_AFTER - 1))[-1] == 1
    assert run(limit, "o")[-1] == 2  # the RAISE_AFTER-th calm request
    assert run(limit, "o" * RAISE_AFTER)[-1] == 3
    run(limit, "o" * (RAISE_AFTER - 1) + "b")  # one deadlock before the streak ends: no rise, no fall
    assert limit.limit == 3
    assert run(limit, "o" * RAISE_AFTER)[-1] == 4
    assert run(limit, "o" * (5 * RAISE_AFTER))[-1] == 4  # and stops at the maximum
    assert limit.decreases == 2


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
    for _ in range(SLOW_AT):
        await request(True)
    assert limit.limit == 1
    peak = 0
    await asyncio.gather(*(request(False) for _ in range(6)))
    assert peak == 1  # the lowered limit holds the next requests back
