"""Catalog settings across shops: several shops syncing categories need a root category each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.errors import ConfigError
from service.settings import CATALOG_RESOURCES, DEFAULT_INTERVALS, parse_settings


def shops(*tables: dict[str, Any]) -> dict[str, Any]:
    return {
        "dolibarr": {"url": "http://127.0.0.1:1/api/index.php", "api_key": "dolibarr-key-123456"},
        "shops": [
            {"name": f"s{i}", "url": f"http://127.0.0.1:{i + 2}", "api_key": "K" * 32, **t}
            for i, t in enumerate(tables)
        ],
    }


def test_one_shop_needs_no_root_category(tmp_path: Path) -> None:
    assert parse_settings(shops({}), base_dir=tmp_path).shops[0].catalog.root_category == ""


def test_several_shops_syncing_categories_need_a_root_category_each(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"shops\.s1\.catalog\.root_category is required"):
        parse_settings(shops({"catalog": {"root_category": "A"}}, {}), base_dir=tmp_path)
    with pytest.raises(ConfigError, match="used by another shop"):
        parse_settings(
            shops({"catalog": {"root_category": "Shop"}}, {"catalog": {"root_category": " shop "}}),
            base_dir=tmp_path,
        )
    ok = parse_settings(
        shops({"catalog": {"root_category": "A"}}, {"catalog": {"root_category": "B"}}), base_dir=tmp_path
    )
    assert [s.catalog.root_category for s in ok.shops] == ["A", "B"]
    # only one of them syncs categories: no collision possible
    parse_settings(shops({}, {"resources": {"categories": {"enabled": False}}}), base_dir=tmp_path)


def test_images_is_a_catalog_resource_checked_daily_by_default(tmp_path: Path) -> None:
    assert "images" in CATALOG_RESOURCES and DEFAULT_INTERVALS["images"] == 86400
    shop = parse_settings(shops({}), base_dir=tmp_path).shops[0]
    assert shop.resources["images"].interval_s == 86400 and "images" in shop.enabled()
