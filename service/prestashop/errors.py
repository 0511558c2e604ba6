"""PrestaShop answers -> ps2doli's error family: the one table (see ``service/errors.py``).

:func:`classify` maps an HTTP status + headers + body to a :class:`~service.errors.SyncError` (or ``None`` for
a good answer), in the spirit of singer-sdk's ``validate_response`` and Airbyte's error-mapping table;
:func:`transport_error` does the same for connection errors and time-outs. :func:`check` is what the client
calls: it raises the classified error or returns the parsed document, so a good body is parsed once.

The table (codes are PrestaShop's webservice error codes, WebserviceRequest.php; docs/prestashop-client.md):

- 2xx whose body parses -> ``None``; 2xx with an HTML page or a cut/invalid body -> :class:`BadResponse`
  quoting the first bytes (a proxy page, PHP output before the JSON, a half-written answer); 2xx XML although
  JSON was asked -> :class:`ConfigError` (a shop without JSON output: set ``output_format = "xml"``).
- 3xx -> :class:`ConfigError` (the URL redirects; redirects are not followed, so the key never goes
  elsewhere).
- 401 without an error body -> :class:`ConfigError` "no key reached the shop" (the Authorization header is
  lost before PHP: PS_WEBSERVICE_CGI_HOST / server configuration); 401 with codes 16/17/18/20/21/26 ->
  :class:`ConfigError` naming the codes and messages.
- 403 (code 132: key not allowed on this shop; or a firewall page) -> :class:`ConfigError`.
- 404 with an empty body or codes 87/131 -> :class:`NotFound` (131: the object exists, not in this shop);
  code 999 (unknown ``id_shop``) -> :class:`ConfigError`; an HTML 404 without the webservice's headers ->
  :class:`ConfigError` (no webservice at ``{url}/api``: URL, rewriting).
- 400 code 27 (resource unknown to this version/install) -> :class:`ConfigError`; codes 32/34/35/38 (a field
  this version does not know: a version difference, or a ps2doli bug - the message says so) and codes
  28/29/30/31/33/36/37/39 (malformed request: a ps2doli bug) -> :class:`PermanentError`; code 57 (image id) ->
  :class:`NotFound`; other 4xx -> :class:`PermanentError`.
- 405 (codes 23/25/101: the key lacks the method on the resource) -> :class:`ConfigError`.
- 429 -> :class:`TransientError` with ``retry_after`` from Retry-After.
- 500 with a PHP error body (codes 2-15) -> :class:`ShopPhpError` (transient; one bad record breaks a page,
  the client falls back to reading the page record by record); 500 empty/HTML (fatal PHP error) ->
  :class:`ShopPhpError` with ``fatal=True``; code 999 (``id_group_shop`` without shops) ->
  :class:`ConfigError`; codes 47/59 (image file) -> :class:`PermanentError`.
- 503 code 22 (webservice disabled in the back office) -> :class:`ConfigError`; other 5xx ->
  :class:`TransientError`.
- connection error / time-out -> :class:`TransientError` (a cut body: :class:`BadResponse`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp

from service.errors import (
    BadResponse,
    ConfigError,
    NotFound,
    PermanentError,
    SyncError,
    TransientError,
    Where,
    first_bytes,
    header,
    retry_after_seconds,
)
from service.prestashop import xml as psxml

Expected = Literal["json", "xml", "binary"]

CGI_HINT = (
    "no key reached the shop (check the key, and that the Authorization header reaches PHP: with PHP as "
    "CGI/FPM enable PS_WEBSERVICE_CGI_HOST or pass the header in the web server configuration)"
)
_AUTH_CODES = {16, 17, 18, 20, 21, 26}
_VERSION_FIELD_CODES = {32, 34, 35, 38}
_SYNTAX_CODES = {28, 29, 30, 31, 33, 36, 37, 39}
_PHP_ERROR_CODES = set(range(2, 16))
_WEBSERVICE_HEADERS = ("psws-version", "x-powered-by", "execution-time")


class ShopPhpError(TransientError):
    """A PHP error inside the shop turned the answer into a 500.

    With an error body (``[PHP Notice #8] …``, codes 2-15) it is usually one record whose getter raises a
    notice: the whole page fails, reading the page record by record lets the good ones through. ``fatal`` is
    set for a 500 with an empty or HTML body (a fatal error: memory, time limit, a crash).
    """

    def __init__(
        self,
        message: str,
        *,
        where: Where | None = None,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(message, where=where, status=status, body=body, retry_after=retry_after)
        self.fatal = fatal

    def at(self, **where: str) -> SyncError:
        clone = super().at(**where)
        if isinstance(clone, ShopPhpError):
            clone.fatal = self.fatal
        return clone


class RecordReadError(SyncError):
    """One record could not be read even on its own; the pass goes on and reports it with its id.

    ``where.record_id`` holds the id; ``cause`` the error of the last attempt.
    """

    def __init__(
        self,
        message: str,
        *,
        where: Where | None = None,
        status: int | None = None,
        body: str = "",
        cause: SyncError | None = None,
    ) -> None:
        super().__init__(message, where=where, status=status, body=body)
        self.cause = cause

    @property
    def record_id(self) -> int:
        record_id = self.where.record_id
        return int(record_id) if re.fullmatch(r"[0-9]{1,18}", record_id) else 0

    def at(self, **where: str) -> SyncError:
        clone = super().at(**where)
        if isinstance(clone, RecordReadError):
            clone.cause = self.cause
        return clone


# ----------------------------------------------------------------------------------------------- bodies


def error_entries(body: bytes) -> list[tuple[int | None, str]]:
    """The ``(code, message)`` pairs of a PrestaShop error body, JSON or XML; ``[]`` when it is not one."""
    text = body.strip()
    if not text:
        return []
    if text[:1] == b"{":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return []
        errors = data.get("errors") if isinstance(data, dict) else None
        if not isinstance(errors, list):
            return []
        out: list[tuple[int | None, str]] = []
        for entry in errors:
            if isinstance(entry, dict):
                out.append((_code(entry.get("code")), str(entry.get("message") or "")))
        return out
    if text[:1] == b"<":
        try:
            root = psxml.parse_document(text)
        except BadResponse:
            return []
        node = root.find("errors")
        if node is None:
            return []
        return [(_code(e["code"]), str(e["message"])) for e in psxml.errors_of(node)]
    return []


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        return int(value.strip())
    return None


def _describe(entries: list[tuple[int | None, str]], limit: int = 3) -> str:
    parts = [
        f"code {code}: {message[:200]}" if code is not None else message[:200] for code, message in entries
    ]
    more = f" (+{len(parts) - limit} more)" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def _looks_html(body: bytes) -> bool:
    head = body.lstrip()[:200].lower()
    return head.startswith((b"<!doctype html", b"<html", b"<br", b"<b>", b"<head", b"<body", b"<p>", b"<h1"))


# ------------------------------------------------------------------------------------------- the table


def check(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    expected: Expected,
    where: Where,
) -> Any:
    """Raise the classified error for this answer, or return the parsed document.

    The parsed document is the decoded JSON (``expected="json"``), the ``<prestashop>`` root element
    (``expected="xml"``) or the body itself (``expected="binary"``).
    """
    if 200 <= status < 300:
        return _decode_ok(status, headers, body, expected=expected, where=where)
    raise _classify_failure(status, headers, body, where=where)


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    expected: Expected,
    where: Where,
) -> SyncError | None:
    """Status + headers + body -> the error ps2doli decides on, or ``None`` for a good answer."""
    try:
        check(status, headers, body, expected=expected, where=where)
    except SyncError as error:
        return error
    return None


def transport_error(exc: BaseException, *, where: Where) -> TransientError:
    """A connection error or time-out (aiohttp.ClientError, asyncio.TimeoutError, OSError) -> TransientError.

    Only the exception type and its text are kept (never the request headers aiohttp may carry).
    """
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return TransientError("the shop did not answer in time (time-out)", where=where)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return BadResponse(f"the shop's answer was cut ({type(exc).__name__}: {str(exc)[:160]})", where=where)
    if isinstance(exc, aiohttp.ClientSSLError):
        return TransientError(
            f"TLS error talking to the shop ({type(exc).__name__}: {str(exc)[:160]}); if the shop uses a "
            "self-signed certificate set verify_tls = false",
            where=where,
        )
    return TransientError(f"cannot reach the shop ({type(exc).__name__}: {str(exc)[:200]})", where=where)


def _decode_ok(
    status: int, headers: Mapping[str, str], body: bytes, *, expected: Expected, where: Where
) -> Any:
    excerpt = first_bytes(body)
    if expected == "binary":
        content_type = header(headers, "content-type").lower()
        if not body or content_type.startswith(("text/", "application/json", "application/xml")):
            raise BadResponse(
                f"the shop sent {content_type or 'no content type'} instead of an image; "
                f"first bytes: {excerpt!r}",
                where=where,
                status=status,
                body=excerpt,
            )
        return body
    if not body.strip():
        raise BadResponse(f"the shop sent an empty {expected.upper()} body", where=where, status=status)
    if _looks_html(body):
        raise BadResponse(
            f"the shop sent an HTML page instead of {expected.upper()} (a proxy or maintenance page, or PHP "
            f"output before the answer); first bytes: {excerpt!r}",
            where=where,
            status=status,
            body=excerpt,
        )
    if expected == "json":
        stripped = body.lstrip()
        if stripped.startswith(b"<?xml") or stripped.startswith(b"<prestashop"):
            raise ConfigError(
                "the shop answered XML although JSON was asked (output_format=JSON): this PrestaShop has no "
                'JSON output; set output_format = "xml" for this shop',
                where=where,
                status=status,
                body=excerpt,
            )
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise BadResponse(
                f"the shop sent invalid or truncated JSON ({str(exc)[:80]}); first bytes: {excerpt!r}",
                where=where,
                status=status,
                body=excerpt,
            ) from None
    root = psxml.parse_document(body, where=where)
    return root


def _classify_failure(status: int, headers: Mapping[str, str], body: bytes, *, where: Where) -> SyncError:
    entries = error_entries(body)
    codes = {code for code, _ in entries if code is not None}
    described = _describe(entries)
    excerpt = first_bytes(body)
    version = header(headers, "psws-version")
    from_webservice = any(header(headers, name) for name in _WEBSERVICE_HEADERS)

    def make(cls: type[SyncError], message: str) -> SyncError:
        return cls(message, where=where, status=status, body=excerpt)

    if 300 <= status < 400:
        location = header(headers, "location")
        return make(
            ConfigError,
            f"the shop redirects to {location[:200] or 'another address'}; set the shop url to the final "
            "address (ps2doli does not follow redirects, so the key is never sent elsewhere)",
        )
    if status == 401:
        if not entries:
            return make(ConfigError, CGI_HINT)
        resource = f" for resource {where.resource}" if where.resource else ""
        if 26 in codes:
            hint = f"the key has no permission{resource} (give it GET in Advanced parameters > Webservice)"
        elif codes & {20, 21}:
            hint = "the key is not active or has no permission (check it in Advanced parameters > Webservice)"
        elif codes & {16, 17, 18}:
            hint = "the key is missing, empty or not 32 characters long"
        else:
            hint = "the shop refused the key"
        return make(ConfigError, f"{hint}; the shop says: {described}")
    if status == 403:
        if 132 in codes:
            return make(
                ConfigError,
                f"the key is not allowed on this shop (id_shop); the shop says: {described}",
            )
        return make(
            ConfigError,
            f"the shop (or a firewall in front of it) refuses the request (403); first bytes: {excerpt!r}",
        )
    if status == 404:
        if 999 in codes:
            return make(ConfigError, f"unknown id_shop in the settings; the shop says: {described}")
        if not body.strip() or codes & {87, 131}:
            return make(NotFound, f"not found{': ' + described if described else ''}")
        if entries:
            return make(NotFound, f"not found: {described}")
        if from_webservice:
            return make(NotFound, f"not found; first bytes: {excerpt!r}")
        return make(
            ConfigError,
            "no PrestaShop webservice answers at this address (a 404 page that is not the webservice's): "
            "check the shop url, that the webservice is enabled and URL rewriting for /api; "
            f"first bytes: {excerpt!r}",
        )
    if status == 405:
        return make(
            ConfigError,
            f"the key may not use this method{' on ' + where.resource if where.resource else ''}; "
            f"the shop says: {described or excerpt}",
        )
    if status == 429:
        error = TransientError(
            "the shop is rate-limiting ps2doli (429)",
            where=where,
            status=status,
            body=excerpt,
            retry_after=retry_after_seconds(header(headers, "retry-after")),
        )
        return error
    if 400 <= status < 500:
        if 27 in codes:
            return make(
                ConfigError,
                f"this PrestaShop{' ' + version if version else ''} does not have the resource "
                f"{where.resource or '(unknown)'} (a version difference or a disabled module); disable it "
                f"in the settings. The shop says: {described[:300]}",
            )
        if 57 in codes:
            return make(NotFound, f"image not found: {described}")
        if codes & _VERSION_FIELD_CODES:
            return make(
                PermanentError,
                f"this PrestaShop{' ' + version if version else ''} does not know a field ps2doli asked for "
                "(a version difference if the field exists in other versions, otherwise a ps2doli bug; "
                f"a date filter without date=1 is always a ps2doli bug). The shop says: {described[:400]}",
            )
        if codes & _SYNTAX_CODES:
            return make(
                PermanentError,
                f"ps2doli sent a malformed request (a ps2doli bug). The shop says: {described}",
            )
        return make(PermanentError, f"the shop refused the request ({status}): {described or excerpt}")
    if status == 500:
        if 999 in codes:
            return make(
                ConfigError, f"the shop group in the settings has no shops; the shop says: {described}"
            )
        if codes & {47, 59}:
            return make(PermanentError, f"the image file is missing or unreadable on the shop: {described}")
        if codes & _PHP_ERROR_CODES or any(message.startswith("[PHP") for _, message in entries):
            return ShopPhpError(
                f"a PHP error in the shop broke this answer (often one bad record): {described}",
                where=where,
                status=status,
                body=excerpt,
            )
        if entries:
            return make(TransientError, f"the shop failed (500): {described}")
        return ShopPhpError(
            f"the shop failed with a fatal error (500, no webservice error body); first bytes: {excerpt!r}",
            where=where,
            status=status,
            body=excerpt,
            fatal=True,
        )
    if status == 503 and 22 in codes:
        return make(ConfigError, f"the webservice is disabled in the shop's back office: {described}")
    if 500 <= status < 600:
        return TransientError(
            f"the shop or a proxy failed ({status}){': ' + described if described else ''}",
            where=where,
            status=status,
            body=excerpt,
            retry_after=retry_after_seconds(header(headers, "retry-after")),
        )
    return make(BadResponse, f"unexpected HTTP status {status}; first bytes: {excerpt!r}")
