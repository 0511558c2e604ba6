"""The catalog mappers beyond the core: long description as text, variants' impacts, shared refs, the root
category, image sets and stock rows. Pure functions, no I/O."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from service.dolibarr.model import Ref
from service.mapping import catalog
from service.mapping.context import ShopContext
from service.mapping.text import html_to_text
from service.settings import CatalogSettings

CTX = ShopContext(
    shop="main",
    tax_rates={1: Decimal("20")},
    option_values={1: ("Size", "S"), 2: ("Size", "M"), 11: ("Color", "Black")},
    catalog=CatalogSettings(warehouse_id=3),
)


def ctx(**catalog_fields: Any) -> ShopContext:
    return dataclasses.replace(CTX, catalog=dataclasses.replace(CTX.catalog, **catalog_fields))


def product(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 12,
        "id_parent": 0,
        "reference": "TEE",
        "name": "T-shirt",
        "description": "<p>Soft.</p><p>Warm.</p>",
        "description_short": "<p>Tee</p>",
        "price": "20.000000",
        "id_tax_rules_group": 1,
        "weight": "0.200000",
        "product_type": "combinations",
        "associations": {"images": [{"id": 4}, {"id": 5}], "categories": [{"id": 2}]},
    }
    base.update(fields)
    return base


def combination(
    cid: int, values: list[int], images: list[int] | None = None, **fields: Any
) -> dict[str, Any]:
    assoc: dict[str, Any] = {"product_option_values": [{"id": v} for v in values]}
    if images is not None:
        assoc["images"] = [{"id": i} for i in images]
    return {
        "id": cid,
        "id_product": 12,
        "reference": "",
        "price": "0",
        "weight": "0",
        "associations": assoc,
        **fields,
    }


# ------------------------------------------------------------------------------------------ html -> text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("plain text", "plain text"),
        ("two\r\nlines  here ", "two\nlines here"),
        ("<p>Soft.</p><p>Warm.</p>", "Soft.\n\nWarm."),
        ("<p>one<br>two<br/>three</p>", "one\ntwo\nthree"),
        ("<ul><li>A</li><li>B</li></ul><p>after</p>", "- A\n- B\n\nafter"),
        ("<div>a</div><div>b</div>", "a\nb"),
        ("Caf&eacute; &amp; th&#233; &lt;3 &nbsp;x", "Café & thé <3 x"),
        ("<p>a</p><script>alert(1)</script><style>p{}</style><p>b</p>", "a\n\nb"),
        ("<h2>Title</h2>text <b>bold</b> <i>it</i>", "Title\n\ntext bold it"),
        ("<p>\n  spaced\n  out\n</p>", "spaced out"),
        ("<table><tr><td>k</td><td>v</td></tr></table>", "k v"),
        ("<p></p><p></p><p>x</p><br><br><br><br>", "x"),
    ],
)
def test_html_becomes_readable_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_the_long_description_goes_as_text_and_the_short_one_keeps_its_html() -> None:
    payload = catalog.map_product(product(product_type="standard"), CTX)
    assert payload.extrafields == (("longdescription", "Soft.\n\nWarm."),)
    assert payload.description == "<p>Tee</p>"
    assert catalog.map_product(product(), ctx(long_description_extrafield="")).extrafields == ()


# ------------------------------------------------------------------------------------- variants and refs


def test_a_variant_carries_its_impacts_and_its_parent() -> None:
    variants = ctx(combinations="variants")
    child = catalog.map_combination(
        product(), combination(3, [2, 11], price="2.500000", weight="0.1"), variants
    )
    assert child.variant_of == Ref("product", "ps-main-product-12")
    assert child.variant_features == (("Color", "Black"), ("Size", "M"))
    assert child.variant_price_impact == Decimal("2.5") and child.price == Decimal("22.5")
    assert child.variant_weight_impact == Decimal("0.1") and child.weight == Decimal("0.3")
    flat = catalog.map_combination(product(), combination(3, [2, 11], price="2.5"), CTX)
    assert flat.variant_of is None and flat.variant_price_impact == 0 and flat.price == Decimal("22.5")


@pytest.mark.parametrize(
    ("shared", "reference", "expected"),
    [(True, "TEE", True), (True, "", False), (False, "TEE", False)],
)
def test_a_ref_is_shared_only_when_it_is_the_shops_own_reference(
    shared: bool, reference: str, expected: bool
) -> None:
    assert catalog.map_product(product(reference=reference), ctx(shared_refs=shared)).ref_shared is expected
    child = catalog.map_combination(
        product(), combination(3, [1], reference=reference), ctx(shared_refs=shared)
    )
    assert child.ref_shared is expected


# -------------------------------------------------------------------------------------------- categories


def test_top_level_categories_hang_under_the_root_category_when_one_is_set() -> None:
    top = {"id": 5, "id_parent": 2, "name": "Clothes", "active": 1}
    nested = {"id": 6, "id_parent": 5, "name": "Men", "active": 1}
    assert catalog.map_category(top, CTX).parent is None  # type: ignore[union-attr]
    rooted = ctx(root_category="Shop A")
    assert catalog.map_category(top, rooted).parent == Ref("category", "ps-main-category-root")  # type: ignore[union-attr]
    assert catalog.map_category(nested, rooted).parent == Ref("category", "ps-main-category-5")  # type: ignore[union-attr]
    root = catalog.root_category(rooted)
    assert root is not None and root.label == "Shop A" and root.parent is None
    assert catalog.root_category(ctx(root_category="  ")) is None


# ---------------------------------------------------------------------------------------------- images


def names(payload: Any) -> list[str]:
    return [name for _, name in payload.images]


def test_a_simple_product_carries_every_image() -> None:
    [(key, payload)] = catalog.image_sets(product(product_type="standard"), [], CTX)
    assert key == "12" and payload.product == Ref("product", "ps-main-product-12")
    assert names(payload) == ["ps-image-4.jpg", "ps-image-5.jpg"] and payload.id_product == 12


def test_flat_combinations_carry_their_images_else_the_products() -> None:
    sets = dict(
        catalog.image_sets(product(), [combination(3, [1], images=[5]), combination(4, [2], images=[])], CTX)
    )
    assert set(sets) == {"12-3", "12-4"}
    assert names(sets["12-3"]) == ["ps-image-5.jpg"]
    assert names(sets["12-4"]) == ["ps-image-4.jpg", "ps-image-5.jpg"]
    assert sets["12-3"].product == Ref("product", "ps-main-product-12-3")


def test_variants_the_parent_carries_every_image_and_a_child_its_own() -> None:
    sets = dict(
        catalog.image_sets(
            product(),
            [combination(3, [1], images=[5, 99]), combination(4, [2])],
            ctx(combinations="variants"),
        )
    )
    assert names(sets["12"]) == ["ps-image-4.jpg", "ps-image-5.jpg"]
    assert names(sets["12-3"]) == ["ps-image-5.jpg"], "an image no longer on the product is left out"
    assert names(sets["12-4"]) == []


def test_image_ids_lost_to_the_null_rendering_remove_nothing() -> None:
    lost = combination(3, [1])
    lost["associations"]["images"] = [[None]]
    assert dict(catalog.image_sets(product(), [lost, combination(4, [2], images=[4])], CTX)).keys() == {
        "12-4"
    }
    broken = product(associations={"images": [[None], [None]]})
    assert catalog.image_sets(broken, [], CTX) == []


def test_no_image_sets_when_images_are_off_or_the_backend_cannot_hold_files() -> None:
    assert catalog.image_sets(product(), [], ctx(images=False)) == []
    assert catalog.image_sets(product(), [], dataclasses.replace(CTX, images_enabled=False)) == []


# ----------------------------------------------------------------------------------------------- stock


def row(**fields: Any) -> dict[str, Any]:
    return {"id": 40, "id_product": 12, "id_product_attribute": 0, "quantity": 7, "id_shop": 1, **fields}


def test_a_stock_row_becomes_the_quantity_of_its_product_in_the_shops_warehouse() -> None:
    payload = catalog.map_stock(row(), CTX, with_combinations=frozenset())
    assert payload is not None
    assert payload.product == Ref("product", "ps-main-product-12")
    assert payload.ref_ext == "ps-main-stock-40" and payload.warehouse_id == 3
    assert payload.quantity == Decimal(7)
    child = catalog.map_stock(
        row(id_product_attribute=3, quantity=-2), CTX, with_combinations=frozenset({12})
    )
    assert child is not None and child.product == Ref("product", "ps-main-product-12-3")
    assert child.quantity == Decimal(-2)


@pytest.mark.parametrize(
    ("context", "fields", "with_combinations"),
    [
        (CTX, {}, frozenset({12})),  # the product-level row of a product with combinations is their sum
        (ctx(warehouse_id=0), {}, frozenset()),
        (ctx(stock_mode="off"), {}, frozenset()),
        (dataclasses.replace(CTX, stock_enabled=False), {}, frozenset()),
    ],
)
def test_stock_rows_not_mirrored(
    context: ShopContext, fields: dict[str, Any], with_combinations: frozenset[int]
) -> None:
    assert catalog.map_stock(row(**fields), context, with_combinations=with_combinations) is None
