"""How Dolibarr 20 stores a product ref. Pure functions, no I/O.

``Product::create`` (``product/class/product.class.php``) cleans the ref it is given, unless the constant
``MAIN_SECURITY_ALLOW_UNSECURED_REF_LABELS`` is set:
``dol_sanitizeFileName(dol_string_nospecial(trim($ref)))``. So ``MOULE (X8)`` is stored as ``MOULE_(X8)``,
``COUTEAU-D'OFFICE-9`` as ``COUTEAU-D_OFFICE-9`` and ``CAFÉ-ÉTHIOPIE-1KG`` as ``CAFE-ETHIOPIE-1KG``.
``Product::update`` applies only ``dol_string_nospecial`` (no unaccenting): sending the shop's reference as is on an
update would change the ref a create had stored. The mapper therefore asks for the cleaned ref from the start
(:func:`stored_product_ref`), which both calls leave as it is: the ref ps2doli records is the one Dolibarr holds, and
lookups by ref find it. docs/catalog.md shows what each kind of hostile reference becomes.
"""

from __future__ import annotations

import re

# dol_string_nospecial(): each of these (and the space) becomes "_"
_NOSPECIAL = ("'", "/", "\\", ":", "*", "?", '"', "<", ">", "|", "[", "]", ",", ";", "=", "°", "$", " ")
# dol_sanitizeFileName(): characters forbidden in file names become "_"
_FILESYSTEM = ("<", ">", "/", "\\", "?", "*", "|", '"', ":", "°", "$", ";", "`")
# dol_string_unaccent() on UTF-8 text: its own table (ß, Æ, Ø... are not in it and stay)
_UNACCENT = {
    **dict.fromkeys("ÀÁÂÃÄÅ", "A"),
    "Ç": "C",
    **dict.fromkeys("ÈÉÊË", "E"),
    **dict.fromkeys("ÌÍÎÏ", "I"),
    "Ñ": "N",
    **dict.fromkeys("ÒÓÔÕÖ", "O"),
    "Š": "S",
    **dict.fromkeys("ÙÚÛÜ", "U"),
    "Ý": "Y",
    "Ÿ": "y",
    **dict.fromkeys("àáâãäå", "a"),
    "ç": "c",
    **dict.fromkeys("èéêë", "e"),
    **dict.fromkeys("ìíîï", "i"),
    "ñ": "n",
    **dict.fromkeys("òóôõö", "o"),
    "š": "s",
    **dict.fromkeys("ùúûü", "u"),
    **dict.fromkeys("ýÿ", "y"),
}
_UNACCENT_TABLE = str.maketrans(_UNACCENT)
# sanitizeVal(..., 'alphanohtml'): sequences removed, case-insensitively, until none is left
_DANGEROUS = re.compile(
    "|".join(
        re.escape(s)
        for s in (
            *("../", "..\\", "&#38", "&#0000038", "&#x26", "&quot", '"', "&#34", "&#0000034", "&#x22"),
            *("&#47", "&#0000047", "&#x2F", "&#92", "&#0000092", "&#x5C"),
        )
    ),
    re.IGNORECASE,
)


def _replace(text: str, chars: tuple[str, ...]) -> str:
    for ch in chars:
        text = text.replace(ch, "_")
    return text


def api_scalar(text: str) -> str:
    """A scalar as the REST layer hands it to the object: ``DolibarrApi::_checkValForAPI`` ->
    ``sanitizeVal($value, 'alphanohtml')`` (its sequence removals; tags cannot occur in a shop reference, which
    PrestaShop refuses with ``<`` or ``>``)."""
    text = text.strip()
    while True:
        before = text
        # dol_string_nohtmltag (tags aside): doubled spaces folded while one stands after the first character
        # (PHP's strpos() at 0 is falsy), then trimmed
        while text.find("  ") > 0:
            text = text.replace("  ", " ")
        text = text.strip()
        text = re.sub(r"\\([0-9xu])", r"/\1", text)
        text = _DANGEROUS.sub("", text)
        if text == before:
            return text


def stored_product_ref(ref: str) -> str:
    """``ref`` as Dolibarr 20 stores it when a product is created through the REST API, cleaned until nothing
    changes: what is sent must be what a create stores *and* what an update keeps (``A-..-B`` -> ``A--B`` after one
    round, which a create would store as ``A_B``)."""
    while True:
        cleaned = _create_cleaning(ref)
        if cleaned == ref:
            return cleaned
        ref = cleaned


def _create_cleaning(ref: str) -> str:
    text = _replace(api_scalar(ref).strip(" \t\n\r\0\x0b"), _NOSPECIAL)
    # dol_sanitizeFileName: unaccent, forbidden file name characters, then its dash and dot rules
    text = _replace(text.translate(_UNACCENT_TABLE), _FILESYSTEM)
    text = re.sub(r"--+", "_", text)
    text = re.sub(r"\s+-([^\s])", r" _\1", text)
    text = re.sub(r"\s+-$", "", text)
    return text.replace("..", "")
