"""A round of passes: each pass after the earlier ones it needs, independent chains side by side (rounds.py)."""

from __future__ import annotations

import asyncio

import pytest

from service.engine.rounds import run_round, waits_for
from service.settings import ALL_RESOURCES

ROUND = [("main", r) for r in ALL_RESOURCES]


@pytest.mark.parametrize(
    ("resource", "waits"),
    [
        ("categories", []),
        ("products", ["categories"]),
        ("combinations", ["categories", "products"]),
        ("stock", ["products", "combinations"]),
        ("images", ["products", "combinations"]),
        ("customers", []),
        ("orders", ["categories", "products", "combinations", "stock", "images", "customers"]),
    ],
)
def test_each_resource_waits_for_the_earlier_ones_it_needs(resource: str, waits: list[str]) -> None:
    index = ROUND.index(("main", resource))
    assert [ROUND[i][1] for i in waits_for(ROUND, index)] == waits


def test_the_given_order_stays_the_dependency_order() -> None:
    """A job never waits for a later one (a caller may put orders first on purpose); an unknown resource waits
    for every earlier job of its shop, and no job for another shop's."""
    jobs = [("main", "orders"), ("main", "products"), ("other", "categories"), ("main", "notes")]
    assert waits_for(jobs, 0) == []
    assert waits_for(jobs, 1) == []
    assert waits_for(jobs, 3) == [0, 1]


async def test_customers_run_beside_the_catalog_and_orders_after_everything() -> None:
    running: set[str] = set()
    seen_beside: dict[str, set[str]] = {}
    customers_started = asyncio.Event()

    async def run(shop: str, resource: str) -> str:
        running.add(resource)
        seen_beside[resource] = set(running) - {resource}
        if resource == "customers":
            customers_started.set()
        if resource == "categories":  # one after the other, this would wait forever
            await asyncio.wait_for(customers_started.wait(), 5)
        await asyncio.sleep(0)
        running.discard(resource)
        return resource

    reports = await run_round(ROUND, run, stopping=asyncio.Event())
    assert reports == list(ALL_RESOURCES)  # in the jobs' order, whatever order they ended in
    assert "categories" in seen_beside["customers"]
    assert seen_beside["orders"] == set()


async def test_stock_and_images_run_side_by_side() -> None:
    both = asyncio.Barrier(2)

    async def run(shop: str, resource: str) -> str:
        if resource in ("stock", "images"):
            await asyncio.wait_for(both.wait(), 5)
        return resource

    assert len(await run_round(ROUND, run, stopping=asyncio.Event())) == len(ROUND)


async def test_shops_run_one_after_the_other() -> None:
    jobs = [(s, r) for s in ("s1", "s2") for r in ("categories", "customers")]
    ended: list[tuple[str, str]] = []
    started_after: dict[tuple[str, str], list[tuple[str, str]]] = {}

    async def run(shop: str, resource: str) -> tuple[str, str]:
        started_after[(shop, resource)] = list(ended)
        await asyncio.sleep(0.01 if resource == "categories" else 0)
        ended.append((shop, resource))
        return shop, resource

    await run_round(jobs, run, stopping=asyncio.Event())
    assert set(started_after[("s2", "categories")]) == {("s1", "categories"), ("s1", "customers")}


async def test_a_stop_starts_no_further_pass_and_reports_those_that_ran() -> None:
    stopping = asyncio.Event()

    async def run(shop: str, resource: str) -> str:
        if resource == "products":
            stopping.set()  # the service is asked to stop while products run
        return resource

    reports = await run_round(ROUND, run, stopping=stopping)
    assert "orders" not in reports and "combinations" not in reports
    assert reports[:2] == ["categories", "products"]


async def test_a_pass_that_raises_ends_the_round_with_its_error() -> None:
    async def run(shop: str, resource: str) -> str:
        if resource == "products":
            raise RuntimeError("bug")
        return resource

    with pytest.raises(RuntimeError, match="bug"):
        await run_round(ROUND, run, stopping=asyncio.Event())
