"""Wiring: settings -> state store, PrestaShop clients, the Dolibarr port and the engine. Nothing else builds
these objects, so the CLI, the demo and the tests assemble the service the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from service.dolibarr.port import DolibarrPort
from service.engine.orders import install as install_orders
from service.engine.pipeline import Progress, SyncEngine
from service.prestashop.client import PrestaShopClient
from service.settings import Settings
from service.state.store import StateStore


def make_port(settings: Settings) -> DolibarrPort:
    if settings.dolibarr.backend == "soap":
        from service.dolibarr.soap import DolibarrSoapClient

        return DolibarrSoapClient(settings.dolibarr, settings.retry)
    from service.dolibarr.rest import DolibarrRestClient

    return DolibarrRestClient(settings.dolibarr, settings.retry)


@dataclass(frozen=True)
class Wired:
    settings: Settings
    store: StateStore
    port: DolibarrPort
    clients: dict[str, PrestaShopClient]
    engine: SyncEngine


@asynccontextmanager
async def wired(settings: Settings, *, progress: Progress | None = None) -> AsyncIterator[Wired]:
    async with AsyncExitStack() as stack:
        store = await StateStore.open(settings.state_path)
        stack.push_async_callback(store.close)
        port = make_port(settings)
        stack.push_async_callback(port.close)
        clients: dict[str, PrestaShopClient] = {}
        for shop in settings.shops:
            client = PrestaShopClient(shop, settings.retry)
            stack.push_async_callback(client.close)
            clients[shop.name] = client
        engine = SyncEngine(settings, store, port, clients, progress=progress)
        install_orders(engine)
        yield Wired(settings, store, port, clients, engine)
