"""Combinations end to end, over real sockets: flat (one Dolibarr product per combination) and variants
(Dolibarr's variants module), the combinations sweep, and the ``[[null]]`` option values of PHP 8 shops."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from service.dolibarr.model import ref_ext
from service.sandbox.harness import Sandbox
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import ShopData
from tests.conftest import SandboxFactory
from tests.e2e.catalog_support import (
    catalog_overrides,
    combinations_of,
    money,
    option_values,
    product_of,
    stock,
    sync,
    text,
    writes,
)

EIGHT = 1  # product 1 of the shop below has 8 combinations


def eight_combinations_shop(seed: int = 3) -> ShopData:
    shop = generate_shop(
        seed, categories=4, products=8, customers=2, combination_share=0.0, combinations_per_product=8
    )
    assert len(combinations_of(shop, EIGHT)) == 8
    return shop


@pytest.fixture
async def combos(make_sandbox: SandboxFactory) -> Sandbox:
    return await make_sandbox({"main": eight_combinations_shop()})


def expected_price(shop: ShopData, id_product: int, combination: dict[str, object] | None = None) -> Decimal:
    price = Decimal(shop.product_view(id_product)["price"])
    return price + (Decimal(str(combination["price"])) if combination else Decimal(0))


def base_ref(shop: ShopData, id_product: int, combination: dict[str, object]) -> str:
    own = " ".join(str(combination.get("reference") or "").split())
    if own:
        return own
    parent = " ".join(str(shop.table("products")[id_product].get("reference") or "").split())
    return f"{parent or f'PS{id_product}'}-{combination['id']}"


def assert_ref(given: str, base: str) -> None:
    assert given == base or (given.startswith(base + "-") and given[len(base) + 1 :].isdigit()), (given, base)


async def test_flat_eight_combinations_land_as_eight_products_with_refs_labels_prices_and_stock(
    combos: Sandbox, tmp_path: Path
) -> None:
    await sync(combos, tmp_path / "s.sqlite3")
    shop, data = combos.shop.data, combos.dolibarr
    name = text(shop.table("products")[EIGHT]["name"])
    assert not data.find("products", ref_ext=ref_ext("main", "product", EIGHT)), "flat: no parent product"
    refs = set()
    for combination in combinations_of(shop, EIGHT):
        cid = int(combination["id"])
        product = product_of(data, "main", f"{EIGHT}-{cid}")
        values = [v for _, v in option_values(shop, combination)]
        assert product["label"] == f"{name} - {', '.join(values)}"
        assert money(product["price"]) == money(expected_price(shop, EIGHT, combination))
        assert str(product["description"]).startswith(
            ", ".join(f"{g}: {v}" for g, v in option_values(shop, combination))
        )
        assert_ref(product["ref"], base_ref(shop, EIGHT, combination))
        refs.add(product["ref"])
        assert stock(data, product["id"]) == shop.stock_quantity(EIGHT, cid)
        if combination["ean13"]:
            assert product["barcode"] == combination["ean13"]
    assert len(refs) == 8


async def test_flat_one_impact_changed_updates_exactly_that_product_by_product_date_and_by_the_sweep(
    combos: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "s.sqlite3"
    await sync(combos, state)
    shop, data = combos.shop.data, combos.dolibarr
    first, second = combinations_of(shop, EIGHT)[2:4]

    # saved from the back office: the product's date_upd moves, its 8 combinations are read again
    shop.advance(5)
    shop.update("combinations", int(first["id"]), price=Decimal("7.500000"))
    combos.dolibarr_requests.reset()
    await sync(combos, state, ("products",))
    target = product_of(data, "main", f"{EIGHT}-{first['id']}")
    assert writes(combos) == [("PUT", f"/products/{target['id']}")]
    assert money(target["price"]) == money(expected_price(shop, EIGHT, first))

    # changed without the product's date_upd moving (an import, a module): the combinations sweep finds it
    shop.table("combinations")[int(second["id"])]["price"] = Decimal("-2.000000")
    shop.touch()
    combos.dolibarr_requests.reset()
    [report] = await sync(combos, state, ("combinations",))
    target = product_of(data, "main", f"{EIGHT}-{second['id']}")
    assert writes(combos) == [("PUT", f"/products/{target['id']}")]
    assert report.updated == 1 and report.created == 0
    assert money(target["price"]) == money(expected_price(shop, EIGHT, second))

    # nothing changed: the sweep costs no Dolibarr request about products (only the start-up checks)
    combos.dolibarr_requests.reset()
    await sync(combos, state, ("combinations",))
    assert [p for _, p in combos.dolibarr_requests.raw if re.search(r"/products/\d", p)] == []
    assert writes(combos) == []


async def test_variants_parent_with_eight_children_and_one_impact_changed_updates_that_child_only(
    combos: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "s.sqlite3"
    overrides = catalog_overrides(combinations="variants")
    await sync(combos, state, overrides=overrides)
    shop, data = combos.shop.data, combos.dolibarr
    parent = product_of(data, "main", EIGHT)
    assert money(parent["price"]) == money(expected_price(shop, EIGHT))
    children = {
        int(c["fk_product_child"]): c
        for c in data.combinations.values()
        if int(c["fk_product_parent"]) == int(parent["id"])
    }
    assert len(children) == 8
    for combination in combinations_of(shop, EIGHT):
        cid = int(combination["id"])
        child = product_of(data, "main", f"{EIGHT}-{cid}")
        assert int(child["id"]) in children, "every combination is a variant of the parent"
        assert money(children[int(child["id"])]["variation_price"]) == money(combination["price"])
        assert money(child["price"]) == money(expected_price(shop, EIGHT, combination))
        assert_ref(child["ref"], base_ref(shop, EIGHT, combination))
        values = [v for _, v in option_values(shop, combination)]
        assert child["label"] == f"{text(shop.table('products')[EIGHT]['name'])} - {', '.join(values)}"
        assert stock(data, child["id"]) == shop.stock_quantity(EIGHT, cid)
    assert stock(data, parent["id"]) == 0, "the parent holds no stock of its own (its row is the sum)"

    # one impact changed: that child's combination and that child, never a new variant (Dolibarr would
    # create a new child and orphan the old one)
    combination = combinations_of(shop, EIGHT)[5]
    child = product_of(data, "main", f"{EIGHT}-{combination['id']}")
    products_before = data.count("products")
    shop.advance(5)
    shop.update("combinations", int(combination["id"]), price=Decimal("4.000000"))
    combos.dolibarr_requests.reset()
    await sync(combos, state, ("products",), overrides=overrides)
    comb_id = next(c["id"] for c in children.values() if int(c["fk_product_child"]) == int(child["id"]))
    assert sorted(writes(combos)) == sorted(
        [("PUT", f"/products/variants/{comb_id}"), ("PUT", f"/products/{child['id']}")]
    )
    assert data.count("products") == products_before
    assert money(data.combinations[int(comb_id)]["variation_price"]) == Decimal("4.00000")
    assert money(child["price"]) == money(expected_price(shop, EIGHT, combination))

    # the parent's price changes: Dolibarr recomputes every child from the combination's impact, which is
    # right, and the children's own update agrees with it
    shop.advance(5)
    shop.update("products", EIGHT, price=Decimal("50.000000"))
    await sync(combos, state, ("products",), overrides=overrides)
    for combination in combinations_of(shop, EIGHT):
        child = product_of(data, "main", f"{EIGHT}-{combination['id']}")
        assert money(child["price"]) == money(Decimal(50) + Decimal(str(combination["price"])))
    assert data.count("products") == products_before

    # a fresh state file: every child is found again by its own ref_ext, nothing is posted again
    combos.dolibarr_requests.reset()
    await sync(combos, tmp_path / "fresh.sqlite3", ("categories", "products"), overrides=overrides)
    assert combos.dolibarr_requests.total("POST", "/variants") == 0
    assert combos.dolibarr_requests.total("POST", "/products") == 0
    assert data.count("products") == products_before


@pytest.mark.parametrize("mode", ["flat", "variants"])
async def test_option_values_rendered_as_null_are_read_again_as_xml(
    make_sandbox: SandboxFactory, tmp_path: Path, mode: str
) -> None:
    sandbox = await make_sandbox({"main": eight_combinations_shop(4)}, php8_null_associations=True)
    overrides = catalog_overrides(combinations=mode)
    reports = await sync(sandbox, tmp_path / "s.sqlite3", overrides=overrides)
    assert sum(r.failed for r in reports) == 0
    shop, data = sandbox.shop.data, sandbox.dolibarr
    name = text(shop.table("products")[EIGHT]["name"])
    for combination in combinations_of(shop, EIGHT):
        product = product_of(data, "main", f"{EIGHT}-{combination['id']}")
        values = [v for _, v in option_values(shop, combination)]
        assert product["label"] == f"{name} - {', '.join(values)}"
    # (the JSON output carried no option value ids at all: these labels come from the XML re-read)
    # the sweep maps them the same way: nothing to push
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, tmp_path / "s.sqlite3", ("combinations",), overrides=overrides)
    assert sandbox.dolibarr_requests.writes() == 0


async def test_a_first_variants_sync_with_images_reads_each_product_once(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Regression: an image set (or a variant) pushed before its product started waited by loading the product
    again from the shop - one extra product and combinations read per product."""
    shop = generate_shop(6, categories=4, products=30, customers=2, combination_share=0.3)
    sandbox = await make_sandbox({"main": shop})
    overrides = catalog_overrides(combinations="variants")
    await sync(sandbox, tmp_path / "s.sqlite3", ("categories",), overrides=overrides)
    sandbox.shop.requests.reset()
    [report] = await sync(sandbox, tmp_path / "s.sqlite3", ("products",), overrides=overrides)
    assert report.created > 30 and report.failed == 0
    assert sandbox.shop.requests.total(contains="/api/products") == 1  # one page, read once
    assert sandbox.shop.requests.total(contains="/api/combinations") == 1


async def test_a_variant_whose_ref_differs_only_by_case_from_a_taken_one_gets_the_next_ref(
    combos: Sandbox, tmp_path: Path
) -> None:
    """Regression: the check before posting a variant compared refs exactly, while Dolibarr's unique key
    ignores case: the variant was posted and refused with a bare 500."""
    shop = combos.shop.data
    made_by_hand = combos.dolibarr.create_product(
        {"ref": "CASE-REF", "label": "made in Dolibarr", "price": 1}
    )
    combination = combinations_of(shop, EIGHT)[0]
    shop.update("combinations", int(combination["id"]), reference="case-ref")
    reports = await sync(combos, tmp_path / "s.sqlite3", overrides=catalog_overrides(combinations="variants"))
    assert sum(r.failed for r in reports) == 0
    assert product_of(combos.dolibarr, "main", f"{EIGHT}-{combination['id']}")["ref"] == "case-ref-1"
    assert combos.dolibarr.products[made_by_hand]["label"] == "made in Dolibarr"
