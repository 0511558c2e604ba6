"""Start an aiohttp app on a free loopback port and stop it again (tests, demo, benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class RunningServer:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    port: int
    runner: web.AppRunner

    @property
    def app(self) -> web.Application:
        return self.runner.app

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_app(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return RunningServer(url=f"http://{host}:{bound}", port=bound, runner=runner)
