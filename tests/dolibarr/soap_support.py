"""The settings document of a sync into the SOAP simulator from a simulated shop (tests/dolibarr, tests/e2e)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.sandbox import prestashop_sim
from service.sandbox.dolibarr_soap_sim import DEFAULT_KEY, DEFAULT_LOGIN, DEFAULT_PASSWORD


def soap_sync_document(
    state: Path, soap_url: str, shop_url: str, timezone: str, **shop: Any
) -> dict[str, Any]:
    """``parse_settings`` input: backend soap on ``soap_url``, one shop ``main`` on ``shop_url`` with ``shop``'s
    keys added (resources, orders, catalog...); quick retries."""
    return {
        "state_path": str(state),
        "dolibarr": {
            "url": soap_url,
            "backend": "soap",
            "api_key": DEFAULT_KEY,
            "login": DEFAULT_LOGIN,
            "password": DEFAULT_PASSWORD,
            "timeout_s": 10,
        },
        "retry": {"attempts": 3, "base_delay_s": 0.01, "max_delay_s": 0.1},
        "shops": [
            {
                "name": "main",
                "url": shop_url,
                "api_key": prestashop_sim.DEFAULT_KEY,
                "timezone": timezone,
                **shop,
            }
        ],
    }
