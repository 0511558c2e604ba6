"""A lost state file on the simulators: the next sync adopts by ref_ext and writes nothing it wrote already.
(The real pair's version: tests/real/test_exactly_once.py.)"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from service.dolibarr.model import ref_ext
from service.sandbox.shop_generator import generate_shop
from tests.conftest import SandboxFactory
from tests.e2e.catalog_support import catalog_overrides, sync, writes


def lose(state: Path) -> None:
    for path in state.parent.glob(f"{state.name}*"):
        path.unlink()


async def test_a_lost_state_file_uploads_no_image_again(make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    """Images attached already (a lost state file, a crash between the upload and the commit) are adopted, not
    uploaded again: the real pair got 47 uploads of unchanged images after a state loss."""
    shop = generate_shop(10, categories=8, products=8, customers=2, combination_share=0.0)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state)
    assert sandbox.dolibarr_requests.total("POST", "/documents") > 0
    lose(state)
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state)
    assert [w for w in writes(sandbox) if w[1].startswith("/documents")] == []


RESOURCES = ("categories", "products", "combinations", "stock", "images", "customers")


async def synced(
    make_sandbox: SandboxFactory, tmp_path: Path, variants: bool = False
) -> tuple[Any, Path, Any]:
    shop = generate_shop(12, categories=6, products=10, customers=4, combination_share=0.4)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    overrides = catalog_overrides(combinations="variants" if variants else "flat")
    await sync(sandbox, state, RESOURCES, overrides=overrides)
    return sandbox, state, overrides


@pytest.mark.parametrize("variants", [False, True], ids=["flat", "variants"])
async def test_a_lost_state_file_writes_nothing_when_dolibarr_holds_the_shops_values(
    make_sandbox: SandboxFactory, tmp_path: Path, variants: bool
) -> None:
    """Issue 10: every object is adopted by ref_ext and compared with what Dolibarr holds (the port's
    unchanged_parts): no PUT, no link, no variant impact, no stock movement, no upload."""
    sandbox, state, overrides = await synced(make_sandbox, tmp_path, variants)
    lose(state)
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, RESOURCES, overrides=overrides)
    assert writes(sandbox) == []
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, RESOURCES, overrides=overrides)
    assert writes(sandbox) == []  # and the state is whole again


async def test_a_lost_state_file_writes_only_what_changed_in_the_shop_meanwhile(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    sandbox, state, overrides = await synced(make_sandbox, tmp_path)
    shop = sandbox.shops["main"].data
    combined = {int(c["id_product"]) for c in shop.table("combinations").values()}
    product = next(p for p in shop.table("products").values() if int(p["id"]) not in combined)
    customer = next(iter(shop.table("customers").values()))
    lose(state)
    shop.update("products", int(product["id"]), price=Decimal(product["price"]) + Decimal("1.25"))
    shop.update("customers", int(customer["id"]), lastname="Renamed")
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, RESOURCES, overrides=overrides)
    data = sandbox.dolibarr
    dolibarr_product = data.find("products", ref_ext=ref_ext("main", "product", product["id"]))[0]
    thirdparty = data.find("thirdparties", ref_ext=ref_ext("main", "customer", customer["id"]))[0]
    assert sorted(writes(sandbox)) == [
        ("PUT", f"/products/{dolibarr_product['id']}"),
        ("PUT", f"/thirdparties/{thirdparty['id']}"),
    ]
    assert abs(Decimal(str(dolibarr_product["price"])) - Decimal(product["price"])) < Decimal("0.00001")
    assert "Renamed" in str(thirdparty["nom"] if "nom" in thirdparty else thirdparty["name"])
