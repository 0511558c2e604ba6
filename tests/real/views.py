"""What each side holds, read once through its own API: the shop's catalog and customers, and what a user sees
in Dolibarr after a sync. The tests compare the two."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp

from tests.real.apis import Dolibarr, Shop
from tests.real.realpair import Pair

T = TypeVar("T")
XLINK = "{http://www.w3.org/1999/xlink}href"
FR = 8  # PrestaShop's country id of France (tax rules of catalog.tax_country = "FR")


def lang(value: Any, language: int = 1) -> str:
    """A multilingual field's text in one language (the webservice's ``[{"id": "1", "value": ...}]``)."""
    if isinstance(value, list):
        for entry in value:
            if str(entry.get("id")) == str(language):
                return str(entry.get("value") or "")
        return ""
    return str(value or "")


def ids(record: dict[str, Any], association: str) -> list[int]:
    rows = (record.get("associations") or {}).get(association) or []
    return [int(r["id"]) for r in rows if isinstance(r, dict) and r.get("id") is not None]


async def bounded(works: Iterable[Awaitable[T]], limit: int = 8) -> list[T]:
    gate = asyncio.Semaphore(limit)

    async def one(work: Awaitable[T]) -> T:
        async with gate:
            return await work

    return list(await asyncio.gather(*(one(w) for w in works)))


@dataclass
class ShopView:
    products: dict[int, dict[str, Any]]
    combinations: dict[int, dict[str, Any]]  # with "images" and "option_values" ids read from XML
    categories: dict[int, dict[str, Any]]
    customers: dict[int, dict[str, Any]]
    stock: list[dict[str, Any]]
    vat_by_group: dict[int, Decimal]
    option_values: dict[int, dict[str, Any]]

    def combinations_of(self, product_id: int) -> list[dict[str, Any]]:
        return sorted(
            (c for c in self.combinations.values() if int(c["id_product"]) == product_id),
            key=lambda c: int(c["id"]),
        )


async def read_shop(shop: Shop) -> ShopView:
    products = {int(p["id"]): p for p in await shop.all("products")}
    categories = {int(c["id"]): c for c in await shop.all("categories")}
    customers = {int(c["id"]): c for c in await shop.all("customers")}
    stock = await shop.all("stock_availables")
    combinations = {int(c["id"]): c for c in await shop.all("combinations")}
    # the JSON renderer of 1.7.8 on PHP 8 loses a combination's association ids ([[null]]): XML has them
    # (a partial display: display=full's rows hold the PHP-8 artifact <0>, not even well-formed XML)
    root = ET.fromstring(await shop.xml("combinations?display=[id,product_option_values[id],images[id]]"))
    for node in root.iter("combination"):
        cid = int(node.findtext("id") or 0)
        if cid in combinations:
            combinations[cid]["images"] = [
                int(e.get(XLINK, "").rstrip("/").rsplit("/", 1)[-1]) for e in node.iter("image")
            ]
            combinations[cid]["option_values"] = [
                int(e.get(XLINK, "").rstrip("/").rsplit("/", 1)[-1])
                for e in node.iter("product_option_value")
            ]
    rules = await shop.all("tax_rules", **{"filter[id_country]": f"[{FR}]"})
    taxes = {int(t["id"]): Decimal(str(t["rate"])) for t in await shop.all("taxes")}
    vat_by_group: dict[int, Decimal] = {}
    for rule in rules:
        if int(rule.get("id_state") or 0) == 0 and int(rule["id_tax"]) in taxes:
            vat_by_group[int(rule["id_tax_rules_group"])] = taxes[int(rule["id_tax"])]
    option_values = {int(v["id"]): v for v in await shop.all("product_option_values")}
    return ShopView(products, combinations, categories, customers, stock, vat_by_group, option_values)


@dataclass
class DolibarrView:
    products: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    thirdparties: list[dict[str, Any]]
    product_categories: dict[int, set[int]] = field(default_factory=dict)
    stock: dict[int, Decimal] = field(default_factory=dict)  # product id -> real stock in the warehouse
    documents: dict[int, set[str]] = field(default_factory=dict)

    def by_ref_ext(self, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {str(r["ref_ext"]): r for r in rows if r.get("ref_ext")}


async def read_dolibarr(doli: Dolibarr, warehouse_id: int) -> DolibarrView:
    products = await doli.all("/products")
    view = DolibarrView(
        products=products,
        categories=await doli.all("/categories", type="product"),
        thirdparties=await doli.all("/thirdparties"),
    )

    async def categories_of(pid: int) -> None:
        answer = await doli.get(f"/products/{pid}/categories")
        rows = answer if isinstance(answer, list) else []  # 20.0.2 answers a bare 0 for none
        view.product_categories[pid] = {int(r["id"]) for r in rows}

    async def stock_of(pid: int) -> None:
        answer = await doli.get(f"/products/{pid}/stock", selected_warehouse_id=warehouse_id)
        rows = (answer or {}).get("stock_warehouses") or {}
        real = rows.get(str(warehouse_id), {}).get("real") if isinstance(rows, dict) else None
        view.stock[pid] = Decimal(str(real or 0))

    async def documents_of(pid: int) -> None:
        answer = await doli.get("/documents", modulepart="product", id=pid)
        view.documents[pid] = {str(d["name"]) for d in answer or []}

    pids = [int(p["id"]) for p in products]
    await bounded(
        [categories_of(p) for p in pids] + [stock_of(p) for p in pids] + [documents_of(p) for p in pids]
    )
    return view


def snapshot(pair: Pair) -> tuple[ShopView, DolibarrView]:
    async def work() -> tuple[ShopView, DolibarrView]:
        async with aiohttp.ClientSession() as session:
            shop = Shop(pair.ps_url, pair.ps_key, session)
            doli = Dolibarr(pair.doli_api, pair.doli_key, session)
            return await read_shop(shop), await read_dolibarr(doli, pair.warehouse_id)

    return asyncio.run(work())


def text_of(html: str) -> str:
    """The words of an HTML text, for comparing a long description with what Dolibarr stored."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())
