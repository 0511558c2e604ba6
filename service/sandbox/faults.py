"""Fault injection and request accounting shared by both simulators.

A simulator app gets one :class:`FaultPlan` and one :class:`RequestLog` (stored on the app under
``app["faults"]`` and ``app["requests"]``) through :func:`install`. Tests and the demo turn knobs on the plan
while the server runs; the middleware reads them on every request. The random source is seeded so a failing
fault run can be replayed.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_NUMERIC_SEGMENT = re.compile(r"(?<=/)\d+(?=/|$)")


def path_template(path: str) -> str:
    """``/api/index.php/products/12/lines`` -> ``/api/index.php/products/{id}/lines``."""
    return _NUMERIC_SEGMENT.sub("{id}", path)


RECENT_REQUESTS = 10_000  # how many requests RequestLog.raw keeps, newest last


@dataclass
class RequestLog:
    """Counts requests by ``(METHOD, path template)`` so tests can assert how many writes a pass made.

    ``counts`` holds every request ever recorded (one counter per route: bounded by the routes, not by the
    requests); ``raw`` only the last ``RECENT_REQUESTS`` ``(METHOD, path)`` pairs and ``queries`` the same with
    the query string, newest last, so that a 100k-record run does not hold millions of entries. A test that reads
    them resets the log first or reads fewer requests than that."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    raw: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=RECENT_REQUESTS))
    queries: deque[tuple[str, str, str]] = field(default_factory=lambda: deque(maxlen=RECENT_REQUESTS))

    def record(self, method: str, path: str, query: str = "") -> None:
        self.counts[(method, path_template(path))] += 1
        self.raw.append((method, path))
        self.queries.append((method, path, query))

    def total(self, method: str | None = None, contains: str = "") -> int:
        return sum(
            n for (m, p), n in self.counts.items() if (method is None or m == method) and contains in p
        )

    def writes(self, contains: str = "") -> int:
        return sum(self.total(m, contains) for m in ("POST", "PUT", "DELETE", "PATCH"))

    def reset(self) -> None:
        self.counts.clear()
        self.raw.clear()
        self.queries.clear()


@dataclass
class FaultPlan:
    """What goes wrong, and how often. All rates are probabilities in [0, 1] per request.

    ``only_methods`` / ``only_paths`` restrict where faults apply (a substring of the path); ``fail_next``
    forces the next N matching requests to fail with ``fail_next_kind`` whatever the rates say.
    Faults are decided *before* the handler runs, except ``error_after_rate`` which runs the handler (the
    write happens) and then answers 500 or resets: the "ambiguous write" a client must look up before retrying.

    An *outage* (:meth:`start_outage`) gives every request one kind for a while - ``seconds`` of wall time
    and/or the next ``requests`` requests it applies to (``only_methods`` / ``only_paths`` still restrict it;
    the rates and ``fail_next`` wait until it ends), then ends by itself: Dolibarr's database stopped (``database_down`` and its single answers
    ``db_page``, ``db_key_lookup``, ``db_user_fetch``, ``db_no_reason``, ``db_file``, ``db_payment_rate``,
    ``db_payment_bank``), the shop's webservice switched off
    (``webservice_off``). Those kinds are worded by the simulator (``install(answers=...)``); a kind whose
    answer does not fit a request (``db_file`` on anything but an upload) lets it run and is not counted.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0  # 5xx HTML page, handler not run
    timeout_rate: float = 0.0  # read the request, sleep `timeout_s`, then run it (a write lands late)
    timeout_s: float = 30.0
    reset_rate: float = 0.0  # close the connection without an answer, handler not run
    error_after_rate: float = 0.0  # handler runs, then 500 / reset (ambiguous write)
    html_rate: float = 0.0  # 200 with an HTML page instead of the body
    truncate_rate: float = 0.0  # 200 with the body cut in half
    # the database lost a deadlock: the simulator's own answer (Dolibarr: POST /products, /orders,
    # /stockmovements), handler not run; requests that cannot deadlock run normally
    deadlock_rate: float = 0.0
    only_methods: frozenset[str] | None = None
    only_paths: tuple[str, ...] = ()
    fail_next: int = 0
    # error | reset | html | truncate | error_after | timeout | unauthorized | throttle | deadlock, and the
    # outage kinds of the simulators (database_down, db_page, db_key_lookup, db_no_reason, db_file,
    # db_payment_rate, db_payment_bank, db_user_fetch, webservice_off)
    fail_next_kind: str = "error"
    retry_after_s: int = 30  # the Retry-After of a "throttle" answer (429 Too Many Requests)
    down: bool = False  # every request answers 503 HTML (a side that is down)
    # an outage of one kind (start_outage): until outage_until (time.monotonic(), 0 = no time limit) and/or for
    # outage_requests more requests (None = no count limit); both None/0 with a kind: until end_outage()
    outage_kind: str = ""
    outage_until: float = 0.0
    outage_requests: int | None = None
    seed: int = 1
    rng: random.Random = field(default_factory=random.Random)
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)

    def applies_to(self, method: str, path: str) -> bool:
        if self.only_methods is not None and method not in self.only_methods:
            return False
        return not self.only_paths or any(p in path for p in self.only_paths)

    def clear(self) -> None:
        self.latency_s = 0.0
        self.error_rate = self.timeout_rate = self.reset_rate = 0.0
        self.error_after_rate = self.html_rate = self.truncate_rate = self.deadlock_rate = 0.0
        self.only_methods = None
        self.only_paths = ()
        self.fail_next = 0
        self.down = False
        self.end_outage()

    def start_outage(self, kind: str, *, seconds: float | None = None, requests: int | None = None) -> None:
        """Every request gets ``kind`` for ``seconds`` and/or the next ``requests`` requests (neither: until
        :meth:`end_outage`)."""
        self.outage_kind = kind
        self.outage_until = time.monotonic() + seconds if seconds is not None else 0.0
        self.outage_requests = requests

    def end_outage(self) -> None:
        self.outage_kind = ""
        self.outage_until = 0.0
        self.outage_requests = None

    @property
    def outage(self) -> str:
        """The kind of the outage going on, or ``""`` (an outage past its time or count ends here)."""
        if not self.outage_kind:
            return ""
        timed_out = self.outage_until and time.monotonic() >= self.outage_until
        if timed_out or (self.outage_requests is not None and self.outage_requests <= 0):
            self.end_outage()
        return self.outage_kind

    def outage_served(self) -> None:
        """One request got the outage's answer (counts toward ``requests``)."""
        if self.outage_requests is not None:
            self.outage_requests -= 1

    def draw(self, method: str, path: str) -> str | None:
        """The fault to inject for this request, or None."""
        if self.down:
            return "down"
        if not self.applies_to(method, path):
            return None
        if self.outage:
            return self.outage_kind
        if self.fail_next > 0:
            self.fail_next -= 1
            return self.fail_next_kind
        r = self.rng.random()
        for kind, rate in (
            ("error", self.error_rate),
            ("timeout", self.timeout_rate),
            ("reset", self.reset_rate),
            ("error_after", self.error_after_rate),
            ("html", self.html_rate),
            ("truncate", self.truncate_rate),
            ("deadlock", self.deadlock_rate),
        ):
            if r < rate:
                return kind
            r -= rate
        return None


# a fault kind whose answer only the simulator knows (Dolibarr's deadlock bodies): None = this request cannot
# fail that way, it runs normally
Answer = Callable[[web.Request], Awaitable[web.StreamResponse | None]]

FAULTS_KEY: web.AppKey[FaultPlan] = web.AppKey("faults", FaultPlan)
REQUESTS_KEY: web.AppKey[RequestLog] = web.AppKey("requests", RequestLog)
ANSWERS_KEY: web.AppKey[dict[str, Answer]] = web.AppKey("fault_answers", dict)

HTML_ERROR_PAGE = (
    "<html><head><title>500 Internal Server Error</title></head><body>"
    "<h1>Internal Server Error</h1><p>The server encountered an internal error.</p></body></html>"
)
HTML_DOWN_PAGE = (
    "<html><head><title>503 Service Unavailable</title></head><body>"
    "<h1>Service Unavailable</h1></body></html>"
)


def _reset(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise ConnectionResetError("fault injection: connection reset")


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    plan = request.app[FAULTS_KEY]
    request.app[REQUESTS_KEY].record(request.method, request.path, request.query_string)
    if plan.latency_s:
        await asyncio.sleep(plan.latency_s)
    kind = plan.draw(request.method, request.path)
    if kind is None:
        return await handler(request)
    answers = request.app[ANSWERS_KEY]
    if kind in answers:
        answer = await answers[kind](request)
        if answer is None:
            return await handler(request)
        plan.injected[kind] += 1
        if kind == plan.outage_kind:
            plan.outage_served()
        return answer
    plan.injected[kind] += 1
    if kind == plan.outage_kind:
        plan.outage_served()
    if kind == "down":
        return web.Response(status=503, text=HTML_DOWN_PAGE, content_type="text/html")
    if kind == "error":
        return web.Response(status=500, text=HTML_ERROR_PAGE, content_type="text/html")
    if kind == "throttle":  # a rate limiter (a proxy or the server) asking to come back later
        return web.Response(
            status=429, text="Too Many Requests", headers={"Retry-After": str(plan.retry_after_s)}
        )
    if kind == "unauthorized":  # a key that lost its permission, as PrestaShop and Apache answer it
        return web.Response(
            status=401,
            text="401 Unauthorized",
            content_type="text/html",
            headers={
                "WWW-Authenticate": 'Basic realm="Welcome to PrestaShop Webservice, please enter the authentication key as the login. No password required."'
            },
        )
    if kind == "reset":
        return _reset(request)
    if kind == "timeout":
        # a slow server already holds the request: a write still happens, late, after the client gave up
        await request.read()
        await asyncio.sleep(plan.timeout_s)
        return await handler(request)
    response = await handler(request)
    if kind == "error_after":
        if plan.rng.random() < 0.5:
            return _reset(request)
        return web.Response(status=502, text=HTML_ERROR_PAGE, content_type="text/html")
    if kind == "html":
        return web.Response(status=200, text=HTML_ERROR_PAGE, content_type="text/html")
    if kind == "truncate" and isinstance(response, web.Response) and response.body:
        body = bytes(response.body)  # type: ignore[arg-type]
        return web.Response(
            status=response.status, body=body[: len(body) // 2], content_type=response.content_type
        )
    return response


def install(
    app: web.Application, plan: FaultPlan | None = None, *, answers: dict[str, Answer] | None = None
) -> None:
    """Attach a fault plan, a request log and the middleware to a simulator app (before it starts).
    ``answers``: the simulator's own answer for fault kinds only it can word (``deadlock``, the database's
    outage answers, ``webservice_off``)."""
    app[FAULTS_KEY] = plan or FaultPlan()
    app[REQUESTS_KEY] = RequestLog()
    app[ANSWERS_KEY] = dict(answers or {})
    app.middlewares.insert(0, fault_middleware)
