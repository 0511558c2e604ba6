"""The PrestaShop webservice client: read-only, paged, retried, every failure typed.

How changes are read, the error table and the fallbacks are described in docs/prestashop-client.md. In short:

- :meth:`PrestaShopClient.changes` walks a resource in ``(date_upd, id)`` keyset order starting ``overlap_s``
  seconds before the stored position, and never uses growing offsets (offset paging over rows that are being
  saved skips rows, WEBSERVICE.md §9); ``date=1`` is added to every request that filters or sorts on a date.
- :class:`Filter` refuses to build a filter PrestaShop would silently turn into an equality test.
- A page broken by a PHP error (one bad record breaks the whole page) is re-read id by id: good records still
  flow, the bad ones come back as :class:`RecordReadError` in :attr:`Page.failed`.
- The API key is sent as the Basic-auth user (empty password), never as ``ws_key`` in a URL, and is scrubbed
  from every error message; the client's repr does not show it.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import structlog
from yarl import URL

from service.errors import BadResponse, ConfigError, NotFound, SyncError, TransientError, Where
from service.prestashop import values
from service.prestashop import xml as psxml
from service.prestashop.errors import Expected, RecordReadError, ShopPhpError, check, transport_error
from service.prestashop.resources import spec
from service.settings import RetrySettings, ShopSettings

__all__ = [
    "DATE_FIELDS",
    "END_OF_TIME",
    "ZERO_DATE",
    "Filter",
    "Page",
    "PrestaShopClient",
    "Record",
    "RecordReadError",
]

Record = dict[str, Any]
FilterValue = str | int | Decimal
Display = Literal["full"] | tuple[str, ...] | None
OutputFormat = Literal["json", "xml"]

DATE_FIELDS = frozenset({"date_add", "date_upd"})
ZERO_DATE = "0000-00-00 00:00:00"
END_OF_TIME = "9999-12-31 23:59:59"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# a display entry: a field, or an association with its fields (``images[id]``, WebserviceRequest::
# parseDisplayFields)
_DISPLAY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\[[A-Za-z][A-Za-z0-9_]*(,[A-Za-z][A-Za-z0-9_]*)*\])?$")
_SORT = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)_(ASC|DESC)$")
_FORBIDDEN = re.compile(r"[\[\]|,\x00-\x1f\x7f]")
_FORBIDDEN_LIKE = re.compile(r"[\[\]\x00-\x1f\x7f]")
_BOUND = re.compile(r"^[0-9.:\- ]+$")
_DATEISH = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")
_TLS_WARNED: set[str] = set()
_USER_AGENT = "ps2doli/0.1 (+PrestaShop webservice client)"


# ---------------------------------------------------------------------------------------------- filters


def _filter_text(value: FilterValue, *, what: str, forbidden: re.Pattern[str] = _FORBIDDEN) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError(f"{what}: a filter value must be a str, int or Decimal, got {type(value).__name__}")
    text = str(value)
    bad = forbidden.search(text)
    if bad:
        raise ValueError(
            f"{what}: {text[:60]!r} contains {bad.group(0)!r}; PrestaShop's filter syntax has no escaping, "
            "such a value would silently become a different test (filter by id instead)"
        )
    if _DATEISH.match(text) and not _DATE_TEXT.match(text):
        raise ValueError(
            f"{what}: {text[:60]!r} is not 'YYYY-MM-DD HH:MM:SS'; PrestaShop compares dates as shop-local "
            "text and would silently match nothing (convert ISO dates/offsets to the shop's zone first)"
        )
    return text


def _required(value: FilterValue, *, what: str) -> str:
    text = _filter_text(value, what=what)
    if not text:
        raise ValueError(f"{what} needs a value")
    return text


def _choices(choices: Sequence[FilterValue], *, what: str) -> str:
    """``a|b|c``; an empty choice is refused (PrestaShop misreads ``[|x]``)."""
    if not choices:
        raise ValueError(f"{what} needs at least one value")
    texts = [_filter_text(v, what=what) for v in choices]
    if any(t == "" for t in texts):
        raise ValueError(f"{what}: empty values are not allowed (PrestaShop misreads '[|x]')")
    return "|".join(texts)


@dataclass(frozen=True)
class Filter:
    """One ``filter[field]=…`` value, built only in the shapes PrestaShop really parses (SQLUtils.php).

    Anything else is silently read by PrestaShop as an equality test on the whole string (and answers 200 with
    ``[]``), so the builders raise ValueError instead: brackets, pipes, commas or control characters inside a
    value, interval bounds outside ``[0-9.:- ]``, ISO dates.
    """

    op: str
    expr: str

    def __str__(self) -> str:
        return self.expr

    @staticmethod
    def eq(value: FilterValue) -> Filter:
        """``[v]``: equal (``""`` allowed: an empty field)."""
        return Filter("eq", f"[{_filter_text(value, what='Filter.eq')}]")

    @staticmethod
    def any_of(*choices: FilterValue) -> Filter:
        """``[a|b|c]``: equal to one of them (SQL IN)."""
        return Filter("any_of", f"[{_choices(choices, what='Filter.any_of')}]")

    @staticmethod
    def between(low: FilterValue, high: FilterValue) -> Filter:
        """``[a,b]``: inclusive interval; both bounds must be digits, ``.``, ``:``, ``-`` or spaces (numbers,
        ``YYYY-MM-DD[ HH:MM:SS]``)."""
        bounds = [_filter_text(v, what="Filter.between") for v in (low, high)]
        for bound in bounds:
            if not _BOUND.match(bound):
                raise ValueError(
                    f"Filter.between: bound {bound!r} has characters other than digits . : - and space; "
                    "PrestaShop would silently turn the interval into an equality test"
                )
        return Filter("between", f"[{bounds[0]},{bounds[1]}]")

    @staticmethod
    def gt(value: FilterValue) -> Filter:
        """``>[v]``: strictly greater (PrestaShop has no >=)."""
        return Filter("gt", f">[{_required(value, what='Filter.gt')}]")

    @staticmethod
    def lt(value: FilterValue) -> Filter:
        """``<[v]``: strictly lower."""
        return Filter("lt", f"<[{_required(value, what='Filter.lt')}]")

    @staticmethod
    def not_in(*choices: FilterValue) -> Filter:
        """``![a|b]``: different from each."""
        return Filter("not_in", f"![{_choices(choices, what='Filter.not_in')}]")

    @staticmethod
    def like(text: str, position: Literal["contains", "begins", "ends"] = "contains") -> Filter:
        """``%[x]%`` / ``[x]%`` / ``%[x]``: SQL LIKE (``_`` and ``%`` inside ``text`` stay wildcards)."""
        if not isinstance(text, str) or not text:
            raise ValueError("Filter.like needs a non-empty text")
        body = _filter_text(text, what="Filter.like", forbidden=_FORBIDDEN_LIKE)
        if position == "contains":
            return Filter("like", f"%[{body}]%")
        if position == "begins":
            return Filter("like", f"[{body}]%")
        if position == "ends":
            return Filter("like", f"%[{body}]")
        raise ValueError(f"Filter.like: position must be contains, begins or ends, not {position!r}")


# ------------------------------------------------------------------------------------------------ pages


@dataclass(frozen=True)
class Page:
    """One page of a pass.

    ``records`` are the rows read (as the shop sent them, XML converted); ``failed`` the rows that could not
    be read even one by one (each a :class:`RecordReadError` whose ``where.record_id`` is the id) - report
    them and go on. ``ids`` are the ids the page covered in read order (records and failures), ``cursor`` the
    keyset position ``(change field text, id)`` of the last row whose position is known (``None`` if none is)
    - persist it after the page is processed. ``fallback`` says the page was read record by record.
    """

    records: list[Record]
    failed: list[RecordReadError] = field(default_factory=list)
    cursor: tuple[str, int] | None = None
    ids: tuple[int, ...] = ()
    fallback: bool = False

    @property
    def size(self) -> int:
        return len(self.ids)


def _record_level(error: SyncError) -> bool:
    """Errors that belong to one record read alone: a PHP error, a broken body, a plain 500. The others
    (network, 502/503/504, 429, configuration) stop the pass."""
    if isinstance(error, ShopPhpError):
        return True
    if isinstance(error, BadResponse):
        return error.status is not None
    return isinstance(error, TransientError) and error.status == 500


# ----------------------------------------------------------------------------------------------- client


class PrestaShopClient:
    """Reads one shop's webservice. GET only: ps2doli never writes to PrestaShop."""

    def __init__(
        self,
        shop: ShopSettings,
        retry: RetrySettings,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if "?" in shop.url or "#" in shop.url:
            raise ConfigError(
                f"setting shops.{shop.name}.url must be the shop's base address without a query string "
                "(ps2doli sends the key in the Authorization header, never as ws_key)"
            )
        self.shop = shop
        self.retry = retry
        self._session = session
        self._owns_session = session is None
        key = shop.api_key.reveal()
        self._secrets = tuple(
            s for s in (key, base64.b64encode(f"{key}:".encode()).decode(), quote(key, safe="")) if s
        )
        self._auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        self._timeout = aiohttp.ClientTimeout(total=shop.timeout_s)
        self._base = str(URL(shop.api_url))  # encoded once (IDNA host, non-ASCII path)
        self._format: OutputFormat = "xml" if shop.output_format == "xml" else "json"
        self._log = structlog.get_logger().bind(side="prestashop", shop=shop.name)
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._random = random.Random()
        self.version: str = ""  # PSWS-Version of the last answer (the shop's PrestaShop version)
        self.server_time: float | None = None  # Access-Time of the last answer: the shop's clock, Unix time
        if not shop.verify_tls and shop.name not in _TLS_WARNED:
            _TLS_WARNED.add(shop.name)
            self._log.warning(
                "prestashop.tls_verification_off",
                url=shop.url,
                hint="verify_tls = false: the shop's certificate is not checked; the key can be intercepted",
            )

    def __repr__(self) -> str:
        return f"PrestaShopClient(shop={self.shop.name!r}, url={self.shop.url!r}, format={self._format!r})"

    # ------------------------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> PrestaShopClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it (a session passed in belongs to the caller)."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()
        if self._owns_session:
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession(headers={"User-Agent": _USER_AGENT})
            self._owns_session = True
        return self._session

    # ------------------------------------------------------------------------------------ requests

    def _where(self, resource: str, record_id: int | str | None = None) -> Where:
        return Where(
            side="prestashop",
            shop=self.shop.name,
            resource=resource,
            record_id="" if record_id is None else str(record_id),
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text

    def _redact(self, error: SyncError) -> SyncError:
        error.message = self._scrub(error.message)
        error.body = self._scrub(error.body)
        error.args = (str(error),)
        return error

    def _url(self, path: str, params: Sequence[tuple[str, str]]) -> URL:
        query = "&".join(f"{quote(k, safe='[]_')}={quote(v, safe='')}" for k, v in params)
        return URL(self._base + path + ("?" + query if query else ""), encoded=True)

    async def _once(
        self, path: str, params: Sequence[tuple[str, str]], *, expected: Expected, where: Where
    ) -> Any:
        url = self._url(path, params)
        started = time.monotonic()
        try:
            async with self._http().get(
                url,
                headers={"Authorization": self._auth, "User-Agent": _USER_AGENT},
                timeout=self._timeout,
                ssl=self.shop.verify_tls,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
                headers = response.headers
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = self._redact(transport_error(exc, where=where))
            self._log.debug("prestashop.request_failed", path=path, error=error.message)
            raise error from None
        self.version = headers.get("PSWS-Version", self.version)
        access_time = headers.get("Access-Time", "").strip()
        if access_time.isdigit():
            self.server_time = float(access_time)
        self._log.debug(
            "prestashop.request",
            resource=where.resource,
            path=path,
            query=self._scrub(url.raw_query_string),
            status=status,
            bytes=len(body),
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )
        try:
            return check(status, headers, body, expected=expected, where=where)
        except SyncError as error:
            raise self._redact(error) from None

    def _delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Full-jitter exponential backoff; ``None`` when Retry-After asks for longer than ``max_delay_s``."""
        ceiling = min(self.retry.max_delay_s, self.retry.base_delay_s * (2 ** (attempt - 1)))
        delay = self._random.uniform(0, ceiling)
        if retry_after is not None:
            if retry_after > self.retry.max_delay_s:
                return None
            delay = max(delay, retry_after)
        return delay

    async def _request(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        *,
        expected: Expected,
        where: Where,
    ) -> Any:
        """GET with retries for transient errors only (a PHP notice is deterministic: not retried)."""
        attempt = 0
        while True:
            try:
                return await self._once(path, params, expected=expected, where=where)
            except TransientError as error:
                if isinstance(error, ShopPhpError) and not error.fatal:
                    raise
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise
                delay = self._delay(attempt, error.retry_after)
                if delay is None:
                    raise
                self._log.info(
                    "prestashop.retry",
                    resource=where.resource,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    error=error.message,
                )
                await self._sleep(delay)

    def shop_now(self) -> str | None:
        """The shop's clock at its last answer, as shop-local ``YYYY-MM-DD HH:MM:SS`` (how ``date_upd`` is
        stored), or None before any answer carrying ``Access-Time``."""
        if self.server_time is None:
            return None
        return datetime.fromtimestamp(self.server_time, self.shop.zone).strftime("%Y-%m-%d %H:%M:%S")

    # ------------------------------------------------------------------------------------ params

    def _common(self, output_format: OutputFormat | None, language: int | None) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        if (output_format or self._format) == "json":
            params.append(("output_format", "JSON"))
        if language is not None:
            if isinstance(language, bool) or not isinstance(language, int) or language < 1:
                raise ValueError(f"language must be a language id >= 1, not {language!r}")
            params.append(("language", str(language)))
        if self.shop.id_shop is not None:
            params.append(("id_shop", str(self.shop.id_shop)))
        return params

    def list_params(
        self,
        *,
        filters: Mapping[str, Filter] | None = None,
        display: Display = "full",
        sort: Sequence[str] = (),
        limit: tuple[int, int] | None = None,
        date_filter: bool = False,
        language: int | None = None,
        output_format: OutputFormat | None = None,
    ) -> list[tuple[str, str]]:
        """The query of a list request (public so tests and the docs can show exactly what is sent).

        ``date=1`` is added whenever a date field (date_add/date_upd) is filtered or sorted on, whatever
        ``date_filter`` says: without it PrestaShop answers 400 (codes 32/38).
        """
        params = self._common(output_format, language)
        if display is not None:
            if display == "full":
                params.append(("display", "full"))
            else:
                if isinstance(display, str) or not display:
                    raise ValueError(
                        f'display must be "full", a non-empty tuple of field names or None: {display!r}'
                    )
                for name in display:
                    if not _DISPLAY_NAME.match(name):
                        raise ValueError(f"display: {name!r} is not a field name (or association[fields])")
                params.append(("display", "[" + ",".join(display) + "]"))
        uses_date = date_filter
        for name, flt in (filters or {}).items():
            if not _NAME.match(name):
                raise ValueError(f"filter field {name!r} is not a field name")
            if not isinstance(flt, Filter):
                raise ValueError(f"filter[{name}] must be built with Filter (got {type(flt).__name__})")
            params.append((f"filter[{name}]", flt.expr))
            uses_date = uses_date or name in DATE_FIELDS
        if isinstance(sort, str):
            sort = (sort,)
        if sort:
            for item in sort:
                match = _SORT.match(item)
                if not match:
                    raise ValueError(f"sort: {item!r} is not 'field_ASC' or 'field_DESC'")
                uses_date = uses_date or match.group(1) in DATE_FIELDS
            params.append(("sort", "[" + ",".join(sort) + "]"))
        if limit is not None:
            offset, count = limit
            if offset < 0 or count < 1:
                raise ValueError(f"limit must be (offset >= 0, count >= 1), not {limit!r}")
            params.append(("limit", f"{int(offset)},{int(count)}"))
        if uses_date:
            params.append(("date", "1"))
        return params

    def _doc_format(self, output_format: OutputFormat | None) -> OutputFormat:
        return output_format or self._format

    # ------------------------------------------------------------------------------------ reading

    async def fetch(
        self,
        resource: str,
        *,
        filters: Mapping[str, Filter] | None = None,
        display: Display = "full",
        sort: Sequence[str] = (),
        limit: tuple[int, int] | None = None,
        date_filter: bool = False,
        language: int | None = None,
        output_format: OutputFormat | None = None,
    ) -> list[Record]:
        """One list request: the records as the shop sent them (XML converted to the JSON shapes).

        ``display=None`` is the cheap id-only listing; an empty answer (``[]``) is ``[]``. ``language``
        restricts multilingual fields to one language (off by default: mappers pick the language). Without
        ``limit`` every row is returned (PrestaShop has no maximum).
        """
        where = self._where(resource)
        fmt = self._doc_format(output_format)
        params = self.list_params(
            filters=filters,
            display=display,
            sort=sort,
            limit=limit,
            date_filter=date_filter,
            language=language,
            output_format=fmt,
        )
        document = await self._request(f"/{_segment(resource)}", params, expected=fmt, where=where)
        return self._records(resource, document, fmt, where)

    def _records(self, resource: str, document: Any, fmt: OutputFormat, where: Where) -> list[Record]:
        data = psxml.to_data(document, where=where, expect="list") if fmt == "xml" else document
        if isinstance(data, list):
            if data:
                raise BadResponse(
                    f"the shop sent a bare JSON list of {len(data)} items for a listing", where=where
                )
            return []
        if not isinstance(data, dict):
            raise BadResponse(f"the shop sent {type(data).__name__} for a listing", where=where)
        key = spec(resource).list_key
        rows = data.get(key)
        if rows is None:
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(data) == 1 and len(lists) == 1:
                rows = lists[0]
            else:
                raise BadResponse(
                    f"the listing has no {key!r} key (keys: {', '.join(list(data)[:5])})", where=where
                )
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise BadResponse(f"the listing's {key!r} is not a list of records", where=where)
        return rows

    async def ids(
        self,
        resource: str,
        *,
        filters: Mapping[str, Filter] | None = None,
        sort: Sequence[str] = (),
        limit: tuple[int, int] | None = None,
    ) -> list[int]:
        """The cheap id-only listing (no ``display``: one SQL query, no object loaded)."""
        records = await self.fetch(resource, filters=filters, display=None, sort=sort, limit=limit)
        where = self._where(resource)
        try:
            return [values.as_int(record.get("id"), "id") for record in records]
        except ValueError as exc:
            raise BadResponse(f"the id listing has an unreadable id: {exc}", where=where) from None

    async def get(
        self,
        resource: str,
        record_id: int,
        *,
        language: int | None = None,
        output_format: OutputFormat | None = None,
    ) -> Record | None:
        """One record (all fields and associations), or ``None`` when it does not exist (404).

        ``output_format="xml"`` re-reads a record in XML, whose associations carry the ids JSON loses to the
        ``[[null]]`` bug.
        """
        if isinstance(record_id, bool) or not isinstance(record_id, int) or record_id < 1:
            raise ValueError(f"record id must be a positive int, not {record_id!r}")
        where = self._where(resource, record_id)
        fmt = self._doc_format(output_format)
        try:
            document = await self._request(
                f"/{_segment(resource)}/{record_id}",
                self._common(fmt, language),
                expected=fmt,
                where=where,
            )
        except NotFound:
            return None
        data = psxml.to_data(document, where=where, expect="single") if fmt == "xml" else document
        if isinstance(data, dict):
            key = spec(resource).single_key
            record = data.get(key)
            if record is None and len(data) == 1:
                record = next(iter(data.values()))
            if isinstance(record, dict):
                return record
        raise BadResponse(
            f"the shop sent no {spec(resource).single_key!r} object for one record", where=where
        )

    # ------------------------------------------------------------------------------------ paging

    async def _page(
        self,
        resource: str,
        *,
        filters: Mapping[str, Filter],
        sort: tuple[str, ...],
        page_size: int,
        display: Display,
        language: int | None,
        position_field: str | None,
    ) -> Page:
        try:
            records = await self.fetch(
                resource, filters=filters, display=display, sort=sort, limit=(0, page_size), language=language
            )
        except ShopPhpError as error:
            return await self._fallback(
                resource,
                error,
                filters=filters,
                sort=sort,
                page_size=page_size,
                display=display,
                language=language,
                position_field=position_field,
            )
        ids = tuple(self._id_of(resource, record) for record in records)
        return Page(records, [], _position(records, position_field), ids)

    def _id_of(self, resource: str, record: Mapping[str, Any]) -> int:
        try:
            return values.as_int(record.get("id"), "id")
        except ValueError as exc:
            raise BadResponse(f"a record has an unreadable id: {exc}", where=self._where(resource)) from None

    async def _fallback(
        self,
        resource: str,
        error: ShopPhpError,
        *,
        filters: Mapping[str, Filter],
        sort: tuple[str, ...],
        page_size: int,
        display: Display,
        language: int | None,
        position_field: str | None,
    ) -> Page:
        """The page broke on a PHP error: list its ids (id-only listing, same filter, sort and limit: no
        object is loaded, so it does not break), then read each record alone (``filter[id]=[N]``, same
        display)."""
        self._log.warning(
            "prestashop.page_fallback",
            resource=resource,
            error=error.message,
            hint="one record breaks the page; reading it record by record",
        )
        ids = await self.ids(resource, filters=filters, sort=sort, limit=(0, page_size))
        records: list[Record] = []
        failed: list[RecordReadError] = []
        for record_id in ids:
            try:
                found = await self.fetch(
                    resource, filters={"id": Filter.eq(record_id)}, display=display, language=language
                )
            except SyncError as cause:
                if not _record_level(cause):
                    raise
                failed.append(
                    RecordReadError(
                        f"record {record_id} cannot be read: {cause.message}",
                        where=self._where(resource, record_id),
                        status=cause.status,
                        body=cause.body,
                        cause=cause,
                    )
                )
                self._log.warning(
                    "prestashop.record_unreadable",
                    resource=resource,
                    record_id=record_id,
                    error=cause.message,
                )
                continue
            records.extend(found)  # nothing when the record was deleted in between
        return Page(records, failed, _position(records, position_field), tuple(ids), fallback=True)

    async def changes(
        self,
        resource: str,
        since: tuple[str, int] | None,
        *,
        page_size: int,
        overlap_s: int,
        change_field: str = "date_upd",
        display: Display = "full",
        filters: Mapping[str, Filter] | None = None,
        language: int | None = None,
    ) -> AsyncIterator[Page]:
        """The rows changed since ``since`` (``(date text, id)``, ``None`` = from the beginning), in pages.

        With a date ``change_field`` (date_upd/date_add) the pass is a keyset walk in ``(date, id)`` order:

        1. window: ``filter[date]=[FROM,9999-12-31 23:59:59]&sort=[date_ASC,id_ASC]&date=1&limit=0,N`` with
           FROM = since's date minus ``overlap_s`` seconds (wall-clock text arithmetic; ``None`` ->
           ``0000-00-00 00:00:00``, which the interval syntax accepts and which also catches zero dates);
        2. after a full page ending at ``(D, X)``: the rest of second D, ``filter[date]=[D,D]&filter[id]=>[X]
           &sort=[id_ASC]`` (repeated while full), then ``filter[date]=>[D]`` sorted by ``(date, id)``;
        3. the pass ends on a short page.

        Offsets are always 0, so a second holding more rows than a page never loops and never skips, and a row
        saved during the pass moves *ahead* of the cursor (read again later) without shifting the rows not yet
        read (an offset would skip one). With ``overlap_s == 0`` the walk starts right after ``since`` (step
        2).

        With ``change_field="id"`` (append-only resources) the walk is ``filter[id]=>[last]&sort=[id_ASC]``
        from ``since[1]``. Rows re-read inside the overlap window are yielded again: consumers are idempotent.
        """
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        if overlap_s < 0:
            raise ValueError("overlap_s must be >= 0")
        extra = dict(filters or {})
        if change_field == "id":
            start = since[1] if since else 0
            async for page in self._id_walk(resource, start, page_size, display, extra, language):
                yield page
            return
        if change_field not in DATE_FIELDS:
            raise ValueError(f"change_field must be date_upd, date_add or id, not {change_field!r}")
        if change_field in extra or "id" in extra:
            raise ValueError(f"changes(): filters may not constrain {change_field!r} or 'id' (the walk does)")
        display = _with_fields(display, ("id", change_field))

        cursor: tuple[str, int] | None = None
        phase = "window"
        since_date = _since_text(since)
        start_from = ZERO_DATE
        if since_date is not None and since is not None:
            if overlap_s == 0:
                cursor, phase = (since_date, since[1]), "same"
            else:
                start_from = values.shift_local(since_date, -overlap_s)
        reported: set[int] = set()
        asc = f"{change_field}_ASC"
        while True:
            if phase == "window":
                flt = {**extra, change_field: Filter.between(start_from, END_OF_TIME)}
                sort: tuple[str, ...] = (asc, "id_ASC")
            elif phase == "same":
                assert cursor is not None
                flt = {
                    **extra,
                    change_field: Filter.between(cursor[0], cursor[0]),
                    "id": Filter.gt(cursor[1]),
                }
                sort = ("id_ASC",)
            else:
                assert cursor is not None
                flt = {**extra, change_field: Filter.gt(cursor[0])}
                sort = (asc, "id_ASC")
            page = await self._page(
                resource,
                filters=flt,
                sort=sort,
                page_size=page_size,
                display=display,
                language=language,
                position_field=change_field,
            )
            if page.failed:
                page = replace(page, failed=[f for f in page.failed if f.record_id not in reported])
                reported.update(f.record_id for f in page.failed)
            if page.records or page.failed:
                yield page
            if page.size < page_size:
                if phase == "same":
                    phase = "after"
                    continue
                return
            moved = page.cursor
            if moved is None or (cursor is not None and moved <= cursor):
                self._log.warning(
                    "prestashop.changes_stalled",
                    resource=resource,
                    cursor=cursor,
                    hint="a full page did not move the cursor (unreadable rows at the end of the page, or "
                    "the date filter and sort disagree: multishop date_upd, PrestaShop#12385); the pass ends",
                )
                return
            cursor, phase = moved, "same"

    async def _id_walk(
        self,
        resource: str,
        after: int,
        page_size: int,
        display: Display,
        extra: Mapping[str, Filter],
        language: int | None,
    ) -> AsyncIterator[Page]:
        if "id" in extra:
            raise ValueError("filters may not constrain 'id' in an id walk")
        while True:
            page = await self._page(
                resource,
                filters={**extra, "id": Filter.gt(after)},
                sort=("id_ASC",),
                page_size=page_size,
                display=display,
                language=language,
                position_field=None,
            )
            if page.records or page.failed:
                yield page
            if page.size < page_size:
                return
            last = max(page.ids)
            if last <= after:
                self._log.warning("prestashop.id_walk_stalled", resource=resource, after=after)
                return
            after = last

    async def sweep(
        self,
        resource: str,
        fields: tuple[str, ...],
        *,
        page_size: int,
        filters: Mapping[str, Filter] | None = None,
        language: int | None = None,
    ) -> AsyncIterator[Page]:
        """Every row with a few fields, by id: ``filter[id]=>[last]&sort=[id_ASC]&display=[id,…]&limit=0,N``.

        For resources without a change marker (combinations, stock_availables…) and for hard-delete detection.
        ``display=[…]`` still makes PrestaShop load every object: keep ``page_size`` moderate.
        """
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        display = _with_fields(tuple(fields) or ("id",), ("id",))
        async for page in self._id_walk(resource, 0, page_size, display, dict(filters or {}), language):
            yield page

    # ------------------------------------------------------------------------------------ images, api root

    async def image_ids(self, product_id: int) -> list[int]:
        """The image ids of a product (``GET /api/images/products/{id}``); ``[]`` when it has none.

        This listing exists in XML only (WebserviceSpecificManagementImages builds it with the XML node
        renderer; the JSON renderer has no shape for it), so it is always requested as XML. A product without
        images, or an unknown product, answers 404 with an empty body.
        """
        if isinstance(product_id, bool) or not isinstance(product_id, int) or product_id < 1:
            raise ValueError(f"product id must be a positive int, not {product_id!r}")
        where = self._where("images", product_id)
        try:
            root = await self._request(
                f"/images/products/{product_id}", self._common("xml", None), expected="xml", where=where
            )
        except NotFound:
            return []
        return psxml.image_ids(root)

    async def image(self, product_id: int, image_id: int) -> bytes:
        """The original image file (``GET /api/images/products/{id}/{image_id}``); NotFound when gone."""
        for name, value in (("product id", product_id), ("image id", image_id)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        where = self._where("images", f"{product_id}/{image_id}")
        body: bytes = await self._request(
            f"/images/products/{product_id}/{image_id}",
            self._common("xml", None),
            expected="binary",
            where=where,
        )
        return body

    async def permissions(self) -> dict[str, set[str]]:
        """Which resources this key may use and with which methods: ``{"products": {"GET", "HEAD"}, …}``.

        Read from ``GET /api/`` in XML: the JSON output of the API root lists resource names only, the XML one
        carries ``get``/``put``/``post``/``delete``/``head`` attributes per resource.
        """
        where = self._where("")
        root = await self._request("/", self._common("xml", None), expected="xml", where=where)
        return psxml.permissions(root)


# ------------------------------------------------------------------------------------------------ helpers


def _segment(resource: str) -> str:
    if not _NAME.match(resource):
        raise ValueError(f"{resource!r} is not a resource name")
    return resource


def _with_fields(display: Display, needed: tuple[str, ...]) -> Display:
    if display is None or display == "full":
        return display
    return tuple(dict.fromkeys((*needed, *display)))


def _since_text(since: tuple[str, int] | None) -> str | None:
    """The date of a stored position as ``YYYY-MM-DD HH:MM:SS`` (a date alone is midnight); ``None`` for no
    position, an empty or a zero date."""
    if since is None:
        return None
    text = values.as_date(since[0], "since")
    if text is None:
        return None
    return text if len(text) == 19 else text + " 00:00:00"


def _is_datetime(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        return values.as_date(text) is not None and len(text.strip()) == 19
    except ValueError:
        return False


def _position(records: Sequence[Mapping[str, Any]], position_field: str | None) -> tuple[str, int] | None:
    """The keyset position of the last record: ``(its change field text, its id)``."""
    for record in reversed(records):
        try:
            record_id = values.as_int(record.get("id"), "id")
        except ValueError:
            continue
        if position_field is None:
            return ("", record_id)
        raw = record.get(position_field)
        if _is_datetime(raw):
            return (str(raw).strip(), record_id)
        if isinstance(raw, str) and raw.strip() in values.ZERO_DATES:
            return (ZERO_DATE, record_id)
    return None
