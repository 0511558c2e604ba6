"""Making the real pair misbehave, and running ``ps2doli`` so that it can be killed: the helpers of the crash and
outage tests (``test_crash.py``, ``test_outages.py``) and of ``bench/real_crash.py`` / ``bench/real_load.py``.

- ``crash_sync``: ``ps2doli sync`` SIGKILLed at moments drawn from a fixed seed, spread over a run's span;
- ``reload_php_fpm``, ``stop_dolibarr_db`` / ``start_dolibarr_db``, ``set_webservice``: the servers' own
  processes and settings, driven as an admin would (pid files, ``mysqladmin``, ``mysqld_safe``, the shop's
  ``ps_configuration``); the commands are those of ``../shared/realpair/lib/common.sh`` and ``up.sh``;
- ``CuttingProxy``: a forwarding proxy between ps2doli and the real Dolibarr that lets every Nth write reach
  Dolibarr and then closes the client's connection without its answer: real ambiguous writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from tests.real.realpair import PS2DOLI, Pair

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# ----------------------------------------------------------------------------------------- ps2doli runs
def start(pair: Pair, settings: Path, *args: str, tag: str = "") -> tuple[subprocess.Popen[bytes], Path]:
    """``ps2doli <args>`` in the background (its own process group); its output goes to the log file
    returned, beside the settings."""
    pair.runs.append(subprocess.CompletedProcess([], 0))  # numbers the log files with pair.ps2doli's
    log = settings.parent / f"ps2doli-{len(pair.runs)}-{args[0]}{tag}.log"
    out = log.open("wb")
    try:
        process = subprocess.Popen(
            [str(PS2DOLI), *args, "--config", str(settings)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=settings.parent,
            start_new_session=True,
        )
    finally:
        out.close()
    return process, log


@dataclass
class CrashReport:
    kills: int = 0
    runs: list[tuple[float, int | None]] = field(default_factory=list)  # (seconds, exit or None: killed)
    seconds: float = 0.0
    final_exit: int | None = None

    def render(self) -> str:
        exits: dict[str, int] = {}
        for _, code in self.runs:
            name = "killed" if code is None else f"exit {code}"
            exits[name] = exits.get(name, 0) + 1
        moments = ", ".join(f"{s:.1f}" for s, code in self.runs if code is None)
        return (
            f"{len(self.runs)} runs of 'ps2doli sync' in {self.seconds:.1f}s ({exits}); "
            f"{self.kills} SIGKILLs after (s): {moments}; the last run exited {self.final_exit}"
        )


def kill_delays(kills: int, span_s: float, seed: int) -> list[float]:
    """When to kill each run (seconds after its start): drawn with a fixed seed, 0.15 to 1.85 times an equal
    share of ``span_s`` (a clean run's length), so that the kills, added up, cover about one whole run: some in
    start-up, most while it pushes, in every phase."""
    rng = random.Random(seed)
    share = span_s / kills
    return [round(rng.uniform(0.15, 1.85) * share, 2) for _ in range(kills)]


def crash_sync(
    pair: Pair, settings: Path, *, kills: int, span_s: float, seed: int, finish_runs: int = 3
) -> CrashReport:
    """``ps2doli sync`` SIGKILLed ``kills`` times (a run that ends by itself first is counted, not killed),
    then run to its end (up to ``finish_runs`` times while it exits non-zero)."""
    report = CrashReport()
    began = time.monotonic()
    for delay in kill_delays(kills, span_s, seed):
        process, _ = start(pair, settings, "sync", tag="-crash")
        t0 = time.monotonic()
        try:
            code: int | None = process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
            report.kills += 1
        report.runs.append((time.monotonic() - t0, code))
    for _ in range(finish_runs):
        t0 = time.monotonic()
        done = pair.ps2doli(settings, "sync", timeout=900)
        report.runs.append((time.monotonic() - t0, done.returncode))
        report.final_exit = done.returncode
        if done.returncode == 0:
            break
    report.seconds = time.monotonic() - began
    return report


def created_by_pass(log: str) -> dict[str, int]:
    """Objects each resource's passes created, added up over a run's log (``pass.done`` events)."""
    created: dict[str, int] = {}
    for line in log.splitlines():
        if '"pass.done"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        name = str(event.get("resource"))
        created[name] = created.get(name, 0) + int(event.get("created") or 0)
    return created


def failures(pair: Pair, settings: Path) -> list[str]:
    """``ps2doli failures list``: per filed record "shop resource kind id: reason" (attempts and retry times
    left out, so that two runs compare)."""
    done = pair.ps2doli(settings, "failures", "list")
    out: list[str] = []
    for line in done.stdout.splitlines():
        if line.startswith("#"):
            out.append(" ".join(line.split()[1:5]))
        elif line.strip() and out and line.startswith(" "):
            out[-1] += f": {line.strip()}"
    return out


def status(pair: Pair, settings: Path) -> Any:
    done = pair.ps2doli(settings, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    return json.loads(done.stdout)


# ------------------------------------------------------------------------------------ server outages
def _home(pair: Pair) -> Path:
    return Path(pair.env["REALPAIR_HOME"])


def reload_php_fpm(pair: Pair) -> int:
    """``kill -USR2`` Dolibarr's php-fpm master (a graceful reload, as ``systemctl reload`` does); its pid."""
    pid = int((_home(pair) / "run" / "php-fpm-dolibarr.pid").read_text().strip())
    os.kill(pid, signal.SIGUSR2)
    return pid


def _db_ping(sock: Path) -> bool:
    done = subprocess.run(
        ["mysqladmin", "--no-defaults", "-uroot", "-S", str(sock), "ping"],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return done.returncode == 0


def stop_dolibarr_db(pair: Pair) -> None:
    """Dolibarr's MariaDB shut down (``mysqladmin shutdown``, as down.sh does)."""
    sock = _home(pair) / "run" / "mysql" / "doli.sock"
    subprocess.run(
        ["mysqladmin", "--no-defaults", "-uroot", "-S", str(sock), "shutdown"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def start_dolibarr_db(pair: Pair, wait_s: float = 60) -> float:
    """Dolibarr's MariaDB started again (``mysqld_safe`` with the instance's config, as up.sh does); the
    seconds it took to answer."""
    home = _home(pair)
    sock = home / "run" / "mysql" / "doli.sock"
    t0 = time.monotonic()
    if not _db_ping(sock):
        subprocess.Popen(
            ["mysqld_safe", f"--defaults-file={home / 'conf' / 'mysql-doli.cnf'}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    while not _db_ping(sock):
        if time.monotonic() - t0 > wait_s:
            raise RuntimeError(f"Dolibarr's MariaDB did not come back within {wait_s}s")
        time.sleep(0.3)
    return time.monotonic() - t0


def ps_sql(pair: Pair, sql: str) -> str:
    """One statement in the shop's database as root through its socket (the settings PrestaShop reads)."""
    sock = _home(pair) / "run" / "mysql" / "ps.sock"
    done = subprocess.run(
        ["mysql", "--no-defaults", "-uroot", "-S", str(sock), "-N", "-B", "prestashop", "-e", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


def set_webservice(pair: Pair, on: bool) -> None:
    """PS_WEBSERVICE on or off, as the back office's switch does: off, every webservice call answers 503 with
    PrestaShop's error code 22."""
    ps_sql(pair, f"UPDATE ps_configuration SET value='{1 if on else 0}' WHERE name='PS_WEBSERVICE'")


@contextlib.contextmanager
def webservice_off(pair: Pair) -> Iterator[None]:
    set_webservice(pair, False)
    try:
        yield
    finally:
        set_webservice(pair, True)


def writes_since_mark(pair: Pair) -> int:
    return len(pair.writes())


def wait_for_writes(pair: Pair, count: int, process: subprocess.Popen[bytes], timeout_s: float = 300) -> int:
    """Wait until Dolibarr received ``count`` writes since the mark (or the run ended); how many it got."""
    t0 = time.monotonic()
    seen = 0
    while time.monotonic() - t0 < timeout_s:
        seen = writes_since_mark(pair)
        if seen >= count or process.poll() is not None:
            return seen
        time.sleep(0.5)
    return seen


# -------------------------------------------------------------------------------------- cutting proxy
class CuttingProxy:
    """``http://127.0.0.1:{port}`` forwards everything to Dolibarr; every ``every``-th write (POST, PUT,
    PATCH, DELETE) is forwarded, Dolibarr's answer read, and then the client's connection is closed without
    that answer. The write happened; the client cannot know: a real ambiguous write. Runs in its own thread."""

    def __init__(self, upstream: str, every: int) -> None:
        self.upstream = upstream.rstrip("/")  # Dolibarr's root, e.g. http://127.0.0.1:8180
        self.every = every
        self.writes = 0
        self.cut: list[str] = []  # "METHOD path status" of each write whose answer was dropped
        self.port = 0
        self.active = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="cutting-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the cutting proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with ClientSession(timeout=ClientTimeout(total=300), auto_decompress=False) as session:
            app = web.Application(client_max_size=256 * 1024**2)
            app.router.add_route("*", "/{tail:.*}", lambda r: self._forward(r, session))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    async def _forward(self, request: web.Request, session: ClientSession) -> web.StreamResponse:
        body = await request.read()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "transfer-encoding", "connection")
        }
        cut = False
        if request.method in WRITES and self.active:
            self.writes += 1
            cut = self.writes % self.every == 0
        async with session.request(
            request.method, f"{self.upstream}{request.path_qs}", data=body or None, headers=headers
        ) as answer:
            payload = await answer.read()
            status = answer.status
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            }
        if cut:
            self.cut.append(f"{request.method} {request.path} {status}")
            transport = request.transport
            if transport is not None:
                transport.abort()  # the answer is lost: the client sees its connection reset
        return web.Response(status=status, body=payload, headers=kept)
