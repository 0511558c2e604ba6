"""Dolibarr through its SOAP webservices (``/webservices/server_*.php``): the backend for old sites (3.x) that
have no REST API, behind the same :class:`~service.dolibarr.port.DolibarrPort` as the REST client.

How the pieces fit (see ``docs/dolibarr-soap.md``):

- **aiohttp does every HTTP call.** The WSDL of each server is fetched with a GET on
  ``{dolibarr.url}/webservices/server_<name>.php?wsdl`` and every envelope is POSTed to the same address, with
  ``Content-Type: text/xml; charset=utf-8`` and the ``SOAPAction`` the WSDL names. Timeouts, retries, the
  concurrency limit and TLS settings are the ones of the REST client.
- **zeep does the SOAP.** The fetched WSDL bytes (rpc/encoded, nusoap, declared ISO-8859-1) are handed to a
  zeep ``Client`` through :class:`OfflineTransport`, a transport that serves documents from memory and refuses
  any network I/O. zeep builds each envelope (``create_message``) and reads each answer (the operation's
  ``process_reply``). zeep never sends anything. That zeep layer (transport, WSDL loading, envelope parts,
  reading answers) is :mod:`service.dolibarr.soap_envelopes`; this module decides what each port method sends
  and what the answers mean.
- Two nusoap habits are handled before zeep reads an answer: untyped array items (``xsi:type="xsd:"``, which
  zeep silently drops: the captured ``getOrder`` lines and ``getListOfThirdParties`` rows) lose that attribute
  and are read by :func:`element_value`; and an answer is parsed strictly first (zeep's lenient parser would
  "recover" a cut body into partial data).
- Dolibarr answers almost everything with HTTP 200 and a ``result_code``; :mod:`service.dolibarr.soap_errors`
  turns codes, faults, HTTP statuses and transport failures into the typed error family.

What SOAP cannot do raises :class:`~service.errors.ConfigError` naming the REST backend, and
:class:`~service.dolibarr.port.Capabilities` says so up front (no categories, variants, stock, files,
payments).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

import aiohttp
import structlog
import zeep.exceptions
from lxml import etree

from service.dolibarr.charset import storable
from service.dolibarr.errors import DatabaseBusy
from service.dolibarr.limit import AdaptiveLimit
from service.dolibarr.model import (
    CategoryPayload,
    ContactPayload,
    DocumentKind,
    DocumentPayload,
    DocumentStatus,
    LinePayload,
    ObjectKind,
    Payload,
    PaymentPayload,
    ProductPayload,
    Ref,
    ThirdpartyPayload,
)
from service.dolibarr.port import Capabilities, Ids, Part, RemoteDocumentFile, RemoteObject
from service.dolibarr.soap_envelopes import (
    NS,
    PARSER,
    REST_HINT,
    SOAP_ENCODING_SCHEMA,
    SOAP_ENV,
    OfflineTransport,
    Server,
    ZeepClient,
    ZeepSettings,
    element_value,
    fill_call,
    local_name,
    parse_envelope,
    plain,
    serialize_object,
    strip_untyped,
)
from service.dolibarr.soap_errors import (
    fault_error,
    http_error,
    non_xml_error,
    redact,
    result_error,
    transport_error,
)
from service.errors import (
    AmbiguousWrite,
    ConfigError,
    NotFound,
    PermanentError,
    SyncError,
    TransientError,
    Where,
    first_bytes,
)
from service.settings import DolibarrSettings, RetrySettings

__all__ = [
    "SERVERS",
    "SOAP_ENCODING_SCHEMA",
    "DolibarrSoapClient",
    "OfflineTransport",
    "element_value",
    "plain",
    "redact_text",
    "strip_untyped",
]

log = structlog.get_logger("ps2doli.dolibarr.soap")

SOURCE_APPLICATION: Final = "ps2doli"
# the line that carries a document's customer ref (ref_client) on its public note: SOAP cannot store ref_client
CUSTOMER_REF_LABEL: Final = "Customer ref"

# The six servers Dolibarr 20.0.2 serves (shared/reference/dolibarr/soap/operations.json).
SERVERS: Final = ("thirdparty", "productorservice", "order", "invoice", "category", "other")

# Which server and operations serve each kind of object.
_GET_OPERATION: Final[Mapping[str, tuple[str, str, str]]] = {
    # kind: (server, get operation, result part)
    "thirdparty": ("thirdparty", "getThirdParty", "thirdparty"),
    "product": ("productorservice", "getProductOrService", "product"),
    "order": ("order", "getOrder", "order"),
    "invoice": ("invoice", "getInvoice", "invoice"),
    "category": ("category", "getCategory", "categorie"),
}

# Fields a get answers that an update must not send back (read-only, or with side effects such as
# ``stock_real``, which makes updateProductOrService correct the stock).
_PRODUCT_READ_ONLY: Final = frozenset(
    {
        "id",
        "date_creation",
        "date_modification",
        "dir",
        "images",
        "stock_real",
        "stock_pmp",
        "warehouse_ref",
        "price",
        "price_min",
        "price_min_net",
        "import_key",
    }
)
_THIRDPARTY_READ_ONLY: Final = frozenset({"date_creation", "date_modification", "fk_user_author"})
# a thirdparty's own postal address (and phone), kept by an update whose payload has none of them
_ADDRESS_FIELDS: Final = ("address", "zip", "town", "country_code", "phone")

# Operations whose answer never carries a result code: nusoap, given a single output part, takes the whole
# returned array as that part and finds no result_code in it, so validOrder answers an empty <result> on success,
# on failure and even for a wrong key (real 20.0.2). Callers read the object back.
_SILENT_OPERATIONS: Final = frozenset({"validOrder"})

_CENT: Final = Decimal("0.01")
_UNIT: Final = Decimal("0.00000001")

# Document statuses as Dolibarr numbers them.
_ORDER_STATUS: Final[Mapping[int, str]] = {
    -1: "cancelled",
    0: "draft",
    1: "validated",
    2: "shipped",
    3: "closed",
}
_INVOICE_STATUS: Final[Mapping[int, str]] = {0: "draft", 1: "validated", 2: "closed", 3: "cancelled"}


# ------------------------------------------------------------------------------------------------ helpers


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return str(value)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        try:
            return int(float(str(value)))
        except (TypeError, ValueError):
            return default


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def _day(timestamp: int) -> date:
    """A payload date (Unix timestamp) as the calendar day SOAP wants, in this host's time zone (SOAP takes a
    day, not an instant; ps2doli usually runs in the shop's and Dolibarr's zone)."""
    return datetime.fromtimestamp(timestamp).date()


def _line_amounts(line: LinePayload) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """Unit price after the line discount, and the line totals.

    SOAP lines have no discount field Dolibarr reads (createOrder ignores ``remise_percent``; invoice lines do
    not have it), and createInvoice stores the totals it is given as they are, so both are computed here.
    """
    unit = line.subprice
    if line.remise_percent:
        unit = (line.subprice * (Decimal(100) - line.remise_percent) / Decimal(100)).quantize(_UNIT)
    # as calcul_price_total does (Commande::addline recomputes them so; FactureLigne takes them as given): the
    # TTC from the unrounded HT, the VAT what is left (2.00461894 at 20 %: 2.00 + 0.41 = 2.41, not 2.40)
    net = (unit * line.qty).quantize(_CENT, rounding=ROUND_HALF_UP)
    total = (unit * line.qty * (1 + line.tva_tx / Decimal(100))).quantize(_CENT, rounding=ROUND_HALF_UP)
    return unit, net, total - net, total


def _remote(kind: str, data: Mapping[str, Any]) -> RemoteObject:
    status_key = {"product": "status_tosell"}.get(kind, "status")
    return RemoteObject(
        id=_int(data.get("id")),
        ref=_text(data.get("ref")),
        ref_ext=_text(data.get("ref_ext")),
        status=_text(data.get(status_key)),
        raw=dict(data),
    )


def _rest_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """A SOAP document line with the REST names added (``fk_product``, ``subprice``, ``tva_tx``...), all
    amounts as text, so code reading lines does not care which backend answered."""
    out = dict(line)
    out.update(
        {
            "id": _text(line.get("id")),
            "fk_product": _text(line.get("product_id")) or None,
            "product_type": _text(line.get("product_type", line.get("type"))),
            "desc": _text(line.get("desc")),
            "qty": _text(line.get("qty")),
            "subprice": _text(line.get("unitprice")),
            "tva_tx": _text(line.get("vat_rate")),
            "remise_percent": _text(line.get("remise_percent")) or "0",
            "total_ht": _text(line.get("total_net")),
            "total_tva": _text(line.get("total_vat")),
            "total_ttc": _text(line.get("total")),
        }
    )
    return out


def _rest_document(data: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(data)
    out["id"] = _int(data.get("id"))
    out["socid"] = _text(data.get("thirdparty_id"))
    out["statut"] = _text(data.get("status"))
    out["total_ht"] = _text(data.get("total_net"))
    out["total_tva"] = _text(data.get("total_vat"))
    out["total_ttc"] = _text(data.get("total"))
    out["lines"] = [_rest_line(line) for line in (data.get("lines") or []) if isinstance(line, Mapping)]
    return out


# ------------------------------------------------------------------------------------------------ client


class DolibarrSoapClient:
    """:class:`~service.dolibarr.port.DolibarrPort` over Dolibarr's SOAP webservices.

    ``settings.url`` is the Dolibarr root (``https://erp.example.com`` or ``.../dolibarr/htdocs``),
    ``settings.api_key`` the webservice security key (``WEBSERVICES_KEY``), ``login`` / ``password`` a
    Dolibarr user and ``entity`` its entity. ``session`` may be shared; it is closed by :meth:`close` only when
    the client created it.
    """

    def __init__(
        self, settings: DolibarrSettings, retry: RetrySettings, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.settings = settings
        self.retry = retry
        self.root = self._root(settings.url)
        self._session = session
        self._owns_session = session is None
        self._servers: dict[str, Server] = {}
        self._server_locks: dict[str, asyncio.Lock] = {name: asyncio.Lock() for name in SERVERS}
        # dolibarr.max_concurrency at most, fewer while Dolibarr deadlocks (the ps2doli_dolibarr_concurrency gauge)
        self.limit = AdaptiveLimit(settings.max_concurrency)
        self._capabilities: Capabilities | None = None
        # a bulk listing this Dolibarr cannot run (the ConfigError it answered): asked once per process
        self._unlistable: dict[str, ConfigError] = {}
        self._secrets = tuple(s for s in (settings.api_key.reveal(), settings.password.reveal()) if s)
        if not settings.verify_tls:
            log.warning("dolibarr.soap.tls_verification_off", url=self.root)
        host = self.root.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
        if self.root.startswith("http://") and host not in ("127.0.0.1", "localhost", "[::1]"):
            # the security key, the login and the password travel in every envelope
            log.warning("dolibarr.soap.plain_http", url=self.root)

    @staticmethod
    def _root(url: str) -> str:
        root = url.strip().rstrip("/")
        for suffix in ("/api/index.php", "/api", "/webservices"):
            if root.endswith(suffix):
                log.warning("dolibarr.soap.url_trimmed", given=root, suffix=suffix)
                root = root[: -len(suffix)]
        if not root.startswith(("http://", "https://")):
            raise ConfigError(
                f"setting dolibarr.url = {url!r} is not valid: expected http(s)://... (Dolibarr root)"
            )
        return root

    # ------------------------------------------------------------------------------------------ plumbing
    def _auth(self) -> dict[str, str]:
        return {
            "dolibarrkey": self.settings.api_key.reveal(),
            "sourceapplication": SOURCE_APPLICATION,
            "login": self.settings.login,
            "password": self.settings.password.reveal(),
            "entity": str(self.settings.entity) if self.settings.entity else "",
        }

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=bool(self.settings.verify_tls))
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": f"{SOURCE_APPLICATION} (Dolibarr SOAP client)"}
            )
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def _where(self, resource: str, record_id: int | str = "") -> Where:
        return Where(side="dolibarr", resource=resource, record_id=str(record_id) if record_id != "" else "")

    def _endpoint(self, server: str) -> str:
        return f"{self.root}/webservices/server_{server}.php"

    async def _sleep_before_retry(self, attempt: int, error: TransientError, what: str) -> None:
        delay = min(self.retry.max_delay_s, self.retry.base_delay_s * (2 ** (attempt - 1)))
        delay *= 0.5 + random.random() / 2
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.retry.max_delay_s))
        log.warning(
            "dolibarr.soap.retry", operation=what, attempt=attempt, delay_s=round(delay, 2), error=str(error)
        )
        await asyncio.sleep(delay)

    async def _server(self, name: str) -> Server:
        """The zeep view of ``server_<name>.php``, its WSDL fetched once over aiohttp."""
        loaded = self._servers.get(name)
        if loaded is not None:
            return loaded
        async with self._server_locks[name]:
            loaded = self._servers.get(name)
            if loaded is not None:
                return loaded
            wsdl_url = f"{self._endpoint(name)}?wsdl"
            attempts = max(1, self.retry.attempts)
            for attempt in range(1, attempts + 1):
                try:
                    content = await self._fetch_wsdl(name, wsdl_url)
                    break
                except TransientError as exc:
                    if attempt >= attempts:
                        raise redact(exc, self._secrets) from None
                    await self._sleep_before_retry(attempt, exc, f"GET server_{name}.php?wsdl")
            try:
                client = ZeepClient(
                    wsdl_url,
                    transport=OfflineTransport({wsdl_url: content}),
                    settings=ZeepSettings(
                        strict=False, xml_huge_tree=True, forbid_dtd=True, forbid_entities=True
                    ),
                )
                binding = client.service._binding
            except SyncError:
                raise
            except Exception as exc:  # zeep raises many kinds on a WSDL it cannot read
                raise ConfigError(
                    f"the WSDL of {self._endpoint(name)} could not be read ({type(exc).__name__}: "
                    f"{first_bytes(str(exc), 160)})"
                ) from None
            loaded = Server(name=name, endpoint=self._endpoint(name), client=client, binding=binding)
            self._servers[name] = loaded
            return loaded

    async def _fetch_wsdl(self, name: str, url: str) -> bytes:
        where = self._where(f"server_{name}.php?wsdl")
        try:
            async with self.limit.slot():
                response = await self._get_session().get(
                    url, timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s), allow_redirects=False
                )
                async with response:
                    status = response.status
                    headers = dict(response.headers)
                    body = await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise transport_error(exc, "GET WSDL", where) from None
        error = http_error(status, headers, body, "GET WSDL", where, url=url)
        if error is not None:
            raise error
        try:
            doc = etree.fromstring(body, parser=PARSER)
        except etree.XMLSyntaxError:
            raise non_xml_error(status, body, "GET WSDL", where, "not XML") from None
        if local_name(doc.tag) != "definitions":
            raise non_xml_error(status, body, "GET WSDL", where, "not a WSDL")
        return body

    async def _call(
        self,
        server_name: str,
        operation: str,
        args: Mapping[str, Any],
        *,
        resource: str = "",
        record_id: int | str = "",
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """One SOAP operation: the parts of its answer as plain Python, or one error of the family.

        Transient failures are retried (with backoff) except :class:`AmbiguousWrite`: a create whose outcome
        is unknown goes back to the engine, which looks the object up by ref_ext first.
        """
        where = self._where(resource or operation, record_id)
        attempts = max(1, self.retry.attempts)
        try:
            server = await self._server(server_name)
            for attempt in range(1, attempts + 1):
                try:
                    return await self._call_once(server, operation, args, where, timeout_s)
                except AmbiguousWrite:
                    raise
                except TransientError as exc:
                    if attempt >= attempts:
                        raise
                    await self._sleep_before_retry(attempt, exc, operation)
            raise AssertionError("unreachable")  # pragma: no cover
        except SyncError as exc:
            raise redact(exc, self._secrets) from None

    async def _call_once(
        self, server: Server, operation: str, args: Mapping[str, Any], where: Where, timeout_s: float | None
    ) -> dict[str, Any]:
        op = server.operation(operation)
        parts = {"authentication": self._auth(), **self._storable(args, where, operation)}
        try:
            filled = fill_call(op.input.body.type, parts)
            envelope = server.client.create_message(server.client.service, operation, **filled)
        except (zeep.exceptions.Error, TypeError, ValueError) as exc:
            raise PermanentError(
                f"SOAP {operation}: a value does not fit Dolibarr's WSDL ({type(exc).__name__}: "
                f"{first_bytes(redact_text(str(exc), self._secrets), 160)})",
                where=where,
            ) from None
        payload = etree.tostring(envelope, encoding="utf-8", xml_declaration=True)
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{op.soapaction or f"{NS}#{operation}"}"',
        }
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.settings.timeout_s)
        async with self.limit.slot():
            try:
                response = await self._get_session().post(
                    server.endpoint, data=payload, headers=headers, timeout=timeout, allow_redirects=False
                )
                async with response:
                    status = response.status
                    response_headers = dict(response.headers)
                    body = await response.read()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise transport_error(exc, operation, where) from None
            # the answer is read inside the slot: a deadlock it reports lowers the limit (limit.py)
            try:
                error = http_error(status, response_headers, body, operation, where, url=server.endpoint)
                if error is not None:
                    raise error
                parts = self._read_answer(server, op, operation, status, response_headers, body, where)
            except DatabaseBusy:
                self.limit.busy(operation)
                raise
            except SyncError:
                self.limit.ok()
                raise
            self.limit.ok()
            return parts

    def _storable(self, args: Mapping[str, Any], where: Where, operation: str) -> dict[str, Any]:
        """``args`` with their text in a form Dolibarr's database connection stores (``dolibarr.charset``,
        ``service/dolibarr/charset.py``): over SOAP as over REST, an emoji in a label or ref is left out rather
        than refused by a utf8 (3-byte) connection."""
        value, changed = storable(dict(args), self.settings.charset)
        if changed:
            log.warning(
                "dolibarr_text_not_storable",
                resource=where.resource,
                record_id=where.record_id,
                operation=operation,
                charset=self.settings.charset,
                hint="characters above U+FFFF (emoji) left out: docs/catalog.md, dolibarr.charset",
            )
        return dict(value)

    def _read_answer(
        self,
        server: Server,
        op: Any,
        operation: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        where: Where,
    ) -> dict[str, Any]:
        doc = parse_envelope(body, headers)
        if doc is None:
            raise non_xml_error(status, body, operation, where, "not complete XML")
        envelope_body = doc.find(f"{{{SOAP_ENV}}}Body")
        if local_name(doc.tag) != "Envelope" or envelope_body is None:
            raise non_xml_error(status, body, operation, where, "no SOAP envelope")
        fault = envelope_body.find(f"{{{SOAP_ENV}}}Fault")
        if fault is not None:
            raise fault_error(
                (fault.findtext("faultcode") or "").strip(),
                (fault.findtext("faultstring") or "").strip(),
                operation,
                where,
                status,
            )
        if status != 200:  # a 500 envelope that is not a fault: Dolibarr failed after reading the request
            raise http_error(status, headers, b"", operation, where, url=server.endpoint) or TransientError(
                f"SOAP {operation} answered HTTP {status}", where=where, status=status
            )
        strip_untyped(doc)
        try:
            result = op.process_reply(doc)
            parts = plain(serialize_object(result, dict))
        except (zeep.exceptions.Error, ValueError, TypeError, LookupError, AttributeError) as exc:
            raise non_xml_error(
                status, body, operation, where, f"an envelope zeep cannot read ({type(exc).__name__})"
            ) from None
        names = [name for name, _ in op.output.body.type.elements]
        if len(names) == 1 and not (isinstance(parts, Mapping) and names[0] in parts):
            parts = {names[0]: parts}
        if not isinstance(parts, dict):
            raise non_xml_error(status, body, operation, where, "an answer without parts")
        outcome = parts.get("result")
        if operation in _SILENT_OPERATIONS and not (
            isinstance(outcome, Mapping) and outcome.get("result_code")
        ):
            return parts  # an empty <result> whatever happened: the caller reads the object back
        if not isinstance(outcome, Mapping):
            raise non_xml_error(status, body, operation, where, "no result structure")
        error = result_error(
            _text(outcome.get("result_code")), _text(outcome.get("result_label")), operation, where
        )
        if error is not None:
            raise error
        return parts

    async def read_envelope(
        self, server_name: str, operation: str, body: bytes, *, status: int = 200
    ) -> dict[str, Any]:
        """Read an answer envelope of ``operation`` as :meth:`_call` does (parts as plain Python, or the typed
        error its ``result_code`` means): for diagnostics and for comparing captured answers."""
        server = await self._server(server_name)
        try:
            return self._read_answer(
                server, server.operation(operation), operation, status, {}, body, self._where(operation)
            )
        except SyncError as exc:
            raise redact(exc, self._secrets) from None

    # ------------------------------------------------------------------------------------------ capabilities
    async def versions(self) -> dict[str, str]:
        """``getVersions``: Dolibarr, OS, PHP and web server versions (also a check of key and login)."""
        parts = await self._call("other", "getVersions", {})
        return {k: _text(parts.get(k)) for k in ("dolibarr", "os", "php", "webserver")}

    async def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            versions = await self.versions()
            self._capabilities = Capabilities(
                version=versions["dolibarr"] or "unknown",
                categories=False,
                variants=False,
                stock=False,
                documents=False,
                payments=False,
                contacts=False,
                credit_notes=False,
                multicurrency=False,
                backend="soap",
            )
        return self._capabilities

    async def check_access(self) -> list[str]:
        problems: list[str] = []
        try:
            await self.versions()
        except ConfigError as exc:
            return [exc.message]
        probes = (
            ("thirdparty", "getThirdParty", "read thirdparties"),
            ("productorservice", "getProductOrService", "read products"),
            ("order", "getOrder", "read orders"),
            ("invoice", "getInvoice", "read invoices"),
        )
        for server, operation, what in probes:
            try:
                # An id that cannot exist: NOT_FOUND proves the permission, PERMISSION_DENIED its lack.
                await self._call(server, operation, {"id": "-1"})
            except NotFound:
                continue
            except ConfigError as exc:
                problems.append(f"cannot {what} over SOAP: {exc.message}")
        return problems

    # ------------------------------------------------------------------------------------------ lookups
    def _unsupported(self, what: str, alternative: str = "") -> ConfigError:
        instead = f"{alternative}, or " if alternative else ""
        return ConfigError(f"the Dolibarr SOAP backend cannot {what}; {instead}{REST_HINT}")

    async def _get_raw(self, kind: str, **key: str) -> dict[str, Any]:
        spec = _GET_OPERATION.get(kind)
        if spec is None:
            raise self._unsupported(f"read {kind} objects")
        server, operation, part = spec
        record = key.get("id") or key.get("ref") or key.get("ref_ext") or ""
        parts = await self._call(server, operation, dict(key), resource=kind, record_id=record)
        data = parts.get(part)
        if not isinstance(data, Mapping) or data.get("id") in (None, ""):
            raise NotFound(f"{kind} {record} not found", where=self._where(kind, record))
        return dict(data)

    async def find_by_ref_ext(self, kind: ObjectKind, ref_ext: str) -> RemoteObject | None:
        if kind not in ("thirdparty", "product", "order", "invoice"):
            raise self._unsupported(f"look {kind} objects up by ref_ext")
        try:
            data = await self._get_raw(kind, ref_ext=ref_ext)
        except NotFound:
            return None
        return _remote(kind, data)

    async def list_ref_ext(self, kind: ObjectKind, prefix: str) -> dict[str, RemoteObject]:
        """Bulk lookup. Thirdparties and products come from one listing each (id, ref, ref_ext); orders
        and invoices from ``get*ForThirdParty('all')``, which answers every document with its lines (heavy:
        Dolibarr loads each one), so that call gets ten times the usual timeout."""
        if kind in self._unlistable:
            raise self._unlistable[kind]
        try:
            rows = await self._list_rows(kind)
        except ConfigError as exc:
            if "DB_ERROR_NOSUCH" in str(exc):  # the version's own fault: no later call will do better
                self._unlistable[kind] = exc
            raise
        found: dict[str, RemoteObject] = {}
        for row in rows if isinstance(rows, list) else [rows]:
            if not isinstance(row, Mapping):
                continue
            ref_ext = _text(row.get("ref_ext"))
            if ref_ext and ref_ext.startswith(prefix) and _int(row.get("id")):
                found[ref_ext] = _remote(kind, row)
        return found

    async def _list_rows(self, kind: ObjectKind) -> Any:
        """Every object of ``kind``, as the listing operation answers them (Dolibarr 20.0.2's invoice listing
        fails on every call: a ConfigError, and the engine looks invoices up one by one)."""
        long_timeout = self.settings.timeout_s * 10
        rows: list[Any]
        if kind == "thirdparty":
            parts = await self._call(
                "thirdparty",
                "getListOfThirdParties",
                {"filterthirdparty": {"client": "0"}},
                resource=kind,
                timeout_s=long_timeout,
            )
            rows = parts.get("thirdparties") or []
        elif kind == "product":
            # type -1 (and no status keys at all) = no filter; an empty status would filter on 0.
            parts = await self._call(
                "productorservice",
                "getListOfProductsOrServices",
                {"filterproduct": {"type": "-1"}},
                resource=kind,
                timeout_s=long_timeout,
            )
            rows = parts.get("products") or []
        elif kind == "order":
            parts = await self._call(
                "order",
                "getOrdersForThirdParty",
                {"idthirdparty": "all"},
                resource=kind,
                timeout_s=long_timeout,
            )
            rows = parts.get("orders") or []
        elif kind == "invoice":
            parts = await self._call(
                "invoice",
                "getInvoicesForThirdParty",
                {"idthirdparty": "all"},
                resource=kind,
                timeout_s=long_timeout,
            )
            rows = parts.get("invoices") or []
        else:
            raise self._unsupported(f"list {kind} objects")
        return rows

    async def find_product_by_ref(self, ref: str) -> RemoteObject | None:
        try:
            data = await self._get_raw("product", ref=ref)
        except NotFound:
            return None
        return _remote("product", data)

    async def find_thirdparties_by_email(self, email: str) -> list[RemoteObject]:
        raise self._unsupported(
            "look thirdparties up by email (getListOfThirdParties answers no email)",
            'set orders.guest_policy = "shared"',
        )

    async def find_foreign_thirdparties_by_email(self, email: str) -> list[RemoteObject]:
        return await self.find_thirdparties_by_email(email)

    async def get(self, kind: ObjectKind, object_id: int) -> dict[str, Any]:
        data = await self._get_raw(kind, id=str(object_id))
        if kind in ("order", "invoice"):
            return _rest_document(data)
        data["id"] = _int(data.get("id"))
        return data

    async def unchanged_parts(self, found: RemoteObject, payload: Payload, ids: Ids) -> frozenset[Part]:
        """Nothing is told equal over SOAP: its answers carry other field names and formats than its requests
        (and no extrafields), so an object adopted after a lost state file gets its one update, as before."""
        return frozenset()

    # ------------------------------------------------------------------------------------------ writes
    def _id_of(self, ref: Ref, ids: Ids) -> int:
        try:
            return ids[ref]
        except KeyError:
            raise PermanentError(
                f"{ref.kind} {ref.ref_ext} has no Dolibarr id yet (unresolved dependency)",
                where=self._where(ref.kind),
            ) from None

    async def create(self, payload: Payload, ids: Ids) -> int:
        if isinstance(payload, ThirdpartyPayload):
            fields = _thirdparty_fields(payload)
            fields.update({"client": "1", "supplier": "0", "vat_used": "1"})
            parts = await self._call(
                "thirdparty",
                "createThirdParty",
                {"thirdparty": fields},
                resource="thirdparty",
                record_id=payload.ref_ext,
            )
            return self._new_id(parts, "thirdparty", payload.ref_ext)
        if isinstance(payload, ProductPayload):
            if payload.variant_of is not None:
                raise self._unsupported("create product variants")
            server = await self._server("productorservice")
            fields = _product_fields(payload, server.type_fields("product"))
            parts = await self._call(
                "productorservice",
                "createProductOrService",
                {"product": fields},
                resource="product",
                record_id=payload.ref_ext,
            )
            return self._new_id(parts, "product", payload.ref_ext)
        if isinstance(payload, DocumentPayload):
            return await self._create_document(payload, ids)
        if isinstance(payload, CategoryPayload):
            raise self._unsupported("create categories (its SOAP server only has getCategory)")
        if isinstance(payload, ContactPayload):
            raise self._unsupported(
                "create contacts (no server_contact.php among the SOAP servers ps2doli uses)"
            )
        raise self._unsupported(f"create {type(payload).__name__}")

    def _new_id(self, parts: Mapping[str, Any], kind: str, ref_ext: str) -> int:
        new_id = _int(parts.get("id"))
        if new_id <= 0:
            raise AmbiguousWrite(
                f"Dolibarr answered OK to the {kind} create without an id; look it up by ref_ext",
                where=self._where(kind, ref_ext),
            )
        return new_id

    def _check_currency(self, payload: DocumentPayload) -> None:
        main = (
            self._capabilities.main_currency if self._capabilities else Capabilities(version="").main_currency
        )
        if payload.currency and payload.currency.upper() != main.upper():
            raise PermanentError(
                f"{payload.kind} {payload.ref_ext} is in {payload.currency}; the SOAP backend can only write "
                f"documents in Dolibarr's main currency ({main}): {REST_HINT}",
                where=self._where(payload.kind, payload.ref_ext),
            )

    def _document_fields(self, payload: DocumentPayload, ids: Ids) -> dict[str, Any]:
        lines = []
        for line in payload.lines:
            unit, net, vat, total = _line_amounts(line)
            entry: dict[str, Any] = {
                "type": 1 if line.service else 0,
                "desc": line.description or line.label,
                "product_id": self._id_of(line.product, ids) if line.product is not None else None,
                "vat_rate": line.tva_tx,
                "qty": line.qty,
                "unitprice": unit,
                "total_net": net,
                "total_vat": vat,
                "total": total,
            }
            if payload.kind == "order":
                entry["price"] = unit
            lines.append(entry)
        # no SOAP call stores a customer ref (createOrder does not read ref_client, the invoice type has none):
        # it heads the public note, where it is printed as Dolibarr prints ref_client
        note_public = "\n".join(
            p
            for p in (
                f"{CUSTOMER_REF_LABEL}: {payload.ref_client}" if payload.ref_client else "",
                payload.note_public,
            )
            if p
        )
        fields: dict[str, Any] = {
            "ref_ext": payload.ref_ext,
            "thirdparty_id": self._id_of(payload.thirdparty, ids),
            "date": _day(payload.date),
            "note_private": payload.note_private or None,
            "note_public": note_public or None,
            "lines": {"line": lines},
        }
        if payload.kind == "order":
            fields["ref_client"] = payload.ref_client or None
        else:
            fields["type"] = 0
        return fields

    async def _create_document(self, payload: DocumentPayload, ids: Ids) -> int:
        if payload.credit_note_of is not None:
            raise self._unsupported(
                "create credit notes (createInvoice cannot name the invoice they correct)"
            )
        await self.capabilities()
        self._check_currency(payload)
        fields = self._document_fields(payload, ids)
        if payload.kind == "order":
            parts = await self._call(
                "order", "createOrder", {"order": fields}, resource="order", record_id=payload.ref_ext
            )
        else:
            parts = await self._call(
                "invoice", "createInvoice", {"invoice": fields}, resource="invoice", record_id=payload.ref_ext
            )
        return self._new_id(parts, payload.kind, payload.ref_ext)

    async def update(self, object_id: int, payload: Payload, ids: Ids) -> None:
        if isinstance(payload, ThirdpartyPayload):
            current = await self._get_raw("thirdparty", id=str(object_id))
            fields = {k: v for k, v in current.items() if k not in _THIRDPARTY_READ_ONLY}
            wanted = _thirdparty_fields(payload)
            if not any(wanted[k] for k in _ADDRESS_FIELDS):
                # a payload with no address at all (a customer: PrestaShop keeps addresses apart) leaves the
                # address Dolibarr holds, which an order wrote there (no contacts over SOAP: engine/orders.py)
                wanted = {k: v for k, v in wanted.items() if k not in _ADDRESS_FIELDS}
            elif not payload.country_code:
                fields["country_id"] = ""
            fields.update(wanted)
            fields["id"] = str(object_id)
            await self._call(
                "thirdparty",
                "updateThirdParty",
                {"thirdparty": fields},
                resource="thirdparty",
                record_id=object_id,
            )
            return
        if isinstance(payload, ProductPayload):
            server = await self._server("productorservice")
            current = await self._get_raw("product", id=str(object_id))
            fields = {k: v for k, v in current.items() if k not in _PRODUCT_READ_ONLY}
            fields.update(_product_fields(payload, server.type_fields("product")))
            fields["id"] = str(object_id)
            await self._call(
                "productorservice",
                "updateProductOrService",
                {"product": fields},
                resource="product",
                record_id=object_id,
            )
            return
        if isinstance(payload, DocumentPayload):
            # SOAP cannot change a document's lines or fields (updateOrder/updateInvoice only move statuses).
            current = await self._get_raw(payload.kind, id=str(object_id))
            if _int(current.get("status")) != 0:
                return  # not a draft any more: nothing to change, as with REST
            if self._document_differs(current, payload):
                # About this one record, not the whole backend: filed as a failure, the others go on.
                raise PermanentError(
                    f"{payload.kind} {current.get('ref') or object_id} changed in the shop while still a "
                    "draft in Dolibarr, and the SOAP backend cannot change a document's lines (updateOrder and "
                    f"updateInvoice only move its status): edit it in Dolibarr, or {REST_HINT}",
                    where=self._where(payload.kind, object_id),
                )
            return
        if isinstance(payload, CategoryPayload):
            raise self._unsupported("update categories")
        raise self._unsupported(f"update {type(payload).__name__}")

    @staticmethod
    def _document_differs(current: Mapping[str, Any], payload: DocumentPayload) -> bool:
        lines = current.get("lines") or []
        if len(lines) != len(payload.lines):
            return True
        total = Decimal(0)
        for line in payload.lines:
            total += _line_amounts(line)[3]
        try:
            have = Decimal(_text(current.get("total")) or "0")
        except ArithmeticError:
            return True
        return abs(have - total) > _CENT * max(1, len(payload.lines))

    async def delete(self, kind: ObjectKind, object_id: int) -> None:
        try:
            if kind == "product":
                await self._call(
                    "productorservice",
                    "deleteProductOrService",
                    {"listofid": str(object_id)},
                    resource=kind,
                    record_id=object_id,
                )
            elif kind == "thirdparty":
                await self._call(
                    "thirdparty",
                    "deleteThirdParty",
                    {"id": str(object_id)},
                    resource=kind,
                    record_id=object_id,
                )
            else:
                raise self._unsupported(f"delete {kind} objects")
        except NotFound:
            return  # already gone: a delete is done when the object is not there
        except PermanentError as exc:
            # deleteProductOrService says KO "Product or service with id N not found" for a missing id
            if kind == "product" and re.search(rf"\bid {object_id} not found", exc.message):
                return
            raise

    async def set_active(self, kind: ObjectKind, object_id: int, active: bool) -> None:
        flag = "1" if active else "0"
        if kind == "thirdparty":
            current = await self._get_raw("thirdparty", id=str(object_id))
            fields = {k: v for k, v in current.items() if k not in _THIRDPARTY_READ_ONLY}
            fields.update({"id": str(object_id), "status": flag})
            await self._call(
                "thirdparty", "updateThirdParty", {"thirdparty": fields}, resource=kind, record_id=object_id
            )
            return
        if kind == "product":
            current = await self._get_raw("product", id=str(object_id))
            fields = {k: v for k, v in current.items() if k not in _PRODUCT_READ_ONLY}
            fields.update(
                {
                    "id": str(object_id),
                    "status_tosell": flag,
                    "status_tobuy": flag,
                    "price_net": _text(current.get("price_net")) or "0",
                    "price_base_type": "HT",
                }
            )
            await self._call(
                "productorservice",
                "updateProductOrService",
                {"product": fields},
                resource=kind,
                record_id=object_id,
            )
            return
        raise self._unsupported(f"activate or deactivate {kind} objects")

    # ------------------------------------------------------------------------------------------ categories
    async def object_categories(self, kind: ObjectKind, object_id: int) -> set[int]:
        """None that ps2doli could have made: SOAP links nothing to a category (Capabilities.categories is
        False, so the engine never asks for a link). Answered empty rather than refused: the writer compares
        an adopted product's links (real pair: a product created just before a SIGKILL, adopted by ref_ext on
        the next run, ended the products pass with "cannot read the categories of an object")."""
        return set()

    async def link_category(self, category_id: int, kind: ObjectKind, object_id: int) -> None:
        raise self._unsupported("link objects to categories")

    async def unlink_category(self, category_id: int, kind: ObjectKind, object_id: int) -> None:
        raise self._unsupported("unlink objects from categories")

    async def category_objects(self, category_id: int, kind: ObjectKind) -> set[int]:
        raise self._unsupported("list the objects of a category")

    # ------------------------------------------------------------------------------------------ variants
    async def create_variant(
        self, parent_id: int, features: tuple[tuple[str, str], ...], payload: Payload, ids: Ids
    ) -> int:
        raise self._unsupported("create product variants", 'set catalog.combinations = "flat"')

    async def update_variant(self, parent_id: int, child_id: int, payload: Payload, ids: Ids) -> None:
        raise self._unsupported("update product variants", 'set catalog.combinations = "flat"')

    # ------------------------------------------------------------------------------------------ documents
    async def document_lines(self, kind: DocumentKind, doc_id: int) -> list[dict[str, Any]]:
        document = await self.get(kind, doc_id)
        lines = document.get("lines") or []
        return [dict(line) for line in lines if isinstance(line, Mapping)]

    async def set_document_status(
        self, kind: DocumentKind, doc_id: int, status: DocumentStatus, *, warehouse_id: int = 0
    ) -> None:
        current_raw = await self._get_raw(kind, id=str(doc_id))
        current = _int(current_raw.get("status"))
        if kind == "order":
            await self._set_order_status(doc_id, current, status, warehouse_id)
        else:
            await self._set_invoice_status(doc_id, current, status)

    async def _set_order_status(
        self, doc_id: int, current: int, status: DocumentStatus, warehouse_id: int
    ) -> None:
        name = _ORDER_STATUS.get(current, str(current))
        if name == status:
            return
        if status == "validated":
            if current == 0 and not warehouse_id:
                await self._update_order(doc_id, {"status": 1})  # Commande::valid, its errors reported
                return
            if current == 0:
                # only validOrder takes a warehouse (stock decrease), and its answer never says how it went
                # (_SILENT_OPERATIONS): the order read back does
                await self._call(
                    "order",
                    "validOrder",
                    {"id": str(doc_id), "id_warehouse": str(warehouse_id)},
                    resource="order",
                    record_id=doc_id,
                )
                after = _int((await self._get_raw("order", id=str(doc_id))).get("status"))
                if after == 0:
                    raise PermanentError(
                        f"SOAP validOrder left order {doc_id} a draft (its answer carries no result: validate "
                        "it in Dolibarr to see why, or set orders.validate_warehouse_id = 0)",
                        where=self._where("order", doc_id),
                    )
                return
            if current == 3:  # updateOrder status 0 reopens a closed order (set_reopen -> validated)
                await self._update_order(doc_id, {"status": 0})
                return
        elif status == "closed" and current in (0, 1, 2):
            if current == 0:
                await self._set_order_status(doc_id, 0, "validated", warehouse_id)
            await self._update_order(doc_id, {"status": 3})
            return
        elif status == "cancelled" and current in (0, 1, 3):
            # Commande::cancel only moves a validated order (UPDATE ... WHERE fk_statut = 1) and answers OK for
            # any other, leaving it as it was (real 20.0.2: drafts stayed drafts): a draft is validated first
            # (a cancelled order keeps its number), a closed one reopened
            if current == 0:
                await self._set_order_status(doc_id, 0, "validated", warehouse_id)
            elif current == 3:
                await self._update_order(doc_id, {"status": 0})
            await self._update_order(doc_id, {"status": -1})
            after = _int((await self._get_raw("order", id=str(doc_id))).get("status"))
            if after != -1:
                raise PermanentError(
                    f"SOAP updateOrder status -1 answered OK but order {doc_id} is still "
                    f"{_ORDER_STATUS.get(after, str(after))}: cancel it in Dolibarr",
                    where=self._where("order", doc_id),
                )
            return
        if status == "shipped":
            raise self._unsupported(
                "mark orders as shipped",
                'map that shop state to "validated" or "closed" with orders.state_overrides',
            )
        raise self._unsupported(f"move an order from {name} to {status}")

    async def _update_order(self, doc_id: int, fields: Mapping[str, Any]) -> None:
        await self._call(
            "order",
            "updateOrder",
            {"order": {"id": str(doc_id), **fields}},
            resource="order",
            record_id=doc_id,
        )

    async def _set_invoice_status(self, doc_id: int, current: int, status: DocumentStatus) -> None:
        name = _INVOICE_STATUS.get(current, str(current))
        if name == status:
            return
        codes = {"draft": 0, "validated": 1, "closed": 2, "cancelled": 3}
        if status not in codes:
            raise PermanentError(f"an invoice has no status {status!r}", where=self._where("invoice", doc_id))
        if status in ("closed", "cancelled") and current == 0:
            await self._update_invoice(doc_id, {"status": 1})
        await self._update_invoice(doc_id, {"status": codes[status]})

    async def _update_invoice(self, doc_id: int, fields: Mapping[str, Any]) -> None:
        await self._call(
            "invoice",
            "updateInvoice",
            {"invoice": {"id": str(doc_id), **fields}},
            resource="invoice",
            record_id=doc_id,
        )

    async def invoice_from_order(self, order_id: int, payload: DocumentPayload, ids: Ids) -> int:
        """The invoice of an order, written with ``createInvoice`` from the payload's lines.

        Not ``createInvoiceFromOrder``: Dolibarr's ``Facture::createFromOrder`` neither copies nor accepts a
        ``ref_ext`` (and dates the invoice today), so an invoice made that way could never be found again by
        ref_ext after a crash or an ambiguous write, and would be created twice. The price is that Dolibarr
        does not record the order->invoice link; :meth:`create_invoice_from_order` is there for callers who
        want it.
        """
        if payload.kind != "invoice":
            raise PermanentError(
                f"invoice_from_order needs an invoice payload, got {payload.kind}",
                where=self._where("invoice", payload.ref_ext),
            )
        return await self._create_document(payload, ids)

    async def create_invoice_from_order(self, order_id: int) -> int:
        """``createInvoiceFromOrder``: Dolibarr copies the order into a draft invoice, linked to the order,
        dated today and *without* ref_ext (see :meth:`invoice_from_order`)."""
        parts = await self._call(
            "invoice",
            "createInvoiceFromOrder",
            {"id_order": str(order_id)},
            resource="invoice",
            record_id=f"order {order_id}",
        )
        return self._new_id(parts, "invoice", f"from order {order_id}")

    async def add_payment(
        self, payment: PaymentPayload, ids: Ids, *, invoice: Mapping[str, Any] | None = None
    ) -> int:
        raise self._unsupported(
            "record payments (the SOAP servers cannot list an invoice's payments, so a payment could not be "
            "found again after an unclear answer)"
        )

    async def invoice_payments(self, invoice_id: int) -> list[dict[str, Any]]:
        raise self._unsupported("list the payments of an invoice")

    # ------------------------------------------------------------------------------------------ stock
    async def stock_level(self, product_id: int, warehouse_id: int) -> Decimal:
        raise self._unsupported("read stock per warehouse")

    async def move_stock(self, product_id: int, warehouse_id: int, qty: Decimal, label: str) -> None:
        raise self._unsupported("move stock")

    # ------------------------------------------------------------------------------------------ files
    async def list_files(self, kind: ObjectKind, object_id: int) -> list[RemoteDocumentFile]:
        raise self._unsupported("list attached files")

    async def upload_file(self, kind: ObjectKind, object_id: int, name: str, content: bytes) -> None:
        raise self._unsupported("upload files (images)")

    async def delete_file(self, kind: ObjectKind, object_id: int, name: str) -> None:
        raise self._unsupported("delete attached files")

    # ------------------------------------------------------------------------------------------ setup
    async def extrafields(self, elementtype: str) -> dict[str, dict[str, Any]]:
        """The extrafields the WSDL declares (``options_<name>`` elements): names and XML types only."""
        where = {
            "product": ("productorservice", "product"),
            "societe": ("thirdparty", "thirdparty"),
            "thirdparty": ("thirdparty", "thirdparty"),
            "commande": ("order", "order"),
            "facture": ("invoice", "invoice"),
        }.get(elementtype)
        if where is None:
            raise self._unsupported(f"read extrafields of {elementtype}")
        server = await self._server(where[0])
        found: dict[str, dict[str, Any]] = {}
        for name in server.type_fields(where[1]):
            if name.startswith("options_"):
                short = name[len("options_") :]
                found[short] = {
                    "label": short,
                    "elementtype": elementtype,
                    "type": "varchar",
                    "source": "wsdl",
                }
        return found

    async def payment_type_ids(self) -> dict[str, int]:
        raise self._unsupported("read the payment type dictionary")

    async def bank_account_ids(self) -> list[int]:
        raise self._unsupported("list bank accounts")

    async def warehouse_ids(self) -> list[int]:
        raise self._unsupported("list warehouses")


# ------------------------------------------------------------------------------------------------ mapping


def _thirdparty_fields(payload: ThirdpartyPayload) -> dict[str, Any]:
    """A ThirdpartyPayload in the WSDL's ``thirdparty`` words (``ref`` is the name, ``profid1`` the SIRET)."""
    return {
        "ref": payload.name,
        "ref_ext": payload.ref_ext,
        "status": "1" if payload.active else "0",
        "email": payload.email,
        "phone": payload.phone,
        "address": payload.address,
        "zip": payload.zip,
        "town": payload.town,
        "country_code": payload.country_code,
        "vat_number": payload.vat_number,
        "profid1": payload.idprof1,
        "profid2": payload.idprof2,
        "note_private": payload.note_private,
    }


def _product_fields(payload: ProductPayload, declared: list[str]) -> dict[str, Any]:
    """A ProductPayload in the WSDL's ``product`` words. The price goes as ``price_net`` only (Dolibarr
    refuses both prices) with base type HT; extrafields must be declared by the WSDL (``options_<name>``)."""
    fields: dict[str, Any] = {
        "ref": payload.ref,
        "ref_ext": payload.ref_ext,
        "type": "1" if payload.service else "0",
        "label": payload.label,
        "description": payload.description,
        "status_tosell": "1" if payload.on_sale else "0",
        "status_tobuy": "1" if payload.on_purchase else "0",
        "price_net": _decimal_text(payload.price),
        "price_base_type": "HT",
        "vat_rate": _decimal_text(payload.tva_tx),
    }
    for name, value in payload.extrafields:
        key = f"options_{name}"
        if declared and key not in declared:
            raise ConfigError(
                f"the product extrafield {name!r} does not exist in Dolibarr (its SOAP WSDL declares "
                f"{', '.join(d for d in declared if d.startswith('options_')) or 'none'}): create it in "
                'Dolibarr or stop mapping it (catalog.long_description_extrafield = "")'
            )
        fields[key] = value
    return fields


def redact_text(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
