"""What a Dolibarr REST row is told to hold already (service/dolibarr/rest_compare.py): the comparison behind
adopting an object with no write (issue 10: a lost state file). Anything uncertain must count as different."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service.dolibarr.rest_compare import body_held, differing_fields, field_held, same_value


@pytest.mark.parametrize(
    ("sent", "held", "same"),
    [
        (12.5, "12.50000000", True),
        (Decimal("12.5"), "12.5", True),
        (20.0, "20.000", True),
        (0, "0", True),
        (1, "1", True),
        (True, "1", True),
        (False, "0", True),
        (12.5, "12.49000000", False),
        (12.5, None, False),
        (12.5, "", False),
        (0, None, False),  # a number Dolibarr would store, not an empty field
        (12.5, "abc", False),
        (None, None, True),
        (None, "", True),
        ("", None, True),
        (None, "0.3", False),  # a weight cleared in the shop
        ("", "x", False),
        ("Label", "Label", True),
        ("Label", "label", False),
        ("Label", 5, False),
        ({"options_a": "x"}, {"options_a": "x", "options_b": "y"}, True),
        ({"options_a": "x"}, {"options_a": "z"}, False),
        ({"options_a": "x"}, None, False),
        ([1], [1], False),  # nothing the bodies send: different
    ],
)
def test_same_value(sent: Any, held: Any, same: bool) -> None:
    assert same_value(sent, held) is same


@pytest.mark.parametrize(
    ("kind", "name", "sent", "held", "same"),
    [
        # Product::update stores an empty() unit as null: kg (0) comes back null; cm (-2) as itself
        ("product", "weight_units", 0, None, True),
        ("product", "length_units", -2, "-2", True),
        ("product", "length_units", -2, None, False),
        ("product", "weight", 0, None, False),
        # price2num(..., 'MU'): 5 decimals by default, or as sent on a Dolibarr set to more
        ("product", "price", 7.416667, "7.41667000", True),
        ("product", "price", 7.416667, "7.41666700", True),
        # POST /products stores the cent (20.0.2); the client's PUT after it stores 5 decimals: the cent alone is
        # a price not held (a create whose PUT a crash cut)
        ("product", "price", 7.416667, "7.42000000", False),
        ("product", "price", 7.42, "7.42000000", True),
        ("product", "price", 7.416667, "7.41660000", False),
        ("product", "price", 7.416667, "7.41000000", False),
        ("product", "price", 7.425, "7.43000000", False),  # the cent of a create, not the price
        ("product", "price", 7.435, "7.43000000", False),
        ("product", "price", 7.416665, "7.41667000", True),  # half away from zero, as PHP's round()
        ("product", "price", 7.5, None, False),
        ("product", "cost_price", 7.416667, "7.41667000", False),  # only the unit price is rounded so
        ("thirdparty", "email", "Chloe.Martin@Example.COM", "chloe.martin@example.com", True),
        ("thirdparty", "email", "chloe@example.com", "chloe2@example.com", False),
        ("category", "type", "product", "0", True),
        ("category", "type", "customer", "2", True),
        ("category", "type", "product", "2", False),
        ("category", "type", "unheard_of", "0", False),
        # alphanohtml on texts that are not notes nor descriptions (extrafields too): double quotes removed
        ("product", "label", 'O\'Neil "Classic"', "O'Neil Classic", True),
        ("product", "label", 'O\'Neil "Classic"', 'O\'Neil "Classic"', True),
        ("product", "label", "Candle", "Candle (old)", False),
        ("product", "description", 'a "b"', "a b", False),  # restricthtml keeps them: a change
        ("thirdparty", "note_private", 'a "b"', "a b", False),
        (
            "product",
            "array_options",
            {"options_longdescription": 'say "hi"'},
            {"options_longdescription": "say hi"},
            True,
        ),
        (
            "product",
            "array_options",
            {"options_longdescription": "new"},
            {"options_longdescription": "old"},
            False,
        ),
    ],
)
def test_field_held(kind: str, name: str, sent: Any, held: Any, same: bool) -> None:
    assert field_held(kind, name, sent, held) is same


def test_a_field_the_row_does_not_carry_is_different() -> None:
    body = {"label": "A", "barcode": "123"}
    assert differing_fields("product", body, {"label": "A"}) == ["barcode"]
    assert not body_held("product", body, {"label": "A"})
    assert body_held("product", body, {"label": "A", "barcode": "123", "other": "x"})


def test_a_product_row_of_dolibarr_20_holds_the_body_that_made_it() -> None:
    """As the real 20.0.2 answers (tests/real): numbers as text, units of kg null, flags as text."""
    body = {
        "ref": "CARTE-50",
        "label": "Carte cadeau 50 €",
        "type": 0,
        "status": 1,
        "status_buy": 1,
        "price": 41.666667,
        "price_base_type": "HT",
        "tva_tx": 20.0,
        "description": "<p>Carte</p>",
        "weight": 0.3,
        "weight_units": 0,
        "length": None,
        "width": None,
        "height": None,
        "barcode": "",
        "cost_price": 27.5,
        "ref_ext": "ps-main-product-167",
        "array_options": {"options_longdescription": "Carte cadeau"},
    }
    row = {
        "ref": "CARTE-50",
        "label": "Carte cadeau 50 €",
        "type": "0",
        "status": "1",
        "status_buy": "1",
        "price": "41.66667000",
        "price_base_type": "HT",
        "tva_tx": "20.0000",
        "description": "<p>Carte</p>",
        "weight": "0.3",
        "weight_units": None,
        "length": None,
        "width": None,
        "height": None,
        "barcode": None,
        "cost_price": "27.50000000",
        "ref_ext": "ps-main-product-167",
        "array_options": {"options_longdescription": "Carte cadeau"},
    }
    assert differing_fields("product", body, row) == []
    assert differing_fields("product", {**body, "status": 0}, row) == ["status"]
    assert differing_fields("product", {**body, "tva_tx": 5.5}, row) == ["tva_tx"]
