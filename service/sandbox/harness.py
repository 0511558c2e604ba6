"""Both simulators on free loopback ports, and settings pointing at them: one place that the demo, the
tests and the benchmarks use to stand up a whole sandbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.sandbox import dolibarr_sim, prestashop_sim
from service.sandbox.dolibarr_model import DolibarrData
from service.sandbox.faults import FAULTS_KEY, REQUESTS_KEY, FaultPlan, RequestLog
from service.sandbox.runner import RunningServer, start_app
from service.sandbox.shop_model import ShopData
from service.settings import CATALOG_RESOURCES, Settings, parse_settings

# the catalog resources a sandbox enables unless told otherwise
DEFAULT_RESOURCES: tuple[str, ...] = ("categories", "products", "customers")


@dataclass
class SandboxShop:
    name: str
    data: ShopData
    server: RunningServer
    key: str

    @property
    def requests(self) -> RequestLog:
        return self.server.app[REQUESTS_KEY]

    @property
    def faults(self) -> FaultPlan:
        return self.server.app[FAULTS_KEY]


@dataclass
class Sandbox:
    shops: dict[str, SandboxShop]
    dolibarr: DolibarrData
    dolibarr_server: RunningServer
    dolibarr_key: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shop(self) -> SandboxShop:
        """The first (often the only) shop."""
        return next(iter(self.shops.values()))

    @property
    def dolibarr_requests(self) -> RequestLog:
        return self.dolibarr_server.app[REQUESTS_KEY]

    @property
    def dolibarr_faults(self) -> FaultPlan:
        return self.dolibarr_server.app[FAULTS_KEY]

    @property
    def dolibarr_url(self) -> str:
        return self.dolibarr_server.url + "/api/index.php"

    def settings_data(
        self,
        state_path: Path,
        *,
        resources: Sequence[str] = DEFAULT_RESOURCES,
        shop_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        dolibarr: Mapping[str, Any] | None = None,
        retry: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The settings document (as parsed TOML) for this sandbox; tests tweak it before parsing."""
        shops = []
        for shop in self.shops.values():
            table: dict[str, Any] = {
                "name": shop.name,
                "url": shop.server.url,
                "api_key": shop.key,
                "timezone": shop.data.timezone,
                "page_size": 50,
                "timeout_s": 10,
                "resources": {
                    name: {"enabled": name in resources, "interval_s": 5}
                    for name in (*CATALOG_RESOURCES, "orders")
                },
            }
            for key, value in (shop_overrides or {}).get(shop.name, {}).items():
                if isinstance(value, Mapping) and isinstance(table.get(key), dict):
                    table[key] = {**table[key], **value}
                else:
                    table[key] = value
            shops.append(table)
        return {
            "state_path": str(state_path),
            "dolibarr": {
                "url": self.dolibarr_url,
                "api_key": self.dolibarr_key,
                "max_concurrency": 4,
                "timeout_s": 10,
                **(dolibarr or {}),
            },
            "retry": {"attempts": 3, "base_delay_s": 0.01, "max_delay_s": 0.1, **(retry or {})},
            "shops": shops,
        }

    def settings(self, state_path: Path, **kwargs: Any) -> Settings:
        return parse_settings(self.settings_data(state_path, **kwargs), base_dir=state_path.parent)

    async def stop(self) -> None:
        for shop in self.shops.values():
            await shop.server.stop()
        await self.dolibarr_server.stop()


async def start_sandbox(
    shops: Mapping[str, ShopData],
    *,
    dolibarr: DolibarrData | None = None,
    dolibarr_options: dolibarr_sim.DolibarrSimOptions | None = None,
    php8_null_associations: bool = False,
) -> Sandbox:
    """Start one PrestaShop simulator per shop and one Dolibarr simulator. ``php8_null_associations``: the
    shops render id-only associations as ``[[null]]`` (1.7.8.8 on PHP 8)."""
    started: dict[str, SandboxShop] = {}
    for name, data in shops.items():
        app = prestashop_sim.create_app(
            data, key=prestashop_sim.DEFAULT_KEY, php8_null_associations=php8_null_associations
        )
        server = await start_app(app)
        started[name] = SandboxShop(name, data, server, prestashop_sim.DEFAULT_KEY)
    options = dolibarr_options or dolibarr_sim.DolibarrSimOptions(bad_key_delay_s=0.0)
    model = dolibarr if dolibarr is not None else DolibarrData()
    dolibarr_server = await start_app(
        dolibarr_sim.create_app(model, key=dolibarr_sim.DEFAULT_KEY, options=options)
    )
    return Sandbox(started, model, dolibarr_server, dolibarr_sim.DEFAULT_KEY)
