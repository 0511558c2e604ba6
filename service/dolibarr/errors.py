"""How a Dolibarr REST answer becomes one error of :mod:`service.errors` (or success).

One table, read top to bottom, first match wins (in the spirit of singer-sdk's ``validate_response`` and
Airbyte's error-mapping table). :func:`classify` is the only entry point; :data:`RULES` is the table, so the
documentation (``docs/dolibarr-rest.md``) and the tests can walk it.

Every rule was written against an answer captured from Dolibarr 20.0.2 (``shared/reference/dolibarr``):

- 401 bad key / no key -> :class:`ConfigError` (the bad-key answer comes after a ~1 s delay: nothing to do).
- 403 HTML page of the SQL/script injection filter -> :class:`PermanentError` naming the forbidden character.
- 404 JSON -> :class:`NotFound` (a list answering 404 "Thirdparties not found" means "none": the caller
  decides).
- 400 JSON -> :class:`PermanentError` with Dolibarr's message.
- 500 ``"0": "ErrorProductAlreadyExists"`` -> :class:`RefAlreadyExists` (the engine picks the next ref).
- 500 ``Duplicate entry ... uk_..._ref`` / ``Duplicate value in a unique field`` / the HTML "technical error"
  page of a numbering race (even behind a lying ``Content-Encoding: gzip``) -> :class:`TransientError`.
- ``DolibarrHasDetectedError`` HTML (database down) -> :class:`TransientError`, never echoing host or user.
- 503 "Error when fetching user api_key :" (the key's user could not be read: the database went away while the
  request started; api_access.class.php) -> :class:`TransientError`, whatever the method: the call never ran.
  "... : More than 1 user with this apikey" -> :class:`ConfigError`.
- DELETE of a document line answered 405 ``ErrorLineIDDoesNotMatchWithObjectID`` -> :class:`NotFound`: the line
  is gone already (a delete repeated after its answer was lost).
- 500 JSON error naming the call but no reason ("Error when validating Invoice:"), or "Failed to move file into"
  (an upload whose file or index could not be stored) -> :class:`TransientError` (an idempotent action, an
  upload) or :class:`AmbiguousWrite` (a create): seen while Dolibarr's database stopped; not a refusal.
- 501 unknown route -> :class:`ConfigError` naming the route (module off or Dolibarr too old).
- 503 stock movement of quantity 0 -> :class:`PermanentError` (the client never sends 0 anyway).
- 409 "probably used", or a DELETE refused with ``ErrorRecordHasChildren`` -> :class:`ObjectInUse` (deactivate
  instead).
- 304 -> success (validate/close/settodraft: already in that state).
- 429 (``Retry-After``), other 5xx, timeouts, resets -> :class:`TransientError`; but a non-idempotent write
  (POST) that gets a timeout, a reset or an unexplained 5xx -> :class:`AmbiguousWrite`.
- 2xx whose body is not JSON -> :class:`BadResponse` quoting the first bytes (:class:`AmbiguousWrite` on a
  non-idempotent write: PHP may have printed a warning *after* storing the object).

Messages never quote an API key (:func:`redact`), the database host or user, or the server's technical page.
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from service.errors import (
    AmbiguousWrite,
    BadResponse,
    ConfigError,
    NotFound,
    PermanentError,
    SyncError,
    TransientError,
    Where,
    first_bytes,
    header,
    redact,
    retry_after_seconds,
)

__all__ = [
    "REF_TAKEN",
    "RULES",
    "Answer",
    "CategoryAlreadyExists",
    "DatabaseBusy",
    "ObjectInUse",
    "RefAlreadyExists",
    "Rule",
    "classify",
    "dolibarr_message",
    "read_body",
    "redact",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class RefAlreadyExists(PermanentError):
    """Dolibarr refused a create because the ``ref`` is taken (``ErrorProductAlreadyExists``): pick another
    one."""


class DatabaseBusy(TransientError):
    """Dolibarr's database gave up on a conflict (deadlock, lock wait timeout): the transaction was rolled back,
    nothing of the request was stored. Idempotent calls are retried by the client; a create is retried by the
    engine after a ``ref_ext`` lookup; the client lowers its concurrency (``limit.py``)."""


class CategoryAlreadyExists(PermanentError):
    """A category with this label already exists under the same parent (``CategoryExistsAtSameLevel``)."""


class ObjectInUse(PermanentError):
    """Dolibarr will not delete the object (409 "probably used"): deactivate it instead."""


# ------------------------------------------------------------------------------------------- body helpers

_GZIP_MAGIC = b"\x1f\x8b"


def read_body(raw: bytes, headers: Mapping[str, str]) -> bytes:
    """The body as Dolibarr meant it, read from the raw bytes (the session never auto-decompresses).

    ``Content-Encoding: gzip`` is believed only when the bytes really are gzip. Dolibarr 20.0.2's technical
    error page breaks that promise: HTML first, then a gzip member holding the JSON error. Then the HTML is
    kept as is and the embedded gzip member, when it inflates, is appended after a newline so both can be
    read.
    """
    encoding = header(headers, "Content-Encoding").lower()
    if "gzip" not in encoding or not raw:
        return raw
    if raw.startswith(_GZIP_MAGIC):
        inflated = _gunzip(raw)
        return raw if inflated is None else inflated
    at = raw.find(_GZIP_MAGIC)
    if at > 0:
        inflated = _gunzip(raw[at:])
        if inflated is not None:
            return raw[:at].rstrip(b"\r\n") + b"\n" + inflated
    return raw


def _gunzip(data: bytes) -> bytes | None:
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return inflater.decompress(data) + inflater.flush()
    except zlib.error:
        return None


# ------------------------------------------------------------------------------------------------ answers


@dataclass(frozen=True)
class Answer:
    """Everything one rule may look at. ``status`` is None when no HTTP answer came (``error`` says why)."""

    method: str
    status: int | None
    headers: Mapping[str, str]
    body: bytes
    where: Where
    route: str
    idempotent: bool
    error: BaseException | None = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def data(self) -> Any:
        """The parsed JSON body, or None when the body is not JSON."""
        return _json(self.body)

    @property
    def is_json(self) -> bool:
        return _json_ok(self.body)

    @property
    def restler_error(self) -> Mapping[str, Any] | None:
        """Dolibarr's ``{"error": {"code": ..., "message": ...}, "0": detail...}`` when that is the body."""
        data = self.data
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return data
        return None

    @property
    def message(self) -> str:
        return dolibarr_message(self.body)

    @property
    def sends(self) -> str:
        return f"{self.method} {self.route}" if self.route else self.method


def _json(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _json_ok(body: bytes) -> bool:
    if not body.strip():
        return False
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


_HTTP_PREFIX = re.compile(
    r"^(Bad Request|Unauthorized|Forbidden|Not Found|Method Not Allowed|Conflict|Internal Server Error|"
    r"Service Unavailable|Not Implemented|Not Modified|Too Many Requests)\s*:\s*",
    re.IGNORECASE,
)


def _numbered_details(data: Mapping[str, Any]) -> list[Any]:
    """The ``"0"``, ``"1"``... details of a Restler error body, as sent (``null`` included). Restler puts the
    object's errors under "error" ("0": "ErrorBarCodeAlreadyUsed", captured); older answers carried them at the
    top level."""
    return [v for k, v in [*data["error"].items(), *data.items()] if str(k).isdigit()]


def dolibarr_message(body: bytes) -> str:
    """Dolibarr's own words from a Restler error body (``error.message`` plus the ``"0"``, ``"1"``...
    details), without the HTTP reason prefix. Empty when the body is not such an error."""
    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return ""
    message = str(data["error"].get("message") or "").strip()
    message = _HTTP_PREFIX.sub("", message)
    details = [str(v).strip() for v in _numbered_details(data) if v is not None and str(v).strip()]
    details = [d for d in details if d not in message]
    if details:
        message = f"{message}: {'; '.join(details)}" if message else "; ".join(details)
    return message


# --------------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """One line of the table: when ``matches`` says so, ``build`` gives the error (None = success)."""

    name: str
    matches: Callable[[Answer], bool]
    build: Callable[[Answer], SyncError | None]


_NUMBERING_RACE = re.compile(
    r"Duplicate entry .{0,200}? for key .{0,10}uk_\w*ref|Duplicate value in a unique field|"
    r"DB_ERROR_RECORD_ALREADY_EXISTS",
    re.IGNORECASE | re.DOTALL,
)
# two saves of one object's extrafields at once: insertExtraFields deletes then inserts its row, and the second
# insert meets the first (real 20.0.2, PUT /products/{id} after a lost state file: uk_product_extrafields)
_EXTRAFIELDS_RACE = r"Duplicate entry .{0,200}? for key .{0,10}uk_\w*_extrafields"
# MariaDB's words for a connection lost or refused mid-request (stopped, restarted, overloaded): the transaction
# the request was in never committed (REST and SOAP alike)
DB_CONNECTION_LOST = (
    r"server has gone away|Lost connection to|Too many connections|Server shutdown in progress|"
    r"Connection was killed|Can't connect to (local )?(MySQL|MariaDB) server"
)
_DB_TRANSIENT = re.compile(
    r"Deadlock found|Lock wait timeout|" + DB_CONNECTION_LOST + "|" + _EXTRAFIELDS_RACE,
    re.IGNORECASE,
)
# the conflicts after which InnoDB rolled the whole transaction back
_DB_CONFLICT = re.compile(r"Deadlock found|Lock wait timeout|" + _EXTRAFIELDS_RACE, re.IGNORECASE | re.DOTALL)
_TECHNICAL_PAGE = re.compile(r"Dolibarr has detected a technical error", re.IGNORECASE)
_DB_DOWN = re.compile(r"DolibarrHasDetectedError|Failed to connect to (the )?database", re.IGNORECASE)
_INJECTION = re.compile(r"SQL or Script injection protection", re.IGNORECASE)
_INJECTION_TYPE = re.compile(r"analyseVarsForSqlAndScriptsInjection type=(\d)")
_QTY_ZERO = re.compile(r"quantity of 0", re.IGNORECASE)
# the ref Dolibarr refuses because another object holds it (REST and SOAP alike)
REF_TAKEN = re.compile(r"ErrorProductAlreadyExists|ErrorRefAlreadyExists|ErrorRefAlreadyUsed")
# the language key when Dolibarr has not loaded its categories translations, else the translated sentence
# ("Impossible to add the tag/category X : This category already exists with this ref")
_CATEGORY_EXISTS = re.compile(
    r"CategoryExistsAtSameLevel|category already exists (with this ref|at this level)|"
    r"cat[ée]gorie existe d[ée]j[àa]",
    re.IGNORECASE,
)
_NO_KEY = re.compile(r"No parameter 'HTTP_DOLAPIKEY'|no parameter DOLAPIKEY", re.IGNORECASE)
_PERMISSION = re.compile(
    r"^(Forbidden)?\s*$|Access not allowed for login|Insuf+i[cs]i?[ae]nt rights|only an admin", re.IGNORECASE
)


def _is_transport(a: Answer) -> bool:
    return a.status is None


def _transport(a: Answer) -> SyncError:
    exc = a.error
    kind = type(exc).__name__ if exc is not None else "no answer"
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return ConfigError(
            f"TLS failed for {a.sends} ({kind}): check the certificate, or set dolibarr.verify_tls = false "
            "for a self-signed test server",
            where=a.where,
        )
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        # The TCP connection never opened: nothing was sent, so not even a POST can have happened.
        return TransientError(f"cannot connect to Dolibarr for {a.sends} ({kind})", where=a.where)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        what = f"no answer from Dolibarr within the timeout for {a.sends}"
    else:
        what = f"the connection to Dolibarr broke during {a.sends} ({kind})"
    if not a.idempotent:
        return AmbiguousWrite(
            f"{what}: the write may or may not have been stored; "
            "look the object up by ref_ext before retrying",
            where=a.where,
        )
    return TransientError(what, where=a.where)


def _db_down(a: Answer) -> bool:
    return not a.is_json and bool(_DB_DOWN.search(a.text[:4000]))


def _db_down_error(a: Answer) -> SyncError:
    # The page names the database host and user: never quote it.
    return TransientError(
        f"Dolibarr cannot reach its database ({a.sends} answered Dolibarr's 'DolibarrHasDetectedError' "
        "page); check the database server behind Dolibarr",
        where=a.where,
        status=a.status,
    )


_KEY_LOOKUP = re.compile(r"Error when fetching user api_key", re.IGNORECASE)


def _key_lookup_failed(a: Answer) -> bool:
    return a.status is not None and a.status >= 500 and bool(_KEY_LOOKUP.search(a.text[:4000]))


def _key_lookup_error(a: Answer) -> SyncError:
    if "more than 1 user" in a.text.lower():
        return ConfigError(
            "Dolibarr found more than one user with this API key: give the key's user a key of its own "
            "(dolibarr.api_key)",
            where=a.where,
        )
    # api_access.class.php could not read the key's user: its database went away (or was coming back) as the
    # request started. The call itself never ran, so even a create is safe to send again.
    return TransientError(
        f"Dolibarr could not read the API key's user from its database ({a.sends} answered HTTP {a.status} "
        "'Error when fetching user api_key'); nothing was done, check the database server behind Dolibarr",
        where=a.where,
        status=a.status,
    )


_FILE_NOT_STORED = re.compile(r"Failed to move file into", re.IGNORECASE)


def _no_reason(a: Answer) -> bool:
    """A 500 JSON error whose message names the call and no reason ("Error when validating Invoice:"): Dolibarr's
    object error was empty, as when its database connection went away in the middle of the call. (A 503 without
    a reason is a refusal: a service's stock movement.)"""
    error = a.restler_error
    if a.status != 500 or error is None:
        return False
    # RestException(500, "Error creating invoice", [$object->error, ...$object->errors]) with all of them empty:
    # {"error": {"code": 500, "message": "...: Error creating invoice", "0": null}} (real 20.0.2, MariaDB stopped)
    numbered = _numbered_details(error)
    no_detail = bool(numbered) and all(v is None or not str(v).strip() for v in numbered)
    return a.message.rstrip().endswith(":") or no_detail or bool(_FILE_NOT_STORED.search(a.message))


def _no_reason_error(a: Answer) -> SyncError:
    text = (
        f"Dolibarr failed on {a.sends} without a reason ({first_bytes(a.message, 120)}): its database or "
        "storage may have gone away during the call"
    )
    if a.idempotent or _FILE_NOT_STORED.search(a.message):
        # validations, closes and category links are repeatable; an upload replaces the file
        return TransientError(text, where=a.where, status=a.status)
    return AmbiguousWrite(
        f"{text}; look the object up before sending it again", where=a.where, status=a.status
    )


# Facture::deleteLine of a line already deleted: FactureLigne::fetch finds nothing and dol_print_error prints its
# page before the 405 (real 20.0.2: "InvoiceLine with id 1 not found sql=SELECT ... FROM llx_facturedet ...")
_INVOICE_LINE_GONE = re.compile(r"InvoiceLine with id \d+ not found")


def _line_gone(a: Answer) -> bool:
    """DELETE of a document line answered 405 because the line is not on that document, i.e. deleted already:
    an order's ErrorLineIDDoesNotMatchWithObjectID (Commande::deleteLine), an invoice's technical page naming the
    line not found (Facture::deleteLine)."""
    return (
        a.method == "DELETE"
        and "/lines/" in a.route
        and a.status in (404, 405)
        and (
            "ErrorLineIDDoesNotMatchWithObjectID" in a.text or bool(_INVOICE_LINE_GONE.search(a.text[:4000]))
        )
    )


def _line_gone_error(a: Answer) -> SyncError:
    return NotFound(f"{a.sends}: the line is no longer on the document (deleted already)", where=a.where)


def _status(*codes: int) -> Callable[[Answer], bool]:
    return lambda a: a.status in codes


def _already_there(a: Answer) -> None:
    return None


def _unauthorized(a: Answer) -> SyncError:
    if _NO_KEY.search(a.message or a.text):
        why = "no DOLAPIKEY header reached Dolibarr (a proxy may drop it)"
    else:
        why = (
            "Dolibarr refused the API key: check dolibarr.api_key (the key's user must exist, be enabled, "
            "and hold this key)"
        )
    return ConfigError(f"{why} [{a.sends}]", where=a.where, status=a.status)


def _injection(a: Answer) -> bool:
    return a.status == 403 and bool(_INJECTION.search(a.text))


def _injection_error(a: Answer) -> SyncError:
    found = _INJECTION_TYPE.search(a.text)
    part = {"1": "a query parameter", "2": "the URL path", "0": "the body", "3": "a query parameter"}.get(
        found.group(1) if found else "", "the URL"
    )
    return PermanentError(
        f"Dolibarr's SQL/script injection filter refused {a.sends}: {part} held a forbidden character "
        "(':' ';' quotes '<' '>' '(' ')' '{' '}' '$' '%' '#' are refused in URL paths; "
        "ref_ext values never hold colons by contract)",
        where=a.where,
        status=a.status,
    )


def _forbidden(a: Answer) -> SyncError:
    message = a.message
    if _PERMISSION.search(message):
        return ConfigError(
            f"the Dolibarr user behind the API key lacks the permission for {a.sends}"
            + (f" ({message})" if message.strip() and message.strip().lower() != "forbidden" else ""),
            where=a.where,
            status=a.status,
        )
    return PermanentError(
        f"Dolibarr refused {a.sends}: {message}", where=a.where, status=a.status, body=_excerpt(a)
    )


def _not_found(a: Answer) -> SyncError:
    if a.restler_error is None:
        return ConfigError(
            f"{a.sends} answered 404 without Dolibarr's JSON: dolibarr.url must point at .../api/index.php",
            where=a.where,
            status=a.status,
            body=_excerpt(a),
        )
    return NotFound(a.message or "not found", where=a.where, status=a.status)


def _unknown_route(a: Answer) -> SyncError:
    return ConfigError(
        f"Dolibarr does not know the route {a.sends} ({first_bytes(a.message or a.text, 80)}): "
        "the module behind it is disabled, or this Dolibarr is too old",
        where=a.where,
        status=a.status,
    )


def _qty_zero(a: Answer) -> bool:
    return a.status == 503 and bool(_QTY_ZERO.search(a.text))


def _qty_zero_error(a: Answer) -> SyncError:
    return PermanentError(
        "Dolibarr refuses a stock movement of quantity 0 (nothing to move)", where=a.where, status=a.status
    )


def _too_many(a: Answer) -> SyncError:
    return TransientError(
        f"Dolibarr (or a proxy before it) asks to slow down: {a.sends} answered 429",
        where=a.where,
        status=a.status,
        retry_after=retry_after_seconds(header(a.headers, "Retry-After")),
    )


def _ref_exists(a: Answer) -> bool:
    return a.status is not None and a.status >= 400 and bool(REF_TAKEN.search(a.text))


def _ref_exists_error(a: Answer) -> SyncError:
    return RefAlreadyExists(
        f"the ref is already used by another Dolibarr object ({a.message or 'ErrorProductAlreadyExists'})",
        where=a.where,
        status=a.status,
    )


def _category_exists(a: Answer) -> bool:
    # the parsed message too: PHP's json_encode escapes accents (catégorie -> cat\u00e9gorie) in the raw body
    return a.status is not None and a.status >= 400 and bool(_CATEGORY_EXISTS.search(a.text + a.message))


def _category_exists_error(a: Answer) -> SyncError:
    return CategoryAlreadyExists(
        "a category with this label already exists under the same parent", where=a.where, status=a.status
    )


def _numbering_race(a: Answer) -> bool:
    return a.status is not None and a.status >= 500 and bool(_NUMBERING_RACE.search(a.text))


def _numbering_race_error(a: Answer) -> SyncError:
    return TransientError(
        f"Dolibarr handed out the same reference twice during {a.sends} (numbering race between concurrent "
        "requests); nothing was stored: run these one at a time and retry",
        where=a.where,
        status=a.status,
    )


def _db_transient(a: Answer) -> bool:
    # 4xx too: the payment endpoints wrap their work in a transaction and answer 400 with the database's error
    # ("Add payment to bank error : MySQL server has gone away", real 20.0.2, MariaDB stopped mid-sync)
    return a.status is not None and a.status >= 400 and bool(_DB_TRANSIENT.search(a.text))


def _db_transient_error(a: Answer) -> SyncError:
    if _DB_CONFLICT.search(a.text):
        return DatabaseBusy(
            f"Dolibarr's database hit a lock conflict during {a.sends} "
            f"({first_bytes(a.message, 100) or 'deadlock'}); nothing was stored",
            where=a.where,
            status=a.status,
        )
    return TransientError(
        f"Dolibarr's database was busy during {a.sends} "
        f"({first_bytes(a.message, 100) or 'lock or connection'})",
        where=a.where,
        status=a.status,
    )


def _variant_unexplained(a: Answer) -> bool:
    return a.status == 500 and a.message.strip() == "Error creating new product variant"


def _variant_unexplained_error(a: Answer) -> SyncError:
    # ProductCombination::createProductCombination runs in one transaction and says nothing about why it failed;
    # under parallel writes it is a lock conflict (the ref-taken case is checked by the client before posting)
    return DatabaseBusy(
        f"Dolibarr failed {a.sends} without a reason (rolled back; under parallel writes a lock conflict)",
        where=a.where,
        status=a.status,
    )


def _technical_page(a: Answer) -> bool:
    return a.status is not None and bool(_TECHNICAL_PAGE.search(a.text[:2000]))


def _technical_page_error(a: Answer) -> SyncError:
    # The page lists login, OS, PHP version and the failing SQL: describe it, never quote it.
    what = f"Dolibarr failed with its 'technical error' page during {a.sends}"
    if not a.idempotent:
        return AmbiguousWrite(
            f"{what}; the write may or may not have been stored: look the object up by ref_ext",
            where=a.where,
            status=a.status,
        )
    return TransientError(what, where=a.where, status=a.status)


# api_invoices' payment endpoints: RestException(400, "Payment error : " . $paiement->error) after a rollback, and
# the same for "Add payment to bank error : ". The reasons that mean the database failed rather than a refusal:
# none at all (an object's error left empty), or the invoice's rate unread - Paiement::create reads each
# invoice's multicurrency_tx (MultiCurrency::getInvoiceRate) before its first INSERT and answers
# FailedToFoundTheConversionRateForInvoice when that SELECT fails (real 20.0.2, MariaDB stopped during a sync);
# an invoice ps2doli made always has its rate.
_PAYMENT_ROLLED_BACK = re.compile(
    r"(Add payment to bank|Payment) error :\s*(FailedToFoundTheConversionRateForInvoice\s*)?$", re.IGNORECASE
)


def _payment_unexplained(a: Answer) -> bool:
    return a.status == 400 and bool(_PAYMENT_ROLLED_BACK.search(a.message))


def _payment_unexplained_error(a: Answer) -> SyncError:
    return TransientError(
        f"Dolibarr failed {a.sends} without a refusal ({first_bytes(a.message, 100)}: its database went away?); "
        "the payment was rolled back, nothing was stored",
        where=a.where,
        status=a.status,
    )


def _bad_request(a: Answer) -> SyncError:
    return PermanentError(
        f"Dolibarr refused {a.sends}: {a.message or first_bytes(a.text, 160)}",
        where=a.where,
        status=a.status,
        body=_excerpt(a),
    )


def _in_use(a: Answer) -> SyncError:
    return ObjectInUse(
        f"Dolibarr will not do {a.sends}: {a.message or 'the object is in use'}",
        where=a.where,
        status=a.status,
        body=_excerpt(a),
    )


_HAS_CHILDREN = re.compile(r"ErrorRecordHasChildren|ErrorRecordIsUsed|ErrorRecordHasAtLeastOneChildOfType")


def _delete_refused(a: Answer) -> bool:
    # DELETE /thirdparties/{id} of a customer with orders: 500 "Error when deleting thirdparty :
    # ErrorRecordHasChildren" - the same refusal as the 409 "probably used" of products
    return (
        a.method == "DELETE"
        and a.status is not None
        and a.status >= 400
        and bool(_HAS_CHILDREN.search(a.text))
    )


def _server_error_json(a: Answer) -> bool:
    return a.status is not None and a.status >= 500 and a.restler_error is not None


def _server_error_json_build(a: Answer) -> SyncError:
    # Dolibarr answered with its own error after running the call: a write was rolled back, a read may work
    # next time.
    if a.idempotent and a.method == "GET":
        return TransientError(
            f"Dolibarr failed on {a.sends}: {a.message}", where=a.where, status=a.status, body=_excerpt(a)
        )
    return PermanentError(
        f"Dolibarr refused {a.sends}: {a.message}", where=a.where, status=a.status, body=_excerpt(a)
    )


def _server_error(a: Answer) -> bool:
    return a.status is not None and a.status >= 500


def _server_error_build(a: Answer) -> SyncError:
    excerpt = first_bytes(a.text, 80) or "empty"
    what = f"{a.sends} answered HTTP {a.status} without Dolibarr's JSON ({excerpt})"
    if not a.idempotent:
        return AmbiguousWrite(
            f"{what}; the write may or may not have been stored: look the object up by ref_ext",
            where=a.where,
            status=a.status,
        )
    return TransientError(
        what,
        where=a.where,
        status=a.status,
        retry_after=retry_after_seconds(header(a.headers, "Retry-After")),
    )


def _client_error(a: Answer) -> bool:
    return a.status is not None and 400 <= a.status < 500


def _success(a: Answer) -> bool:
    return a.status is not None and 200 <= a.status < 300


def _success_build(a: Answer) -> SyncError | None:
    if a.status == 204 or a.is_json:
        return None
    excerpt = first_bytes(a.body) or "an empty body"
    if not a.idempotent:
        return AmbiguousWrite(
            f"{a.sends} answered HTTP {a.status} with something that is not JSON ({excerpt}); "
            "the write may have been stored: look the object up by ref_ext",
            where=a.where,
            status=a.status,
        )
    return BadResponse(
        f"{a.sends} answered HTTP {a.status} with something that is not JSON: {excerpt}",
        where=a.where,
        status=a.status,
        body=excerpt,
    )


def _other(a: Answer) -> SyncError:
    return TransientError(f"{a.sends} answered an unexpected HTTP {a.status}", where=a.where, status=a.status)


def _excerpt(a: Answer) -> str:
    return first_bytes(a.message or a.text, 300)


RULES: tuple[Rule, ...] = (
    Rule("transport failure (timeout, reset, refused)", _is_transport, _transport),
    Rule("database down page (DolibarrHasDetectedError)", _db_down, _db_down_error),
    Rule(
        "503 the API key's user could not be read (database going away)",
        _key_lookup_failed,
        _key_lookup_error,
    ),
    Rule("304 already in that state", _status(304), _already_there),
    Rule("401 bad or missing API key", _status(401), _unauthorized),
    Rule("403 injection filter HTML page", _injection, _injection_error),
    Rule("403 permission", _status(403), _forbidden),
    Rule("DELETE of a line no longer on its document", _line_gone, _line_gone_error),
    Rule("404 not found", _status(404), _not_found),
    Rule("501 unknown route", _status(501), _unknown_route),
    Rule("503 stock movement of quantity 0", _qty_zero, _qty_zero_error),
    Rule("429 too many requests", _status(429), _too_many),
    Rule("ref already exists (ErrorProductAlreadyExists)", _ref_exists, _ref_exists_error),
    Rule("category exists at the same level", _category_exists, _category_exists_error),
    Rule("5xx numbering race (duplicate unique ref)", _numbering_race, _numbering_race_error),
    Rule(
        "4xx/5xx database busy or gone (deadlock, lock wait, gone away)", _db_transient, _db_transient_error
    ),
    Rule("500 variant create failed without a reason", _variant_unexplained, _variant_unexplained_error),
    Rule("5xx technical error HTML page", _technical_page, _technical_page_error),
    Rule("409 conflict (object in use)", _status(409), _in_use),
    Rule("delete refused: the record has children (ErrorRecordHasChildren)", _delete_refused, _in_use),
    Rule(
        "400 payment rolled back without a refusal (rate unread, no reason)",
        _payment_unexplained,
        _payment_unexplained_error,
    ),
    Rule("other 4xx (400 validation, 405, ...)", _client_error, _bad_request),
    Rule("500 JSON error without a reason, or a file not stored", _no_reason, _no_reason_error),
    Rule("5xx with Dolibarr's JSON error", _server_error_json, _server_error_json_build),
    Rule("5xx without a classified body", _server_error, _server_error_build),
    Rule("2xx (JSON = success, anything else = bad response)", _success, _success_build),
    Rule("anything else", lambda a: True, _other),
)


def classify(
    method: str,
    status: int | None,
    headers: Mapping[str, str],
    body: bytes,
    where: Where,
    *,
    route: str = "",
    idempotent: bool | None = None,
    error: BaseException | None = None,
) -> SyncError | None:
    """The error a Dolibarr answer means, or None when it means success.

    ``status`` None with ``error`` set describes a request that got no answer (timeout, reset, refused).
    ``idempotent`` defaults from the method (POST is not); action endpoints that Dolibarr makes idempotent
    (validate, close, category links) pass True. ``body`` must already be decoded (:func:`read_body`).
    """
    method = method.upper()
    answer = Answer(
        method=method,
        status=status,
        headers=headers,
        body=body,
        where=where,
        route=route,
        idempotent=(method in IDEMPOTENT_METHODS) if idempotent is None else idempotent,
        error=error,
    )
    for rule in RULES:
        if rule.matches(answer):
            return rule.build(answer)
    return None  # pragma: no cover - the last rule matches everything
