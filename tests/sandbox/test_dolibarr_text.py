"""The simulator's own copy of Dolibarr 20.0.2's text cleaning (service/sandbox/dolibarr_text.py), held to what the
live server stored: the first table is what a real Dolibarr 20.0.2 kept for each hostile reference of the seeded shop
(POST /products through the REST API, read back; the same values as tests/unit/test_dolibarr_refs.py, which holds
the client to them)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from service.sandbox.dolibarr_text import (
    dol_sanitize_filename,
    dol_string_nospecial,
    product_ref_on_create,
    product_ref_on_update,
    sanitize_alphanohtml,
)


def api_create(ref: str) -> str:
    """POST /products: _checkValForAPI's alphanohtml, then Product::create."""
    return product_ref_on_create(sanitize_alphanohtml(ref))


def api_update(ref: str) -> str:
    """PUT /products/{id}: _checkValForAPI's alphanohtml, then Product::update."""
    return product_ref_on_update(sanitize_alphanohtml(ref))


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        # observed on the live 20.0.2
        ("MOULE (X8)", "MOULE_(X8)"),
        ("COUTEAU-D'OFFICE-9", "COUTEAU-D_OFFICE-9"),
        ('POT-12"-CERAM', "POT-12-CERAM"),
        ("MARI/RAYEE/01", "MARI_RAYEE_01"),
        ("ENV\\KRAFT\\50", "ENV_KRAFT_50"),
        ("REF AVEC ESPACES", "REF_AVEC_ESPACES"),
        (" MIROIR-60 ", "MIROIR-60"),
        ("CAFÉ-ÉTHIOPIE-1KG", "CAFE-ETHIOPIE-1KG"),
        ("GRÜNTEE-Ü-7", "GRUNTEE-U-7"),
        ("STRAßE-42", "STRAßE-42"),
        ("R&D-2024", "R&D-2024"),
        ("PROMO-50%", "PROMO-50%"),
        ("TASSE-HT-9.99166667", "TASSE-HT-9.99166667"),
        ("000123", "000123"),
        ("a--b", "a_b"),
        ("v1..2", "v12"),
        # from the sources (functions.lib.php)
        ("O'Neil (50%) x", "O_Neil_(50%)_x"),
        ("CAFÉ", "CAFE"),
        ('say "hi"', "say_hi"),  # alphanohtml drops the quotes first
        ("A  B", "A_B"),  # dol_string_nohtmltag folds the doubled space
        ("<b>BOLD</b>-1", "BOLD-1"),
        ("x&amp;y", "x&y"),
        ("C:\\x41", "C__x41"),  # \x becomes /x (alphanohtml), then both are replaced
        ("a[1]=b,c;d", "a_1__b_c_d"),
        ("ÿŸ", "yy"),  # dol_string_unaccent's table maps Ÿ to a lower-case y
        ("Æ-Ø", "Æ-Ø"),  # not in that table
        ("x -y", "x_-y"),  # the space is already "_" when dol_sanitizeFileName looks for " -"
        ("back`tick", "back_tick"),
    ],
)
def test_a_product_ref_is_stored_as_product_create_stores_it(sent: str, stored: str) -> None:
    assert api_create(sent) == stored
    assert api_create(stored) == stored  # what Dolibarr stored is left as it is by a create...
    assert api_update(stored) == stored  # ...and by an update


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("CAFÉ x", "CAFÉ_x"),  # Product::update does not unaccent
        ("a--b", "a--b"),  # nor apply dol_sanitizeFileName's dash and dot rules
        ("v1..2", "v1..2"),
        ("O'Neil (50%) x", "O_Neil_(50%)_x"),
        ('POT-12"-CERAM', "POT-12-CERAM"),
        ("back`tick", "back`tick"),  # ` is only a file name character
    ],
)
def test_an_update_applies_dol_string_nospecial_only(sent: str, stored: str) -> None:
    assert api_update(sent) == stored


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ('Le "Bistrot"', "Le Bistrot"),
        ("Le &quot;Bistrot&quot;", "Le Bistrot"),
        ("a &#34;b&#x22;", "a b"),
        ("../etc/passwd", "etc/passwd"),
        ("....//x", "x"),  # removed until nothing is left to remove
        ("C:\\x41\\u00e9\\9", "C:/x41/u00e9/9"),
        ("C:\\Windows", "C:\\Windows"),  # a backslash before anything else stays
        ("  two  spaces  ", "two spaces"),
        ("line 1<br>line 2", "line 1\nline 2"),
        ("<script>alert(1)</script>Nom", "alert(1)Nom"),  # tags go, their text stays
        ("a < b", "a < b"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("it&#39;s", "it&#39;s"),  # ENT_COMPAT leaves the single quote's entities
        ("&copy 2024", "&copy 2024"),  # an entity needs its ';'
        ("R&D", "R&D"),
        ("Été 🎁 €", "Été 🎁 €"),
    ],
)
def test_alphanohtml(sent: str, kept: str) -> None:
    assert sanitize_alphanohtml(sent) == kept


def test_non_strings_are_left_alone() -> None:
    assert sanitize_alphanohtml(12.5) == 12.5
    assert sanitize_alphanohtml(None) is None


def test_the_two_cleaners_apart() -> None:
    assert dol_string_nospecial("a b'c") == "a_b_c"
    # dol_sanitizeFileName's list replaces dol_string_nospecial's: the space and the quote stay
    assert dol_sanitize_filename("a b'c") == "a b'c"
    assert dol_sanitize_filename("x --y") == "x _y"
    assert dol_sanitize_filename("x -") == "x"


DOLIBARR_FUNCTIONS = Path("/srv/realpair/dolibarr/htdocs/core/lib/functions.lib.php")
PHP_ORACLE = """<?php
error_reporting(E_ERROR);
define('DOL_DOCUMENT_ROOT', dirname(dirname(dirname($argv[1]))));
$conf = new stdClass(); $conf->global = new stdClass(); $conf->file = new stdClass(); $conf->entity = 1;
include $argv[1];
$out = array();
foreach (json_decode(stream_get_contents(STDIN), true) as $x) {
    $a = sanitizeVal($x, 'alphanohtml');
    $out[] = array($a, dol_sanitizeFileName(dol_string_nospecial(trim($a))), dol_string_nospecial(trim($a)));
}
echo json_encode($out);
"""


@pytest.mark.skipif(
    shutil.which("php") is None or not DOLIBARR_FUNCTIONS.is_file(),
    reason="needs the php command line and a Dolibarr 20.0.2 tree (the real pair's) to compare with",
)
def test_the_simulator_agrees_with_dolibarrs_own_php_functions(tmp_path: Path) -> None:
    """Thousands of hostile strings through Dolibarr's functions.lib.php itself (sanitizeVal 'alphanohtml', then
    Product::create's and Product::update's ref cleaning) and through dolibarr_text.py: the same text."""
    pieces = [*"aZ09 -_.'/\\\":*?<>|[],;=°$`&#%()ÉéÀßŸ\t\n~!@^+x"]
    pieces += ["..", "--", "../", "&#34", "&quot;", "&quot", "\\x", "&amp;", "&amp", "<br>", "<b>", "</b>"]
    pieces += ["&lt;", "&gt;", "&#39;", "&nbsp;", "  ", "&#x2F", "&copy;", "< ", "<:", "<<a", "<>", ' " ']
    rng = random.Random(20)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    script = tmp_path / "oracle.php"
    script.write_text(PHP_ORACLE)
    done = subprocess.run(
        ["php", str(script), str(DOLIBARR_FUNCTIONS)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    expected = [tuple(row) for row in json.loads(done.stdout)]
    ours = [
        (a, product_ref_on_create(a), product_ref_on_update(a))
        for a in (sanitize_alphanohtml(text) for text in texts)
    ]
    wrong = [(text, php, mine) for text, php, mine in zip(texts, expected, ours, strict=True) if php != mine]
    assert not wrong, wrong[:5]
