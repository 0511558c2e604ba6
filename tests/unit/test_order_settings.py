"""The ``[shops.orders]`` settings the order sync reads."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.settings import parse_settings


def settings(**orders: object) -> dict[str, object]:
    return {
        "dolibarr": {"url": "http://127.0.0.1:1/api/index.php", "api_key": "dolibarr-key-123456"},
        "shops": [{"name": "main", "url": "http://127.0.0.1:2", "api_key": "K" * 32, "orders": orders}],
    }


def test_order_settings_defaults_and_values(tmp_path: Path) -> None:
    default = parse_settings(settings(), base_dir=tmp_path).shop("main").orders
    assert (default.entry, default.first_pass, default.total_tolerance) == ("invoice", "all", Decimal("0.05"))
    custom = (
        parse_settings(
            settings(first_pass="new", state_overrides={"3": "delivered"}, total_tolerance="0.02"),
            base_dir=tmp_path,
        )
        .shop("main")
        .orders
    )
    assert custom.first_pass == "new" and custom.state_overrides == {3: "delivered"}
    assert custom.total_tolerance == Decimal("0.02")


@pytest.mark.parametrize(
    ("orders", "message"),
    [
        ({"first_pass": "later"}, "first_pass = 'later' is not valid: allowed: all, new"),
        ({"entry": "paid"}, "allowed: invoice, created"),
        ({"state_overrides": {"3": "shipped-ish"}}, "state_overrides.3"),
    ],
)
def test_wrong_order_settings_are_refused_with_the_key(
    orders: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_settings(settings(**orders), base_dir=tmp_path)
