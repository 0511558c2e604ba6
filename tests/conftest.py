"""Shared fixtures: a sandbox (both simulators on loopback) and the engine wired to it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from service.app import Wired, wired
from service.sandbox.harness import Sandbox, start_sandbox
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import ShopData

# Property tests give the same verdict on every CI run (derandomize: examples drawn from the test itself, no
# example database); locally they stay random, to keep finding new cases. No deadline anywhere: hypothesis' 200 ms
# per example is a timed test (test_ref_ext_contract_is_always_expressible failed once at load 10, then passed).
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
hypothesis_settings.register_profile("local", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "local")

SandboxFactory = Callable[..., Awaitable[Sandbox]]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist (pyproject's addopts, ``-n 3``): every test of tests/real/ in one unit of work, so on one worker
    in file order - they share one real pair and its session fixtures (``pair``, ``clean_run``); every other test
    a unit of its own, balanced over the workers. (``--dist loadgroup`` would do it with a mark, but pytest 9.2
    no longer reads the node id xdist 3.8 rewrites for it.)"""
    from xdist.scheduler import LoadScopeScheduling

    class RealPairTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/real" if nodeid.startswith("tests/real/") else nodeid

    return RealPairTogether(config, log)


@pytest.fixture
async def make_sandbox() -> AsyncIterator[SandboxFactory]:
    started: list[Sandbox] = []

    async def factory(shops: dict[str, ShopData] | None = None, **kwargs: Any) -> Sandbox:
        if shops is None:
            shops = {"main": generate_shop(1, categories=8, products=30, customers=20)}
        sandbox = await start_sandbox(shops, **kwargs)
        started.append(sandbox)
        return sandbox

    yield factory
    for sandbox in started:
        await sandbox.stop()


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    return await make_sandbox()


@asynccontextmanager
async def engine_for(sandbox: Sandbox, state: Path, **settings: Any) -> AsyncIterator[Wired]:
    async with wired(sandbox.settings(state, **settings)) as w:
        yield w
