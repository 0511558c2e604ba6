"""The text a 3-byte ``utf8`` Dolibarr connection can store (service/dolibarr/charset.py): what goes, what stays."""

from __future__ import annotations

from typing import Any

import pytest

from service.dolibarr.charset import REPLACEMENT, UTF8MB3, UTF8MB4, fits_utf8mb3, storable, to_utf8mb3


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("🎁 Carte cadeau", "Carte cadeau"),  # the emoji and the space it leaves at the start
        ("🎁-CARTE-50", "-CARTE-50"),  # the real server stored that ref once the client left the emoji out
        ("Carte 🎁 cadeau", "Carte cadeau"),  # no doubled space
        ("Carte cadeau 🎁", "Carte cadeau"),
        ("Cœur ❤️ rouge", "Cœur ❤️ rouge"),  # U+2764 U+FE0F: both in the BMP, kept
        # marks stay with the BMP character they follow, wherever an astral character is in the text
        ("Soleil ☀️ 🌞", "Soleil ☀️"),
        ("🌞 Soleil ☀️", "Soleil ☀️"),
        ("Soleil ☀︎ 🌞 nuit", "Soleil ☀︎ nuit"),  # U+FE0E (text presentation) too
        ("a \ufe0f 🎁", "a \ufe0f"),  # a stray selector after a space is the text's own: kept
        ("🎁\ufe0f\ufe0e x", "x"),  # the selectors that follow an astral character go with it
        ("Feu ❤️‍🔥 vif", "Feu ❤️ vif"),  # U+2764 U+FE0F U+200D U+1F525: the joiner that led to 🔥 goes with it
        ("Merci 🙏🏽 !", "Merci !"),  # the skin-tone modifier is 4 bytes itself
        ("Famille 👨‍👩‍👧 heureuse", "Famille heureuse"),  # a ZWJ sequence goes whole
        ("Drapeau 🇫🇷 bleu", "Drapeau bleu"),  # regional indicators
        ("🎉🎁", REPLACEMENT),  # nothing left: U+FFFD, never empty (a label is required)
        ("🎉 🎁", REPLACEMENT),
        ("Été à Noël: 25 € « promo » — 漢字", "Été à Noël: 25 € « promo » — 漢字"),  # unchanged
        # line breaks and tabs stay; only the ends of the whole text are trimmed, not those of each line
        ("ligne 1\nligne 2 🎁\n\tligne 3", "ligne 1\nligne 2 \n\tligne 3"),
        ("🎁\nCarte", "\nCarte"),
        ("a  b", "a  b"),  # text that fits is never touched, double spaces included
        ("𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math", "math"),  # mathematical letters are astral too
        ("", ""),
    ],
)
def test_to_utf8mb3(text: str, stored: str) -> None:
    assert to_utf8mb3(text) == stored
    assert fits_utf8mb3(to_utf8mb3(text))
    assert fits_utf8mb3(text) == (to_utf8mb3(text) == text)


@pytest.mark.parametrize(
    ("value", "charset", "expected", "changed"),
    [
        (
            {"label": "🎁 Gift", "price": 5, "tags": ["ok", "🎉 x"]},
            UTF8MB3,
            {"label": "Gift", "price": 5, "tags": ["ok", "x"]},
            True,
        ),
        (
            {"array_options": {"options_longdescription": "Long 🎁"}},
            UTF8MB3,
            {"array_options": {"options_longdescription": "Long"}},
            True,
        ),
        ({"label": "Plain"}, UTF8MB3, {"label": "Plain"}, False),
        ({"label": "🎁 Gift"}, UTF8MB4, {"label": "🎁 Gift"}, False),  # a utf8mb4 connection stores it as is
        ("🎁", UTF8MB3, REPLACEMENT, True),
        (None, UTF8MB3, None, False),
        (("a", "🎁 b"), UTF8MB3, ["a", "b"], True),
    ],
)
def test_storable_walks_json_values(value: Any, charset: str, expected: Any, changed: bool) -> None:
    assert storable(value, charset) == (expected, changed)
