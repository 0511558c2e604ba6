"""Helpers of the catalog end-to-end tests: what the simulated shop says a product should become, and what the
simulated Dolibarr holds. Expectations are computed from the shop's own tables, never with ps2doli's mappers."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from service.dolibarr.model import ref_ext
from service.engine.pipeline import PassReport
from service.sandbox.dolibarr_model import DolibarrData, DolibarrError
from service.sandbox.harness import Sandbox
from service.sandbox.shop_model import ShopData
from tests.conftest import engine_for

CATALOG = ("categories", "products", "combinations", "stock", "images")


def catalog_overrides(shop: str = "main", **catalog: Any) -> dict[str, dict[str, Any]]:
    return {shop: {"catalog": {"warehouse_id": 1, **catalog}}}


async def sync(
    sandbox: Sandbox,
    state: Path,
    resources: Sequence[str] = CATALOG,
    *,
    shops: Sequence[str] = ("main",),
    overrides: dict[str, dict[str, Any]] | None = None,
) -> list[PassReport]:
    """One pass of each resource of each shop, in order; every pass must end ok."""
    async with engine_for(
        sandbox, state, resources=tuple(resources), shop_overrides=overrides or catalog_overrides()
    ) as w:
        reports = list(await w.engine.run_many([(s, r) for s in shops for r in resources]))
    bad = [(r.shop, r.resource, r.outcome, r.error) for r in reports if r.outcome != "ok"]
    assert not bad, bad
    return reports


def text(value: Any, lang: int = 1) -> str:
    if isinstance(value, dict):
        return str(value.get(lang, next(iter(value.values()), "")))
    return str(value or "")


def combinations_of(shop: ShopData, id_product: int) -> list[dict[str, Any]]:
    rows = [c for c in shop.table("combinations").values() if int(c["id_product"]) == id_product]
    return sorted(rows, key=lambda c: int(c["id"]))


def option_values(shop: ShopData, combination: dict[str, Any], lang: int = 1) -> list[tuple[str, str]]:
    """(attribute group public name, value name) of a combination, sorted like a label lists them."""
    pairs = []
    for value_id in combination.get("_option_values", []):
        value = shop.table("product_option_values")[int(value_id)]
        group = shop.table("product_options")[int(value["id_attribute_group"])]
        pairs.append((text(group["public_name"], lang), text(value["name"], lang)))
    return sorted(pairs)


def product_of(data: DolibarrData, shop: str, key: str | int) -> dict[str, Any]:
    found = data.find("products", ref_ext=ref_ext(shop, "product", key))
    assert len(found) == 1, (key, found)
    return found[0]


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.00001"))


def stock(data: DolibarrData, product_id: int | str, warehouse: int = 1) -> Decimal:
    row = data.stock.get(int(product_id), {}).get(warehouse)
    return Decimal(row["reel"]) if row else Decimal(0)


def files(data: DolibarrData, product_id: int | str) -> dict[str, bytes]:
    """The files attached to a Dolibarr product: name -> bytes."""
    try:
        listed = data.list_documents("product", oid=int(product_id))
    except DolibarrError:
        return {}
    mp, directory = str(listed[0]["filepath"]).split("/", 1)
    return {name: f["content"] for name, f in data.documents[(mp, directory)].items()}


def writes(sandbox: Sandbox) -> list[tuple[str, str]]:
    """The write requests Dolibarr received since the last reset: (method, path without the API root)."""
    return [
        (m, p.split("/api/index.php", 1)[-1])
        for m, p in sandbox.dolibarr_requests.raw
        if m in ("POST", "PUT", "DELETE", "PATCH")
    ]
