"""Reading the real servers through their own HTTP APIs: what a user would look at after a sync.

Deliberately independent of ps2doli's clients (no code of ``service/`` is used to judge ``service/``): plain
aiohttp requests, Dolibarr's REST API with its key, PrestaShop's webservice with its key, JSON both.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine from synchronous test code (module-scoped fixtures read a snapshot once)."""
    return asyncio.run(work())  # type: ignore[arg-type]


@dataclass
class Dolibarr:
    api: str  # .../api/index.php
    key: str
    session: aiohttp.ClientSession

    async def get(self, path: str, **params: Any) -> Any:
        async with self.session.get(
            f"{self.api}{path}",
            params={k: str(v) for k, v in params.items()},
            headers={"DOLAPIKEY": self.key},
        ) as response:
            body = await response.text()
            if response.status == 404:
                return None
            assert response.status == 200, f"GET {path} {params}: HTTP {response.status} {body[:300]}"
            return json.loads(body)

    async def write(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method,
            f"{self.api}{path}",
            json=body if body is not None else {},
            headers={"DOLAPIKEY": self.key},
        ) as response:
            text = await response.text()
            assert response.status < 300, f"{method} {path}: HTTP {response.status} {text[:300]}"
            return json.loads(text) if text.strip() else None

    async def all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every row of a list route, page by page."""
        rows: list[dict[str, Any]] = []
        page = 0
        while True:
            batch = await self.get(path, limit=100, page=page, sortfield="t.rowid", **params)
            if not batch:
                return rows
            rows += batch
            if len(batch) < 100:
                return rows
            page += 1


@dataclass
class Shop:
    url: str  # the shop root; the webservice is /api
    key: str
    session: aiohttp.ClientSession

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{self.key}:".encode()).decode()}

    async def get(self, resource: str, **params: Any) -> Any:
        query = {"output_format": "JSON", **{k: str(v) for k, v in params.items()}}
        async with self.session.get(
            f"{self.url}/api/{resource}", params=query, headers=self.auth
        ) as response:
            body = await response.text()
            assert response.status == 200, f"GET /api/{resource}: HTTP {response.status} {body[:300]}"
            return json.loads(body) if body.strip() else {}

    async def all(self, resource: str, display: str = "full", **params: Any) -> list[dict[str, Any]]:
        answer = await self.get(resource, display=display, **params)
        rows = answer.get(resource, []) if isinstance(answer, dict) else []
        return rows if isinstance(rows, list) else []

    async def write(self, method: str, resource: str, xml: str) -> str:
        async with self.session.request(
            method,
            f"{self.url}/api/{resource}",
            data=xml.encode(),
            headers={**self.auth, "Content-Type": "text/xml"},
        ) as response:
            body = await response.text()
            assert response.status in (200, 201), f"{method} /api/{resource}: {response.status} {body[:500]}"
            return body

    async def xml(self, resource: str) -> str:
        async with self.session.get(f"{self.url}/api/{resource}", headers=self.auth) as response:
            body = await response.text()
            assert response.status == 200, f"GET /api/{resource}: HTTP {response.status}"
            return body
