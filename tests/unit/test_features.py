"""``ps2doli check``'s reading of Dolibarr's modules against what the settings ask for (service/features.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.dolibarr.port import Capabilities
from service.features import feature_findings
from service.settings import parse_settings


def shops(**shop: Any) -> Any:
    data = {
        "dolibarr": {"url": "http://erp/api/index.php", "api_key": "k"},
        "shops": [{"name": "main", "url": "http://shop", "api_key": "s", **shop}],
    }
    return parse_settings(data, base_dir=Path("/tmp")).shops


DEFAULT = Capabilities(version="20.0.2", modules_known=True)  # a default install: multicurrency off


@pytest.mark.parametrize(
    ("caps", "shop", "blocking", "notes"),
    [
        (DEFAULT, {"catalog_only": True, "catalog": {"warehouse_id": 1}}, [], []),
        (DEFAULT, {"catalog": {"warehouse_id": 1}}, [], ["Multicurrency (module off)"]),
        (
            Capabilities(version="20", stock=False, variants=False, modules_known=True),
            {"catalog_only": True, "catalog": {"warehouse_id": 1, "combinations": "variants"}},
            ["Stock (module off)", "Variants (module off)"],
            [],
        ),
        (
            Capabilities(version="20", categories=False, payments=False, multicurrency=True),
            {},
            ["Banks (module off, or the key lacks its read permission)"],
            ["Categories (module off, or the key lacks its read permission)"],
        ),
    ],
)
def test_a_module_that_is_off_is_a_note_unless_the_settings_need_it(
    caps: Capabilities, shop: dict[str, Any], blocking: list[str], notes: list[str]
) -> None:
    findings = feature_findings(caps, shops(**shop))
    got_blocking = [f.text for f in findings if f.blocking]
    got_notes = [f.text for f in findings if not f.blocking]
    assert len(got_blocking) == len(blocking) and all(
        b in t for b, t in zip(blocking, got_blocking, strict=True)
    )
    assert len(got_notes) == len(notes) and all(n in t for n, t in zip(notes, got_notes, strict=True))
