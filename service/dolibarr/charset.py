"""Text a Dolibarr database connection in ``utf8`` (3 bytes) can store. Pure functions, no I/O.

Dolibarr's installer leaves ``$dolibarr_main_db_character_set = 'utf8'`` in ``conf.php`` even when the tables are
``utf8mb4``: MariaDB then refuses any character outside Unicode's Basic Multilingual Plane (emoji, some CJK
ideographs, mathematical letters), 4 bytes in UTF-8. A product label with an emoji gets HTTP 500 "Incorrect string
value: '\\xF0\\x9F...' for column label", a ref with one "Illegal mix of collations", and the record would never
land. With ``dolibarr.charset = "utf8"`` (the default, as Dolibarr is installed) the clients send every text in
the form such a database stores:

- each character above U+FFFF is dropped, with what only decorates it (variation selectors U+FE0E/U+FE0F, the
  zero-width joiner U+200D of emoji sequences, skin-tone modifiers are 4 bytes themselves);
- the spaces this leaves doubled or at an end are folded (``"🎁 Carte cadeau"`` -> ``"Carte cadeau"``,
  ``"🎁-CARTE-50"`` -> ``"-CARTE-50"``);
- a text made of nothing else becomes U+FFFD ``�`` (3 bytes), never empty (a label is required).

Everything else (accents, ``«»``, ``€``, CJK of the BMP) is kept as is. ``dolibarr.charset = "utf8mb4"`` (a
database connection set to utf8mb4) sends the text unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

UTF8MB3: str = "utf8"
UTF8MB4: str = "utf8mb4"
CHARSETS = (UTF8MB3, UTF8MB4)

# a character outside the BMP with the invisible marks that follow it (variation selectors, the zero-width joiner
# of an emoji sequence) and a joiner that leads to it; marks after a BMP character belong to it and stay ("☀️" is
# 3 + 3 bytes)
_ASTRAL = re.compile("\u200d?[\U00010000-\U0010ffff][\ufe0e\ufe0f\u200d]*")
REPLACEMENT = "\ufffd"


def fits_utf8mb3(text: str) -> bool:
    return all(ord(ch) <= 0xFFFF for ch in text)


def to_utf8mb3(text: str) -> str:
    """``text`` as a 3-byte utf8 connection can store it (unchanged when it already fits)."""
    if fits_utf8mb3(text):
        return text
    stripped = _ASTRAL.sub("", text)
    # fold only the spaces the removal doubled: line breaks and other spacing stay where they were
    stripped = re.sub(r"[ \t]{2,}", " ", stripped).strip(" \t")
    return stripped if stripped.strip() else REPLACEMENT


def storable(value: Any, charset: str) -> tuple[Any, bool]:
    """A JSON-ready value with every string made storable; True when anything had to change."""
    if charset != UTF8MB3:
        return value, False
    changed = False

    def walk(v: Any) -> Any:
        nonlocal changed
        if isinstance(v, str):
            out = to_utf8mb3(v)
            changed = changed or out != v
            return out
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    return walk(value), changed
