"""How a Dolibarr SOAP answer becomes one error of :mod:`service.errors` (or success).

Dolibarr's SOAP servers (nusoap, ``htdocs/webservices/server_*.php``) answer almost everything with HTTP 200
and put the outcome in a ``result`` structure: ``result_code`` (``OK``, ``NOT_FOUND``, ``KO``...) and
``result_label``. The codes below are the ones the server sources set (``core/lib/ws.lib.php``
``check_authentication`` and each ``server_*.php``); the two captured ones are ``NOT_FOUND`` and
``BAD_VALUE_FOR_SECURITY_KEY`` (``shared/reference/dolibarr/soap``), both with HTTP 200.

Read top to bottom:

- no answer (timeout, reset) -> :class:`TransientError`; on a create -> :class:`AmbiguousWrite`. A connection
  that never opened sent nothing, so it is only transient even for a create.
- HTTP 3xx / 404 / 401 / 403 -> :class:`ConfigError` (wrong ``dolibarr.url``, a redirect to follow by hand,
  a proxy asking for credentials).
- HTTP 200 with Dolibarr's "module WebServices not active" page -> :class:`ConfigError`.
- a SOAP Fault (nusoap refused the envelope before Dolibarr's function ran) -> :class:`PermanentError`, or
  :class:`ConfigError` when the operation does not exist on this Dolibarr.
- HTTP 429 / 5xx / a body that is not the XML envelope -> :class:`TransientError` (:class:`BadResponse` for a
  200 that is not XML); on a create -> :class:`AmbiguousWrite`.
- ``result_code``: ``OK`` -> success, ``NOT_FOUND`` -> :class:`NotFound`, ``BAD_VALUE_FOR_SECURITY_KEY`` /
  ``BAD_CREDENTIALS`` / ``PERMISSION_DENIED`` -> :class:`ConfigError`, a deadlock or lock wait timeout ->
  :class:`DatabaseBusy` (rolled back; the client lowers its concurrency), ``ERROR_FETCH_USER`` and other database
  busy/numbering-race labels -> :class:`TransientError` (Dolibarr rolled back), ``ErrorProductAlreadyExists``
  -> ``RefAlreadyExists``, ``DB_ERROR_NOSUCHFIELD`` / ``DB_ERROR_NOSUCHTABLE`` (the operation's own SQL does not
  fit this database: ``getInvoicesForThirdParty`` on 20.0.2) -> :class:`ConfigError`, anything else (``KO``, ``BAD_PARAMETERS``, ``DUPLICATE_FOUND``, SQL error numbers)
  -> :class:`PermanentError` carrying ``result_label``.

Messages never quote the security key or the password (:func:`redact` runs on every error the client raises).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

import aiohttp

from service.dolibarr.errors import DB_CONNECTION_LOST, REF_TAKEN, DatabaseBusy, RefAlreadyExists
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
    "CREATE_OPERATIONS",
    "fault_error",
    "http_error",
    "non_xml_error",
    "redact",
    "result_error",
    "transport_error",
]

# Operations that create something: after a timeout or a 5xx nobody knows whether the object exists.
CREATE_OPERATIONS = frozenset(
    {"createThirdParty", "createProductOrService", "createOrder", "createInvoice", "createInvoiceFromOrder"}
)

_MODULE_OFF = re.compile(
    r"WarningModuleNotActive|Module\s+WebServices?\s+(is\s+)?not\s+(active|enabled)", re.I
)
_TRANSIENT_LABEL = re.compile(
    r"Deadlock found|Lock wait timeout|" + DB_CONNECTION_LOST + "|"
    r"Duplicate entry .{0,200}? for key .{0,10}uk_\w*ref|Duplicate value in a unique field",
    re.IGNORECASE | re.DOTALL,
)
# the conflicts after which InnoDB rolled the whole transaction back (DatabaseBusy: the client lowers its limit)
_DB_CONFLICT = re.compile(r"Deadlock found|Lock wait timeout", re.IGNORECASE)
_UNKNOWN_OPERATION = re.compile(
    r"not defined in the WSDL|method .{0,80} not defined|Operation .{0,80} not", re.I
)


def _is_write(operation: str) -> bool:
    return operation in CREATE_OPERATIONS


def transport_error(exc: BaseException, operation: str, where: Where) -> SyncError:
    """A request that got no HTTP answer."""
    kind = type(exc).__name__
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return ConfigError(
            f"TLS failed for SOAP {operation} ({kind}): check the certificate, or set "
            "dolibarr.verify_tls = false for a self-signed test server",
            where=where,
        )
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        # The TCP connection never opened: nothing was sent, not even a create can have happened.
        return TransientError(f"cannot connect to Dolibarr for SOAP {operation} ({kind})", where=where)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        what = f"no answer from Dolibarr within the timeout for SOAP {operation}"
    else:
        what = f"the connection to Dolibarr broke during SOAP {operation} ({kind})"
    if _is_write(operation):
        return AmbiguousWrite(
            f"{what}: the object may or may not have been created; look it up by ref_ext before retrying",
            where=where,
        )
    return TransientError(what, where=where)


def http_error(
    status: int, headers: Mapping[str, str], body: bytes, operation: str, where: Where, *, url: str
) -> SyncError | None:
    """The error an HTTP status means before the body is read as an envelope; None = go on and parse it.

    500 is left to the envelope parser when the body looks like XML: nusoap answers SOAP Faults with 500.
    ``url`` is the endpoint without any secret (it never carries one: SOAP puts credentials in the body).
    """
    text = body[:4000].decode("utf-8", "replace")
    if status == 200:
        if _MODULE_OFF.search(text):
            return ConfigError(
                f"Dolibarr answered {url} with 'module not active': enable the module 'Web services (SOAP "
                "server)' in Dolibarr (Home > Setup > Modules) and set its security key",
                where=where,
                status=status,
            )
        return None
    if status == 500 and body.lstrip().startswith(b"<") and b"Envelope" in body[:2000]:
        return None
    if 300 <= status < 400:
        location = next((v for k, v in headers.items() if k.lower() == "location"), "")
        return ConfigError(
            f"{url} redirects (HTTP {status}) to {location or 'another address'}: set dolibarr.url to the final "
            "Dolibarr root (a redirected POST would lose its envelope)",
            where=where,
            status=status,
        )
    if status == 404:
        return ConfigError(
            f"no Dolibarr SOAP server at {url} (HTTP 404): dolibarr.url must be the Dolibarr root (the "
            "address of its login page, without /api/index.php) and the 'Web services (SOAP server)' module "
            "must be enabled",
            where=where,
            status=status,
        )
    if status in (401, 403, 407):
        return ConfigError(
            f"{url} answered HTTP {status} before Dolibarr could read the request: a web server or proxy in "
            "front of Dolibarr requires its own authentication or blocks /webservices/",
            where=where,
            status=status,
            body=first_bytes(body),
        )
    if status == 429:
        return TransientError(
            f"Dolibarr (or a proxy before it) asks to slow down: SOAP {operation} answered 429",
            where=where,
            status=status,
            retry_after=retry_after_seconds(header(headers, "Retry-After")),
        )
    what = f"SOAP {operation} answered HTTP {status} ({first_bytes(body, 80) or 'empty body'})"
    if status >= 500 and _is_write(operation):
        return AmbiguousWrite(
            f"{what}; the object may or may not have been created: look it up by ref_ext before retrying",
            where=where,
            status=status,
        )
    if status >= 500:
        return TransientError(
            what, where=where, status=status, retry_after=retry_after_seconds(header(headers, "Retry-After"))
        )
    return PermanentError(what, where=where, status=status, body=first_bytes(body, 300))


def non_xml_error(status: int, body: bytes, operation: str, where: Where, reason: str) -> SyncError:
    """A body that is not a SOAP envelope (an HTML page, a cut answer, PHP warnings before the XML)."""
    excerpt = first_bytes(body) or "an empty body"
    if _is_write(operation):
        return AmbiguousWrite(
            f"SOAP {operation} answered HTTP {status} with something that is not a SOAP envelope ({reason}: "
            f"{excerpt}); the object may have been created: look it up by ref_ext before retrying",
            where=where,
            status=status,
        )
    return BadResponse(
        f"SOAP {operation} answered HTTP {status} with something that is not a SOAP envelope ({reason}): "
        f"{excerpt}",
        where=where,
        status=status,
        body=excerpt,
    )


def fault_error(faultcode: str, faultstring: str, operation: str, where: Where, status: int) -> SyncError:
    """A SOAP Fault. nusoap raises them while reading the envelope, before Dolibarr's function runs, so
    nothing was written."""
    if _UNKNOWN_OPERATION.search(faultstring):
        return ConfigError(
            f"this Dolibarr does not offer the SOAP operation {operation} ({faultstring}); it is too old or "
            "the webservice file was changed: use the REST backend",
            where=where,
            status=status,
        )
    return PermanentError(
        f"Dolibarr's SOAP server refused {operation}: {faultcode} {faultstring}".strip(),
        where=where,
        status=status,
    )


def result_error(code: str, label: str, operation: str, where: Where) -> SyncError | None:
    """The error a ``result_code`` / ``result_label`` pair means, or None for ``OK``."""
    code = (code or "").strip()
    label = (label or "").strip()
    if code == "OK":
        return None
    if code == "NOT_FOUND":
        return NotFound(label or f"not found ({operation})", where=where)
    if code == "BAD_VALUE_FOR_SECURITY_KEY":
        return ConfigError(
            "Dolibarr refused the webservice security key: dolibarr.api_key must equal the key set in "
            "Dolibarr's Web services module setup (WEBSERVICES_KEY)",
            where=where,
        )
    if code == "BAD_CREDENTIALS":
        return ConfigError(
            "Dolibarr refused the SOAP login: check dolibarr.login and dolibarr.password (the user must "
            "exist, be enabled, and belong to dolibarr.entity)",
            where=where,
        )
    if code == "PERMISSION_DENIED":
        return ConfigError(
            f"the Dolibarr user dolibarr.login lacks the permission for SOAP {operation} ({label or code}): "
            "grant it in Dolibarr (Users & Groups > Permissions)",
            where=where,
        )
    if code == "BAD_PARAMETERS" and "entity" in label.lower():
        return ConfigError(f"Dolibarr refused dolibarr.entity: {label}", where=where)
    if code.startswith("DB_ERROR_NOSUCH"):
        # the operation's own SQL names a column or table this database lacks: Dolibarr 20.0.2's
        # getInvoicesForThirdParty reads llx_facture.total, gone for years. No retry or other record helps.
        return ConfigError(
            f"Dolibarr's SOAP {operation} cannot run on this Dolibarr ({code}: {first_bytes(label, 120)}): "
            "a fault of its webservice code, not of the data",
            where=where,
        )
    if code == "ERROR_FETCH_USER":
        return TransientError(f"Dolibarr failed to read its user table during SOAP {operation}", where=where)
    if REF_TAKEN.search(label):
        return RefAlreadyExists(f"the ref is already used by another Dolibarr object ({label})", where=where)
    if _DB_CONFLICT.search(label):
        return DatabaseBusy(
            f"Dolibarr's database hit a lock conflict during SOAP {operation} ({first_bytes(label, 120)}); "
            "nothing was stored",
            where=where,
        )
    if _TRANSIENT_LABEL.search(label):
        return TransientError(
            f"Dolibarr's database was busy or handed out the same reference twice during SOAP {operation} "
            f"({first_bytes(label, 120)}); nothing was stored",
            where=where,
        )
    detail = f"{code}: {label}" if label else code or "no result code"
    return PermanentError(
        f"Dolibarr refused SOAP {operation}: {detail}", where=where, body=first_bytes(label, 300)
    )
