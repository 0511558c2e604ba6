"""DolibarrRestClient over real sockets: aiohttp test servers serving the answers captured from Dolibarr
20.0.2 (shared/reference/dolibarr) plus crafted failures replayed byte for byte."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.dolibarr.errors import (
    CategoryAlreadyExists,
    DatabaseBusy,
    ObjectInUse,
    RefAlreadyExists,
    classify,
    read_body,
)
from service.dolibarr.model import (
    CategoryPayload,
    DocumentPayload,
    LinePayload,
    PaymentPayload,
    ProductPayload,
    Ref,
    ThirdpartyPayload,
)
from service.dolibarr.port import DolibarrPort
from service.dolibarr.rest import DolibarrRestClient, line_body, product_body
from service.errors import (
    AmbiguousWrite,
    BadResponse,
    ConfigError,
    NotFound,
    PermanentError,
    TransientError,
    Where,
)
from service.sandbox import dolibarr_sim
from service.sandbox.dolibarr_model import DolibarrData
from service.sandbox.dolibarr_sim import DolibarrSimOptions
from service.sandbox.faults import FaultPlan
from service.sandbox.runner import start_app
from service.settings import DolibarrSettings, RetrySettings, Secret

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "dolibarr"
pytestmark = pytest.mark.skipif(
    not (REFERENCE / "rest").is_dir(), reason=f"Dolibarr captures not found at {REFERENCE}"
)

KEY = "k3yS3cr3tValue0123456789abcdefXYZ"
API = "/api/index.php"
NOT_FOUND_ROUTE = b"API not found (failed to include API file)"


def captured(name: str, part: str = "response") -> bytes:
    return (REFERENCE / "rest" / f"{name}.{part}.json").read_bytes()


def captured_json(name: str, part: str = "response") -> Any:
    return json.loads(captured(name, part))


def subset(expected: dict[str, Any], actual: dict[str, Any], *, without: tuple[str, ...] = ()) -> None:
    for key, value in expected.items():
        if key in without:
            continue
        assert key in actual, f"{key} missing from {actual}"
        assert actual[key] == value, f"{key}: {actual[key]!r} != {value!r}"


# ------------------------------------------------------------------------------------------- fake server


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


Responder = Callable[[web.Request, "re.Match[str]"], Awaitable[web.StreamResponse]]


@dataclass
class FakeDolibarr:
    """Routes (method, path regex under /api/index.php) to captured bodies; unknown routes answer 501 like
    Dolibarr does for an API it cannot load."""

    routes: list[tuple[str, re.Pattern[str], Responder]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def on(
        self,
        method: str,
        pattern: str,
        body: bytes | str | Any = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        raw = (
            body
            if isinstance(body, bytes)
            else body.encode()
            if isinstance(body, str)
            else json.dumps(body).encode()
        )

        async def respond(request: web.Request, match: re.Match[str]) -> web.StreamResponse:
            if delay:
                await asyncio.sleep(delay)
            return web.Response(
                body=raw, status=status, headers={"Content-Type": "application/json", **(headers or {})}
            )

        self.routes.insert(0, (method, re.compile(pattern + r"$"), respond))

    def on_call(self, method: str, pattern: str, responder: Responder) -> None:
        self.routes.insert(0, (method, re.compile(pattern + r"$"), responder))

    def calls(self, method: str, path_pattern: str) -> list[Seen]:
        regex = re.compile(path_pattern + r"$")
        return [s for s in self.seen if s.method == method and regex.match(s.path)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        path = request.path[len(API) :] if request.path.startswith(API) else request.path
        self.seen.append(Seen(request.method, path, dict(request.query), dict(request.headers), body))
        for method, regex, responder in self.routes:
            match = regex.match(path)
            if method == request.method and match:
                return await responder(request, match)
        return web.Response(body=NOT_FOUND_ROUTE, status=501, content_type="text/html")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


@pytest.fixture
async def fake() -> Any:
    dolibarr = FakeDolibarr()
    server = TestServer(dolibarr.app())
    await server.start_server()
    dolibarr.url = str(server.make_url(API))
    yield dolibarr
    await server.close()


class Sleeps(list[float]):
    async def __call__(self, delay: float) -> None:
        self.append(delay)


def make_client(url: str, *, timeout: float = 5.0, attempts: int = 3) -> tuple[DolibarrRestClient, Sleeps]:
    client = DolibarrRestClient(
        DolibarrSettings(url=url, api_key=Secret(KEY), timeout_s=timeout, max_concurrency=4),
        RetrySettings(attempts=attempts, base_delay_s=0.01, max_delay_s=5.0),
    )
    sleeps = Sleeps()
    client.sleep = sleeps
    client.random = lambda: 0.5
    return client, sleeps


@pytest.fixture
async def client(fake: FakeDolibarr) -> Any:
    rest, _ = make_client(fake.url)
    yield rest
    await rest.close()


def test_client_implements_the_port() -> None:
    port: DolibarrPort = DolibarrRestClient(
        DolibarrSettings(url="http://127.0.0.1:9/api/index.php", api_key=Secret(KEY)), RetrySettings()
    )
    assert port is not None


# ------------------------------------------------------------------------------------ raw socket servers


RawResponder = Callable[[str, str, bytes], Awaitable[bytes | None]]


@dataclass
class RawServer:
    server: asyncio.Server
    url: str
    requests: list[tuple[str, str, bytes]]


async def raw_server(responder: RawResponder, *, reset: bool = False) -> RawServer:
    """A bare HTTP/1.1 server writing exactly the bytes ``responder`` returns (None: drop the connection,
    with a TCP reset when ``reset``)."""
    requests: list[tuple[str, str, bytes]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                requests.append((method, target, body))
                answer = await responder(method, target, body)
                if answer is None:
                    if reset:
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.close()
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return RawServer(server, f"http://127.0.0.1:{port}{API}", requests)


def http_response(status: int, reason: str, headers: dict[str, str], body: bytes) -> bytes:
    chunked = headers.get("Transfer-Encoding", "").lower() == "chunked"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
    if not chunked:
        lines.append(f"Content-Length: {len(body)}")
    payload = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" if chunked else body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def broken_gzip_capture() -> tuple[int, dict[str, str], bytes]:
    raw = (REFERENCE / "quirks" / "orders.validate.concurrent.500.raw.txt").read_bytes()
    head, body = raw.split(b"\n\n", 1)
    status_line, headers_line = head.decode().split("\n")
    status = int(status_line.split(":", 1)[1])
    headers = json.loads(headers_line.split(":", 1)[1])
    return status, headers, body


# -------------------------------------------------------------------------------------- classification


def where() -> Where:
    return Where(side="dolibarr", resource="product", record_id="7")


@pytest.mark.parametrize(
    "method,status,name,expected",
    [
        ("GET", 401, "error.bad_api_key", ConfigError),
        ("GET", 401, "error.no_api_key", ConfigError),
        ("GET", 404, "error.not_found_product", NotFound),
        ("GET", 404, "error.not_found_thirdparty", NotFound),
        ("POST", 400, "error.bad_payload_missing_field_product", PermanentError),
        ("POST", 400, "error.bad_payload_invalid_json", PermanentError),
        ("GET", 400, "error.bad_payload_sqlfilters", PermanentError),
        ("POST", 500, "products.create_duplicate_ref", RefAlreadyExists),
        ("POST", 503, "stockmovements.create_qty0", PermanentError),
        ("POST", 400, "invoices.payment_on_paid_invoice", PermanentError),
        ("POST", 400, "invoices.payment_missing_account", PermanentError),
        ("POST", 404, "error.order_line_bad_product", NotFound),
        ("GET", 501, "error.not_found_route", ConfigError),
        ("POST", 304, "orders.validate_again", type(None)),
        ("GET", 200, "products.get", type(None)),
    ],
)
def test_captured_answers_classify(method: str, status: int, name: str, expected: type) -> None:
    body = captured(name)
    error = classify(method, status, {}, body, where(), route="/x")
    assert type(error) is expected, error
    if error is not None:
        assert error.where.side == "dolibarr" and error.where.record_id == "7"


def test_messages_quote_dolibarr() -> None:
    error = classify(
        "POST", 400, {}, captured("error.bad_payload_missing_field_product"), where(), route="/products"
    )
    assert error is not None and "ref field missing" in error.message
    qty0 = classify("POST", 503, {}, captured("stockmovements.create_qty0"), where())
    assert qty0 is not None and "quantity 0" in qty0.message
    route = classify("GET", 501, {}, captured("error.not_found_route"), where(), route="/nosuchresource")
    assert route is not None and "/nosuchresource" in route.message


def test_numbering_races_are_transient() -> None:
    race = json.loads((REFERENCE / "quirks" / "thirdparties.create.concurrent-autocode.json").read_text())
    body = json.dumps(race["auto"]["response"]).encode()
    error = classify("POST", 500, {}, body, where(), route="/thirdparties")
    assert type(error) is TransientError
    invoice = b'{"error": {"code": 500, "message": "Internal Server Error: Error when validating Invoice: '
    invoice += b"Duplicate entry 'FA2611-0006-1' for key 'uk_facture_ref'\"}}"
    assert type(classify("POST", 500, {}, invoice, where(), idempotent=True)) is TransientError


def test_broken_gzip_body_is_readable_and_a_numbering_race() -> None:
    status, headers, raw = broken_gzip_capture()
    body = read_body(raw, headers)
    assert body.startswith(b"Dolibarr has detected a technical error")
    assert b"uk_commande_ref" in body and b'"code": 500' in body  # the embedded gzip member, inflated
    error = classify("POST", status, headers, body, where(), route="/orders/22/validate", idempotent=True)
    assert type(error) is TransientError
    for leak in ("admin", "Linux", "llx_commande", "8.2.36"):
        assert leak not in str(error)


def test_real_gzip_is_inflated() -> None:
    import gzip

    assert read_body(gzip.compress(b'{"a": 1}'), {"Content-Encoding": "gzip"}) == b'{"a": 1}'
    assert read_body(b"plain", {"content-encoding": "gzip"}) == b"plain"


def test_injection_filter_page_is_permanent() -> None:
    body = (REFERENCE / "quirks" / "ref_ext-with-colons-in-path.response.html").read_bytes()
    error = classify("GET", 403, {"Content-Type": "text/html"}, body, where(), route="/products/ref_ext/x")
    assert type(error) is PermanentError
    assert "URL path" in error.message and "':'" in error.message
    assert "127.0.0.1" not in error.message


def test_delete_conflict_is_object_in_use() -> None:
    body = (REFERENCE / "quirks" / "products.delete.409-without-mrp-tables.response.json").read_bytes()
    assert type(classify("DELETE", 409, {}, body, where())) is ObjectInUse


def test_category_exists_is_specific() -> None:
    body = b'{"error":{"code":500,"message":"Internal Server Error: Error when creating category"},'
    body += b'"0":"ImpossibleAddCat : CategoryExistsAtSameLevel"}'
    assert type(classify("POST", 500, {}, body, where())) is CategoryAlreadyExists


@pytest.mark.parametrize(
    "method,status,body,idempotent,expected",
    [
        ("GET", 502, b"<html>Bad gateway</html>", None, TransientError),
        ("POST", 502, b"<html>Bad gateway</html>", None, AmbiguousWrite),
        ("PUT", 503, b"", None, TransientError),
        ("POST", 503, b"", True, TransientError),
        ("GET", 200, b"<html>proxy login</html>", None, BadResponse),
        ("POST", 200, b"Warning: something 7", None, AmbiguousWrite),
        ("GET", 200, b'{"truncated": ', None, BadResponse),
        (
            "POST",
            500,
            b'{"error":{"code":500,"message":"Error creating product"},"0":"ErrorBarCodeBad"}',
            None,
            PermanentError,
        ),
        ("GET", 503, b'{"error":{"code":503,"message":"Error when retrieve list"}}', None, TransientError),
        ("GET", 403, b'{"error":{"code":403,"message":"Forbidden"}}', None, ConfigError),
    ],
)
def test_crafted_answers(
    method: str, status: int, body: bytes, idempotent: bool | None, expected: type
) -> None:
    assert type(classify(method, status, {}, body, where(), idempotent=idempotent)) is expected


def test_retry_after_is_parsed() -> None:
    error = classify("GET", 429, {"Retry-After": "7"}, b"", where())
    assert isinstance(error, TransientError) and error.retry_after == 7.0


def test_transport_errors() -> None:
    timeout = TimeoutError()
    assert type(classify("POST", None, {}, b"", where(), error=timeout)) is AmbiguousWrite
    assert type(classify("GET", None, {}, b"", where(), error=timeout)) is TransientError
    assert type(classify("POST", None, {}, b"", where(), error=timeout, idempotent=True)) is TransientError


# ------------------------------------------------------------------------------------------ write bodies


PRODUCT = ProductPayload(
    ref_ext="ps-product-190928",
    ref="PS-SKU-190928",
    label="T-shirt blue",
    description="Short description",
    price=Decimal("20"),
    tva_tx=Decimal("20.000"),
    weight=Decimal("0.25"),
    barcode="",
    extrafields=(("longdescription", "<p>Long <b>HTML</b> description from PrestaShop</p>"),),
)
CUSTOMER = Ref("thirdparty", "ps-customer-190928")
T_SHIRT = Ref("product", "ps-product-190928")
SHIPPING = Ref("product", "ps-shipping")
ORDER_LINES = (
    LinePayload("T-shirt blue", Decimal(2), Decimal("24.00"), Decimal(20), product=T_SHIRT),
    LinePayload("Free text line (no product)", Decimal(1), Decimal(3), Decimal(20), service=True),
    LinePayload("Shipping", Decimal(1), Decimal(5), Decimal(20), product=SHIPPING, service=True),
)
IDS = {CUSTOMER: 4, T_SHIRT: 7, SHIPPING: 8}


def order_payload(lines: tuple[LinePayload, ...] = ORDER_LINES[:2]) -> DocumentPayload:
    return DocumentPayload(
        kind="order",
        ref_ext="ps-order-190928",
        thirdparty=CUSTOMER,
        date=1795720168,
        ref_client="PS-ORDER-190928",
        lines=lines,
        payment_type="CB",
        note_private="PrestaShop order",
    )


async def test_product_create_sends_the_captured_body(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("POST", r"/products", captured("products.create"))
    assert await client.create(PRODUCT, {}) == 7
    (sent,) = fake.calls("POST", r"/products")
    assert sent.body == captured_json("products.create", "request")
    assert sent.headers["DOLAPIKEY"] == KEY
    assert sent.headers["Content-Type"] == "application/json"


async def test_service_create_matches_capture(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("POST", r"/products", captured("services.create"))
    service = ProductPayload(
        ref_ext="ps-shipping",
        ref="SHIPPING-190928",
        label="Shipping fee",
        price=Decimal(5),
        tva_tx=Decimal(20),
        service=True,
        on_purchase=False,
    )
    assert await client.create(service, {}) == 8
    subset(captured_json("services.create", "request"), fake.seen[-1].body)


def test_product_update_clears_what_the_payload_lost() -> None:
    body = product_body(ProductPayload(ref_ext="x", ref="R", label="L"), update=True)
    assert body["weight"] is None and body["length"] is None
    assert "weight" not in product_body(ProductPayload(ref_ext="x", ref="R", label="L"))


async def test_duplicate_ref_raises_ref_already_exists_once(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("POST", r"/products", captured("products.create_duplicate_ref"), status=500)
    with pytest.raises(RefAlreadyExists) as caught:
        await client.create(PRODUCT, {})
    assert caught.value.where.side == "dolibarr" and caught.value.where.resource == "product"
    assert caught.value.where.record_id == "ps-product-190928"
    assert len(fake.calls("POST", r"/products")) == 1


async def test_thirdparty_create_has_no_code_client_and_caches_countries(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/setup/dictionary/countries/byCode/FR", captured("setup.dictionary.countries.byCode.FR"))
    fake.on("POST", r"/thirdparties", captured("thirdparties.create"))
    customer = ThirdpartyPayload(
        ref_ext="ps-customer-190928",
        name="ACME Customer 190928",
        email="acme190928@example.com",
        phone="+33 1 23 45 67 89",
        address="1 rue de la Paix",
        zip="75001",
        town="Paris",
        country_code="fr",
        note_private="created by capture script",
    )
    assert await client.create(customer, {}) == 4
    assert await client.create(customer, {}) == 4
    body = fake.calls("POST", r"/thirdparties")[0].body
    subset(captured_json("thirdparties.create", "request"), body, without=("code_client", "name_alias"))
    assert "code_client" not in body
    assert len(fake.calls("GET", r"/setup/dictionary/countries/byCode/FR")) == 1


async def test_category_create(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("POST", r"/categories", captured("categories.create_child"))
    fake.on("PUT", r"/categories/6", captured("categories.update"))
    parent = Ref("category", "ps-main-category-3")
    child = CategoryPayload(ref_ext="ps-main-category-4", label="T-shirts 190928", parent=parent)
    assert await client.create(child, {parent: 5}) == 6
    body = fake.calls("POST", r"/categories")[0].body
    subset(captured_json("categories.create_child", "request"), body)
    assert body["ref_ext"] == "ps-main-category-4"
    assert fake.calls("PUT", r"/categories/6")[0].body == {"ref_ext": "ps-main-category-4"}


async def test_existing_unclaimed_category_is_adopted(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    exists = {
        "error": {"code": 500, "message": "Error when creating category"},
        "0": "CategoryExistsAtSameLevel",
    }
    fake.on("POST", r"/categories", exists, status=500)
    fake.on("GET", r"/categories", captured("categories.list"))
    fake.on("PUT", r"/categories/6", captured("categories.update"))
    parent = Ref("category", "ps-main-category-3")
    child = CategoryPayload(ref_ext="ps-main-category-4", label="TEE-SHIRTS 190928", parent=parent)
    assert await client.create(child, {parent: 5}) == 6
    assert fake.calls("GET", r"/categories")[0].query["type"] == "product"
    other = CategoryPayload(ref_ext="ps-main-category-5", label="Nothing like it", parent=parent)
    with pytest.raises(CategoryAlreadyExists):
        await client.create(other, {parent: 5})


async def test_order_create_sends_lines_inside_one_call(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/setup/dictionary/payment_types", captured("setup.dictionary.payment_types.list"))
    fake.on("POST", r"/orders", captured("orders.create"))
    assert await client.create(order_payload(), IDS) == 3
    body = fake.calls("POST", r"/orders")[0].body
    expected = captured_json("orders.create", "request")
    subset(expected, body, without=("cond_reglement_id", "lines"))
    assert len(body["lines"]) == 2
    for ours, theirs in zip(body["lines"], expected["lines"], strict=True):
        subset({k: v for k, v in theirs.items() if not (k == "remise_percent" and v == 0)}, ours)


def test_line_body_matches_the_captured_add_line() -> None:
    assert line_body(ORDER_LINES[2], 8) == captured_json("orders.add_line", "request")


async def test_order_update_keeps_equal_lines(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/setup/dictionary/payment_types", captured("setup.dictionary.payment_types.list"))
    fake.on("GET", r"/orders/3", captured("orders.get_draft"))
    fake.on("PUT", r"/orders/3", captured("orders.update"))
    fake.on("GET", r"/orders/3/lines", captured("orders.lines"))
    await client.update(3, order_payload(ORDER_LINES), IDS)
    put = fake.calls("PUT", r"/orders/3")[0].body
    assert put["ref_ext"] == "ps-order-190928" and put["ref_client"] == "PS-ORDER-190928"
    assert not fake.calls("DELETE", r"/orders/3/lines/\d+")
    assert not fake.calls("POST", r"/orders/3/lines")


async def test_order_update_replaces_changed_lines(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/setup/dictionary/payment_types", captured("setup.dictionary.payment_types.list"))
    fake.on("GET", r"/orders/3", captured("orders.get_draft"))
    fake.on("PUT", r"/orders/3", captured("orders.update"))
    fake.on("GET", r"/orders/3/lines", captured("orders.lines"))
    fake.on("DELETE", r"/orders/3/lines/\d+", captured("orders.get_draft"))
    fake.on("POST", r"/orders/3/lines", b"7")
    await client.update(3, order_payload((ORDER_LINES[2],)), IDS)
    assert [s.path for s in fake.calls("DELETE", r"/orders/3/lines/\d+")] == [
        "/orders/3/lines/4",
        "/orders/3/lines/5",
        "/orders/3/lines/6",
    ]
    (added,) = fake.calls("POST", r"/orders/3/lines")
    assert added.body == captured_json("orders.add_line", "request")


async def test_update_refuses_a_validated_document(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/orders/3", captured("orders.get_validated"))
    with pytest.raises(PermanentError, match="no longer a draft"):
        await client.update(3, order_payload(), IDS)
    assert not fake.calls("PUT", r"/orders/3")


async def test_validate_sends_captured_body(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/orders/3", captured("orders.get_draft"))
    fake.on("POST", r"/orders/3/validate", captured("orders.validate"))
    await client.set_document_status("order", 3, "validated")
    (sent,) = fake.calls("POST", r"/orders/3/validate")
    assert sent.body == captured_json("orders.validate", "request")


async def test_validate_304_means_already_validated(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/orders/3", captured("orders.get_draft"))  # a stale read: it was validated meanwhile
    fake.on("POST", r"/orders/3/validate", b"", status=304)
    await client.set_document_status("order", 3, "validated")
    assert len(fake.calls("POST", r"/orders/3/validate")) == 1


async def test_validated_order_is_not_validated_again(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/orders/3", captured("orders.get_validated"))
    await client.set_document_status("order", 3, "validated")
    fake.on("POST", r"/orders/3/close", captured("orders.get_validated"))
    await client.set_document_status("order", 3, "closed")
    assert not fake.calls("POST", r"/orders/3/validate")
    assert fake.calls("POST", r"/orders/3/close")[0].body == {"notrigger": 0}


async def test_an_order_is_cancelled_with_a_put_of_its_status(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    """Dolibarr 20's api_orders has no cancel route: ``PUT /orders/{id}`` with ``statut`` -1 (Commande::update
    writes fk_statut as given); a draft is validated first, so that the cancelled order keeps a number."""
    validated = captured_json("orders.get_validated")
    cancelled = {**validated, "statut": "-1", "status": "-1"}
    fake.on("GET", r"/orders/3", validated)
    fake.on("PUT", r"/orders/3", cancelled)
    await client.set_document_status("order", 3, "cancelled")
    assert [s.body for s in fake.calls("PUT", r"/orders/3")] == [{"statut": -1}]
    assert not fake.calls("POST", r"/orders/3/.*")

    draft_id = 4
    draft = {**captured_json("orders.get_draft"), "id": str(draft_id)}
    fake.on("GET", rf"/orders/{draft_id}", draft)
    fake.on("POST", rf"/orders/{draft_id}/validate", captured("orders.validate"))
    fake.on("PUT", rf"/orders/{draft_id}", {**draft, "statut": "-1", "status": "-1"})
    await client.set_document_status("order", draft_id, "cancelled")
    writes = [
        (s.method, s.path)
        for s in fake.seen
        if s.path.startswith(f"/orders/{draft_id}") and s.method != "GET"
    ]
    assert writes == [("POST", f"/orders/{draft_id}/validate"), ("PUT", f"/orders/{draft_id}")]
    assert fake.calls("PUT", rf"/orders/{draft_id}")[0].body == {"statut": -1}

    # cancelled already: nothing to write; asked for another status: a failure for the record
    fake.on("GET", r"/orders/3", cancelled)
    seen = len(fake.seen)
    await client.set_document_status("order", 3, "cancelled")
    assert [s.method for s in fake.seen[seen:]] == ["GET"]
    with pytest.raises(PermanentError, match="cancelled in Dolibarr"):
        await client.set_document_status("order", 3, "validated")


async def test_invoice_from_order(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    """One ``POST /invoices`` with the lines and ``linked_objects`` {commande: order} (Facture::create links it):
    no createfromorder, no header PUT, no line replaced one by one."""
    fake.on("GET", r"/setup/dictionary/payment_types", captured("setup.dictionary.payment_types.list"))
    fake.on("POST", r"/invoices", captured("invoices.create"))
    invoice = DocumentPayload(
        kind="invoice",
        ref_ext="ps-invoice-190928",
        thirdparty=CUSTOMER,
        date=1795720168,
        ref_client="PS-INV-190928",
        lines=ORDER_LINES,
        payment_type="CB",
        order=Ref("order", "ps-order-190928"),
    )
    assert await client.invoice_from_order(3, invoice, IDS) == 4
    [post] = fake.calls("POST", r"/invoices")
    body = post.body
    assert body["linked_objects"] == {"commande": 3}
    assert body["ref_ext"] == "ps-invoice-190928" and body["ref_client"] == "PS-INV-190928"
    assert body["socid"] == 4 and body["mode_reglement_id"] == 6
    assert [line.get("fk_product") for line in body["lines"]] == [7, None, 8]
    assert [(s.method, s.path) for s in fake.seen if s.method != "GET"] == [("POST", "/invoices")]


async def test_invoice_from_order_against_the_simulator_is_linked_to_its_order() -> None:
    async with simulated() as (client, data):
        socid = data.create_thirdparty({"name": "Customer", "client": 1})
        product = data.create_product({"ref": "TSHIRT", "label": "T-shirt", "price": 24, "tva_tx": 20})
        order_id = data.create_order({"socid": socid, "date": 1795720168, "lines": []})
        ids = {CUSTOMER: socid, T_SHIRT: product, Ref("order", "ps-order-190928"): order_id}
        invoice = DocumentPayload(
            kind="invoice",
            ref_ext="ps-invoice-190928",
            thirdparty=CUSTOMER,
            date=1795720168,
            ref_client="PS-INV-190928",
            lines=ORDER_LINES[:1],
            order=Ref("order", "ps-order-190928"),
        )
        invoice_id = await client.invoice_from_order(order_id, invoice, ids)
        got = data.invoice_out(invoice_id)
        assert list(got["linkedObjectsIds"]["commande"].values()) == [str(order_id)]
        assert got["total_ttc"] == "57.60000000" and got["ref_ext"] == "ps-invoice-190928"


async def test_payment_uses_paymentsdistributed_with_the_amount(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/setup/dictionary/payment_types", captured("setup.dictionary.payment_types.list"))
    fake.on("GET", r"/invoices/5", captured("invoices.get_fromorder"))
    fake.on("GET", r"/status", captured("status.get"))
    fake.on("GET", r"/bankaccounts", captured("bankaccounts.list"))
    fake.on(
        "GET", r"/setup/conf/MAIN_MONNAIE", {"error": {"code": 403, "message": "Forbidden: admin only"}}, 403
    )
    fake.on("POST", r"/invoices/paymentsdistributed", captured("invoices.paymentsdistributed"))
    invoice = Ref("invoice", "ps-invoice-190928")
    payment = PaymentPayload(
        ref_ext="ps-main-payment-1",
        invoice=invoice,
        date=1795720168,
        amount=Decimal("10"),
        payment_type="LIQ",
        number="PARTIAL-190928",
        close_paid=False,
    )
    assert await client.add_payment(payment, {invoice: 5}) == 3
    body = fake.calls("POST", r"/invoices/paymentsdistributed")[0].body
    subset(captured_json("invoices.paymentsdistributed", "request"), body)
    assert body["ref_ext"] == "ps-main-payment-1" and "ps-main-payment-1" in body["comment"]


async def test_invoice_payments_list(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/invoices/4/payments", captured("invoices.payments_list"))
    (payment,) = await client.invoice_payments(4)
    assert payment["num"] == "PS-PAY-190928"


# ------------------------------------------------------------------------------------------------ stock


async def test_stock_level_and_movements(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/products/7/stock", captured("products.stock"))
    fake.on(
        "GET", r"/products/8/stock", {"error": {"code": 404, "message": "Not Found: No stock found"}}, 404
    )
    fake.on("POST", r"/stockmovements", captured("stockmovements.create_decrease"))
    assert await client.stock_level(7, 1) == Decimal(47)
    assert await client.stock_level(7, 2) == Decimal(0)
    assert await client.stock_level(8, 1) == Decimal(0)
    assert fake.calls("GET", r"/products/7/stock")[0].query["selected_warehouse_id"] == "1"
    await client.move_stock(7, 1, Decimal(0), "nothing")
    assert not fake.calls("POST", r"/stockmovements")
    await client.move_stock(7, 1, Decimal(-3), "Correction")
    assert fake.calls("POST", r"/stockmovements")[0].body == captured_json(
        "stockmovements.create_decrease", "request"
    )


# --------------------------------------------------------------------------------------------- variants


async def test_variant_creates_attribute_value_and_own_ref_ext(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/products/attributes", [])
    fake.on("POST", r"/products/attributes", captured("products.attributes.create"))
    fake.on("GET", r"/products/attributes/2/values", [])
    fake.on("POST", r"/products/attributes/2/values", captured("products.attributes.values.create"))
    fake.on("GET", r"/products/7/variants", {"error": {"code": 404, "message": "Not Found: none"}}, 404)
    fake.on("GET", r"/products/7", captured("products.get"))
    # the child's ref is free (createProductCombination would adopt a product holding it)
    fake.on(
        "GET", r"/products/ref/.+", {"error": {"code": 404, "message": "Not Found: Product not found"}}, 404
    )
    fake.on("POST", r"/products/7/variants", captured("products.variants.create"))
    fake.on("PUT", r"/products/10", captured("products.get_variant_child"))
    child = ProductPayload(
        ref_ext="ps-combination-11", ref="PS-SKU-190928-S", label="T-shirt blue S", price=Decimal("22.5")
    )
    assert await client.create_variant(7, (("Size", "Small"),), child, {}) == 10
    assert fake.calls("POST", r"/products/attributes")[0].body == {"ref": "SIZE", "label": "Size"}
    assert fake.calls("POST", r"/products/attributes/2/values")[0].body == {"ref": "SMALL", "value": "Small"}
    assert fake.calls("POST", r"/products/7/variants")[0].body == captured_json(
        "products.variants.create", "request"
    )
    assert fake.calls("PUT", r"/products/10")[0].body["ref_ext"] == "ps-combination-11"
    # attribute and value ids are cached
    fake.on("GET", r"/products/7/variants", captured("products.variants.list"))
    assert await client.create_variant(7, (("size", "small"),), child, {}) == 10
    assert len(fake.calls("GET", r"/products/attributes")) == 1
    assert len(fake.calls("POST", r"/products/7/variants")) == 1


# --------------------------------------------------------------------------------------------- lookups


async def test_list_ref_ext_pages_until_a_short_page(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    def rows(start: int, count: int) -> list[dict[str, Any]]:
        return [
            {"id": str(i), "ref": f"R{i}", "ref_ext": f"ps-main-product-{i}", "status": "1"}
            for i in range(start, start + count)
        ]

    async def products(request: web.Request, match: re.Match[str]) -> web.StreamResponse:
        page = int(request.query["page"])
        data = rows(1, 100) if page == 0 else [*rows(101, 4), {"id": "200", "ref_ext": "PS-MAIN-PRODUCT-200"}]
        return web.json_response(data)

    fake.on_call("GET", r"/products", products)
    found = await client.list_ref_ext("product", "ps-main-product-")
    assert len(found) == 104 and found["ps-main-product-7"].id == 7
    calls = fake.calls("GET", r"/products")
    assert [c.query["page"] for c in calls] == ["0", "1"]
    assert calls[0].query["sqlfilters"] == "(t.ref_ext:like:'ps-main-product-%')"
    assert calls[0].query["limit"] == "100"


async def test_list_ref_ext_escapes_underscores(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/categories", [{"id": "1", "ref_ext": "ps-mainXshop-category-1"}])
    assert await client.list_ref_ext("category", "ps-main_shop-category-") == {}
    assert fake.seen[-1].query["sqlfilters"] == "(t.ref_ext:like:'ps-main\\_shop-category-%')"


async def test_thirdparties_404_list_means_none(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on(
        "GET", r"/thirdparties", {"error": {"code": 404, "message": "Not Found: Thirdparties not found"}}, 404
    )
    assert await client.list_ref_ext("thirdparty", "ps-main-customer-") == {}
    assert await client.find_thirdparties_by_email("nobody@example.com") == []
    assert await client.find_by_ref_ext("thirdparty", "ps-main-customer-1") is None


async def test_find_thirdparties_by_email(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/thirdparties", captured("thirdparties.list_filtered"))
    (found,) = await client.find_thirdparties_by_email("acme190928@example.com")
    assert found.id == 4 and found.ref_ext == "ps-customer-190928"
    assert fake.seen[-1].query["sqlfilters"] == "(t.email:=:'acme190928@example.com')"


async def test_find_by_ref_ext_uses_the_path_and_checks_exactness(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/products/ref_ext/ps-product-190928", captured("products.get_by_ref_ext"))
    found = await client.find_by_ref_ext("product", "ps-product-190928")
    assert found is not None and found.id == 7 and found.ref == "PS-SKU-190928"
    # a case-insensitive collation answers another spelling: not ours
    fake.on("GET", r"/products/ref_ext/PS-PRODUCT-190928", captured("products.get_by_ref_ext"))
    fake.on("GET", r"/products", [])
    assert await client.find_by_ref_ext("product", "PS-PRODUCT-190928") is None


async def test_unsafe_values_never_reach_the_path(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/products", [{"id": "9", "ref": "A", "ref_ext": "ps:main:product:1"}])
    found = await client.find_by_ref_ext("product", "ps:main:product:1")
    assert found is not None and found.id == 9
    (call,) = fake.seen
    assert call.path == "/products" and ":" not in call.path
    assert call.query["sqlfilters"] == "(t.ref_ext:like:'ps%')"


async def test_find_product_by_ref(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/products/ref/PS-SKU-190928", captured("products.get_by_ref"))
    found = await client.find_product_by_ref("PS-SKU-190928")
    assert found is not None and found.id == 7
    fake.on("GET", r"/products", captured("products.list_filtered"))
    assert await client.find_product_by_ref("PS SKU.190928") is None
    assert fake.seen[-1].query["sqlfilters"] == "(t.ref:=:'PS SKU.190928')"


# ---------------------------------------------------------------------------------------------- failures


async def test_broken_gzip_500_replayed_byte_for_byte() -> None:
    status, headers, body = broken_gzip_capture()

    async def respond(method: str, target: str, _: bytes) -> bytes:
        if method == "GET":
            return http_response(
                200, "OK", {"Content-Type": "application/json"}, captured("orders.get_draft")
            )
        return http_response(status, "Internal Server Error", headers, body)

    server = await raw_server(respond)
    rest, sleeps = make_client(server.url)
    try:
        with pytest.raises(TransientError) as caught:
            await rest.set_document_status("order", 22, "validated")
    finally:
        await rest.close()
        server.server.close()
    assert not isinstance(caught.value, AmbiguousWrite)
    assert "numbering race" in caught.value.message
    for leak in ("admin", "Linux", "llx_commande", "nginx"):
        assert leak not in str(caught.value)
    assert sum(1 for m, _, _ in server.requests if m == "POST") == 3  # validate is idempotent: retried
    assert len(sleeps) == 2


async def test_injection_filter_page_over_http(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    page = (REFERENCE / "quirks" / "ref_ext-with-colons-in-path.response.html").read_bytes()
    fake.on("GET", r"/products/1", page, status=403, headers={"Content-Type": "text/html"})
    with pytest.raises(PermanentError, match="forbidden character"):
        await client.get("product", 1)
    assert len(fake.seen) == 1


async def test_database_down_page_is_transient_and_quiet(fake: FakeDolibarr) -> None:
    page = (
        b"DolibarrHasDetectedError. Failed to connect to database server db.internal.example with user "
        b"dolibarr_app. Check the database server is running."
    )
    fake.on("GET", r"/products/7", page, status=500, headers={"Content-Type": "text/html"})
    rest, sleeps = make_client(fake.url)
    try:
        with pytest.raises(TransientError) as caught:
            await rest.get("product", 7)
    finally:
        await rest.close()
    assert "database" in caught.value.message
    assert "db.internal" not in str(caught.value) and "dolibarr_app" not in str(caught.value)
    assert caught.value.body == ""
    assert len(fake.seen) == 3 and len(sleeps) == 2


async def test_bad_key_with_delay_is_a_config_error(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/products/7", captured("error.bad_api_key"), status=401, delay=1.0)
    with pytest.raises(ConfigError) as caught:
        await client.get("product", 7)
    assert "API key" in caught.value.message
    assert KEY not in str(caught.value)
    assert len(fake.seen) == 1  # never retried


async def test_api_key_never_appears_in_errors(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    async def echo(request: web.Request, match: re.Match[str]) -> web.StreamResponse:
        key = request.headers["DOLAPIKEY"]
        return web.json_response(
            {"error": {"code": 400, "message": f"Bad Request: key {key} refused"}}, status=400
        )

    fake.on_call("POST", r"/products", echo)
    with pytest.raises(PermanentError) as caught:
        await client.create(PRODUCT, {})
    assert (
        KEY not in str(caught.value) and KEY not in caught.value.body and KEY not in repr(caught.value.args)
    )
    assert "***" in caught.value.message


async def test_reset_mid_post_is_ambiguous() -> None:
    async def drop(method: str, target: str, body: bytes) -> bytes | None:
        return None

    server = await raw_server(drop, reset=True)
    rest, sleeps = make_client(server.url)
    try:
        with pytest.raises(AmbiguousWrite) as caught:
            await rest.create(PRODUCT, {})
    finally:
        await rest.close()
        server.server.close()
    assert len(server.requests) == 1 and not sleeps
    assert caught.value.where.record_id == "ps-product-190928"


async def test_timeout_on_post_is_ambiguous_and_on_get_retried(fake: FakeDolibarr) -> None:
    fake.on("POST", r"/products", captured("products.create"), delay=2.0)
    fake.on("GET", r"/products/7", captured("products.get"), delay=2.0)
    rest, _ = make_client(fake.url, timeout=0.3)
    try:
        with pytest.raises(AmbiguousWrite):
            await rest.create(PRODUCT, {})
        assert len(fake.calls("POST", r"/products")) == 1
        with pytest.raises(TransientError) as caught:
            await rest.get("product", 7)
        assert not isinstance(caught.value, AmbiguousWrite)
        assert len(fake.calls("GET", r"/products/7")) == 3
    finally:
        await rest.close()


async def test_429_retry_after_on_get_is_retried(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    answers = iter([(429, b"Too Many Requests"), (200, captured("products.get"))])

    async def limited(request: web.Request, match: re.Match[str]) -> web.StreamResponse:
        status, body = next(answers)
        return web.Response(body=body, status=status, headers={"Retry-After": "2"})

    fake.on_call("GET", r"/products/7", limited)
    sleeps = Sleeps()
    client.sleep = sleeps
    assert (await client.get("product", 7))["ref"] == "PS-SKU-190928"
    assert sleeps == [2.0]


async def test_retry_after_beyond_the_cap_is_left_to_the_engine(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/products/7", b"slow down", status=429, headers={"Retry-After": "600"})
    with pytest.raises(TransientError) as caught:
        await client.get("product", 7)
    assert caught.value.retry_after == 600.0 and len(fake.seen) == 1


async def test_unknown_route_names_it(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    with pytest.raises(ConfigError, match="/categories/5"):
        await client.get("category", 5)


async def test_delete_404_means_gone_and_409_in_use(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("DELETE", r"/products/9", captured("error.not_found_product"), status=404)
    await client.delete("product", 9)
    body = (REFERENCE / "quirks" / "products.delete.409-without-mrp-tables.response.json").read_bytes()
    fake.on("DELETE", r"/products/10", body, status=409)
    with pytest.raises(ObjectInUse):
        await client.delete("product", 10)


async def test_set_active_writes_only_a_status_that_differs(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    """``set_active`` reads the object first and PUTs only the status fields that are not already so."""
    active_product = captured_json("products.get")  # status 1, status_buy 1
    inactive_product = {**active_product, "id": "8", "status": "0", "status_buy": "0"}
    active_thirdparty = captured_json("thirdparties.get")  # status 1
    inactive_thirdparty = {**active_thirdparty, "id": "5", "status": "0"}
    half_product = {**active_product, "id": "9", "status": "1", "status_buy": "0"}
    fake.on("GET", r"/products/7", active_product)
    fake.on("GET", r"/products/8", inactive_product)
    fake.on("GET", r"/products/9", half_product)
    fake.on("GET", r"/thirdparties/4", active_thirdparty)
    fake.on("GET", r"/thirdparties/5", inactive_thirdparty)
    for path in (r"/products/7", r"/products/9"):
        fake.on("PUT", path, captured("products.get"))
    fake.on("PUT", r"/thirdparties/5", captured("thirdparties.get"))

    await client.set_active("product", 8, False)  # already inactive: a read, no write
    await client.set_active("thirdparty", 4, True)  # already active: a read, no write
    assert [(s.method, s.path) for s in fake.seen] == [("GET", "/products/8"), ("GET", "/thirdparties/4")]

    await client.set_active("product", 7, False)
    await client.set_active("product", 9, False)  # one of the two fields differs: both are written
    await client.set_active("thirdparty", 5, True)
    assert [s.body for s in fake.calls("PUT", r"/products/7")] == [{"status": 0, "status_buy": 0}]
    assert [s.body for s in fake.calls("PUT", r"/products/9")] == [{"status": 0, "status_buy": 0}]
    assert [s.body for s in fake.calls("PUT", r"/thirdparties/5")] == [{"status": 1}]

    seen = len(fake.seen)
    await client.set_active("category", 5, False)  # a category has no status: nothing asked
    assert len(fake.seen) == seen
    assert len([s for s in fake.seen if s.method == "PUT"]) == 3


async def test_category_links(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("POST", r"/categories/6/objects/product/7", captured("categories.link_product"))
    fake.on("DELETE", r"/categories/5/objects/product/7", captured("categories.unlink_product"))
    fake.on("GET", r"/products/7/categories", captured("products.categories"))
    fake.on("PUT", r"/thirdparties/4/categories/7", captured("thirdparties.add_category"))
    await client.link_category(6, "product", 7)
    await client.unlink_category(5, "product", 7)
    await client.link_category(7, "thirdparty", 4)
    assert await client.object_categories("product", 7) == {6}


# -------------------------------------------------------------------------------------------- setup


async def test_setup_lookups(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/setup/dictionary/payment_types", captured("setup.dictionary.payment_types.list"))
    fake.on("GET", r"/bankaccounts", captured("bankaccounts.list"))
    fake.on("GET", r"/warehouses", captured("warehouses.list"))
    fake.on("GET", r"/setup/extrafields", captured("setup.extrafields.product.list"))
    assert (await client.payment_type_ids())["CB"] == 6
    assert await client.bank_account_ids() == [1]
    assert await client.warehouse_ids() == [1]
    assert "longdescription" in await client.extrafields("product")
    assert fake.calls("GET", r"/setup/dictionary/payment_types")[0].query["sortfield"] == "code"


async def test_capabilities_guess_modules_from_501(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/status", captured("status.get"))
    fake.on("GET", r"/categories", captured("categories.list"))
    fake.on("GET", r"/warehouses", captured("warehouses.list"))
    fake.on("GET", r"/bankaccounts", captured("bankaccounts.list"))
    fake.on("GET", r"/setup/conf/MAIN_MONNAIE", '"EUR"')
    caps = await client.capabilities()
    assert caps.version == "20.0.2" and caps.main_currency == "EUR"
    assert caps.categories and caps.stock and caps.payments
    assert not caps.variants and not caps.multicurrency  # /products/attributes and /multicurrencies: 501
    assert await client.capabilities() is caps


async def test_check_access_sentences(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/status", captured("status.get"))
    for path in (
        "/products",
        "/categories",
        "/contacts",
        "/orders",
        "/invoices",
        "/warehouses",
        "/bankaccounts",
    ):
        fake.on("GET", path, [])
    fake.on(
        "GET", r"/thirdparties", {"error": {"code": 404, "message": "Not Found: Thirdparties not found"}}, 404
    )
    fake.on("GET", r"/setup/dictionary/payment_types", [])
    fake.on(
        "GET",
        r"/setup/extrafields",
        {"error": {"code": 403, "message": "Forbidden: Only an admin user"}},
        403,
    )
    problems = await client.check_access()
    assert len(problems) == 2
    assert "product variants" in problems[0] and "enable the Variants of products module" in problems[0]
    assert "extrafields" in problems[1] and "403" in problems[1]


async def test_check_access_bad_key_is_one_sentence(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/status", captured("error.bad_api_key"), status=401)
    (problem,) = await client.check_access()
    assert "API key" in problem and KEY not in problem


async def test_files(fake: FakeDolibarr, client: DolibarrRestClient) -> None:
    fake.on("GET", r"/products/7", captured("products.get"))
    fake.on("POST", r"/documents/upload", '"PS-SKU-190928.jpg"')
    fake.on("GET", r"/documents", [{"name": "a.jpg", "size": 12, "relativename": "a.jpg"}])
    fake.on("DELETE", r"/documents", {"success": {"code": 200, "message": "Document deleted"}})
    await client.upload_file("product", 7, "a.jpg", b"\x89PNG")
    upload = fake.calls("POST", r"/documents/upload")[0].body
    assert upload["modulepart"] == "product" and upload["ref"] == "PS-SKU-190928"
    assert upload["filecontent"] == "iVBORw==" and upload["fileencoding"] == "base64"
    (listed,) = await client.list_files("product", 7)
    assert listed.name == "a.jpg" and listed.size == 12
    await client.delete_file("product", 7, "a.jpg")
    assert fake.calls("DELETE", r"/documents")[0].query == {
        "modulepart": "product",
        "original_file": "PS-SKU-190928/a.jpg",
    }


# ------------------------------------------------------------------ the simulator, behaving as the live 20.0.2


@asynccontextmanager
async def simulated(
    options: DolibarrSimOptions | None = None, faults: FaultPlan | None = None, charset: str = "utf8"
) -> AsyncIterator[tuple[DolibarrRestClient, DolibarrData]]:
    """The client against the Dolibarr simulator (real sockets), with the simulator's model to assert on."""
    app = dolibarr_sim.create_app(
        key=KEY, options=options or DolibarrSimOptions(bad_key_delay_s=0), faults=faults
    )
    server = await start_app(app)
    client = DolibarrRestClient(
        DolibarrSettings(
            url=server.url + API, api_key=Secret(KEY), timeout_s=5, max_concurrency=4, charset=charset
        ),
        RetrySettings(attempts=3, base_delay_s=0.01, max_delay_s=0.1),
    )
    try:
        yield client, app[dolibarr_sim.DATA_KEY]
    finally:
        await client.close()
        await server.stop()


async def test_capabilities_come_from_the_module_list_or_from_probes_when_it_is_refused() -> None:
    """A module that is off answers 403 on its routes (the live /multicurrencies): off, not "there"."""
    async with simulated() as (client, _):
        caps = await client.capabilities()
        assert caps.modules_known and not caps.multicurrency
        assert caps.categories and caps.variants and caps.stock and caps.payments
    async with simulated(DolibarrSimOptions(bad_key_delay_s=0, multicurrency_enabled=True)) as (client, _):
        assert (await client.capabilities()).multicurrency
    # a key that is not an admin's may not read the list: each module's route is probed
    async with simulated(DolibarrSimOptions(bad_key_delay_s=0, modules_admin_only=True)) as (client, _):
        caps = await client.capabilities()
        assert not caps.modules_known and not caps.multicurrency
        assert caps.categories and caps.variants and caps.stock and caps.payments


async def test_writes_without_a_body_say_json_as_restler_requires() -> None:
    """aiohttp sends a body-less POST or PUT as application/octet-stream, which Restler refuses (403)."""
    async with simulated() as (client, data):
        product = data.create_product({"ref": "LINKED", "label": "Linked", "price": 1})
        category = data.create_category({"label": "Shelf", "type": "product"})
        customer = data.create_thirdparty({"name": "Customer", "client": 1})
        group = data.create_category({"label": "Group", "type": "customer"})
        await client.link_category(category, "product", product)  # POST, no body
        await client.link_category(group, "thirdparty", customer)  # PUT, no body
        assert data.categories_of("product", product) == [category]
        assert data.categories_of("customer", customer) == [group]
        await client.unlink_category(category, "product", product)  # DELETE, no body
        assert data.categories_of("product", product) == []


async def test_an_object_in_no_category_is_answered_0_and_read_as_none() -> None:
    async with simulated() as (client, data):
        product = data.create_product({"ref": "NOCAT", "label": "No category", "price": 1})
        customer = data.create_thirdparty({"name": "Nobody's", "client": 1})
        assert await client.object_categories("product", product) == set()  # HTTP 200, body 0
        assert await client.object_categories("thirdparty", customer) == set()  # HTTP 200, body []


async def test_a_deadlock_is_database_busy_nothing_stored_and_the_limit_halves_when_they_are_frequent() -> (
    None
):
    plan = FaultPlan(fail_next=3, fail_next_kind="deadlock", only_methods=frozenset({"POST"}))
    async with simulated(faults=plan) as (client, data):
        with pytest.raises(DatabaseBusy, match="Deadlock found"):
            await client.create(PRODUCT, {})
        assert not data.find("products", ref_ext=PRODUCT.ref_ext)
        assert (client.limit.limit, client.limit.decreases) == (4, 0)  # one deadlock: retried, no slower
        product = data.create_product({"ref": "STOCKED", "label": "Stocked", "price": 1})
        with pytest.raises(DatabaseBusy):
            await client.move_stock(product, 1, Decimal(3), "deadlocked")
        assert data.product_stock(product) == {}
        with pytest.raises(DatabaseBusy):
            await client.create(PRODUCT, {})
        assert (client.limit.limit, client.limit.decreases) == (2, 1)  # 3 of the last 20 requests: halved
        await client.move_stock(product, 1, Decimal(3), "again")
        assert await client.stock_level(product, 1) == 3


async def test_emoji_are_left_out_of_what_a_utf8_connection_must_store() -> None:
    options = DolibarrSimOptions(bad_key_delay_s=0, connection_charset="utf8")
    gift = dataclasses.replace(
        PRODUCT, label="🎁 Carte cadeau", ref="🎁-CARTE-50", description="Un cadeau 🎁"
    )
    async with simulated(options) as (client, data):
        product = data.products[await client.create(gift, {})]
        assert (product["label"], product["ref"], product["description"]) == (
            "Carte cadeau",
            "-CARTE-50",
            "Un cadeau",
        )
        # looked up as it was stored: an emoji in sqlfilters fails the SELECT (503)
        found = await client.find_product_by_ref("🎁-CARTE-50")
        assert found is not None and found.id == int(product["id"])
        assert await client.find_product_by_ref("🎁 Carte") is None
    async with simulated(options, charset="utf8mb4") as (client, data):
        with pytest.raises(PermanentError, match="Illegal mix of collations"):
            await client.create(gift, {})
        assert not data.find("products", ref_ext=gift.ref_ext)


def usd_order(number: int) -> DocumentPayload:
    return DocumentPayload(
        kind="order",
        ref_ext=f"ps-order-{number}",
        thirdparty=CUSTOMER,
        date=1795720168,
        ref_client=f"PS-{number}",
        lines=ORDER_LINES[:1],
        currency="usd",
        currency_rate=Decimal("1.0825"),
    )


async def test_a_document_in_a_currency_dolibarr_does_not_list_adds_it_first() -> None:
    """Dolibarr 20 silently keeps a document in a currency missing from its list in the main currency (the
    simulator does as the live server): the client adds the currency once (POST /multicurrencies) before the
    first document in it."""
    options = DolibarrSimOptions(bad_key_delay_s=0, multicurrency_enabled=True)
    async with simulated(options) as (client, data):
        socid = data.create_thirdparty({"name": "Customer", "client": 1})
        product = data.create_product({"ref": "TSHIRT", "label": "T-shirt", "price": 24, "tva_tx": 20})
        ids = {CUSTOMER: socid, T_SHIRT: product}
        first = await client.create(usd_order(1), ids)
        second = await client.create(usd_order(2), ids)
        assert [c["code"] for c in data.multicurrencies()] == ["EUR", "USD"]
        usd = data.currency_out(data.currency_id("USD"))
        assert usd["rate"] is not None and usd["rate"]["rate"] == "1.0825"
        for order_id in (first, second):
            order = data.order_out(order_id)
            assert (order["multicurrency_code"], order["multicurrency_tx"]) == ("USD", "1.08250000")
            assert order["fk_multicurrency"] == usd["id"]

    # already in the list (as an admin would add it): nothing is posted
    async with simulated(options) as (client, data):
        data.add_currency("USD", "US Dollar", Decimal("1.1"))
        socid = data.create_thirdparty({"name": "Customer", "client": 1})
        product = data.create_product({"ref": "TSHIRT", "label": "T-shirt", "price": 24, "tva_tx": 20})
        order_id = await client.create(usd_order(3), {CUSTOMER: socid, T_SHIRT: product})
        assert data.order_out(order_id)["multicurrency_tx"] == "1.08250000", "the order's own rate"
        assert len(data.multicurrencies()) == 2


async def test_a_currency_the_key_may_not_add_is_a_failure_saying_what_to_add() -> None:
    options = DolibarrSimOptions(bad_key_delay_s=0, multicurrency_enabled=True, multicurrency_write=False)
    async with simulated(options) as (client, data):
        socid = data.create_thirdparty({"name": "Customer", "client": 1})
        product = data.create_product({"ref": "TSHIRT", "label": "T-shirt", "price": 24, "tva_tx": 20})
        with pytest.raises(PermanentError, match="does not know the currency USD") as caught:
            await client.create(usd_order(4), {CUSTOMER: socid, T_SHIRT: product})
        assert "Insufficient rights to create currency" in caught.value.message
        assert "Multicurrency" in caught.value.message and "1.0825" in caught.value.message
        assert data.count("orders") == 0, "no order silently in EUR"


# ------------------------------------------------------------- reads spared: what this client made itself


async def test_a_document_this_client_created_is_validated_without_reading_it(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/setup/dictionary/payment_types", captured("setup.dictionary.payment_types.list"))
    fake.on("POST", r"/orders", captured("orders.create"))
    fake.on("POST", r"/orders/3/contact/\d+/\w+", b"1")
    fake.on("POST", r"/orders/3/validate", captured("orders.get_validated"))
    fake.on("POST", r"/orders/3/close", captured("orders.get_validated"))
    assert await client.create(order_payload(), IDS) == 3
    await client.set_document_status("order", 3, "closed")
    assert not fake.calls("GET", r"/orders/3")  # a draft: it was just made, and validating it proves it
    assert len(fake.calls("POST", r"/orders/3/validate")) == 1
    assert len(fake.calls("POST", r"/orders/3/close")) == 1
    fake.on("GET", r"/orders/3", captured("orders.get_validated"))
    await client.set_document_status("order", 3, "closed")  # once moved, it is read as before
    assert len(fake.calls("GET", r"/orders/3")) == 1


async def test_a_new_document_validated_by_hand_meanwhile_is_read_then_moved(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/setup/dictionary/payment_types", captured("setup.dictionary.payment_types.list"))
    fake.on("POST", r"/orders", captured("orders.create"))
    fake.on("POST", r"/orders/3/contact/\d+/\w+", b"1")
    fake.on("POST", r"/orders/3/validate", b"", status=304)  # not a draft any more
    fake.on("GET", r"/orders/3", captured("orders.get_validated"))
    fake.on("POST", r"/orders/3/close", captured("orders.get_validated"))
    assert await client.create(order_payload(), IDS) == 3
    await client.set_document_status("order", 3, "closed")
    assert len(fake.calls("GET", r"/orders/3")) == 1
    assert len(fake.calls("POST", r"/orders/3/close")) == 1


async def test_a_new_product_has_no_stock_nor_files_and_its_ref_names_its_folder(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("POST", r"/products", captured("products.create"))
    fake.on("GET", r"/products/7/stock", captured("products.stock"))
    fake.on("POST", r"/stockmovements", captured("stockmovements.create_decrease"))
    fake.on("POST", r"/documents/upload", '"a.jpg"')
    fake.on("GET", r"/documents", [{"name": "a.jpg", "size": 12, "relativename": "a.jpg"}])
    assert await client.create(PRODUCT, {}) == 7
    assert await client.stock_level(7, 1) == Decimal(0)
    assert await client.list_files("product", 7) == []
    assert not fake.calls("GET", r"/products/7/stock") and not fake.calls("GET", r"/documents")
    await client.upload_file("product", 7, "a.jpg", b"\x89PNG")
    assert fake.calls("POST", r"/documents/upload")[0].body["ref"] == PRODUCT.ref
    assert not fake.calls("GET", r"/products/7")
    await client.move_stock(7, 1, Decimal(5), "in")
    assert await client.stock_level(7, 1) == Decimal(47)  # moved since: read (and checked) as any other
    assert len(await client.list_files("product", 7)) == 1  # uploaded since: listed


async def test_ref_locks_are_dropped_when_nobody_holds_them(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("POST", r"/products", captured("products.create"))
    await asyncio.gather(*(client.create(PRODUCT, {}) for _ in range(3)))
    assert client._ref_locks == {}


async def test_a_ref_a_filter_cannot_hold_is_looked_up_narrowly(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/products", [{"id": 3, "ref": "(X8)-moule"}])
    assert await client._ref_taken("(X8)-MOULE")
    (listing,) = fake.calls("GET", r"/products")
    assert listing.query["sqlfilters"] == "(t.ref:like:'_X8_-MOULE%')"


async def test_an_initial_pass_lists_foreign_thirdparties_once(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("GET", r"/thirdparties", [{"id": 9, "email": "a@b.c", "ref_ext": None}])
    for n in range(8):
        found = await client.find_foreign_thirdparties_by_email("a@b.c" if n % 2 else f"x{n}@b.c")
        assert [t.id for t in found] == ([9] if n % 2 else [])
    listings = fake.calls("GET", r"/thirdparties")
    assert len(listings) == 5  # four look-ups, then one listing answers the rest
    assert listings[-1].query["sqlfilters"] == "((t.ref_ext:is:NULL) or (t.ref_ext:notlike:'ps-%'))"
    fake.on("PUT", r"/thirdparties/9", {"id": 9})
    await client.update(9, ThirdpartyPayload(ref_ext="ps-main-customer-1", name="A", email="a@b.c"), {})
    assert await client.find_foreign_thirdparties_by_email("a@b.c") == []  # adopted: not twice


async def test_a_validation_with_a_warehouse_makes_new_products_read_their_stock(
    fake: FakeDolibarr, client: DolibarrRestClient
) -> None:
    fake.on("POST", r"/products", captured("products.create"))
    fake.on("GET", r"/products/7/stock", captured("products.stock"))
    fake.on("GET", r"/orders/3", captured("orders.get_draft"))
    fake.on("POST", r"/orders/3/validate", captured("orders.validate"))
    assert await client.create(PRODUCT, {}) == 7
    await client.set_document_status("order", 3, "validated", warehouse_id=1)  # may take product 7's stock
    assert await client.stock_level(7, 1) == Decimal(47)
