"""``ps2doli check`` against the real pair: a default Dolibarr (multicurrency off) is enough for a shop with
orders, and says what multicurrency off means; with multicurrency on there is nothing to say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.real.realpair import Pair


@pytest.mark.parametrize("setup", ["clean", "clean-mc"])
def test_check_passes_on_the_real_pair_and_names_what_multicurrency_off_means(
    pair: Pair, tmp_path: Path, setup: str
) -> None:
    pair.reset(setup)
    settings = pair.settings(tmp_path, shop={"catalog_only": False}, catalog={"combinations": "variants"})
    done = pair.ps2doli(settings, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dolibarr   reachable, version 20.0.2 (rest)" in done.stdout
    assert "all good" in done.stdout
    note = "Multicurrency (module off): orders in a currency other than EUR"
    assert (note in done.stdout) == (setup == "clean"), done.stdout


def test_check_fails_with_exit_2_naming_a_refused_key(pair: Pair, tmp_path: Path) -> None:
    settings = pair.settings(tmp_path, dolibarr={"api_key": "not-the-key"})
    done = pair.ps2doli(settings, "check")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "MISSING  dolibarr" in done.stdout and "not-the-key" not in done.stdout + done.stderr
