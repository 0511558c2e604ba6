"""A Dolibarr 20.0.2 REST API simulator (aiohttp), answering like the captures in shared/reference/dolibarr.

    app = create_app()                      # seeded DolibarrData, key DEFAULT_KEY
    server = await start_app(app)           # service.sandbox.runner
    base = server.url + "/api/index.php"    # header DOLAPIKEY: DEFAULT_KEY
    data = app[DATA_KEY]                    # the model, to assert on

    python -m service.sandbox.dolibarr_sim --port 9002 [--key K]

Order of checks, as in Dolibarr: the SQL/script injection filter of main.inc.php (403 HTML), the API file
lookup (501 text), the JSON body (400 at setup stage), the key (401; a wrong key answers after
``bad_key_delay_s``), the route (404), then the call. See docs/dolibarr-simulator.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from service.sandbox import dolibarr_database as database
from service.sandbox import dolibarr_indexes as indexes
from service.sandbox import dolibarr_sqlfilters as sqlf
from service.sandbox import faults
from service.sandbox.dolibarr_model import DolibarrData
from service.sandbox.dolibarr_table import DolibarrError, Obj, PhpObject, alphanohtml, dec, sql_datetime, utc

DEFAULT_KEY = "ps2doli-sandbox-dolibarr-key"
BASE = "/api/index.php"

DATA_KEY = web.AppKey("dolibarr_data", DolibarrData)


@dataclass
class DolibarrSimOptions:
    bad_key_delay_s: float = 1.0  # the real server sleeps ~1 s before a 401 for a wrong key
    delete_product_conflict: bool = False  # DELETE /products/{id} -> 409 "probably used" (no MRP tables)
    race_quirks: bool = False  # concurrent validations / auto customer codes -> the duplicate-key 500s
    race_window_s: float = 0.02  # the await inside racing handlers, so that requests overlap
    main_currency: str = "EUR"
    multicurrency_enabled: bool = False
    # the key is not an admin's: GET /setup/modules answers 403 (a client falls back to probing routes)
    modules_admin_only: bool = False
    # the key's user has the right "multicurrency currency write": POST /multicurrencies (else 403)
    multicurrency_write: bool = True
    # $dolibarr_main_db_character_set: "utf8" (3 bytes, as the installer leaves it) refuses emoji (500)
    connection_charset: str = "utf8mb4"
    # above this many writes in flight on POST /products, /orders, /stockmovements, a write deadlocks with
    # probability deadlock_probability (0 = never); each such write holds its locks for write_hold_s
    deadlock_above: int = 0
    deadlock_probability: float = 1.0
    deadlock_seed: int = 1
    write_hold_s: float = 0.01
    # a POST /stockmovements that starts while another is in flight is answered 200 (with an id) but not kept,
    # with this probability (live: 5 of 255 parallel movements); draws seeded by deadlock_seed
    lost_movement_rate: float = 0.0
    # a POST /products/{id}/variants that starts while another is in flight answers 500 "Error creating new
    # product variant", nothing stored, with this probability (live, under parallel writes)
    variant_failure_rate: float = 0.0


REASONS = {
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
STAGES = {
    "call": (["get", "route", "negotiate", "authenticate", "validate"], ["call", "message"]),
    "validate": (["get", "route", "negotiate", "authenticate"], ["validate", "message"]),
    "authenticate": (["get", "route", "negotiate"], ["authenticate", "message"]),
    "route": (["get"], ["route", "negotiate", "message"]),
    "setup": ([], ["get", "route", "negotiate", "message"]),
}
KNOWN_APIS = {
    "multicurrencies",
    "status",
    "setup",
    "thirdparties",
    "contacts",
    "products",
    "categories",
    "warehouses",
    "stockmovements",
    "orders",
    "invoices",
    "bankaccounts",
    "documents",
}
JSON_CT = "application/json"
# Restler's request formats in Dolibarr (api/index.php: JsonFormat, XmlFormat, UploadFormat) plus UrlEncodedFormat,
# which Restler always reads; any other Content-Type, on any method, is refused before the route runs
READABLE_TYPES = frozenset(
    {JSON_CT, "application/xml", "multipart/form-data", "application/x-www-form-urlencoded"}
)
# the modules of the captured instance, as GET /setup/modules lists them for an admin key
BASE_MODULES = (
    "agenda",
    "api",
    "banque",
    "categorie",
    "commande",
    "export",
    "facture",
    "fckeditor",
    "import",
    "product",
    "service",
    "societe",
    "stock",
    "user",
    "variants",
    "webservices",
)

INJECTION_PAGE = "".join(
    [
        "Access refused to {ip} by SQL or Script injection protection in main.inc.php:",
        "analyseVarsForSqlAndScriptsInjection type={type}<br>\n",
        "Try to go back, fix data of your form and resubmit it.",
        " You can contact also your technical support.\n",
        "<!--\npage={page} paramtype={type} paramkey={key} paramvalue={value}\n-->\n",
    ]
)
TECHNICAL_ERROR_PAGE = "<br>\n".join(
    [
        "Dolibarr has detected a technical error.",
        "This information can be useful for diagnostic purposes"
        " (you can set option $dolibarr_main_prod to '1' to hide sensitive information):",
        "<b>Date:</b> {date}",
        "<b>Dolibarr:</b> 20.0.2 - https://www.dolibarr.org",
        "<b>Level of features:</b> 0",
        "<b>Login:</b> admin",
        "<b>PHP:</b> 8.2.36",
        "<b>Server:</b> nginx/1.22.1",
        "<b>OS:</b> Linux vm 6.18.44-fc-v669 #1 SMP PREEMPT_DYNAMIC @0 x86_64",
        "<b>User Agent:</b> {ua}",
        "",
        "<b>Requested URL:</b> {url}",
        "<b>Referer:</b> ",
        "<b>Menu manager:</b> ",
        "",
        "<b>Modules/Applications:</b> user, api, export, agenda, import, fckeditor, service, stock, commande,"
        " facture, societe, banque, categorie, variants, product, webservices",
        "<b>Database type manager:</b> mysqli",
        "<b>Latest database access request error:</b> {query}",
        "<b>Return code for latest database access request error:</b> DB_ERROR_RECORD_ALREADY_EXISTS",
        "<b>Information for latest database access request error:</b> {info}",
        "",
        "",
    ]
)
_PATH_INJECTION = re.compile(r"[:;'\"<>]|\.\./")
_QUERY_INJECTION = re.compile(
    r"<\s*script|javascript\s*:|\bon(error|load|mouseover)\s*=|union\s+select|\bsleep\s*\(|benchmark\s*\(",
    re.IGNORECASE,
)


def _rowid_order(rows: list[Obj], columns: sqlf.Columns, sortfield: str, sortorder: str) -> str | None:
    """``"ASC"`` / ``"DESC"`` when a listing sorts by ``t.rowid`` alone and ``rows`` are already in ascending
    rowid order (a table's rows are: ids are handed out in order), so that sorting would change nothing; else
    None."""
    column = columns.get("t.rowid")
    if sortfield.strip() != "t.rowid" or column is None or column[0] != "int":
        return None
    get = column[1]
    last = -1
    for row in rows:
        value = get(row)
        if isinstance(value, bool) or not isinstance(value, int | str):
            return None
        try:
            number = int(value)
        except ValueError:
            return None
        if number <= last:
            return None
        last = number
    return "DESC" if sortorder.split(",")[0].strip().upper() == "DESC" else "ASC"


def phpify(v: Any) -> Any:
    """json_encode of PHP arrays: an empty array is ``[]``, never ``{}``."""
    if isinstance(v, PhpObject):
        return {k: phpify(x) for k, x in v.items()}
    if isinstance(v, dict):
        return {k: phpify(x) for k, x in v.items()} if v else []
    if isinstance(v, list):
        return [phpify(x) for x in v]
    return v


def json_response(value: Any, status: int = 200) -> web.Response:
    body = json.dumps(phpify(value), ensure_ascii=False)
    return web.Response(status=status, body=body.encode("utf-8"), content_type=JSON_CT, charset="utf-8")


def error_response(err: DolibarrError) -> web.Response:
    if err.raw is not None:
        body, ctype, headers = err.raw
        resp = web.Response(status=err.status, body=body, headers=headers)
        resp.headers["Content-Type"] = ctype
        return resp
    if err.status == 304:
        return web.Response(status=304)
    reason = REASONS.get(err.status, "Error")
    error: dict[str, Any] = {
        "code": err.status,
        "message": f"{reason}: {err.message}" if err.message else reason,
    }
    if err.extra is not None:
        error["0"] = err.extra
        for n, detail in enumerate(err.more, start=1):
            error[str(n)] = detail
    elif err.null_detail:
        error["0"] = None
    success, failure = STAGES.get(err.stage, STAGES["call"])
    payload = {
        "error": error,
        "debug": {
            "source": f"{err.source} at {err.stage} stage",
            "stages": {"success": success, "failure": failure},
        },
    }
    response = json_response(payload, err.status)
    if err.prefix:
        response.body = err.prefix.encode("utf-8") + bytes(response.body)  # type: ignore[arg-type]
    return response


def success(message: str) -> dict[str, Any]:
    return {"success": {"code": 200, "message": message}}


Handler = Callable[..., Awaitable[Any]]


@dataclass
class Ctx:
    request: web.Request
    body: dict[str, Any]
    query: dict[str, str]

    def param(self, name: str, default: Any = None) -> Any:
        if name in self.body:
            return self.body[name]
        return self.query.get(name, default)

    def int_param(self, name: str, default: int = 0) -> int:
        v = self.param(name, None)
        if v in (None, ""):
            return default
        try:
            return int(str(v))
        except ValueError:
            raise DolibarrError(
                400,
                f"invalid value specified for `{name}`. Expecting integer value",
                "Validator.php:410",
                stage="validate",
            ) from None


class DolibarrSim:
    """Routes and handlers; the data lives in ``self.data`` (a :class:`DolibarrData`)."""

    def __init__(self, data: DolibarrData, key: str, options: DolibarrSimOptions) -> None:
        self.data = data
        self.key = key
        self.opts = options
        self.inflight: Counter[str] = Counter()
        self.contention = (
            database.Contention(
                options.deadlock_above,
                options.deadlock_probability,
                options.write_hold_s,
                options.deadlock_seed,
            )
            if options.deadlock_above > 0
            else None
        )

        def overlap(rate: float) -> database.Overlap | None:
            return database.Overlap(rate, options.write_hold_s, options.deadlock_seed) if rate > 0 else None

        self.lost_movements = overlap(options.lost_movement_rate)
        self.variant_failures = overlap(options.variant_failure_rate)
        self.use_indexes = True  # listings narrowed through the model's indexes (dolibarr_indexes.py)
        self.db_pages = 0  # database pages served: their status goes round DB_PAGE_STATUSES
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._build_routes()

    # ------------------------------------------------------------------------------------------------------
    # dispatch
    # ------------------------------------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        rx = re.sub(
            r"\{(\w+)\}",
            lambda m: f"(?P<{m.group(1)}>\\d+)" if m.group(1).endswith("id") else f"(?P<{m.group(1)}>[^/]+)",
            pattern,
        )
        self.routes.append((method, re.compile("^" + rx + "$"), handler))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except DolibarrError as e:
            return error_response(e)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        decoded = unquote(raw_path)
        ip = request.remote or "127.0.0.1"
        if _PATH_INJECTION.search(decoded):
            page = INJECTION_PAGE.format(ip=ip, type=2, page=decoded, key=0, value=decoded)
            return web.Response(status=403, text=page, content_type="text/html", charset="utf-8")
        for k, v in request.query.items():
            if _QUERY_INJECTION.search(v) or _QUERY_INJECTION.search(k):
                page = INJECTION_PAGE.format(ip=ip, type=1, page=decoded, key=k, value=v)
                return web.Response(status=403, text=page, content_type="text/html", charset="utf-8")
        tail = decoded[len(BASE) :].strip("/") if decoded.startswith(BASE) else ""
        api = tail.split("/", 1)[0]
        if api not in KNOWN_APIS:
            return web.Response(
                status=501, text="API not found (failed to include API file)", content_type="text/html"
            )
        # Restler::getRequestFormat(): the Content-Type up to ';', compared as is; none means JSON. A request
        # whose route does not exist gets the route's 404 instead (Restler routes before rethrowing)
        mime = request.headers.get("Content-Type", "").split(";", 1)[0]
        if mime and mime not in READABLE_TYPES:
            if self.match(request.method, tail) is None:
                raise DolibarrError(404, "", "Routes.php:457", stage="route")
            raise DolibarrError(
                403, f"Content type `{mime}` is not supported.", "Restler.php:588", stage="setup"
            )
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT", "PATCH") and request.body_exists:
            raw = await request.read()
            if mime == "application/x-www-form-urlencoded":
                body = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            elif mime in ("application/xml", "multipart/form-data"):
                pass  # not modelled: no client of the simulator sends them
            elif raw.strip():
                try:
                    parsed = json.loads(raw.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    raise DolibarrError(
                        400, "Error encoding/decoding JSON: Syntax error", "JsonFormat.php:154", stage="setup"
                    ) from None
                body = parsed if isinstance(parsed, dict) else {"request_data": parsed}
        key = (
            request.headers.get("DOLAPIKEY") or request.query.get("DOLAPIKEY") or request.query.get("api_key")
        )
        if not key:
            raise DolibarrError(
                401,
                "Failed to login to API. No parameter 'HTTP_DOLAPIKEY' on HTTP header"
                " (and no parameter DOLAPIKEY in URL).",
                "api_access.class.php:219",
                stage="authenticate",
            )
        if key != self.key:
            if self.opts.bad_key_delay_s > 0:
                await asyncio.sleep(self.opts.bad_key_delay_s)
            raise DolibarrError(
                401,
                "Error user not valid (not found with api key or bad status or bad validity dates)"
                " (conf->entity=1)",
                "api_access.class.php:167",
                stage="authenticate",
            )
        ctx = Ctx(request, body, dict(request.query))
        found = self.match(request.method, tail)
        if found is None:
            raise DolibarrError(404, "", "Routes.php:457", stage="route")
        handler, args = found
        if self.opts.connection_charset == "utf8":
            error = database.charset_error(request.method, tail, body)
            if error is not None:
                raise error
            if database.charset_ignored(request.method, tail, body):
                found = self.match("GET", tail)
                assert found is not None
                handler, args = found
        deadlock = database.deadlock_error(request.method, tail) if self.contention is not None else None
        if deadlock is not None and self.contention is not None and await self.contention.deadlocked():
            raise deadlock
        result = await handler(ctx, **args)
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(result)

    def match(self, method: str, tail: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler of a route and its path arguments, or None when no route matches."""
        for verb, rx, handler in self.routes:
            m = rx.match(tail)
            if m and verb == method:
                return handler, m.groupdict()
        return None

    async def deadlock_answer(self, request: web.Request) -> web.StreamResponse | None:
        """The fault plan's ``deadlock``: Dolibarr's answer for a write that can deadlock, None for others."""
        path = request.path
        tail = path[len(BASE) :].strip("/") if path.startswith(BASE) else ""
        error = database.deadlock_error(request.method, tail)
        return None if error is None else error_response(error)

    # ------------------------------------------------------------------------------------------------------
    # the database stopped: the fault plan's outage kinds (dolibarr_database.py says what each is)
    # ------------------------------------------------------------------------------------------------------
    def database_answers(self) -> dict[str, faults.Answer]:
        """``db_page``, ``db_key_lookup``, ``db_user_fetch``, ``db_no_reason``, ``db_file``, ``db_payment_rate``,
        ``db_payment_bank`` and ``database_down`` (each request the answer that fits it: an upload ``db_file``, a
        validation ``db_no_reason``, a payment a third of the time the 400 of its unread invoice rate and a third
        the 400 of its bank line, anything else the page, the key lookup's 503 or now and then the user fetch's
        401, drawn from the plan's seeded random source)."""

        def tail_of(request: web.Request) -> str:
            path = request.path
            return path[len(BASE) :].strip("/") if path.startswith(BASE) else ""

        async def page(request: web.Request) -> web.StreamResponse:
            status = database.DB_PAGE_STATUSES[self.db_pages % len(database.DB_PAGE_STATUSES)]
            self.db_pages += 1
            text = database.database_down_page(request.raw_path, request.headers.get("User-Agent", ""))
            return web.Response(status=status, text=text, content_type="text/html", charset="UTF-8")

        async def key_lookup(request: web.Request) -> web.StreamResponse:
            return error_response(database.key_lookup_error())

        async def user_fetch(request: web.Request) -> web.StreamResponse:
            return error_response(database.user_fetch_error())

        def fitting(
            error_of: Callable[[str, str], DolibarrError | None],
        ) -> Callable[[web.Request], Awaitable[web.StreamResponse | None]]:
            """The answer ``error_of`` gives a request's method and route, or None (the request runs)."""

            async def answer(request: web.Request) -> web.StreamResponse | None:
                error = error_of(request.method, tail_of(request))
                return None if error is None else error_response(error)

            return answer

        no_reason = fitting(database.no_reason_error)
        payment_rate = fitting(database.payment_rate_error)
        payment_bank = fitting(database.payment_bank_error)

        async def file(request: web.Request) -> web.StreamResponse | None:
            if request.method != "POST" or tail_of(request) != "documents/upload":
                return None
            response = await self.handle(request)  # the file lands; its index does not
            if response.status != 200 or not isinstance(response, web.Response) or response.body is None:
                return response
            stored = json.loads(bytes(response.body))  # type: ignore[arg-type]
            body = json.loads(await request.read() or b"{}")
            return error_response(
                database.file_not_moved_error(
                    self.data.DOC_ROOT, body if isinstance(body, dict) else {}, stored
                )
            )

        async def mixed(request: web.Request) -> web.StreamResponse | None:
            for only_some in (file, no_reason):
                answer = await only_some(request)
                if answer is not None:
                    return answer
            rng = request.app[faults.FAULTS_KEY].rng
            # a payment: a third of the time its unread rate, a third its bank line, a third what any call gets
            draw = rng.random()
            if draw < 2 / 3:
                answer = await (payment_rate if draw < 1 / 3 else payment_bank)(request)
                if answer is not None:
                    return answer
            draw = rng.random()
            if draw < 0.05:
                return await user_fetch(request)
            if draw < 0.5:
                return await key_lookup(request)
            return await page(request)

        return {
            "db_page": page,
            "db_key_lookup": key_lookup,
            "db_no_reason": no_reason,
            "db_file": file,
            "db_payment_rate": payment_rate,
            "db_payment_bank": payment_bank,
            "db_user_fetch": user_fetch,
            "database_down": mixed,
        }

    # ------------------------------------------------------------------------------------------------------
    # lists
    # ------------------------------------------------------------------------------------------------------
    def list_rows(
        self,
        ctx: Ctx,
        kind: str,
        rows: list[Obj],
        *,
        source: str,
        what: str,
        not_found: str | None = None,
        default_sort: str = "t.rowid",
        syntax_status: int = 400,
    ) -> Any:
        columns = self.data.columns(kind)
        filters = ctx.query.get("sqlfilters", "")
        if self.use_indexes:  # as MariaDB reads a key: the rows an equality of the filter can match
            rows = indexes.narrow(self.data, kind, rows, filters)
        sortfield = ctx.query.get("sortfield") or default_sort
        sortorder = ctx.query.get("sortorder") or "ASC"
        limit = ctx.int_param("limit", 100)
        page = max(ctx.int_param("page", 0), 0)
        paginated = str(ctx.query.get("pagination_data", "")).lower() in ("1", "true")
        total = 0
        try:
            node = sqlf.parse(filters)
            sqlf.check_columns(node, columns)
            sqlf.sort_key(columns, sortfield)  # an unknown sort column answers before any row is read
            if self.opts.connection_charset == "utf8":
                refused = database.filter_error(filters)
                if refused:
                    raise sqlf.SqlError(refused)
            in_order = _rowid_order(rows, columns, sortfield, sortorder)
            if in_order is None:
                rows = [r for r in rows if sqlf.matches(node, r, columns)]
                rows = sqlf.sort_rows(rows, columns, sortfield, sortorder)
                total = len(rows)
                if limit > 0:
                    rows = rows[limit * page : limit * page + limit]
            else:
                # already in the listing's order (by rowid, the default): no sort, and a page without
                # pagination_data reads only as far as its last row
                ordered = reversed(rows) if in_order == "DESC" else iter(rows)
                found = (r for r in ordered if sqlf.matches(node, r, columns))
                if paginated or limit <= 0:
                    rows = list(found)
                    total = len(rows)
                    if limit > 0:
                        rows = rows[limit * page : limit * page + limit]
                else:
                    rows = list(itertools.islice(found, limit * page, limit * page + limit))
        except sqlf.FilterSyntaxError as e:
            raise DolibarrError(
                syntax_status, f"Error when validating parameter sqlfilters -> {e}", source
            ) from None
        except sqlf.SqlError as e:
            raise DolibarrError(503, f"Error when retrieve {what} list : {e}", source) from None
        if not rows and not_found:
            raise DolibarrError(404, not_found, source)
        props = [p for p in (ctx.query.get("properties") or "").split(",") if p]
        if props:
            rows = [{k: v for k, v in r.items() if k in props} for r in rows]
        if paginated:
            return {
                "data": rows,
                "pagination": {
                    "total": total,
                    "page": page,
                    "page_count": -(-total // limit) if limit > 0 else 1,
                    "limit": limit,
                },
            }
        return rows

    # ------------------------------------------------------------------------------------------------------
    # race quirks
    # ------------------------------------------------------------------------------------------------------
    async def overlapped(self, key: str) -> bool:
        """True when another request of the same kind was already in the handler (race_quirks only)."""
        if not self.opts.race_quirks:
            return False
        was_busy = self.inflight[key] > 0
        self.inflight[key] += 1
        try:
            await asyncio.sleep(self.opts.race_window_s)
        finally:
            self.inflight[key] -= 1
        return was_busy

    # ------------------------------------------------------------------------------------------------------
    # routes
    # ------------------------------------------------------------------------------------------------------
    def _build_routes(self) -> None:
        r = self.route
        d = self.data

        async def status(ctx: Ctx) -> Any:
            now = d.now()
            return {
                "success": {
                    "code": 200,
                    "dolibarr_version": "20.0.2",
                    "access_locked": "0",
                    "environment": "non-production",
                    "timestamp_now_utc": now,
                    "timestamp_php_tz": "UTC",
                    "date_tz": sql_datetime(now),
                }
            }

        r("GET", "status", status)

        # setup -------------------------------------------------------------------------------------------
        async def payment_types(ctx: Ctx) -> Any:
            rows = [dict(p) for p in d.payment_types]
            try:
                node = sqlf.parse(ctx.query.get("sqlfilters", ""))
            except sqlf.FilterSyntaxError as e:
                raise DolibarrError(
                    400, f"Error when validating parameter sqlfilters -> {e}", "api_setup.class.php:180"
                ) from None
            cols: sqlf.Columns = {
                "t.id": ("int", lambda o: o["id"]),
                "t.code": ("str", lambda o: o["code"]),
                "t.libelle": ("str", lambda o: o["label"]),
                "t.type": ("int", lambda o: o["type"]),
            }
            try:
                sqlf.check_columns(node, cols)
            except sqlf.SqlError as e:
                raise DolibarrError(
                    503, f"Error when retrieving list of payment types : {e}", "api_setup.class.php:190"
                ) from None
            rows = [p for p in rows if sqlf.matches(node, p, cols)]
            limit = ctx.int_param("limit", 100)
            return rows[:limit] if limit > 0 else rows

        r("GET", "setup/dictionary/payment_types", payment_types)

        async def payment_terms(ctx: Ctx) -> Any:
            from service.sandbox.dolibarr_table import PAYMENT_TERMS

            return [
                {
                    "id": str(i),
                    "code": c,
                    "sortorder": str(i),
                    "label": label,
                    "descr": label,
                    "type_cdr": "0",
                    "nbjour": str(n),
                    "decalage": None,
                    "module": None,
                }
                for i, (c, label, n) in PAYMENT_TERMS.items()
            ]

        r("GET", "setup/dictionary/payment_terms", payment_terms)

        async def countries(ctx: Ctx) -> Any:
            from service.sandbox.dolibarr_model import COUNTRIES

            return [d.country(cid=c[0]) for c in COUNTRIES]

        r("GET", "setup/dictionary/countries", countries)

        async def country_by_code(ctx: Ctx, code: str) -> Any:
            c = d.country(code=code)
            if c is None:
                raise DolibarrError(404, "country not found", "api_setup.class.php:1290")
            return c

        async def country_by_iso(ctx: Ctx, iso: str) -> Any:
            c = d.country(iso=iso)
            if c is None:
                raise DolibarrError(404, "country not found", "api_setup.class.php:1310")
            return c

        async def country_by_id(ctx: Ctx, id: str) -> Any:
            c = d.country(cid=int(id))
            if c is None:
                raise DolibarrError(404, "country not found", "api_setup.class.php:1270")
            return c

        r("GET", "setup/dictionary/countries/byCode/{code}", country_by_code)
        r("GET", "setup/dictionary/countries/byISO/{iso}", country_by_iso)
        r("GET", "setup/dictionary/countries/{id}", country_by_id)

        async def company(ctx: Ctx) -> Any:
            return d.company

        r("GET", "setup/company", company)

        async def extrafields(ctx: Ctx) -> Any:
            et = ctx.query.get("elementtype") or ""
            out = {k: dict(v) for k, v in d.extrafields.items() if not et or k == et}
            return {k: v for k, v in out.items() if v}

        r("GET", "setup/extrafields", extrafields)

        async def modules(ctx: Ctx) -> Any:
            if self.opts.modules_admin_only:
                raise DolibarrError(
                    403,
                    "Error API open to admin users only or to the users with logins defined into constant"
                    " API_LOGINS_ALLOWED_FOR_GET_MODULES",
                    "api_setup.class.php:2666",
                )
            return self.enabled_modules()

        r("GET", "setup/modules", modules)

        # thirdparties ------------------------------------------------------------------------------------
        async def tp_list(ctx: Ctx) -> Any:
            rows = list(d.thirdparties.values())
            mode = ctx.int_param("mode", 0)
            if mode == 1:
                rows = [t for t in rows if t["client"] in ("1", "3")]
            elif mode == 2:
                rows = [t for t in rows if t["client"] in ("2", "3")]
            elif mode == 3:
                rows = [t for t in rows if t["client"] == "0"]
            elif mode == 4:
                rows = [t for t in rows if t["fournisseur"] == "1"]
            cat = ctx.int_param("category", 0)
            if cat:
                linked = {oid for (_t, oid) in d.category_links.get(cat, {})}
                rows = [t for t in rows if int(t["id"]) in linked]
            out = self.list_rows(
                ctx,
                "thirdparties",
                rows,
                source="api_thirdparties.class.php:180",
                what="thirdparties",
                not_found="Thirdparties not found",
            )
            return [d.thirdparty_out(int(t["id"]), "list") for t in out] if isinstance(out, list) else out

        async def tp_create(ctx: Ctx) -> Any:
            if ctx.body.get("code_client") in ("auto", -1, "-1") and await self.overlapped("thirdparty_auto"):
                raise DolibarrError(
                    500,
                    "Error creating thirdparty",
                    "api_thirdparties.class.php:267",
                    extra="Duplicate value in a unique field",
                )
            return d.create_thirdparty(ctx.body)

        async def tp_get(ctx: Ctx, id: str) -> Any:
            return d.thirdparty_out(int(id))

        async def tp_put(ctx: Ctx, id: str) -> Any:
            return d.update_thirdparty(int(id), ctx.body)

        async def tp_delete(ctx: Ctx, id: str) -> Any:
            d.delete_thirdparty(int(id))
            return success("Object deleted")

        async def tp_by_email(ctx: Ctx, email: str) -> Any:
            t = d.thirdparties.first_by("email", email)
            if t is None:
                raise DolibarrError(404, "Thirdparty not found", "api_thirdparties.class.php:2026")
            return d.thirdparty_out(int(t["id"]))

        async def tp_by_barcode(ctx: Ctx, barcode: str) -> Any:
            t = d.thirdparties.first_by("barcode", barcode)
            if t is None:
                raise DolibarrError(404, "Thirdparty not found", "api_thirdparties.class.php:2026")
            return d.thirdparty_out(int(t["id"]))

        async def tp_categories(ctx: Ctx, id: str) -> Any:
            # api_thirdparties::getCategories fetches the thirdparty, and turns getListForItem's 0 into []
            if int(id) not in d.thirdparties:
                raise DolibarrError(404, "Thirdparty not found", "api_thirdparties.class.php:566")
            return [d.category_short(c) for c in d.categories_of("customer", int(id))]

        async def tp_add_category(ctx: Ctx, id: str, catid: str) -> Any:
            d.thirdparty(int(id))
            c = d.category(int(catid))
            if c["type"] != "2":
                raise DolibarrError(404, "Category not found", "api_thirdparties.class.php:520")
            d.link_category(int(catid), "customer", int(id))
            return d.thirdparty_out(int(id), "category")

        async def tp_del_category(ctx: Ctx, id: str, catid: str) -> Any:
            d.thirdparty(int(id))
            d.unlink_category(int(catid), "customer", int(id))
            return d.thirdparty_out(int(id), "category")

        r("GET", "thirdparties", tp_list)
        r("POST", "thirdparties", tp_create)
        r("GET", "thirdparties/{id}", tp_get)
        r("PUT", "thirdparties/{id}", tp_put)
        r("DELETE", "thirdparties/{id}", tp_delete)
        r("GET", "thirdparties/email/{email}", tp_by_email)
        r("GET", "thirdparties/barcode/{barcode}", tp_by_barcode)
        r("GET", "thirdparties/{id}/categories", tp_categories)
        r("PUT", "thirdparties/{id}/categories/{catid}", tp_add_category)
        r("DELETE", "thirdparties/{id}/categories/{catid}", tp_del_category)

        # contacts ----------------------------------------------------------------------------------------
        async def ct_list(ctx: Ctx) -> Any:
            rows = list(d.contacts.values())
            ids = ctx.query.get("thirdparty_ids")
            if ids:
                wanted = {x for x in ids.split(",") if x}
                rows = [c for c in rows if c["socid"] in wanted]
            return self.list_rows(ctx, "contacts", rows, source="api_contacts.class.php:200", what="contacts")

        async def ct_create(ctx: Ctx) -> Any:
            return d.create_contact(ctx.body)

        async def ct_get(ctx: Ctx, id: str) -> Any:
            return d.contact(int(id))

        async def ct_put(ctx: Ctx, id: str) -> Any:
            return d.update_contact(int(id), ctx.body)

        async def ct_delete(ctx: Ctx, id: str) -> Any:
            d.contact(int(id))
            d.contacts.remove(int(id))
            return success("Contact deleted")

        async def ct_by_email(ctx: Ctx, email: str) -> Any:
            c = d.contacts.first_by("email", email)
            if c is None:
                raise DolibarrError(404, "Contact not found", "api_contacts.class.php:140")
            return c

        r("GET", "contacts", ct_list)
        r("POST", "contacts", ct_create)
        r("GET", "contacts/{id}", ct_get)
        r("PUT", "contacts/{id}", ct_put)
        r("DELETE", "contacts/{id}", ct_delete)
        r("GET", "contacts/email/{email}", ct_by_email)

        # products ----------------------------------------------------------------------------------------
        def with_stock(ctx: Ctx) -> bool:
            return str(ctx.query.get("includestockdata", "0")) in ("1", "true")

        async def pr_list(ctx: Ctx) -> Any:
            rows = list(d.products.values())
            mode = ctx.int_param("mode", 0)
            if mode == 1:
                rows = [p for p in rows if p["type"] == "0"]
            elif mode == 2:
                rows = [p for p in rows if p["type"] == "1"]
            cat = ctx.int_param("category", 0)
            if cat:
                linked = {oid for (t, oid) in d.category_links.get(cat, {}) if t == "product"}
                rows = [p for p in rows if int(p["id"]) in linked]
            vf = ctx.int_param("variant_filter", 0)
            if vf:
                children = {c["fk_product_child"] for c in d.combinations.values()}
                parents = {c["fk_product_parent"] for c in d.combinations.values()}
                if vf == 1:
                    rows = [p for p in rows if p["id"] not in children]
                elif vf == 2:
                    rows = [p for p in rows if p["id"] in parents]
                elif vf == 3:
                    rows = [p for p in rows if p["id"] in children]
            out = self.list_rows(ctx, "products", rows, source="api_products.class.php:228", what="product")
            if str(ctx.query.get("ids_only", "")).lower() in ("1", "true") and isinstance(out, list):
                return [p["id"] for p in out]
            if isinstance(out, list):
                return [d.product_out(int(p["id"]), includestockdata=with_stock(ctx)) for p in out]
            return out

        async def pr_create(ctx: Ctx) -> Any:
            return d.create_product(ctx.body)

        async def pr_get(ctx: Ctx, id: str) -> Any:
            return d.product_out(int(id), includestockdata=with_stock(ctx))

        async def pr_by(field: str, ctx: Ctx, value: str) -> Any:
            p = d.products.first_by(field, value)
            if p is None:
                raise DolibarrError(404, "Product not found", "api_products.class.php:2128")
            return d.product_out(int(p["id"]), includestockdata=with_stock(ctx))

        async def pr_by_ref(ctx: Ctx, ref: str) -> Any:
            return await pr_by("ref", ctx, ref)

        async def pr_by_ref_ext(ctx: Ctx, ref_ext: str) -> Any:
            return await pr_by("ref_ext", ctx, ref_ext)

        async def pr_by_barcode(ctx: Ctx, barcode: str) -> Any:
            return await pr_by("barcode", ctx, barcode)

        async def pr_put(ctx: Ctx, id: str) -> Any:
            return d.update_product(int(id), ctx.body)

        async def pr_delete(ctx: Ctx, id: str) -> Any:
            d.delete_product(int(id), force_conflict=self.opts.delete_product_conflict)
            return success("Object deleted")

        async def pr_categories(ctx: Ctx, id: str) -> Any:
            # api_products::getCategories returns Categorie::getListForItem() as is: 0 when the product is in no
            # category, or does not exist (no fetch)
            cats = d.categories_of("product", int(id)) if int(id) in d.products else []
            return [d.category_short(c) for c in cats] if cats else 0

        async def pr_stock(ctx: Ctx, id: str) -> Any:
            d.product(int(id))
            stock = d.product_stock(int(id))
            wid = ctx.int_param("selected_warehouse_id", 0)
            if wid:
                stock = {k: v for k, v in stock.items() if k == str(wid)}
            if not stock:
                raise DolibarrError(404, "No stock found", "api_products.class.php:1140")
            return {"stock_warehouses": stock}

        async def pr_variants(ctx: Ctx, id: str) -> Any:
            return d.variants_of(int(id))

        async def pr_add_variant(ctx: Ctx, id: str) -> Any:
            failed = self.variant_failures is not None and await self.variant_failures.strikes()
            return d.create_variant(int(id), ctx.body, fail=failed)

        async def pr_put_variant(ctx: Ctx, id: str) -> Any:
            return d.update_variant(int(id), ctx.body)

        r("GET", "products", pr_list)
        r("POST", "products", pr_create)
        r("GET", "products/{id}", pr_get)
        r("PUT", "products/{id}", pr_put)
        r("DELETE", "products/{id}", pr_delete)
        r("GET", "products/ref/{ref}", pr_by_ref)
        r("GET", "products/ref_ext/{ref_ext}", pr_by_ref_ext)
        r("GET", "products/barcode/{barcode}", pr_by_barcode)
        r("GET", "products/{id}/categories", pr_categories)
        r("GET", "products/{id}/stock", pr_stock)
        r("GET", "products/{id}/variants", pr_variants)
        r("POST", "products/{id}/variants", pr_add_variant)
        r("PUT", "products/variants/{id}", pr_put_variant)

        async def at_list(ctx: Ctx) -> Any:
            return self.list_rows(
                ctx,
                "attributes",
                [dict(a) for a in d.attributes.values()],
                source="api_products.class.php:1250",
                what="product attributes",
            )

        async def at_create(ctx: Ctx) -> Any:
            return d.create_attribute(ctx.body)

        async def at_get(ctx: Ctx, id: str) -> Any:
            return d.attribute_short(int(id))

        async def at_put(ctx: Ctx, id: str) -> Any:
            return d.update_attribute(int(id), ctx.body)

        async def at_delete(ctx: Ctx, id: str) -> Any:
            d.delete_attribute(int(id))
            return 1

        async def at_values(ctx: Ctx, id: str) -> Any:
            return d.attribute_values_of(int(id))

        async def at_add_value(ctx: Ctx, id: str) -> Any:
            return d.create_attribute_value(int(id), ctx.body)

        r("GET", "products/attributes", at_list)
        r("POST", "products/attributes", at_create)
        r("GET", "products/attributes/{id}", at_get)
        r("PUT", "products/attributes/{id}", at_put)
        r("DELETE", "products/attributes/{id}", at_delete)
        r("GET", "products/attributes/{id}/values", at_values)
        r("POST", "products/attributes/{id}/values", at_add_value)

        # categories --------------------------------------------------------------------------------------
        async def cat_list(ctx: Ctx) -> Any:
            rows = list(d.categories.values())
            t = ctx.query.get("type")
            if t:
                from service.sandbox.dolibarr_model import CATEGORY_TYPES

                tid = CATEGORY_TYPES.get(t, -1) if not t.isdigit() else int(t)
                rows = [c for c in rows if c["type"] == str(tid)]
            return self.list_rows(
                ctx,
                "categories",
                [dict(c) for c in rows],
                source="api_categories.class.php:170",
                what="category",
                not_found="No category found",
            )

        async def cat_create(ctx: Ctx) -> Any:
            return d.create_category(ctx.body)

        async def cat_get(ctx: Ctx, id: str) -> Any:
            return dict(d.category(int(id)))

        async def cat_put(ctx: Ctx, id: str) -> Any:
            return d.update_category(int(id), ctx.body)

        async def cat_delete(ctx: Ctx, id: str) -> Any:
            d.delete_category(int(id))
            return success("Category deleted")

        async def cat_objects(ctx: Ctx, id: str) -> Any:
            d.category(int(id))
            otype = ctx.query.get("type")
            if not otype:
                raise DolibarrError(400, "`type` is required.", "Validator.php:436", stage="validate")
            ids = sorted(oid for (t, oid) in d.category_links.get(int(id), {}) if t == otype)
            if otype == "product":
                return [d.product_out(i) for i in ids if i in d.products]
            if otype in ("customer", "supplier"):
                return [d.thirdparty_out(i, "list") for i in ids if i in d.thirdparties]
            if otype == "contact":
                return [d.contacts[i] for i in ids if i in d.contacts]
            raise DolibarrError(
                503, "Error when retrieving objects list : Unknown type", "api_categories.class.php:680"
            )

        async def cat_link(ctx: Ctx, id: str, otype: str, objid: str) -> Any:
            d.link_category(int(id), otype, int(objid))
            return success("Objects successfully linked to the category")

        async def cat_unlink(ctx: Ctx, id: str, otype: str, objid: str) -> Any:
            d.unlink_category(int(id), otype, int(objid))
            return success("Objects successfully unlinked from the category")

        r("GET", "categories", cat_list)
        r("POST", "categories", cat_create)
        r("GET", "categories/{id}", cat_get)
        r("PUT", "categories/{id}", cat_put)
        r("DELETE", "categories/{id}", cat_delete)
        r("GET", "categories/{id}/objects", cat_objects)
        r("POST", "categories/{id}/objects/{otype}/{objid}", cat_link)
        r("DELETE", "categories/{id}/objects/{otype}/{objid}", cat_unlink)

        # warehouses, stock, bank -------------------------------------------------------------------------
        async def wh_list(ctx: Ctx) -> Any:
            return self.list_rows(
                ctx,
                "warehouses",
                [dict(w) for w in d.warehouses.values()],
                source="api_warehouses.class.php:160",
                what="warehouse",
            )

        async def wh_get(ctx: Ctx, id: str) -> Any:
            return d.warehouse(int(id))

        async def sm_list(ctx: Ctx) -> Any:
            return self.list_rows(
                ctx,
                "stock_movements",
                [dict(m) for m in d.stock_movements.values()],
                source="api_stockmovements.class.php:130",
                what="stock movement",
            )

        async def sm_create(ctx: Ctx) -> Any:
            for f in ("product_id", "warehouse_id", "qty"):
                if ctx.body.get(f) is None:
                    raise DolibarrError(400, f"`{f}` is required.", "Validator.php:436", stage="validate")
            lost = self.lost_movements is not None and await self.lost_movements.strikes()
            return d.move_stock(
                ctx.int_param("product_id"),
                ctx.int_param("warehouse_id"),
                dec(ctx.body["qty"]),
                label=str(ctx.body.get("movementlabel") or ""),
                inventorycode=ctx.body.get("movementcode") or None,
                price=dec(ctx.body.get("price"), "0"),
                kept=not lost,
            )

        # api_multicurrencies: a module that is off grants no rights, so its API file loads and answers 403
        # (live 20.0.2); the rights are checked after the mandatory fields on a create, after the fetch on a get
        def mc_denied(message: str, source: str, *, write: bool = False) -> None:
            if not d.multicurrency_enabled or (write and not self.opts.multicurrency_write):
                raise DolibarrError(403, message, f"api_multicurrencies.class.php:{source}")

        async def mc_list(ctx: Ctx) -> Any:
            mc_denied("Insufficient rights to read currency", "61")
            rows = [dict(c) for c in d.currencies.values()]
            out = self.list_rows(
                ctx,
                "currencies",
                rows,
                source="api_multicurrencies.class.php:103",
                what="currencies",
                syntax_status=503,
            )
            return [d.currency_out(int(c["id"])) for c in out] if isinstance(out, list) else out

        async def mc_get(ctx: Ctx, id: str) -> Any:
            out = d.currency_out(int(id))
            mc_denied("Insufficient rights to read currency", "127")
            return out

        async def mc_by_code(ctx: Ctx, code: str) -> Any:
            cid = d.currency_id(code)
            if not cid:
                raise DolibarrError(404, "Currency not found", "api_multicurrencies.class.php:148")
            mc_denied("Insufficient rights to read currency", "152")
            return d.currency_out(cid)

        async def mc_create(ctx: Ctx) -> Any:
            for f, line in (("code", 205), ("name", 208)):
                if ctx.body.get(f) is None:  # !isset()
                    raise DolibarrError(400, f"{f} field missing", f"api_multicurrencies.class.php:{line}")
            mc_denied("Insufficient rights to create currency", "212", write=True)
            cid = d.add_currency(str(alphanohtml(ctx.body["code"])), str(alphanohtml(ctx.body["name"])))
            rate = dec(ctx.body.get("rate"), "0")
            if rate > 0:  # isset($request_data['rate']) && $request_data['rate'] > 0: addRate()
                d.add_currency_rate(cid, rate)
            return cid

        r("GET", "multicurrencies", mc_list)
        r("POST", "multicurrencies", mc_create)
        r("GET", "multicurrencies/{id}", mc_get)
        r("GET", "multicurrencies/bycode/{code}", mc_by_code)

        async def ba_list(ctx: Ctx) -> Any:
            return self.list_rows(
                ctx,
                "bank_accounts",
                [dict(b) for b in d.bank_accounts.values()],
                source="api_bankaccounts.class.php:120",
                what="bank account",
            )

        async def ba_get(ctx: Ctx, id: str) -> Any:
            b = d.bank_accounts.get(int(id))
            if b is None:
                raise DolibarrError(404, "account not found", "api_bankaccounts.class.php:150")
            return b

        r("GET", "warehouses", wh_list)
        r("GET", "warehouses/{id}", wh_get)
        r("GET", "stockmovements", sm_list)
        r("POST", "stockmovements", sm_create)
        r("GET", "bankaccounts", ba_list)
        r("GET", "bankaccounts/{id}", ba_get)

        # orders ------------------------------------------------------------------------------------------
        async def or_list(ctx: Ctx) -> Any:
            rows = list(d.orders.values())
            ids = ctx.query.get("thirdparty_ids")
            if ids:
                wanted = {x for x in ids.split(",") if x}
                rows = [o for o in rows if o["socid"] in wanted]
            out = self.list_rows(ctx, "orders", rows, source="api_orders.class.php:230", what="commande")
            return [d.order_out(int(o["id"]), "list") for o in out] if isinstance(out, list) else out

        async def or_create(ctx: Ctx) -> Any:
            return d.create_order(ctx.body)

        async def or_get(ctx: Ctx, id: str) -> Any:
            return d.order_out(int(id))

        async def or_by(field: str, value: str) -> Any:
            o = d.orders.first_by(field, value)
            if o is None:
                raise DolibarrError(404, "Order not found", "api_orders.class.php:127")
            return d.order_out(int(o["id"]))

        async def or_by_ref(ctx: Ctx, ref: str) -> Any:
            return await or_by("ref", ref)

        async def or_by_ref_ext(ctx: Ctx, ref_ext: str) -> Any:
            return await or_by("ref_ext", ref_ext)

        async def or_put(ctx: Ctx, id: str) -> Any:
            return d.update_order(int(id), ctx.body)

        async def or_delete(ctx: Ctx, id: str) -> Any:
            d.delete_order(int(id))
            return success("Order deleted")

        async def or_lines(ctx: Ctx, id: str) -> Any:
            return d.order_lines_out(int(id))

        async def or_add_line(ctx: Ctx, id: str) -> Any:
            return d.add_order_line(int(id), ctx.body)

        async def or_put_line(ctx: Ctx, id: str, lineid: str) -> Any:
            return d.update_order_line(int(id), int(lineid), ctx.body)

        async def or_del_line(ctx: Ctx, id: str, lineid: str) -> Any:
            d.delete_order_line(int(id), int(lineid))
            return success("Line deleted")

        async def or_validate(ctx: Ctx, id: str) -> Any:
            oid = int(id)
            o = d.order(oid, source="api_orders.class.php:710")
            if int(o["status"]) == 0 and self.opts.race_quirks:
                ref = d.next_order_ref(oid)
                if await self.overlapped("validate_order"):
                    raise self._order_race_error(ctx, oid, ref)
            return d.validate_order(oid, ctx.int_param("idwarehouse", 0))

        async def or_close(ctx: Ctx, id: str) -> Any:
            return d.close_order(int(id))

        async def or_setinvoiced(ctx: Ctx, id: str) -> Any:
            return d.set_order_invoiced(int(id))

        async def or_reopen(ctx: Ctx, id: str) -> Any:
            return d.reopen_order(int(id))

        async def or_settodraft(ctx: Ctx, id: str) -> Any:
            return d.order_to_draft(int(id), ctx.int_param("idwarehouse", -1))

        r("GET", "orders", or_list)
        r("POST", "orders", or_create)
        r("GET", "orders/{id}", or_get)
        r("PUT", "orders/{id}", or_put)
        r("DELETE", "orders/{id}", or_delete)
        r("GET", "orders/ref/{ref}", or_by_ref)
        r("GET", "orders/ref_ext/{ref_ext}", or_by_ref_ext)
        r("GET", "orders/{id}/lines", or_lines)
        r("POST", "orders/{id}/lines", or_add_line)
        r("PUT", "orders/{id}/lines/{lineid}", or_put_line)
        r("DELETE", "orders/{id}/lines/{lineid}", or_del_line)
        r("POST", "orders/{id}/validate", or_validate)
        r("POST", "orders/{id}/close", or_close)
        r("POST", "orders/{id}/setinvoiced", or_setinvoiced)
        r("POST", "orders/{id}/reopen", or_reopen)
        r("POST", "orders/{id}/settodraft", or_settodraft)

        async def or_contact(ctx: Ctx, id: str, contactid: str, type: str) -> Any:
            return d.link_contact("commande", int(id), int(contactid), type)

        r("POST", "orders/{id}/contact/{contactid}/{type}", or_contact)

        # invoices ----------------------------------------------------------------------------------------
        async def in_list(ctx: Ctx) -> Any:
            rows = list(d.invoices.values())
            ids = ctx.query.get("thirdparty_ids")
            if ids:
                wanted = {x for x in ids.split(",") if x}
                rows = [i for i in rows if i["socid"] in wanted]
            st = ctx.query.get("status")
            wanted_status = {"draft": "0", "unpaid": "1", "paid": "2", "cancelled": "3"}.get(st or "")
            if wanted_status is not None:
                rows = [i for i in rows if i["status"] == wanted_status]
            out = self.list_rows(ctx, "invoices", rows, source="api_invoices.class.php:260", what="invoice")
            return [d.invoice_out(int(i["id"]), "list") for i in out] if isinstance(out, list) else out

        async def in_create(ctx: Ctx) -> Any:
            return d.create_invoice(ctx.body)

        async def in_get(ctx: Ctx, id: str) -> Any:
            return d.invoice_out(int(id))

        async def in_by(field: str, value: str) -> Any:
            i = d.invoices.first_by(field, value)
            if i is None:
                raise DolibarrError(404, "Invoice not found", "api_invoices.class.php:139")
            return d.invoice_out(int(i["id"]))

        async def in_by_ref(ctx: Ctx, ref: str) -> Any:
            return await in_by("ref", ref)

        async def in_by_ref_ext(ctx: Ctx, ref_ext: str) -> Any:
            return await in_by("ref_ext", ref_ext)

        async def in_put(ctx: Ctx, id: str) -> Any:
            return d.update_invoice(int(id), ctx.body)

        async def in_delete(ctx: Ctx, id: str) -> Any:
            d.delete_invoice(int(id))
            return success("Invoice deleted")

        async def in_lines(ctx: Ctx, id: str) -> Any:
            return d.invoice_lines_out(int(id))

        async def in_add_line(ctx: Ctx, id: str) -> Any:
            return d.add_invoice_line(int(id), ctx.body)

        async def in_put_line(ctx: Ctx, id: str, lineid: str) -> Any:
            return d.update_invoice_line(int(id), int(lineid), ctx.body)

        async def in_del_line(ctx: Ctx, id: str, lineid: str) -> Any:
            d.delete_invoice_line(int(id), int(lineid))
            return success("Line deleted")

        async def in_validate(ctx: Ctx, id: str) -> Any:
            iid = int(id)
            inv = d.invoice(iid, source="api_invoices.class.php:1120")
            if int(inv["status"]) == 0 and inv["lines"] and self.opts.race_quirks:
                ref = d.next_invoice_ref(iid)
                if await self.overlapped("validate_invoice"):
                    raise DolibarrError(
                        500,
                        f"Error when validating Invoice: Duplicate entry '{ref}-1' for key 'uk_facture_ref'",
                        "api_invoices.class.php:1143",
                    )
            return d.validate_invoice(iid, ctx.int_param("idwarehouse", 0))

        async def in_settodraft(ctx: Ctx, id: str) -> Any:
            return d.invoice_to_draft(int(id))

        async def in_settopaid(ctx: Ctx, id: str) -> Any:
            return d.invoice_set_paid(
                int(id), str(ctx.param("close_code", "") or ""), str(ctx.param("close_note", "") or "")
            )

        async def in_settounpaid(ctx: Ctx, id: str) -> Any:
            return d.invoice_set_unpaid(int(id))

        async def in_payments(ctx: Ctx, id: str) -> Any:
            return d.payments_of(int(id))

        async def in_add_payment(ctx: Ctx, id: str) -> Any:
            return d.add_payment(int(id), {**ctx.query, **ctx.body})

        async def in_distributed(ctx: Ctx) -> Any:
            return d.add_payment_distributed({**ctx.query, **ctx.body})

        async def in_from_order(ctx: Ctx, orderid: str) -> Any:
            return d.create_invoice_from_order(int(orderid))

        r("GET", "invoices", in_list)
        r("POST", "invoices", in_create)
        r("POST", "invoices/paymentsdistributed", in_distributed)
        r("POST", "invoices/createfromorder/{orderid}", in_from_order)
        r("GET", "invoices/{id}", in_get)
        r("PUT", "invoices/{id}", in_put)
        r("DELETE", "invoices/{id}", in_delete)
        r("GET", "invoices/ref/{ref}", in_by_ref)
        r("GET", "invoices/ref_ext/{ref_ext}", in_by_ref_ext)
        r("GET", "invoices/{id}/lines", in_lines)
        r("POST", "invoices/{id}/lines", in_add_line)
        r("PUT", "invoices/{id}/lines/{lineid}", in_put_line)
        r("DELETE", "invoices/{id}/lines/{lineid}", in_del_line)
        r("POST", "invoices/{id}/validate", in_validate)
        r("POST", "invoices/{id}/settodraft", in_settodraft)
        r("POST", "invoices/{id}/settopaid", in_settopaid)
        r("POST", "invoices/{id}/settounpaid", in_settounpaid)
        r("GET", "invoices/{id}/payments", in_payments)
        r("POST", "invoices/{id}/payments", in_add_payment)

        async def in_contact(ctx: Ctx, id: str, contactid: str, type: str) -> Any:
            return d.link_contact("facture", int(id), int(contactid), type)

        r("POST", "invoices/{id}/contact/{contactid}/{type}", in_contact)

        # documents ---------------------------------------------------------------------------------------
        def modulepart(ctx: Ctx) -> str:
            mp = ctx.param("modulepart")
            if not mp:
                raise DolibarrError(400, "`modulepart` is required.", "Validator.php:436", stage="validate")
            return str(mp)

        async def doc_list(ctx: Ctx) -> Any:
            mp = modulepart(ctx)
            oid = ctx.int_param("id", 0)
            ref = ctx.query.get("ref") or None
            if not oid and not ref:
                raise DolibarrError(400, "bad value for parameter id or ref", "api_documents.class.php:300")
            return d.list_documents(mp, oid=oid or None, ref=ref)

        async def doc_upload(ctx: Ctx) -> Any:
            return d.upload_document(ctx.body)

        async def doc_delete(ctx: Ctx) -> Any:
            mp = modulepart(ctx)
            f = ctx.query.get("original_file")
            if not f:
                raise DolibarrError(
                    400, "`original_file` is required.", "Validator.php:436", stage="validate"
                )
            d.delete_document(mp, f)
            return success("Document deleted")

        async def doc_download(ctx: Ctx) -> Any:
            mp = modulepart(ctx)
            f = ctx.query.get("original_file")
            if not f:
                raise DolibarrError(
                    400, "bad value for parameter original_file", "api_documents.class.php:90"
                )
            return d.document_content(mp, f)

        r("GET", "documents", doc_list)
        r("POST", "documents/upload", doc_upload)
        r("DELETE", "documents", doc_delete)
        r("GET", "documents/download", doc_download)

    def enabled_modules(self) -> list[str]:
        """``$conf->modules`` sorted, as ``GET /setup/modules`` gives it to an admin."""
        extra = ["multicurrency"] if self.data.multicurrency_enabled else []
        return sorted([*BASE_MODULES, *extra])

    def _order_race_error(self, ctx: Ctx, oid: int, ref: str) -> DolibarrError:
        """quirks/orders.validate.concurrent.500.raw.txt: Dolibarr's HTML technical error page, then the
        gzip-compressed JSON error, under ``Content-Encoding: gzip``."""
        now = time.time()
        page = TECHNICAL_ERROR_PAGE.format(
            date=utc(now).strftime("%Y%m%d%H%M%S"),
            ua=ctx.request.headers.get("User-Agent", ""),
            url=ctx.request.path,
            query=(
                f"UPDATE llx_commande SET ref = '{ref}', fk_statut = 1, date_valid='{sql_datetime(now)}',"
                f" fk_user_valid = 1, fk_user_modif = 1 WHERE rowid = {oid}"
            ),
            info=f"Duplicate entry '{ref}-1' for key 'uk_commande_ref'",
        )
        err = {
            "error": {
                "code": 500,
                "message": "Internal Server Error: Error when validating Order:"
                f" Duplicate entry '{ref}-1' for key 'uk_commande_ref'",
            },
            "debug": {
                "source": "api_orders.class.php:754 at call stage",
                "stages": {"success": STAGES["call"][0], "failure": STAGES["call"][1]},
            },
        }
        body = page.encode("utf-8") + gzip.compress(json.dumps(err, indent=4).encode("utf-8"))
        return DolibarrError(
            500,
            raw=(body, "application/json; charset=utf-8", {"Content-Encoding": "gzip", "Vary": "Accept"}),
        )


SIM_KEY = web.AppKey("dolibarr_sim", DolibarrSim)


def create_app(
    data: DolibarrData | None = None,
    *,
    key: str = DEFAULT_KEY,
    options: DolibarrSimOptions | None = None,
    faults: faults.FaultPlan | None = None,
) -> web.Application:
    """The simulator as an aiohttp app; ``app[DATA_KEY]`` is the model, ``app[SIM_KEY]`` the router."""
    from service.sandbox import faults as faults_mod

    opts = options or DolibarrSimOptions()
    if data is None:
        data = DolibarrData(
            main_currency=opts.main_currency, multicurrency_enabled=opts.multicurrency_enabled
        )
    else:
        data.main_currency = opts.main_currency
        data.multicurrency_enabled = opts.multicurrency_enabled
        data.ensure_main_currency()
    sim = DolibarrSim(data, key, opts)
    app = web.Application(client_max_size=64 * 1024**2)
    app[DATA_KEY] = data
    app[SIM_KEY] = sim
    faults_mod.install(app, faults, answers={"deadlock": sim.deadlock_answer, **sim.database_answers()})
    app.router.add_route("*", "/{tail:.*}", sim.handle)
    return app


async def _serve(port: int, key: str, host: str) -> None:
    from service.sandbox.runner import start_app

    server = await start_app(create_app(key=key), host=host, port=port)
    print(f"Dolibarr 20.0.2 simulator on {server.url}{BASE}  (DOLAPIKEY: {key})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Dolibarr 20.0.2 REST API simulator")
    ap.add_argument("--port", type=int, default=9002)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--key", default=DEFAULT_KEY)
    a = ap.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(a.port, a.key, a.host))


if __name__ == "__main__":
    main()
