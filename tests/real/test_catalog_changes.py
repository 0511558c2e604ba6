"""One change in the shop, made through its webservice, costs exactly the Dolibarr writes it needs.

After a first ``ps2doli sync`` of the seeded shop (flat combinations), each test changes one thing in the real
PrestaShop, marks Dolibarr's access log, runs ``ps2doli sync`` and compares the REST writes Dolibarr received with
the minimum (docs/catalog.md, "Requests per change"). The tests run in file order on one synced pair.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.real.apis import Dolibarr, Shop, run
from tests.real.realpair import Pair
from tests.real.shop_edits import add_combination, delete, set_fields


@dataclass
class Synced:
    pair: Pair
    settings: Path

    def sync(self, *args: str) -> list[str]:
        """``ps2doli sync`` (plus ``args``); the REST writes it made, ids replaced by ``N``."""
        self.pair.mark_writes()
        done = self.pair.ps2doli(self.settings, "sync", *args)
        assert done.returncode == 0, done.stdout + done.stderr[-2000:]
        return self.writes()

    def command(self, *args: str) -> list[str]:
        self.pair.mark_writes()
        done = self.pair.ps2doli(self.settings, *args)
        assert done.returncode == 0, done.stdout + done.stderr[-2000:]
        return self.writes()

    def writes(self) -> list[str]:
        return sorted(re.sub(r"/\d+", "/N", " ".join(w.split()[:2])) for w in self.pair.writes())

    def dolibarr(self, work: Callable[[Dolibarr], Any]) -> Any:
        async def go() -> Any:
            async with aiohttp.ClientSession() as session:
                return await work(Dolibarr(self.pair.doli_api, self.pair.doli_key, session))

        return run(go)

    def shop(self, work: Callable[[Shop], Any]) -> Any:
        async def go() -> Any:
            async with aiohttp.ClientSession() as session:
                return await work(Shop(self.pair.ps_url, self.pair.ps_key, session))

        return run(go)

    def product(self, key: str) -> dict[str, Any]:
        return self.dolibarr(lambda d: d.get(f"/products/ref_ext/ps-main-product-{key}"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def synced(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> Synced:
    folder = tmp_path_factory.mktemp("catalog-changes")
    pair.reset("clean")
    settings = pair.settings(folder, catalog={"combinations": "flat"})
    first = pair.ps2doli(settings, "sync")
    assert first.returncode == 0, first.stdout
    return Synced(pair, settings)


def test_an_unchanged_shop_costs_no_write(synced: Synced) -> None:
    assert synced.sync() == []


def test_a_new_price_is_one_product_update(synced: Synced) -> None:
    synced.shop(lambda s: set_fields(s, "products", 20, {"price": "8.250000"}))
    assert synced.sync() == ["PUT /api/index.php/products/N"]
    assert synced.product("20")["price"].startswith("8.25")


def test_a_new_name_is_one_product_update(synced: Synced) -> None:
    synced.shop(lambda s: set_fields(s, "products", 21, {"name": "Planche à découper XXL"}))
    assert synced.sync() == ["PUT /api/index.php/products/N"]
    assert synced.product("21")["label"] == "Planche à découper XXL"


def test_a_category_move_is_one_link_or_unlink_per_category_and_no_product_update(synced: Synced) -> None:
    # product 22 (MOULE (X8)) from Maison > Cuisine > Ustensiles (12, 13, 14) to Maison > Décoration (12, 15)
    before = synced.shop(lambda s: s.get("products/22"))["product"]["associations"]["categories"]
    assert {int(c["id"]) for c in before} == {12, 13, 14}
    synced.shop(lambda s: set_fields(s, "products", 22, {"id_category_default": "15"}, categories=[12, 15]))
    assert synced.sync() == [
        "DELETE /api/index.php/categories/N/objects/product/N",
        "DELETE /api/index.php/categories/N/objects/product/N",
        "POST /api/index.php/categories/N/objects/product/N",
    ]
    pid = synced.product("22")["id"]
    linked = synced.dolibarr(lambda d: d.get(f"/products/{pid}/categories"))
    assert sorted(c["ref_ext"] for c in linked) == ["ps-main-category-12", "ps-main-category-15"]


def test_a_new_stock_quantity_is_one_movement(synced: Synced) -> None:
    rows = synced.shop(lambda s: s.all("stock_availables", **{"filter[id_product]": "[23]"}))
    row = next(r for r in rows if int(r["id_product_attribute"]) == 0)
    synced.shop(
        lambda s: set_fields(s, "stock_availables", int(row["id"]), {"quantity": str(row["quantity"] + 7)})
    )
    assert synced.sync() == ["POST /api/index.php/stockmovements"]
    pid = synced.product("23")["id"]
    stock = synced.dolibarr(lambda d: d.get(f"/products/{pid}/stock"))
    assert int(stock["stock_warehouses"][str(synced.pair.warehouse_id)]["real"]) == row["quantity"] + 7


def test_a_new_combination_is_one_product_with_its_links_and_images(synced: Synced) -> None:
    # T-shirt 127 gets XXL (26) / White (8)
    new_id = synced.shop(
        lambda s: add_combination(s, 127, [26, 8], reference="VETE-108-XXL-WHITE", price="3.333333")
    )
    product = synced.shop(lambda s: s.get("products/127"))["product"]
    categories = [c for c in product["associations"]["categories"] if int(c["id"]) not in (1, 2)]
    images = product["associations"].get("images") or []
    price = Decimal(product["price"]) + Decimal("3.333333")
    # Product::create keeps the price to the cent: one PUT gives it its 5 decimals
    exact_price = round(price, 5) != round(price, 2)
    expected = Counter(
        ["POST /api/index.php/products"]
        + ["PUT /api/index.php/products/N"] * exact_price
        + ["POST /api/index.php/categories/N/objects/product/N"] * len(categories)
        + ["POST /api/index.php/documents/upload"] * len(images)
    )
    assert Counter(synced.sync()) == expected
    made = synced.product(f"127-{new_id}")
    assert abs(Decimal(str(made["price"])) - price) <= Decimal("0.000005")
    assert made["ref"] == "VETE-108-XXL-WHITE"
    assert made["label"].endswith("XXL, White") or "XXL" in made["label"]


def test_a_deleted_product_is_deactivated_by_the_reconcile_pass(synced: Synced) -> None:
    before = synced.product("24")
    synced.shop(lambda s: delete(s, "products", 24))
    assert synced.sync() == []  # a sync reads what changed: a deletion is the reconcile pass's
    assert synced.command("reconcile") == ["PUT /api/index.php/products/N"]
    after = synced.product("24")
    assert after["id"] == before["id"] and str(after["status"]) == "0"


def test_after_the_changes_a_sync_writes_nothing(synced: Synced) -> None:
    assert synced.sync() == []
