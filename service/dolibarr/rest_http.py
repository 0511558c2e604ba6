"""The HTTP core of the Dolibarr REST backend: one session, the API key, request discipline (retries, the adaptive
concurrency limit, errors classified by ``errors.py``, redirects refused, the key never quoted), typed results and
paged listings. :class:`~service.dolibarr.rest.DolibarrRestClient` builds the port's calls on it; the request
discipline is described there.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Final, Self
from urllib.parse import quote

import aiohttp
import structlog
import yarl

from service.dolibarr.charset import storable
from service.dolibarr.errors import IDEMPOTENT_METHODS, DatabaseBusy, classify, read_body, redact
from service.dolibarr.limit import AdaptiveLimit
from service.errors import (
    BadResponse,
    ConfigError,
    NotFound,
    PermanentError,
    SyncError,
    TransientError,
    Where,
)
from service.settings import DolibarrSettings, RetrySettings

log = structlog.get_logger("service.dolibarr.rest")

PAGE_SIZE: Final = 100
MAX_PAGES: Final = 10_000
USER_AGENT: Final = "ps2doli/0.1 (+aiohttp)"

RESOURCES: Final[Mapping[str, str]] = {
    "category": "categories",
    "product": "products",
    "thirdparty": "thirdparties",
    "contact": "contacts",
    "order": "orders",
    "invoice": "invoices",
}


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


class RestHttp:
    """Requests to ``{dolibarr.url}`` (``.../api/index.php``) with the ``DOLAPIKEY`` header and JSON bodies."""

    def __init__(
        self,
        settings: DolibarrSettings,
        retry: RetrySettings,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._settings = settings
        self._retry = retry
        self._base = settings.url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._secrets = (settings.api_key.reveal(),)
        self._headers = {
            "DOLAPIKEY": settings.api_key.reveal(),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
        self._ssl: bool = settings.verify_tls
        self.limit = AdaptiveLimit(settings.max_concurrency)
        # Dolibarr answers 401 when its database goes away between reading the key's user and loading it
        # (api_access.class.php: User::fetch fails): a key it accepted before is refused this many times in a row
        # before the refusal is believed (each such request was refused before its handler ran: nothing done)
        self._key_accepted = False
        self._refusals_in_a_row = 0
        self._refusals_believed_after = max(3, retry.attempts)
        # test seams
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.random: Callable[[], float] = random.random
        if not settings.verify_tls:
            log.warning("dolibarr_tls_verification_off", url=self._base)
        elif self._base.startswith("http://"):
            log.warning("dolibarr_plain_http", url=self._base, hint="the API key travels unencrypted")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None if self._owns_session else self._session

    # ---------------------------------------------------------------------------------------- transport

    def _where(self, kind: str, record_id: object = "") -> Where:
        return Where(
            side="dolibarr", resource=kind, record_id="" if record_id in (None, "") else str(record_id)
        )

    def _url(self, path: str, params: Mapping[str, Any] | None) -> yarl.URL:
        query = ""
        if params:
            query = "?" + "&".join(
                f"{quote(str(k), safe='')}={quote(str(v), safe='')}"
                for k, v in params.items()
                if v is not None
            )
        return yarl.URL(self._base + path + query, encoded=True)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            connector = aiohttp.TCPConnector(limit=max(2, self._settings.max_concurrency * 2))
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
            self._owns_session = True
        return self._session

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        cap = self._retry.max_delay_s
        if retry_after is not None:
            return None if retry_after > cap else retry_after
        ceiling: float = min(cap, self._retry.base_delay_s * (2 ** (attempt - 1)))
        return self.random() * ceiling

    async def _call(
        self,
        method: str,
        path: str,
        *,
        kind: str = "",
        record_id: object = "",
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One logical call, retried while transient when idempotent: the parsed JSON (None for 304)."""
        method = method.upper()
        safe_to_repeat = (method in IDEMPOTENT_METHODS) if idempotent is None else idempotent
        where = self._where(kind, record_id)
        attempts = max(1, self._retry.attempts) if safe_to_repeat else 1
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._once(method, path, params, body, where, safe_to_repeat, attempt)
            except TransientError as exc:
                if attempt >= attempts:
                    raise
                delay = self._backoff(attempt, exc.retry_after)
                if delay is None:
                    raise
                log.warning(
                    "dolibarr_retry",
                    method=method,
                    route=path,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    error=exc.message,
                )
                await self.sleep(delay)

    async def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        where: Where,
        idempotent: bool,
        attempt: int,
    ) -> Any:
        headers = dict(self._headers)
        data: bytes | None = None
        if body is not None:
            body = self._storable(body, where, method, path)
            data = json.dumps(body, default=_json_default, ensure_ascii=False).encode("utf-8")
        if method not in ("GET", "HEAD"):
            # every write says JSON, with or without a body: for a body-less POST aiohttp would send
            # application/octet-stream, which Restler refuses (403 "Content type ... is not supported")
            headers["Content-Type"] = "application/json"
        url = self._url(path, params)
        started = time.monotonic()
        async with self.limit.slot():
            session = self._get_session()
            try:
                async with session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    timeout=self._timeout,
                    ssl=self._ssl,
                    auto_decompress=False,
                    allow_redirects=False,
                ) as response:
                    raw = await response.read()
                    status = response.status
                    response_headers = {k: v for k, v in response.headers.items()}
                decoded = read_body(raw, response_headers)
                error = classify(
                    method, status, response_headers, decoded, where, route=path, idempotent=idempotent
                )
                if isinstance(error, DatabaseBusy):
                    self.limit.busy(path)
                else:
                    self.limit.ok()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = classify(method, None, {}, b"", where, route=path, idempotent=idempotent, error=exc)
                log.info(
                    "dolibarr_request_failed",
                    method=method,
                    route=path,
                    attempt=attempt,
                    error=type(exc).__name__,
                    ms=round((time.monotonic() - started) * 1000),
                )
                assert error is not None
                raise redact(error, self._secrets) from None
        log.debug(
            "dolibarr_request",
            method=method,
            route=path,
            status=status,
            attempt=attempt,
            ms=round((time.monotonic() - started) * 1000),
        )
        if 300 <= status < 400 and status != 304:
            location = response_headers.get("Location", "")
            raise redact(
                ConfigError(
                    f"{method} {path} was redirected (HTTP {status}) to {location or 'another address'}: "
                    "set dolibarr.url to the final address of .../api/index.php",
                    where=where,
                    status=status,
                ),
                self._secrets,
            )
        if error is not None:
            raise redact(self._key_refused(error), self._secrets)
        self._key_accepted, self._refusals_in_a_row = True, 0
        if status in (204, 304) or not decoded.strip():
            return None
        return json.loads(decoded, parse_float=Decimal)

    def _key_refused(self, error: SyncError) -> SyncError:
        """A 401 for the key this process has used is transient until it comes ``_refusals_believed_after``
        times in a row (then: the key was revoked, a configuration error)."""
        if not (isinstance(error, ConfigError) and error.status == 401 and self._key_accepted):
            return error
        self._refusals_in_a_row += 1
        if self._refusals_in_a_row >= self._refusals_believed_after:
            return error
        return TransientError(
            f"Dolibarr refused the API key it accepted before ({error.message}); it does so when its database "
            "goes away while checking the key: nothing was done",
            where=error.where,
            status=error.status,
        )

    def _storable(self, value: Any, where: Where, method: str = "GET", path: str = "") -> Any:
        """``value`` with its text in a form Dolibarr's database connection stores (``dolibarr/charset.py``)."""
        value, changed = storable(value, self._settings.charset)
        if changed:
            log.warning(
                "dolibarr_text_not_storable",
                resource=where.resource,
                record_id=where.record_id,
                method=method,
                route=path,
                charset=self._settings.charset,
                hint="characters above U+FFFF (emoji) left out: docs/catalog.md, dolibarr.charset",
            )
        return value

    # ----------------------------------------------------------------------------------- typed results

    def _dict(self, value: Any, where: Where, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise BadResponse(
                f"{what}: expected a JSON object from Dolibarr, got {type(value).__name__}", where=where
            )
        return value

    def _list(self, value: Any, where: Where, what: str) -> list[dict[str, Any]]:
        if isinstance(value, dict) and isinstance(value.get("data"), list):
            value = value["data"]  # pagination_data=true shape
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise BadResponse(f"{what}: expected a JSON list of objects from Dolibarr", where=where)
        return value

    def _new_id(self, value: Any, where: Where, what: str) -> int:
        if isinstance(value, dict):
            value = value.get("id")
        number = _int(value, -1)
        if number <= 0:
            raise BadResponse(f"{what}: Dolibarr did not answer a new id ({str(value)[:40]!r})", where=where)
        return number

    def _resource(self, kind: str) -> str:
        try:
            return RESOURCES[kind]
        except KeyError:
            raise PermanentError(
                f"the REST backend has no '{kind}' objects (payments are read through invoice_payments)",
                where=self._where(kind),
            ) from None

    # ---------------------------------------------------------------------------------------- listings

    async def _list_all(
        self,
        kind: str,
        path: str,
        *,
        sqlfilters: str | None = None,
        extra: Mapping[str, Any] | None = None,
        sortfield: str = "t.rowid",
    ) -> list[dict[str, Any]]:
        """Every row of a list endpoint, page by page until a short page. A 404 means "none" (Dolibarr answers
        404 "Thirdparties not found", "Contacts not found"... on an empty list, ``[]`` elsewhere)."""
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        where = self._where(kind)
        for page in range(MAX_PAGES):
            params: dict[str, Any] = {
                "sortfield": sortfield,
                "sortorder": "ASC",
                "limit": PAGE_SIZE,
                "page": page,
            }
            if sqlfilters:
                params["sqlfilters"] = sqlfilters
            if extra:
                params.update(extra)
            try:
                batch = self._list(await self._call("GET", path, kind=kind, params=params), where, path)
            except NotFound:
                break
            first = str(batch[0].get("id", batch[0].get("rowid", ""))) if batch else ""
            if first and first in seen:
                raise BadResponse(f"GET {path} does not page (page {page} repeats earlier rows)", where=where)
            seen.update(str(r.get("id", r.get("rowid", ""))) for r in batch)
            rows.extend(batch)
            if len(batch) < PAGE_SIZE:
                break
        else:
            raise BadResponse(f"GET {path} returned more than {MAX_PAGES} pages", where=where)
        return rows
