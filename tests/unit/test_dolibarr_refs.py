"""What a real Dolibarr 20.0.2 stored for each hostile reference of the seeded shop (POST /products through the
REST API, read back with GET /products/ref_ext/...): the mapper asks for exactly that."""

from __future__ import annotations

import pytest

from service.dolibarr.refs import stored_product_ref


@pytest.mark.parametrize(
    ("shop_reference", "dolibarr_ref"),
    [
        ("MOULE (X8)", "MOULE_(X8)"),
        ("COUTEAU-D'OFFICE-9", "COUTEAU-D_OFFICE-9"),
        ('POT-12"-CERAM', "POT-12-CERAM"),  # the API's sanitizer drops the double quote first
        ("MARI/RAYEE/01", "MARI_RAYEE_01"),
        ("ENV\\KRAFT\\50", "ENV_KRAFT_50"),
        ("REF AVEC ESPACES", "REF_AVEC_ESPACES"),
        (" MIROIR-60 ", "MIROIR-60"),
        ("CAFÉ-ÉTHIOPIE-1KG", "CAFE-ETHIOPIE-1KG"),
        ("GRÜNTEE-Ü-7", "GRUNTEE-U-7"),
        ("STRAßE-42", "STRAßE-42"),  # ß is not in dol_string_unaccent's table
        ("R&D-2024", "R&D-2024"),
        ("PROMO-50%", "PROMO-50%"),
        ("TASSE-HT-9.99166667", "TASSE-HT-9.99166667"),
        ("000123", "000123"),
        ("a--b", "a_b"),
        ("v1..2", "v12"),
        ('TUBE 1/2 " INOX', "TUBE_1_2_INOX"),  # the quote's removal leaves two spaces, folded by Dolibarr
        ("A-..-B", "A_B"),  # '..' removed joins two dashes: a create would store A_B, so that is asked for
    ],
)
def test_a_reference_is_asked_for_as_dolibarr_stores_it(shop_reference: str, dolibarr_ref: str) -> None:
    assert stored_product_ref(shop_reference) == dolibarr_ref


@pytest.mark.parametrize("ref", ["MOULE_(X8)", "CAFE-ETHIOPIE-1KG", "R&D-2024", "demo_1-8"])
def test_a_stored_ref_is_left_as_it_is_by_create_and_update(ref: str) -> None:
    assert stored_product_ref(ref) == ref
