"""The catalog end to end, over real sockets: references, prices and taxes, descriptions, categories, images and
stock, each change mirrored by the minimal set of Dolibarr requests."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote

import pytest

from service.app import wired
from service.dolibarr.model import ref_ext
from service.engine.sweeps import Sweeper
from service.engine.writer import MAX_REF_SUFFIX
from service.sandbox.dolibarr_model import DolibarrData
from service.sandbox.harness import Sandbox
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import ShopData
from tests.conftest import SandboxFactory, engine_for
from tests.e2e.catalog_support import (
    catalog_overrides,
    combinations_of,
    files,
    money,
    product_of,
    stock,
    sync,
    text,
    writes,
)

WEIRD = "O'Neil (50%) x"  # a quote, parentheses, a LIKE wildcard and spaces
LOOKALIKE = "O'Neil (50X) x"  # what a LIKE 'O''Neil (50%' or an unescaped % would also match
# what Dolibarr 20 stores for them (Product::create: dol_sanitizeFileName(dol_string_nospecial(trim(ref))), the
# quote and the spaces become "_"), which the client asks for from the start
WEIRD_STORED = "O_Neil_(50%)_x"
LOOKALIKE_STORED = "O_Neil_(50X)_x"


def small_shop(seed: int = 5, **kwargs: object) -> ShopData:
    """Products 1 and 2 have combinations, 3-8 are simple."""
    options: dict[str, object] = {
        "categories": 8,
        "products": 8,
        "customers": 2,
        "combination_share": 0.0,
        "combinations_per_product": 3,
    }
    options.update(kwargs)
    return generate_shop(seed, **options)  # type: ignore[arg-type]


def simple_products(shop: ShopData) -> list[int]:
    return sorted(pid for pid in shop.table("products") if not combinations_of(shop, pid))


# ----------------------------------------------------------------------------------------------- references


def with_references(shop: ShopData, refs: dict[int, str]) -> ShopData:
    for pid, reference in refs.items():
        shop.update("products", pid, reference=reference)
    return shop


async def assert_refs_stable(sandbox: Sandbox, state: Path, fresh: Path, refs: dict[int, str]) -> None:
    """A second sync writes nothing; with the state file lost (``fresh``), every product is found again by its
    ref_ext and keeps its ref (no create). The requests of that last sync stay in the log."""
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("categories", "products"))
    assert writes(sandbox) == []
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, fresh, ("categories", "products"))
    assert sandbox.dolibarr_requests.total("POST", "/products") == 0
    assert {pid: product_of(sandbox.dolibarr, "main", pid)["ref"] for pid in refs} == refs


async def test_duplicate_empty_and_awkward_references_get_distinct_stable_refs(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = with_references(
        small_shop(), {3: "DUP-REF", 4: "DUP-REF", 5: "", 6: WEIRD, 7: "  spaced   ref ", 8: "DUP-REF"}
    )
    dolibarr = DolibarrData()
    lookalike = dolibarr.create_product({"ref": LOOKALIKE, "label": "made in Dolibarr", "price": 1})
    sandbox = await make_sandbox({"main": shop}, dolibarr=dolibarr)
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state, ("categories", "products"))
    data = sandbox.dolibarr

    refs = {pid: product_of(data, "main", pid)["ref"] for pid in simple_products(shop)}
    assert sorted([refs[3], refs[4], refs[8]]) == ["DUP-REF", "DUP-REF-1", "DUP-REF-2"]
    assert refs[5] == "PS5"
    assert refs[6] == WEIRD_STORED
    assert refs[7] == "spaced_ref"  # trimmed, the doubled spaces folded (alphanohtml), the space made "_"
    assert len(set(refs.values())) == len(refs)
    assert data.products[lookalike]["ref"] == LOOKALIKE_STORED
    assert data.products[lookalike]["ref_ext"] is None, (
        "the Dolibarr product with a lookalike ref is not ours"
    )

    await assert_refs_stable(sandbox, state, tmp_path / "fresh.sqlite3", refs)
    assert ("PUT", f"/products/{lookalike}") not in writes(sandbox)
    assert data.products[lookalike]["ref_ext"] is None

    # the shop renames one duplicate: it gets its own ref, the others keep theirs
    holder = next(pid for pid in (3, 4, 8) if refs[pid] == "DUP-REF-1")
    shop.advance(5)
    shop.update("products", holder, reference="DUP-REF-NEW")
    await sync(sandbox, state, ("products",))
    assert product_of(data, "main", holder)["ref"] == "DUP-REF-NEW"
    assert {pid: product_of(data, "main", pid)["ref"] for pid in (3, 4, 8) if pid != holder} == {
        pid: refs[pid] for pid in (3, 4, 8) if pid != holder
    }


async def test_more_products_under_one_reference_than_numbered_refs_all_get_a_stable_ref_of_their_own(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """A shop with hundreds of products under one placeholder reference: the numbered refs run out (MAX_REF_SUFFIX),
    the rest get ``ref-<shop>-<id>``. Found by bench/scale.py at 100k products: 3,986 products refused for good
    ("all taken") where the generator hands its 9 awkward references out in turn."""
    count = MAX_REF_SUFFIX + 8
    shop = small_shop(products=count + 2)
    shop = with_references(shop, {pid: "TBD" for pid in simple_products(shop)[:count]})
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state, ("categories", "products"))
    data = sandbox.dolibarr

    named = simple_products(shop)[:count]
    refs = {pid: product_of(data, "main", pid)["ref"] for pid in named}
    assert len(set(refs.values())) == count, "each product its own ref"
    numbered = {"TBD", *(f"TBD-{n}" for n in range(1, MAX_REF_SUFFIX + 1))}
    assert {r for r in refs.values() if r in numbered} == numbered
    assert sorted(r for r in refs.values() if r not in numbered) == sorted(
        f"TBD-main-{pid}" for pid in named if refs[pid] not in numbered
    )
    assert len([r for r in refs.values() if r not in numbered]) == count - len(numbered)

    await assert_refs_stable(sandbox, state, tmp_path / "fresh.sqlite3", refs)
    assert not [w for w in writes(sandbox) if w[0] == "PUT" and w[1].startswith("/products/")], (
        "an adopted product keeps the ref it was given: no PUT"
    )


async def test_products_under_one_reference_in_any_case_get_their_numbers_without_a_refused_create(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Dolibarr's unique key ignores case: ``dup-1`` is taken once ``DUP-1`` exists. Products of one page are
    pushed side by side: a ref another create is sending is skipped as one the state holds, in any case, so no
    create is sent only to be refused (before: 27 creates for 12 products, one look-up per refusal)."""
    shop = with_references(small_shop(), {3: "DUP", 4: "DUP", 5: "dup", 6: "Dup", 7: "dup", 8: "DUP"})
    sandbox = await make_sandbox({"main": shop})
    await sync(sandbox, tmp_path / "s.sqlite3", ("categories", "products"))
    refs = [product_of(sandbox.dolibarr, "main", pid)["ref"] for pid in range(3, 9)]
    assert sorted(r.upper() for r in refs) == ["DUP", "DUP-1", "DUP-2", "DUP-3", "DUP-4", "DUP-5"]
    products = len(sandbox.dolibarr.products)
    assert sandbox.dolibarr_requests.total("POST", "/products") == products, "no create refused"


async def test_categories_are_read_without_the_products_they_hold(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """A category's display=full carries associations.products, every product of the category (Home holds them
    all): 4.3 MB of JSON for the 38 categories of a 100k-product shop, 80 MB of ps2doli's memory for a moment
    (bench/scale.py's peak RSS at 100k products, 131 MB, came from there). A pass, a sweep and a fetch by id ask
    for the fields the mapper reads."""
    shop = small_shop()
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    sandbox.shop.requests.reset()
    await sync(sandbox, state, ("categories",))
    asked = [unquote(q) for m, p, q in sandbox.shop.requests.queries if p == "/api/categories"]
    assert asked, "the pass read the categories"
    assert all("display=[" in q and "display=full" not in q for q in asked), asked
    assert all("associations" not in q for q in asked)
    labels = {c["label"] for c in sandbox.dolibarr.categories.values()}
    assert {text(c["name"]) for cid, c in shop.table("categories").items() if cid > 2} <= labels


async def test_shared_refs_adopts_the_dolibarr_product_with_exactly_that_awkward_ref(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """The lookup by ref goes through sqlfilters: quotes, parentheses and % must neither break it nor match a
    lookalike."""
    shop = with_references(small_shop(), {6: WEIRD})
    dolibarr = DolibarrData()
    lookalike = dolibarr.create_product({"ref": LOOKALIKE, "label": "lookalike", "price": 1})
    made_by_hand = dolibarr.create_product({"ref": WEIRD, "label": "made in Dolibarr", "price": 1})
    sandbox = await make_sandbox({"main": shop}, dolibarr=dolibarr)
    before = dolibarr.count("products")
    await sync(
        sandbox,
        tmp_path / "s.sqlite3",
        ("categories", "products"),
        overrides=catalog_overrides(shared_refs=True),
    )
    assert dolibarr.products[made_by_hand]["ref"] == WEIRD_STORED  # as Dolibarr keeps it
    product = product_of(sandbox.dolibarr, "main", 6)
    assert int(product["id"]) == made_by_hand
    assert product["label"] == text(shop.table("products")[6]["name"])
    assert dolibarr.products[lookalike]["ref_ext"] is None
    assert dolibarr.products[lookalike]["label"] == "lookalike"
    simple = len(simple_products(shop))
    combos = sum(len(combinations_of(shop, pid)) for pid in shop.table("products"))
    assert dolibarr.count("products") == before + simple + combos - 1


async def test_shared_refs_makes_one_product_of_the_same_reference_in_two_shops(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    a = with_references(small_shop(5), {3: "SAME-REF", 4: "ONLY-A"})
    b = with_references(small_shop(6), {3: "SAME-REF", 4: "ONLY-B"})
    sandbox = await make_sandbox({"a": a, "b": b})
    resources = ("categories", "products")

    shared = {
        "a": {"catalog": {"shared_refs": True, "root_category": "Shop A"}},
        "b": {"catalog": {"shared_refs": True, "root_category": "Shop B"}},
    }
    await sync(sandbox, tmp_path / "shared.sqlite3", resources, shops=("a", "b"), overrides=shared)
    data = sandbox.dolibarr
    [one] = data.find("products", ref="SAME-REF")
    assert one["ref_ext"] == ref_ext("a", "product", 3), "the product stays the first shop's"
    assert not data.find("products", ref="SAME-REF-1")
    # shop b's record points at it: a change in shop b does not fight shop a over its fields
    b.advance(5)
    b.update("products", 3, price=Decimal("999.000000"))
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, tmp_path / "shared.sqlite3", resources, shops=("a", "b"), overrides=shared)
    assert sandbox.dolibarr_requests.total("PUT", f"/products/{one['id']}") == 0
    assert money(data.products[int(one["id"])]["price"]) != money(999)


async def test_without_shared_refs_the_same_reference_in_two_shops_is_two_products(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    a = with_references(small_shop(5), {3: "SAME-REF"})
    b = with_references(small_shop(6), {3: "SAME-REF"})
    sandbox = await make_sandbox({"a": a, "b": b})
    roots = {"a": {"catalog": {"root_category": "Shop A"}}, "b": {"catalog": {"root_category": "Shop B"}}}
    await sync(sandbox, tmp_path / "s.sqlite3", ("categories", "products"), shops=("a", "b"), overrides=roots)
    assert product_of(sandbox.dolibarr, "a", 3)["ref"] == "SAME-REF"
    assert product_of(sandbox.dolibarr, "b", 3)["ref"] == "SAME-REF-1"


# ------------------------------------------------------------------------------------ prices, taxes, texts


@pytest.mark.parametrize(("country", "rates"), [("FR", {1: 20, 2: 10, 3: 5.5, 4: 0}), ("CH", {})])
async def test_prices_taxes_barcodes_weights_and_status_follow_the_shop(
    make_sandbox: SandboxFactory, tmp_path: Path, country: str, rates: dict[int, float]
) -> None:
    shop = small_shop(7, products=40, combination_share=0.0)
    groups = {shop.table("products")[pid]["id_tax_rules_group"] for pid in simple_products(shop)}
    assert {1, 2, 3, 4} <= groups or country == "CH"
    sandbox = await make_sandbox({"main": shop})
    await sync(
        sandbox,
        tmp_path / "s.sqlite3",
        ("categories", "products"),
        overrides=catalog_overrides(tax_country=country),
    )
    for pid in simple_products(shop):
        row = shop.product_view(pid)
        product = product_of(sandbox.dolibarr, "main", pid)
        assert money(product["price"]) == money(row["price"])
        assert Decimal(product["tva_tx"]) == Decimal(str(rates.get(int(row["id_tax_rules_group"]), 0)))
        wholesale = Decimal(row["wholesale_price"])
        assert (money(product["cost_price"]) if product["cost_price"] else None) == (
            money(wholesale) if wholesale > 0 else None
        )
        barcode = next((v for v in (row["ean13"], row["upc"], row["isbn"]) if str(v or "").strip("0")), "")
        assert (product["barcode"] or "") == barcode
        on_sale = bool(row["active"]) and bool(row["available_for_order"])
        assert product["status"] == ("1" if on_sale else "0")
        weight = Decimal(row["weight"])
        assert (Decimal(str(product["weight"])) if product["weight"] is not None else None) == (
            weight if weight > 0 else None
        )


async def test_labels_and_descriptions_in_the_shops_language_and_the_long_description_as_text(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop(8, languages=2, combinations_per_product=2)
    sandbox = await make_sandbox({"main": shop})
    await sync(
        sandbox,
        tmp_path / "s.sqlite3",
        ("categories", "products"),
        overrides={"main": {"language_id": 2, "catalog": {"warehouse_id": 1}}},
    )
    data = sandbox.dolibarr
    for pid in simple_products(shop):
        row = shop.table("products")[pid]
        product = product_of(data, "main", pid)
        assert product["label"] == text(row["name"], 2)
        assert product["description"] == text(row["description_short"], 2)
        long = product["array_options"]["options_longdescription"]
        assert "<" not in long and long.strip(), long
        assert long == re.sub(r"<[^>]+>", "", text(row["description"], 2)).strip()
    for combination in combinations_of(shop, 1):
        product = product_of(data, "main", f"1-{combination['id']}")
        assert product["label"].startswith(text(shop.table("products")[1]["name"], 2) + " - ")
        color = shop.table("product_option_values")[combination["_option_values"][1]]
        assert text(color["name"], 2) in product["label"]
        assert product["description"].startswith("Couleur: "), product["description"]


async def test_a_label_dolibarr_cleans_is_stored_its_way_and_costs_nothing_afterwards(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Dolibarr's API drops double quotes and folds doubled spaces of every label (alphanohtml): the product is
    stored that way, and neither the next pass nor a sweep tries to write the shop's version again."""
    shop = small_shop()
    pid = simple_products(shop)[0]
    name = 'Tasse "Le  Grand" Café'
    shop.update("products", pid, name={lang: name for lang in shop.table("products")[pid]["name"]})
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state, ("categories", "products"))
    assert product_of(sandbox.dolibarr, "main", pid)["label"] == "Tasse Le Grand Café"

    sandbox.dolibarr_requests.reset()
    shop.advance(5)
    shop.update("products", pid)  # read again, nothing changed
    await sync(sandbox, state, ("categories", "products"))
    async with engine_for(sandbox, state, resources=("products",), shop_overrides=catalog_overrides()) as w:
        report = await Sweeper(w.engine).run("main", "products")
    assert report.outcome == "ok" and report.updated == 0, report
    assert writes(sandbox) == []


async def test_the_long_description_extrafield_must_exist_and_the_error_says_how_to_create_it(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    dolibarr = DolibarrData()
    dolibarr.extrafields.pop("product")
    sandbox = await make_sandbox({"main": small_shop()}, dolibarr=dolibarr)
    for create in (False, True):
        settings = sandbox.settings(
            tmp_path / f"s{create}.sqlite3",
            resources=("categories", "products"),
            shop_overrides={"main": {"catalog": {"create_extrafield": create}}},
        )
        async with wired(settings) as w:
            report = await w.engine.run_pass("main", "products")
        assert report.outcome == "error" and report.error_kind == "config"
        message = report.error
        assert "longdescription" in message and "Complementary attributes" in message
        assert "cannot create extrafields" in message
        assert ("cannot be honoured" in message) is create
        assert dolibarr.count("products") == 0
    # leaving the long description out is the other way
    await sync(
        sandbox,
        tmp_path / "off.sqlite3",
        ("categories", "products"),
        overrides={"main": {"catalog": {"long_description_extrafield": ""}}},
    )
    assert dolibarr.count("products") > 0


# ---------------------------------------------------------------------------------------------- categories


async def test_a_root_category_holds_the_top_level_categories_and_is_made_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    overrides = catalog_overrides(root_category="Boutique")
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state, ("categories", "products"), overrides=overrides)
    data = sandbox.dolibarr
    [root] = data.find("categories", label="Boutique")
    assert root["ref_ext"] == ref_ext("main", "category", "root") and int(root["fk_parent"] or 0) == 0
    for cid, category in sandbox.shop.data.table("categories").items():
        if int(category["id_parent"]) == 2:
            [mirror] = data.find("categories", ref_ext=ref_ext("main", "category", cid))
            assert int(mirror["fk_parent"]) == int(root["id"])
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("categories", "products"), overrides=overrides)
    assert writes(sandbox) == []
    await sync(sandbox, tmp_path / "fresh.sqlite3", ("categories",), overrides=overrides)
    assert len(data.find("categories", label="Boutique")) == 1


async def test_moving_a_product_to_another_category_costs_one_link_and_one_unlink(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop(9, categories=10)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state, ("categories", "products"))
    pid = simple_products(shop)[0]
    row = shop.table("products")[pid]
    old = int(row["id_category_default"])
    new = next(c for c in sorted(shop.table("categories")) if c > 2 and c not in row["_categories"])
    shop.advance(5)
    shop.move_product_to_category(pid, new)
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("categories", "products"))
    data = sandbox.dolibarr
    product = product_of(data, "main", pid)
    category = {
        c: data.find("categories", ref_ext=ref_ext("main", "category", c))[0]["id"] for c in (old, new)
    }
    assert sorted(writes(sandbox)) == sorted(
        [
            ("POST", f"/categories/{category[new]}/objects/product/{product['id']}"),
            ("DELETE", f"/categories/{category[old]}/objects/product/{product['id']}"),
        ]
    )
    linked = data.categories_of("product", int(product["id"]))
    assert int(category[new]) in {int(c) for c in linked} and int(category[old]) not in {
        int(c) for c in linked
    }


# -------------------------------------------------------------------------------------------------- images


async def test_images_are_attached_once_and_a_deleted_added_or_replaced_image_costs_one_request(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop(10)
    pid = next(p for p in simple_products(shop) if len(shop.product_image_ids(p)) >= 1)
    first = shop.product_image_ids(pid)[0]
    second = shop.add_image(pid, legend="back")
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state)
    data = sandbox.dolibarr

    product = product_of(data, "main", pid)
    attached = files(data, product["id"])
    assert attached == {f"ps-image-{i}.jpg": shop.image_bytes(i) for i in shop.product_image_ids(pid)}
    for other in simple_products(shop):
        expected = {f"ps-image-{i}.jpg" for i in shop.product_image_ids(other)}
        assert set(files(data, product_of(data, "main", other)["id"])) == expected
    # flat combinations carry their own images, else the product's
    for combination in combinations_of(shop, 1):
        own = [i for i in combination["_images"] if i in shop.product_image_ids(1)]
        expected = {f"ps-image-{i}.jpg" for i in own or shop.product_image_ids(1)}
        assert set(files(data, product_of(data, "main", f"1-{combination['id']}")["id"])) == expected

    # nothing changed: neither the product pass nor the images check uploads anything
    sandbox.dolibarr_requests.reset()
    shop.advance(5)
    shop.update("products", pid, price=Decimal("12.000000"))
    await sync(sandbox, state, ("products", "images"))
    assert writes(sandbox) == [("PUT", f"/products/{product['id']}")]

    # deleted in the shop (no product date moves): the images check deletes exactly that file
    shop.delete_image(second)
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("products", "images"))
    assert [m for m, _ in writes(sandbox)] == ["DELETE"]
    assert set(files(data, product["id"])) == {f"ps-image-{first}.jpg"}

    # added, and the product saved: the product pass uploads exactly that one
    third = shop.add_image(pid, legend="side")
    shop.advance(5)
    shop.update("products", pid, price=Decimal("13.000000"))
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("products",))
    assert sorted(writes(sandbox)) == sorted(
        [("PUT", f"/products/{product['id']}"), ("POST", "/documents/upload")]
    )
    assert files(data, product["id"])[f"ps-image-{third}.jpg"] == shop.image_bytes(third)

    # replaced under the same id: the images check uploads the new bytes, once
    shop.replace_image(first)
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("products", "images"))
    assert writes(sandbox) == [("POST", "/documents/upload")]
    assert files(data, product["id"])[f"ps-image-{first}.jpg"] == shop.image_bytes(first)
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("images",))
    assert writes(sandbox) == []


async def test_images_off_attaches_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    await sync(sandbox, tmp_path / "s.sqlite3", overrides=catalog_overrides(images=False))
    assert sandbox.dolibarr_requests.total("POST", "/documents") == 0


# --------------------------------------------------------------------------------------------------- stock


async def test_stock_is_mirrored_and_one_quantity_changed_costs_one_movement(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop(11)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state)
    data = sandbox.dolibarr
    for pid in simple_products(shop):
        assert stock(data, product_of(data, "main", pid)["id"]) == shop.stock_quantity(pid)
    for combination in combinations_of(shop, 1):
        cid = int(combination["id"])
        assert stock(data, product_of(data, "main", f"1-{cid}")["id"]) == shop.stock_quantity(1, cid)

    # one quantity changed: one movement of the difference
    pid = simple_products(shop)[1]
    product = product_of(data, "main", pid)
    shop.set_stock(pid, 0, 42)
    sandbox.dolibarr_requests.reset()
    [report] = await sync(sandbox, state, ("stock",))
    assert writes(sandbox) == [("POST", "/stockmovements")]
    assert stock(data, product["id"]) == 42 and report.updated == 1

    # a combination's quantity changed: its product moves, the product-level row (the sum) is skipped
    combination = combinations_of(shop, 1)[0]
    child = product_of(data, "main", f"1-{combination['id']}")
    shop.set_stock(1, int(combination["id"]), 7)
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("stock",))
    assert writes(sandbox) == [("POST", "/stockmovements")]
    assert stock(data, child["id"]) == 7

    # nothing changed: no request about stock at all
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("stock",))
    assert sandbox.dolibarr_requests.total(contains="/stock") == 0

    # Dolibarr already holds the new quantity: nothing is moved (a movement of 0 is refused with a 503)
    data.move_stock(int(product["id"]), 1, Decimal(8), label="counted by hand")
    shop.set_stock(pid, 0, 50)
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state, ("stock",))
    assert writes(sandbox) == []
    assert stock(data, product["id"]) == 50


async def test_stock_off_or_without_a_warehouse_moves_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    await sync(sandbox, tmp_path / "a.sqlite3", overrides=catalog_overrides(stock_mode="off"))
    await sync(sandbox, tmp_path / "b.sqlite3", overrides={"main": {"catalog": {"warehouse_id": 0}}})
    assert sandbox.dolibarr_requests.total(contains="/stock") == 0
    assert sandbox.shop.requests.total(contains="stock_availables") == 0
