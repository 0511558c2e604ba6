"""``ps2doli backfill --since`` on the real pair: the live stream started with ``orders.first_pass = "new"``
(nothing of the history), then the history from a day inside the seeded year: exactly the invoiced orders placed
from that day on (shop time), none before, each with its invoice; a second backfill writes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.real.apis import Dolibarr, Shop
from tests.real.realpair import Pair


async def read(pair: Pair) -> tuple[list[dict[str, Any]], set[int], set[str], set[str]]:
    async with aiohttp.ClientSession() as session:
        shop = Shop(pair.ps_url, pair.ps_key, session)
        doli = Dolibarr(pair.doli_api, pair.doli_key, session)
        orders = await shop.all("orders", display="[id,date_add,current_state]")
        invoiced = {int(i["id_order"]) for i in await shop.all("order_invoices", display="[id,id_order]")}
        doli_orders = {str(o["ref_ext"]) for o in await doli.all("/orders") if o.get("ref_ext")}
        doli_invoices = {str(i["ref_ext"]) for i in await doli.all("/invoices") if i.get("ref_ext")}
        return orders, invoiced, doli_orders, doli_invoices


def test_a_backfill_brings_exactly_the_orders_from_its_day_on(
    pair: Pair, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("backfill")
    pair.reset("clean-mc")
    settings = pair.settings(folder, shop={"catalog_only": False}, orders={"first_pass": "new"})
    live = pair.ps2doli(settings, "sync")
    assert live.returncode == 0, live.stdout
    orders, invoiced, doli_orders, _ = asyncio.run(read(pair))
    assert doli_orders == set(), "first_pass = new: the live stream imports no history"

    days = sorted(str(o["date_add"])[:10] for o in orders)
    since = days[len(days) // 2]  # a day in the middle of the seeded year
    done = pair.ps2doli(settings, "backfill", "--since", since)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]

    _, _, doli_orders, doli_invoices = asyncio.run(read(pair))
    wanted = {int(o["id"]) for o in orders if str(o["date_add"])[:10] >= since and int(o["id"]) in invoiced}
    assert doli_orders == {f"ps-main-order-{oid}" for oid in wanted}
    assert {f"ps-main-invoice-{oid}" for oid in wanted} <= doli_invoices

    pair.mark_writes()
    again = pair.ps2doli(settings, "backfill", "--since", since)
    assert again.returncode == 0
    assert pair.writes() == []
