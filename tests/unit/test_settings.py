"""Settings: a wrong value stops start-up with one message naming the key, the value and what is allowed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.settings import load_settings, parse_settings, readable_by_others

REPO = Path(__file__).resolve().parents[2]


def minimal(**shop: object) -> dict[str, object]:
    return {
        "dolibarr": {"url": "http://127.0.0.1:1/api/index.php", "api_key": "dolibarr-key-123456"},
        "shops": [{"name": "main", "url": "http://127.0.0.1:2", "api_key": "K" * 32, **shop}],
    }


def test_the_example_settings_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PS2DOLI_DOLIBARR_KEY", "secret-dolibarr")
    monkeypatch.setenv("PS2DOLI_SHOP_MAIN_KEY", "secret-shop-key")
    settings = load_settings(REPO / "settings.toml")
    assert settings.shops[0].name == "main"
    assert settings.shops[0].api_key.reveal() == "secret-shop-key"
    assert "orders" in settings.shops[0].enabled()


@pytest.mark.parametrize(
    ("shop", "message"),
    [
        ({"name": "Main Shop"}, "shops[0].name = 'Main Shop' is not valid"),
        ({"page_size": 0}, "shops.main.page_size = 0 is not valid"),
        ({"timezone": "Mars/Olympus"}, "shops.main.timezone = 'Mars/Olympus'"),
        ({"output_format": "csv"}, "allowed: json, xml"),
        ({"catalog": {"combinations": "tree"}}, "shops.main.catalog.combinations = 'tree'"),
        ({"catalog": {"ref_template": "PS"}}, "shops.main.catalog.ref_template"),
        ({"resources": {"orderz": {}}}, "unknown resource shops.main.resources.orderz"),
        ({"resources": {"orders": {"interval_s": "often"}}}, "shops.main.resources.orders.interval_s"),
        ({"orders": {"total_tolerance": "a lot"}}, "shops.main.orders.total_tolerance"),
        ({"colour": "blue"}, "unknown setting shops.main.colour"),
        ({"catalog_only": True, "resources": {"orders": {"enabled": True}}}, "contradicts"),
    ],
)
def test_a_wrong_setting_names_its_key(shop: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(minimal(**shop), base_dir=Path("."))
    assert message in str(caught.value)


def test_catalog_only_turns_orders_off() -> None:
    settings = parse_settings(minimal(catalog_only=True), base_dir=Path("."))
    assert "orders" not in settings.shops[0].enabled()
    assert "products" in settings.shops[0].enabled()


def test_secrets_come_from_env_or_file_and_never_print(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "shop.key"
    key_file.write_text("file-secret-0123456789\n")
    monkeypatch.setenv("DOLI_KEY", "env-secret-0123456789")
    data = minimal()
    data["dolibarr"] = {"url": "http://127.0.0.1:1/api/index.php", "api_key_env": "DOLI_KEY"}
    shop = data["shops"][0]  # type: ignore[index]
    del shop["api_key"]
    shop["api_key_file"] = "shop.key"
    settings = parse_settings(data, base_dir=tmp_path)
    assert settings.dolibarr.api_key.reveal() == "env-secret-0123456789"
    assert settings.shops[0].api_key.reveal() == "file-secret-0123456789"
    assert "env-secret" not in repr(settings) and "file-secret" not in repr(settings)


def test_a_missing_secret_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    data = minimal()
    data["dolibarr"] = {"url": "http://127.0.0.1:1/api/index.php", "api_key_env": "NOPE_NOT_SET"}
    with pytest.raises(ConfigError, match="NOPE_NOT_SET, which is not set"):
        parse_settings(data, base_dir=Path("."))


def test_two_shops_need_two_names() -> None:
    data = minimal()
    data["shops"] = [data["shops"][0], dict(data["shops"][0])]  # type: ignore[index]
    with pytest.raises(ConfigError, match="used twice"):
        parse_settings(data, base_dir=Path("."))


def test_a_settings_file_readable_by_others_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("")
    os.chmod(path, 0o600)
    assert not readable_by_others(path)
    os.chmod(path, 0o644)
    assert readable_by_others(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PS2DOLI_CONFIG"):
        load_settings(tmp_path / "nope.toml")
