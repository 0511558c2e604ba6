"""Catalog mapping, table-driven: a shop record plus context -> the payload Dolibarr receives."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service.dolibarr.model import Ref, payload_hash
from service.mapping import catalog
from service.mapping.context import MappingError, ShopContext
from service.settings import CatalogSettings

CTX = ShopContext(
    shop="main",
    tax_rates={1: Decimal("20"), 2: Decimal("5.5")},
    option_values={1: ("Size", "S"), 2: ("Size", "M"), 11: ("Color", "Black")},
)


def product(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 6,
        "reference": "demo_11",
        "name": "Mug The best is yet to come",
        "description": "<p>Long <b>HTML</b></p>",
        "description_short": "<p>White mug</p>",
        "price": "11.900000",
        "wholesale_price": "5.000000",
        "id_tax_rules_group": 1,
        "weight": "0.300000",
        "width": "0.000000",
        "height": "0.000000",
        "depth": "0.000000",
        "ean13": "",
        "upc": "",
        "active": 1,
        "available_for_order": 1,
        "product_type": "standard",
        "associations": {"categories": [{"id": 2}, {"id": 6}, {"id": 8}]},
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"ref": "demo_11", "price": Decimal("11.9"), "tva_tx": Decimal("20"), "on_sale": True}),
        ({"reference": ""}, {"ref": "PS6"}),
        ({"reference": "  a  b "}, {"ref": "a_b"}),
        ({"reference": "it's (50%) off"}, {"ref": "it_s_(50%)_off"}),
        ({"id_tax_rules_group": 2}, {"tva_tx": Decimal("5.5")}),
        ({"id_tax_rules_group": 0}, {"tva_tx": Decimal("0")}),
        ({"active": 0}, {"on_sale": False}),
        ({"available_for_order": 0}, {"on_sale": False}),
        ({"ean13": "3760000000001"}, {"barcode": "3760000000001"}),
        ({"ean13": "", "upc": "012345678905"}, {"barcode": "012345678905"}),
        ({"wholesale_price": "0.000000"}, {"cost_price": None}),
        ({"weight": "0.000000"}, {"weight": None}),
        ({"product_type": "virtual"}, {"service": True}),
        ({"name": [{"id": "1", "value": "Mug"}, {"id": "2", "value": "Tasse"}]}, {"label": "Mug"}),
    ],
)
def test_a_simple_product(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    payload = catalog.map_product(product(**fields), CTX)
    for name, value in expected.items():
        assert getattr(payload, name) == value, name


def test_a_product_keeps_its_long_description_in_the_extrafield_and_links_real_categories() -> None:
    payload = catalog.map_product(product(), CTX)
    assert payload.ref_ext == "ps-main-product-6"
    assert payload.description == "<p>White mug</p>"
    # Dolibarr strips HTML from extrafields sent through REST: the long description goes as text
    assert payload.extrafields == (("longdescription", "Long HTML"),)
    # Home (2) is structural: not linked
    assert payload.categories == (
        Ref("category", "ps-main-category-6"),
        Ref("category", "ps-main-category-8"),
    )


def test_the_same_product_hashes_the_same_and_a_price_change_does_not() -> None:
    a = catalog.map_product(product(), CTX)
    b = catalog.map_product(product(), CTX)
    c = catalog.map_product(product(price="12.000000"), CTX)
    assert payload_hash(a) == payload_hash(b) != payload_hash(c)
    # 11.9 and 11.900000 are the same price
    assert payload_hash(catalog.map_product(product(price="11.9"), CTX)) == payload_hash(a)


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"name": ""}, "name"), ({"price": "abc"}, "price"), ({"name": {"oops": 1}}, "name")],
)
def test_a_product_that_cannot_be_mapped_names_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(MappingError) as caught:
        catalog.map_product(product(**fields), CTX)
    assert caught.value.field == field


def combination(cid: int, values: list[int], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": cid,
        "id_product": 6,
        "reference": "",
        "price": "2.500000",
        "weight": "0.100000",
        "ean13": "",
        "wholesale_price": "0.000000",
        "associations": {"product_option_values": [{"id": v} for v in values]},
    }
    base.update(fields)
    return base


def test_flat_combinations_are_one_product_each_with_the_parents_price_plus_impact() -> None:
    family = catalog.map_product_family(product(), [combination(2, [2]), combination(1, [1, 11])], CTX)
    assert [ps_id for ps_id, _ in family] == ["6-1", "6-2"]
    first = family[0][1]
    assert first.ref == "demo_11-1"
    assert first.label == "Mug The best is yet to come - Black, S"
    assert first.description.startswith("Color: Black, Size: S")
    assert first.price == Decimal("14.4")
    assert first.weight == Decimal("0.4")
    assert first.ref_ext == "ps-main-product-6-1"


def test_a_combination_reference_wins_and_variants_mode_adds_the_parent() -> None:
    ctx = ShopContext(
        shop="main", option_values=CTX.option_values, catalog=CatalogSettings(combinations="variants")
    )
    family = catalog.map_product_family(product(), [combination(1, [1], reference="MUG-S")], ctx)
    assert [ps_id for ps_id, _ in family] == ["6", "6-1"]
    child = family[1][1]
    assert child.ref == "MUG-S"
    assert child.variant_of == Ref("product", "ps-main-product-6")
    assert child.variant_features == (("Size", "S"),)


def test_combination_option_values_without_ids_are_an_explicit_error() -> None:
    broken = combination(1, [])
    broken["associations"] = {"product_option_values": [[None]]}
    with pytest.raises(MappingError, match="without ids"):
        catalog.map_combination(product(), broken, CTX)


@pytest.mark.parametrize(
    ("record", "parent"),
    [
        ({"id": 3, "id_parent": 2, "name": "Clothes", "is_root_category": 0, "active": 1}, None),
        ({"id": 4, "id_parent": 3, "name": "Men", "is_root_category": 0, "active": 1}, "ps-main-category-3"),
    ],
)
def test_categories_hang_under_their_parent_and_home_is_the_top(
    record: dict[str, Any], parent: str | None
) -> None:
    payload = catalog.map_category(record, CTX)
    assert payload is not None
    assert (payload.parent.ref_ext if payload.parent else None) == parent


def test_root_and_home_are_not_mirrored() -> None:
    assert catalog.map_category({"id": 1, "id_parent": 0, "name": "Root"}, CTX) is None
    assert catalog.map_category({"id": 2, "id_parent": 1, "name": "Home", "is_root_category": 1}, CTX) is None


def test_numbered_refs_fit_dolibarrs_column() -> None:
    assert catalog.numbered_ref("A", 0) == "A"
    assert catalog.numbered_ref("A", 2) == "A-2"
    assert len(catalog.numbered_ref("x" * 128, 12)) == 128


def test_a_ref_of_its_own_names_the_shop_and_the_record_and_fits_dolibarrs_column() -> None:
    assert catalog.own_ref("N/A", "main", "17") == "N_A-main-17"  # cleaned as Dolibarr stores it
    assert catalog.own_ref("A", "main", "140-111") == "A-main-140-111"
    long = catalog.own_ref("x" * 128, "eu", "123456")
    assert len(long) == 128 and long.endswith("-eu-123456")
