"""A round of passes (``ps2doli sync``, the service's first round): each pass starts as soon as the passes it
depends on have ended, so that independent chains run side by side.

One resource after the other left Dolibarr idle while ps2doli read each resource's first page from the shop and
while the last page of the one before drained: customers waited for the whole catalog, images for stock. Side by
side they share the same ``max_concurrency`` slots (:class:`~service.engine.lanes.Lanes`), so Dolibarr is no busier
than the setting allows; it is only less often idle.

The order of the jobs given stays the dependency order: a pass waits for the earlier passes of its shop that it
needs (:data:`NEEDS`), never for later ones; a resource :data:`NEEDS` does not know waits for every earlier one.
Shops run one after the other: two shops may hold the same references, and each shop's writer claims the refs it
is creating (``ObjectWriter``) for itself only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, TypeVar

Report = TypeVar("Report")

# what a resource's pass waits for in one shop's round: a product its categories, a combination its product, a
# stock row or an image the product (or combination) it belongs to; an order every line's product and its
# customer (and the catalog settled, as before: an order's validation may move stock). Customers need nothing.
NEEDS: Final[Mapping[str, frozenset[str]]] = {
    "categories": frozenset(),
    "products": frozenset({"categories"}),
    "combinations": frozenset({"categories", "products"}),
    "stock": frozenset({"products", "combinations"}),
    "images": frozenset({"products", "combinations"}),
    "customers": frozenset(),
    "orders": frozenset({"categories", "products", "combinations", "stock", "images", "customers"}),
}


def waits_for(jobs: Sequence[tuple[str, str]], index: int) -> list[int]:
    """The indexes of the earlier jobs the job at ``index`` waits for: those of its shop it needs."""
    shop, resource = jobs[index]
    needs = NEEDS.get(resource)
    return [
        i
        for i, (other_shop, other) in enumerate(jobs[:index])
        if other_shop == shop and (needs is None or other in needs)
    ]


async def run_round(
    jobs: Sequence[tuple[str, str]],
    run: Callable[[str, str], Awaitable[Report | None]],
    *,
    stopping: asyncio.Event,
    on_done: Callable[[Report], Awaitable[None]] | None = None,
) -> list[Report]:
    """``run(shop, resource)`` for each job, each once the jobs it waits for ended; the reports in the jobs' order
    (a job ``run`` answered None for, or not started because ``stopping`` was set, has none)."""
    reports: dict[int, Report] = {}

    async def one(index: int, earlier: list[asyncio.Task[None]]) -> None:
        if earlier:
            await asyncio.wait(earlier)
        if stopping.is_set():
            return
        report = await run(*jobs[index])
        if report is not None:
            reports[index] = report
            if on_done is not None:
                await on_done(report)

    for shop in dict.fromkeys(shop for shop, _ in jobs):
        if stopping.is_set():
            break
        try:
            async with asyncio.TaskGroup() as group:
                # in the jobs' order, so that the tasks a job waits for (earlier ones) exist when it is made
                tasks: dict[int, asyncio.Task[None]] = {}
                for index in (i for i, job in enumerate(jobs) if job[0] == shop):
                    earlier = [tasks[i] for i in waits_for(jobs, index)]
                    tasks[index] = group.create_task(one(index, earlier))
        except ExceptionGroup as failed:
            # a pass that raised (a bug: passes report their errors) ends the round, the others cancelled; its
            # error is raised as one pass after the other raised it, for the callers' handlers
            raise failed.exceptions[0] from None
    return [reports[i] for i in sorted(reports)]
