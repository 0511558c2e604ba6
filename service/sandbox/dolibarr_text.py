"""What Dolibarr 20.0.2 does to text before storing it: the REST layer's ``sanitizeVal`` and the string cleaners of
``core/lib/functions.lib.php`` that ``Product::create`` / ``Product::update`` apply to a product ref.

Written from the PHP sources (htdocs/core/lib/functions.lib.php, product/class/product.class.php), apart from the
client's own ``service/dolibarr/refs.py``: the simulator is the oracle the client is tested against, so it must not
share the client's code. tests/sandbox/test_dolibarr_text.py holds them to what the live server stored.

- ``sanitize_alphanohtml`` = ``sanitizeVal($v, 'alphanohtml')``, what ``DolibarrApi::_checkValForAPI`` applies to
  every scalar field of a request that is not a note or a description (labels, refs, names, ``array_options``).
- ``product_ref_on_create`` = ``dol_sanitizeFileName(dol_string_nospecial(trim($ref)))`` (``Product::create``).
- ``product_ref_on_update`` = ``dol_string_nospecial(trim($ref))`` (``Product::update``: no unaccenting, none of
  dol_sanitizeFileName's dash and dot rules).
"""

from __future__ import annotations

import html.entities
import re
from typing import Any

# PHP's trim() strips these, and only these
_PHP_TRIM = " \t\n\r\0\x0b"
# PCRE without the u flag: \s is ASCII whitespace only
_PCRE_SPACE = "[ \t\n\x0b\f\r]"

_ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def php_trim(text: str) -> str:
    return text.strip(_PHP_TRIM)


def html_entity_decode(text: str, *, html5: bool) -> str:
    """``html_entity_decode($text, ENT_COMPAT [| ENT_HTML5], 'UTF-8')``: only entities closed by ``;`` are decoded,
    ENT_COMPAT leaves the single quote's (``&#39;``, ``&apos;``) as they are."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("#"):
            try:
                code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
            except ValueError:
                return m.group(0)
            if code == 39 or code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                return m.group(0)
            return chr(code)
        if name == "apos" or (not html5 and name not in html.entities.name2codepoint):
            return m.group(0)
        return html.entities.html5.get(name + ";", m.group(0))

    return _ENTITY.sub(one, text)


_BR = re.compile(r"<br[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]+>")
_OPEN_TAG = re.compile(r"<+([a-z]+)", re.IGNORECASE)


def dol_string_nohtmltag(text: str) -> str:
    """``dol_string_nohtmltag($text, 0)``: ``<br>`` to a line feed, entities decoded, tags removed (and a ``<``
    before letters), entities decoded again, doubled spaces folded, trimmed."""
    temp = _BR.sub("\n", text)
    temp = html_entity_decode(temp, html5=True)
    temp = temp.replace("< ", "__ltspace__").replace("<:", "__lttwopoints__")
    while True:
        tempbis = _TAG.sub("", temp.replace("<>", ""))
        if tempbis == temp:
            break
        temp = tempbis
    temp = _OPEN_TAG.sub(r"\1", temp)
    temp = html_entity_decode(temp, html5=False)
    # while (strpos($temp, "  ")): a double space at position 0 reads as false and stops the folding
    while temp.find("  ") > 0:
        temp = temp.replace("  ", " ")
    temp = temp.replace("__ltspace__", "< ").replace("__lttwopoints__", "<:")
    return php_trim(temp)


_ESCAPES = re.compile(r"\\([0-9xu])")
_DANGEROUS = (
    "../",
    "..\\",
    "&#38",
    "&#0000038",
    "&#x26",
    "&quot",
    '"',
    "&#34",
    "&#0000034",
    "&#x22",
    "&#47",
    "&#0000047",
    "&#x2F",
    "&#92",
    "&#0000092",
    "&#x5C",
)
_DANGEROUS_RX = [re.compile(re.escape(s), re.IGNORECASE) for s in _DANGEROUS]


def sanitize_alphanohtml(value: Any) -> Any:
    """``sanitizeVal($value, 'alphanohtml')``. PHP's ``trim()`` turns any scalar into a string (``12.5`` ->
    ``"12.5"``, ``true`` -> ``"1"``); the simulator leaves numbers, booleans and None as they are."""
    if not isinstance(value, str):
        return value
    out = php_trim(value)
    while True:
        before = out
        out = dol_string_nohtmltag(out)
        out = _ESCAPES.sub(r"/\1", out)
        for rx in _DANGEROUS_RX:  # str_ireplace(array, '') replaces each needle in turn
            out = rx.sub("", out)
        if out == before:
            return out


# dol_string_nospecial(): each of these, and the space, becomes "_" (';' is listed twice in the PHP source)
_NOSPECIAL = ("'", "/", "\\", ":", "*", "?", '"', "<", ">", "|", "[", "]", ",", ";", "=", "°", "$", " ")
# dol_sanitizeFileName(): $filesystem_forbidden_chars, which replace dol_string_nospecial's list (space kept)
_FILESYSTEM_FORBIDDEN = ("<", ">", "/", "\\", "?", "*", "|", '"', ":", "°", "$", ";", "`")
# dol_string_unaccent() on valid UTF-8 (MAIN_UNACCENT_USE_TRANSLITERATOR off): its rawurlencode()d table
_UNACCENT = str.maketrans(
    {
        "À": "A", "Á": "A", "Â": "A", "Ã": "A", "Ä": "A", "Å": "A", "Ç": "C",
        "È": "E", "É": "E", "Ê": "E", "Ë": "E", "Ì": "I", "Í": "I", "Î": "I", "Ï": "I",
        "Ñ": "N", "Ò": "O", "Ó": "O", "Ô": "O", "Õ": "O", "Ö": "O", "Š": "S",
        "Ù": "U", "Ú": "U", "Û": "U", "Ü": "U", "Ý": "Y", "Ÿ": "y",
        "à": "a", "á": "a", "â": "a", "ã": "a", "ä": "a", "å": "a", "ç": "c",
        "è": "e", "é": "e", "ê": "e", "ë": "e", "ì": "i", "í": "i", "î": "i", "ï": "i",
        "ñ": "n", "ò": "o", "ó": "o", "ô": "o", "õ": "o", "ö": "o", "š": "s",
        "ù": "u", "ú": "u", "û": "u", "ü": "u", "ý": "y", "ÿ": "y",
    }
)  # fmt: skip


def dol_string_nospecial(text: str, chars: tuple[str, ...] = _NOSPECIAL) -> str:
    for ch in chars:
        text = text.replace(ch, "_")
    return text


def dol_string_unaccent(text: str) -> str:
    return text.translate(_UNACCENT)


_DASHES = re.compile(r"--+")
_SPACE_DASH = re.compile(_PCRE_SPACE + r"+-([^ \t\n\x0b\f\r])")
_SPACE_DASH_END = re.compile(_PCRE_SPACE + r"+-$")


def dol_sanitize_filename(text: str) -> str:
    """``dol_sanitizeFileName($text)`` (``$newstr = '_'``, ``$unaccent = 1``)."""
    tmp = dol_string_nospecial(dol_string_unaccent(text), _FILESYSTEM_FORBIDDEN)
    tmp = _DASHES.sub("_", tmp)
    tmp = _SPACE_DASH.sub(r" _\1", tmp)
    tmp = _SPACE_DASH_END.sub("", tmp)
    return tmp.replace("..", "")


def product_ref_on_create(ref: str) -> str:
    """``Product::create``: ``dol_sanitizeFileName(dol_string_nospecial(trim($this->ref)))``."""
    return dol_sanitize_filename(dol_string_nospecial(php_trim(ref)))


def product_ref_on_update(ref: str) -> str:
    """``Product::update``: ``dol_string_nospecial(trim($this->ref))``."""
    return dol_string_nospecial(php_trim(ref))
