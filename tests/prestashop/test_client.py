"""PrestaShopClient over real sockets against small aiohttp shops written here.

The shops serve the bodies captured from a real PrestaShop 1.7.8.8 (shared/reference/prestashop/samples,
beside the repository) and crafted ones (HTML pages, cut bodies, PHP notices, 429s, resets, time-outs), and a
tiny in-memory table server that follows PrestaShop's filter/sort/limit rules (SQLUtils.php) for the paging
tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import BadResponse, ConfigError, NotFound, PermanentError, TransientError, Where
from service.prestashop import errors as pserrors
from service.prestashop import xml as psxml
from service.prestashop.client import DATE_FIELDS, Filter, Page, PrestaShopClient
from service.prestashop.errors import RecordReadError, ShopPhpError, classify
from service.prestashop.resources import RESOURCES, spec
from service.settings import RetrySettings, Secret, ShopSettings

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "prestashop" / "samples"
KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456"
AUTH = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
JSON_HEADERS = {
    "Content-Type": "application/json",
    "PSWS-Version": "1.7.8.8",
    "X-Powered-By": "PrestaShop Webservice",
}
XML_HEADERS = {"Content-Type": "text/xml;charset=utf-8", "PSWS-Version": "1.7.8.8"}
PHP_NOTICE = json.dumps(
    {"errors": [{"code": 8, "message": "[PHP Notice #8] Undefined index: id_feature (Product.php, line 7)"}]}
).encode()
WHERE = Where(side="prestashop", shop="demo", resource="products")

needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"reference samples not found at {SAMPLES}")


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


# ---------------------------------------------------------------------------------------- fake shop


Canned = tuple[int, dict[str, str], bytes]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    raw_url: str
    authorization: str


def sql_match(value: Any, expr: str) -> bool:
    """PrestaShop's SQLUtils::getSQLRetrieveFilter, on Python values (MySQL-ish comparisons)."""
    match = re.match(r"^(.*)\[(.*)\](.*)$", expr)
    if not match:
        return _eq(value, expr)
    before, inner, after = match.groups()
    if before == "%" or after == "%":
        pattern = "^" + re.escape(before + inner + after).replace("%", ".*").replace("_", ".") + "$"
        return re.match(pattern, str(value), re.IGNORECASE) is not None
    if before == "" and after == "":
        if inner.find("|") > 0:
            return any(_eq(value, v) for v in inner.split("|"))
        between = re.match(r"^([\d.:\-\s]+),([\d.:\-\s]+)$", inner)
        if between:
            low, high = sorted(between.groups(), key=_sort_key)
            return _cmp(value, low) >= 0 and _cmp(value, high) <= 0
        return _eq(value, inner)
    if before == ">":
        return _cmp(value, inner) > 0
    if before == "<":
        return _cmp(value, inner) < 0
    if before == "!":
        return all(not _eq(value, v) for v in inner.split("|"))
    return True


def _sort_key(text: str) -> tuple[int, Any]:
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


def _eq(value: Any, text: str) -> bool:
    return str(value).lower() == text.lower()


def _cmp(value: Any, text: str) -> int:
    if isinstance(value, (int, float)):
        try:
            other = float(text)
        except ValueError:
            other = 0.0
        return (value > other) - (value < other)
    return (str(value) > text) - (str(value) < text)


def error_body(code: int, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


@dataclass
class FakeShop:
    """A webservice on a real socket: canned answers per path, or in-memory tables with PrestaShop rules."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    canned: dict[str, list[Canned] | Handler] = field(default_factory=dict)
    broken: set[int] = field(default_factory=set)  # ids whose rendering raises a PHP notice (display set)
    seen: list[Seen] = field(default_factory=list)
    on_list: Callable[[FakeShop], None] | None = None
    base_url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/api{tail:.*}", self.handle)
        return app

    def lists(self, resource: str) -> list[Seen]:
        return [s for s in self.seen if s.path == f"/{resource}"]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len("/api") :] or "/"
        self.seen.append(
            Seen(path, dict(request.query), str(request.url), request.headers.get("Authorization", ""))
        )
        if request.headers.get("Authorization") != AUTH:
            return web.Response(status=401, body=b"401 Unauthorized", content_type="text/html")
        if path in self.canned:
            answer = self.canned[path]
            if callable(answer):
                return await answer(request)
            status, headers, body = answer.pop(0) if len(answer) > 1 else answer[0]
            return web.Response(status=status, headers=headers, body=body)
        parts = path.strip("/").split("/")
        if parts[0] in self.tables:
            if len(parts) == 1:
                return self.listing(parts[0], request.query)
            return self.single(parts[0], parts[1])
        return web.Response(
            status=400, headers=JSON_HEADERS, body=error_body(27, f"Resource {parts[0]} unknown")
        )

    def listing(self, resource: str, query: Any) -> web.Response:
        if self.on_list is not None:
            self.on_list(self)
        rows = list(self.tables[resource])
        dated = query.get("date") == "1"
        for key, value in query.items():
            if key.startswith("filter["):
                name = key[len("filter[") : -1]
                if name in DATE_FIELDS and not dated:
                    return web.Response(status=400, headers=JSON_HEADERS, body=error_body(32, "filter"))
                rows = [r for r in rows if sql_match(r.get(name), value)]
        if "sort" in query:
            items = query["sort"].strip("[]").split(",")
            for item in reversed(items):
                name, direction = item.rsplit("_", 1)
                if name in DATE_FIELDS and not dated:
                    return web.Response(status=400, headers=JSON_HEADERS, body=error_body(38, "sort"))
                rows.sort(key=lambda r, n=name: (r.get(n) is None, r.get(n)), reverse=direction == "DESC")
        if "limit" in query:
            parts = [int(p) for p in query["limit"].split(",")]
            offset, count = (0, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
            rows = rows[offset : offset + count]
        display = query.get("display")
        if display is None:
            out = [{"id": r["id"]} for r in rows]
        else:
            if any(r["id"] in self.broken for r in rows):
                return web.Response(status=500, headers=JSON_HEADERS, body=PHP_NOTICE)
            if display == "full":
                out = [dict(r) for r in rows]
            else:
                names = display.strip("[]").split(",")
                out = [{n: r.get(n) for n in names} for r in rows]
        body = json.dumps({resource: out} if out else []).encode()
        return web.Response(status=200, headers=JSON_HEADERS, body=body)

    def single(self, resource: str, raw_id: str) -> web.Response:
        for row in self.tables[resource]:
            if str(row["id"]) == raw_id:
                return web.Response(
                    status=200, headers=JSON_HEADERS, body=json.dumps({resource[:-1]: row}).encode()
                )
        return web.Response(status=404)


@pytest.fixture
async def shop() -> AsyncIterator[FakeShop]:
    fake = FakeShop()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


def settings_for(url: str, **overrides: Any) -> ShopSettings:
    values: dict[str, Any] = {"name": "demo", "url": url, "api_key": Secret(KEY), "timeout_s": 5.0}
    values.update(overrides)
    return ShopSettings(**values)


RETRY = RetrySettings(attempts=3, base_delay_s=0.001, max_delay_s=0.05)


@pytest.fixture
async def client(shop: FakeShop) -> AsyncIterator[PrestaShopClient]:
    async with PrestaShopClient(settings_for(shop.base_url), RETRY) as ps:
        yield ps


def canned(shop: FakeShop, path: str, *answers: Canned) -> None:
    shop.canned[path] = list(answers)


# ------------------------------------------------------------------------------------------ samples


@needs_samples
async def test_fetch_full_listing_sends_auth_header_and_json(
    shop: FakeShop, client: PrestaShopClient
) -> None:
    canned(shop, "/products", (200, JSON_HEADERS, sample("products_list_full_simple_and_combinations.json")))
    records = await client.fetch("products", filters={"id": Filter.any_of(1, 6)})
    assert [r["id"] for r in records] == [1, 6]
    request = shop.seen[-1]
    assert request.authorization == AUTH
    assert request.query == {"output_format": "JSON", "display": "full", "filter[id]": "[1|6]"}
    assert "ws_key" not in request.raw_url and KEY not in request.raw_url
    assert client.version == "1.7.8.8"


@needs_samples
@pytest.mark.parametrize(
    ("name", "fmt"),
    [("empty_list_json.json", "json"), ("empty_list_full_json.json", "json"), ("empty_list.xml", "xml")],
)
async def test_empty_answers_are_empty_lists(shop: FakeShop, name: str, fmt: str) -> None:
    headers = XML_HEADERS if fmt == "xml" else JSON_HEADERS
    canned(shop, "/products", (200, headers, sample(name)))
    async with PrestaShopClient(settings_for(shop.base_url, output_format=fmt), RETRY) as ps:
        assert await ps.fetch("products") == []
    assert ("output_format" in shop.seen[-1].query) is (fmt == "json")


@needs_samples
async def test_id_listing_has_no_display(shop: FakeShop, client: PrestaShopClient) -> None:
    canned(shop, "/products", (200, JSON_HEADERS, sample("products_list_default_no_display.json")))
    assert await client.ids("products", limit=(0, 3)) == [1, 2, 3]
    assert "display" not in shop.seen[-1].query
    assert shop.seen[-1].query["limit"] == "0,3"


def canon(value: Any) -> Any:
    """JSON and XML compared on what they mean: numbers as text, null as "", one language as its text."""
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) == 1 and isinstance(value[0], dict) and set(value[0]) == {"id", "value"}:
            return canon(value[0]["value"])
        return [canon(v) for v in value]
    return "" if value is None else str(value)


@needs_samples
async def test_xml_and_json_single_product_parse_to_the_same_record(shop: FakeShop) -> None:
    canned(shop, "/products/6", (200, JSON_HEADERS, sample("product_single_get.json")))
    async with PrestaShopClient(settings_for(shop.base_url), RETRY) as ps:
        from_json = await ps.get("products", 6)
    canned(shop, "/products/6", (200, XML_HEADERS, sample("product_single.xml")))
    async with PrestaShopClient(settings_for(shop.base_url, output_format="xml"), RETRY) as ps:
        from_xml = await ps.get("products", 6)
    assert from_json is not None and from_xml is not None
    assert from_xml["name"] == [{"id": "1", "value": "Mug The best is yet to come"}]
    assert canon(from_xml) == canon(from_json)
    assert from_xml["associations"]["categories"] == [{"id": "2"}, {"id": "6"}, {"id": "8"}]


async def test_get_in_xml_recovers_association_ids_lost_in_json(
    shop: FakeShop, client: PrestaShopClient
) -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n'
        b"<combination><id><![CDATA[10]]></id><id_product><![CDATA[2]]></id_product><associations>"
        b'<product_option_values nodeType="product_option_value" api="product_option_values">'
        b'<product_option_value xlink:href="http://shop/api/product_option_values/1"><0><![CDATA[]]></0>'
        b'</product_option_value><product_option_value xlink:href="http://shop/api/product_option_values/8">'
        b"<0><![CDATA[]]></0></product_option_value></product_option_values>"
        b'<images nodeType="image" api="images"/></associations></combination></prestashop>'
    )
    canned(shop, "/combinations/10", (200, XML_HEADERS, body))
    record = await client.get("combinations", 10, output_format="xml")
    assert record is not None
    assert record["associations"] == {"product_option_values": [{"id": "1"}, {"id": "8"}]}
    assert "output_format" not in shop.seen[-1].query


@needs_samples
async def test_get_404_empty_body_is_none(shop: FakeShop, client: PrestaShopClient) -> None:
    canned(
        shop, "/products/999999", (404, {"PSWS-Version": "1.7.8.8"}, sample("error_not_found_id_json.json"))
    )
    assert await client.get("products", 999999) is None


@needs_samples
async def test_permissions_read_from_the_xml_api_root(shop: FakeShop, client: PrestaShopClient) -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n'
        b'<api shop_name="TestShop">\n'
        b'<products xlink:href="http://shop/api/products" get="true" put="false" post="false" delete="false"'
        b' head="true">\n<description xlink:href="http://shop/api/products" get="true" put="false"'
        b' post="false"'
        b' delete="false" head="true">The products</description>\n'
        b'<schema xlink:href="http://shop/api/products?schema=blank" type="blank"/>\n</products>\n'
        b'<orders xlink:href="http://shop/api/orders" get="true" put="true" post="true" delete="true"'
        b' head="true">'
        b"\n<description>The Customers orders</description>\n</orders>\n</api>\n</prestashop>\n"
    )
    canned(shop, "/", (200, XML_HEADERS, body))
    assert await client.permissions() == {
        "products": {"GET", "HEAD"},
        "orders": {"GET", "PUT", "POST", "DELETE", "HEAD"},
    }
    assert "output_format" not in shop.seen[-1].query


async def test_images_listing_is_xml_and_binary_is_checked(shop: FakeShop, client: PrestaShopClient) -> None:
    listing = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n'
        b'<image id="6">\n<declination id="6" xlink:href="http://shop/api/images/products/6/6"/>\n'
        b'<declination id="12" xlink:href="http://shop/api/images/products/6/12"/>\n</image>\n</prestashop>\n'
    )
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 64
    canned(shop, "/images/products/6", (200, XML_HEADERS, listing))
    canned(shop, "/images/products/7", (404, {}, b""))
    canned(shop, "/images/products/6/12", (200, {"Content-Type": "image/jpeg"}, jpeg))
    canned(
        shop,
        "/images/products/6/13",
        (
            400,
            XML_HEADERS,
            b"<prestashop><errors><error><code>57</code>"
            b"<message>This image id does not exist</message></error></errors></prestashop>",
        ),
    )
    canned(shop, "/images/products/6/14", (200, {"Content-Type": "text/html"}, b"<html>login</html>"))
    assert await client.image_ids(6) == [6, 12]
    assert "output_format" not in shop.seen[-1].query
    assert await client.image_ids(7) == []
    assert await client.image(6, 12) == jpeg
    with pytest.raises(NotFound):
        await client.image(6, 13)
    with pytest.raises(BadResponse, match="instead of an image"):
        await client.image(6, 14)


# ------------------------------------------------------------------------------------------- errors


async def test_html_page_with_200_is_bad_response(shop: FakeShop, client: PrestaShopClient) -> None:
    page = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>We are back soon</body></html>"
    canned(shop, "/products", (200, {"Content-Type": "text/html"}, page))
    with pytest.raises(BadResponse) as caught:
        await client.fetch("products")
    assert "<!DOCTYPE html><html><head><title>Maintenance" in str(caught.value)
    assert caught.value.where.resource == "products" and caught.value.where.shop == "demo"
    assert len(shop.lists("products")) == RETRY.attempts  # transient: retried


@needs_samples
async def test_truncated_json_is_bad_response(shop: FakeShop, client: PrestaShopClient) -> None:
    body = sample("products_list_full_simple_and_combinations.json")
    canned(shop, "/products", (200, JSON_HEADERS, body[: len(body) // 2]))
    with pytest.raises(BadResponse, match="invalid or truncated JSON"):
        await client.fetch("products")


@needs_samples
async def test_truncated_xml_is_bad_response(shop: FakeShop) -> None:
    body = sample("product_single.xml")
    canned(shop, "/products/6", (200, XML_HEADERS, body[: len(body) // 2]))
    async with PrestaShopClient(settings_for(shop.base_url, output_format="xml"), RETRY) as ps:
        with pytest.raises(BadResponse, match="cannot be parsed"):
            await ps.get("products", 6)


@needs_samples
async def test_401_plain_text_means_no_key_reached_php(shop: FakeShop, client: PrestaShopClient) -> None:
    canned(shop, "/products", (401, {"Content-Type": "text/html"}, sample("error_401_no_key_json.json")))
    with pytest.raises(ConfigError, match="no key reached the shop") as caught:
        await client.fetch("products")
    assert "PS_WEBSERVICE_CGI_HOST" in str(caught.value)
    assert len(shop.lists("products")) == 1  # not retried


@needs_samples
@pytest.mark.parametrize(
    ("name", "fmt"), [("error_401_bad_key_json.json", "json"), ("error_401_bad_key.xml", "xml")]
)
async def test_401_error_body_names_codes(shop: FakeShop, name: str, fmt: str) -> None:
    canned(shop, "/products", (401, XML_HEADERS if fmt == "xml" else JSON_HEADERS, sample(name)))
    async with PrestaShopClient(settings_for(shop.base_url, output_format=fmt), RETRY) as ps:
        with pytest.raises(ConfigError) as caught:
            await ps.fetch("products")
    text = str(caught.value)
    assert "code 20: Authentification key is not active" in text and "code 21" in text
    assert caught.value.status == 401


async def test_wrong_key_is_a_config_error_not_a_retry(shop: FakeShop) -> None:
    async with PrestaShopClient(settings_for(shop.base_url, api_key=Secret("X" * 32)), RETRY) as ps:
        with pytest.raises(ConfigError):
            await ps.fetch("products")
    assert len(shop.seen) == 1


@needs_samples
@pytest.mark.parametrize(
    ("status", "name", "cls", "text"),
    [
        (400, "error_unknown_resource_json.json", ConfigError, "does not have the resource"),
        (400, "error_bad_filter_field_json.json", PermanentError, "version difference"),
        (400, "error_sort_date_without_date1_json.json", PermanentError, "date=1 is always a ps2doli bug"),
        (400, "error_bad_display_field_json.json", PermanentError, "does not know a field"),
        (405, "error_method_not_allowed_json.json", ConfigError, "may not use this method"),
    ],
)
async def test_4xx_error_bodies(
    shop: FakeShop, client: PrestaShopClient, status: int, name: str, cls: type[Exception], text: str
) -> None:
    canned(shop, "/products", (status, JSON_HEADERS, sample(name)))
    with pytest.raises(cls, match=re.escape(text)):
        await client.fetch("products")
    assert len(shop.lists("products")) == 1


async def test_unknown_id_shop_is_config(shop: FakeShop) -> None:
    canned(shop, "/products", (404, JSON_HEADERS, error_body(999, "This shop id does not exist")))
    async with PrestaShopClient(settings_for(shop.base_url, id_shop=7), RETRY) as ps:
        with pytest.raises(ConfigError, match="unknown id_shop"):
            await ps.fetch("products")
    assert shop.seen[-1].query["id_shop"] == "7"


async def test_redirect_is_config_and_not_followed(shop: FakeShop, client: PrestaShopClient) -> None:
    canned(shop, "/products", (301, {"Location": "https://elsewhere.example/api/products"}, b""))
    with pytest.raises(ConfigError, match=r"redirects to https://elsewhere\.example"):
        await client.fetch("products")
    assert len(shop.seen) == 1


async def test_500_php_notice_is_not_retried(shop: FakeShop, client: PrestaShopClient) -> None:
    canned(shop, "/products", (500, JSON_HEADERS, PHP_NOTICE))
    with pytest.raises(ShopPhpError, match=r"PHP Notice #8") as caught:
        await client.fetch("products")
    assert caught.value.retryable and not caught.value.fatal
    assert len(shop.lists("products")) == 1


async def test_500_then_success_is_retried(shop: FakeShop, client: PrestaShopClient) -> None:
    canned(shop, "/products", (502, {}, b"Bad Gateway"), (200, JSON_HEADERS, b'{"products":[{"id":1}]}'))
    assert await client.fetch("products", display=None) == [{"id": 1}]
    assert len(shop.lists("products")) == 2


async def test_429_honours_retry_after(shop: FakeShop, client: PrestaShopClient) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    client._sleep = fake_sleep
    canned(shop, "/products", (429, {"Retry-After": "0.04"}, b""), (200, JSON_HEADERS, b"[]"))
    assert await client.fetch("products") == []
    assert slept and slept[0] >= 0.04


async def test_429_beyond_max_delay_is_raised_with_retry_after(
    shop: FakeShop, client: PrestaShopClient
) -> None:
    canned(shop, "/products", (429, {"Retry-After": "120"}, b""))
    with pytest.raises(TransientError) as caught:
        await client.fetch("products")
    assert caught.value.retry_after == 120.0
    assert len(shop.seen) == 1


async def test_connection_reset_is_transient() -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.transport.abort()

    server = await asyncio.start_server(slam, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with PrestaShopClient(settings_for(f"http://127.0.0.1:{port}"), RETRY) as ps:
            with pytest.raises(TransientError, match="cannot reach the shop") as caught:
                await ps.fetch("products")
        assert caught.value.where.shop == "demo"
        assert KEY not in str(caught.value)
    finally:
        server.close()
        await server.wait_closed()


async def test_timeout_is_transient(shop: FakeShop) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.Response(body=b"[]")

    shop.canned["/products"] = slow
    retry = RetrySettings(attempts=2, base_delay_s=0.001, max_delay_s=0.01)
    async with PrestaShopClient(settings_for(shop.base_url, timeout_s=0.2), retry) as ps:
        with pytest.raises(TransientError, match="time-out"):
            await ps.fetch("products")
    assert len(shop.lists("products")) == 2


async def test_key_never_in_errors_logs_repr_or_urls(shop: FakeShop) -> None:
    leaking = json.dumps(
        {"errors": [{"code": 8, "message": f"[PHP Notice #8] bad ws_key={KEY} in {AUTH}"}]}
    ).encode()
    canned(shop, "/products", (500, JSON_HEADERS, leaking))
    canned(shop, "/orders", (200, {"Content-Type": "text/html"}, f"<html>your key {KEY}</html>".encode()))
    with structlog.testing.capture_logs() as logs:
        async with PrestaShopClient(
            settings_for(shop.base_url, name="leakcheck", verify_tls=False), RETRY
        ) as ps:
            with pytest.raises(ShopPhpError) as php:
                await ps.fetch("products", filters={"reference": Filter.eq("x")})
            with pytest.raises(BadResponse) as html:
                await ps.fetch("orders")
            shown = repr(ps)
    for error in (php.value, html.value):
        assert KEY not in str(error) and KEY not in error.body and KEY not in repr(error)
        assert AUTH.split()[1] not in str(error)
        assert "***" in str(error)
    assert KEY not in shown
    assert KEY not in repr(logs)
    assert any(entry["event"] == "prestashop.tls_verification_off" for entry in logs)
    for request in shop.seen:
        assert KEY not in request.raw_url and "ws_key" not in request.raw_url
        assert request.authorization == AUTH


async def test_tls_off_warns_once_per_shop(shop: FakeShop) -> None:
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            await PrestaShopClient(
                settings_for(shop.base_url, name="tls_once", verify_tls=False), RETRY
            ).close()
    assert sum(entry["event"] == "prestashop.tls_verification_off" for entry in logs) == 1


async def test_a_session_passed_in_is_not_closed(shop: FakeShop) -> None:
    canned(shop, "/products", (200, JSON_HEADERS, b"[]"))
    async with aiohttp.ClientSession() as session:
        async with PrestaShopClient(settings_for(shop.base_url), RETRY, session=session) as ps:
            assert await ps.fetch("products") == []
        assert not session.closed


def test_url_with_query_string_is_refused() -> None:
    with pytest.raises(ConfigError, match="without a query string"):
        PrestaShopClient(settings_for(f"http://shop.example/?ws_key={KEY}"), RETRY)


# --------------------------------------------------------------------------------- params, filters


def params_of(**kwargs: Any) -> dict[str, str]:
    ps = PrestaShopClient(settings_for("http://shop.example"), RETRY)
    return dict(ps.list_params(**kwargs))


def test_params_language_and_id_shop() -> None:
    assert "language" not in params_of()
    assert params_of(language=2)["language"] == "2"
    ps = PrestaShopClient(settings_for("http://shop.example", id_shop=3), RETRY)
    assert dict(ps.list_params())["id_shop"] == "3"


def test_date_filter_flag_and_display() -> None:
    assert params_of(date_filter=True)["date"] == "1"
    assert params_of(display=("id", "date_upd"))["display"] == "[id,date_upd]"
    assert "display" not in params_of(display=None)
    with pytest.raises(ValueError):
        params_of(display=())
    with pytest.raises(ValueError):
        params_of(sort=("date_upd",))
    with pytest.raises(ValueError):
        params_of(limit=(0, 0))
    with pytest.raises(ValueError):
        params_of(filters={"bad name": Filter.eq(1)})


_FIELDS = st.sampled_from(["id", "date_upd", "date_add", "reference", "id_product", "active"])
_FILTERS = st.sampled_from(
    [Filter.eq(1), Filter.gt("2026-01-01 00:00:00"), Filter.any_of(1, 2), Filter.lt(9)]
)


@given(
    filters=st.dictionaries(_FIELDS, _FILTERS, max_size=4),
    sort=st.lists(st.tuples(_FIELDS, st.sampled_from(["ASC", "DESC"])), max_size=3),
    flag=st.booleans(),
)
def test_date_1_is_always_sent_with_date_filters_or_sorts(
    filters: dict[str, Filter], sort: list[tuple[str, str]], flag: bool
) -> None:
    params = params_of(filters=filters, sort=tuple(f"{n}_{d}" for n, d in sort), date_filter=flag)
    uses_date = flag or bool(set(filters) & DATE_FIELDS) or any(n in DATE_FIELDS for n, _ in sort)
    assert (params.get("date") == "1") is uses_date


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: Filter.eq(5), "[5]"),
        (lambda: Filter.eq(""), "[]"),
        (lambda: Filter.eq("demo_1"), "[demo_1]"),
        (lambda: Filter.any_of(1, "6", Decimal("7")), "[1|6|7]"),
        (
            lambda: Filter.between("2026-01-01 00:00:00", "9999-12-31 23:59:59"),
            "[2026-01-01 00:00:00,9999-12-31 23:59:59]",
        ),
        (lambda: Filter.between("0000-00-00 00:00:00", "2026-01-01"), "[0000-00-00 00:00:00,2026-01-01]"),
        (lambda: Filter.between(-5, "1.5"), "[-5,1.5]"),
        (lambda: Filter.gt(10), ">[10]"),
        (lambda: Filter.lt("2026-01-01 00:00:00"), "<[2026-01-01 00:00:00]"),
        (lambda: Filter.not_in(1, 2), "![1|2]"),
        (lambda: Filter.like("erp"), "%[erp]%"),
        (lambda: Filter.like("jane", "begins"), "[jane]%"),
        (lambda: Filter.like("a,b|c", "ends"), "%[a,b|c]"),
    ],
)
def test_filter_shapes(build: Callable[[], Filter], expected: str) -> None:
    assert build().expr == expected


@pytest.mark.parametrize(
    "build",
    [
        lambda: Filter.between(
            "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"
        ),  # ISO: silent [] in PrestaShop
        lambda: Filter.between("a", "z"),
        lambda: Filter.between("2026-01-01 00:00:00+02:00", "2027-01-01 00:00:00"),
        lambda: Filter.gt("2026-01-01T00:00:00"),
        lambda: Filter.eq("2026-01-01 10:00"),
        lambda: Filter.eq("1,2"),  # would become BETWEEN 1 AND 2
        lambda: Filter.eq("a|b"),  # would become IN
        lambda: Filter.eq("x[1]"),
        lambda: Filter.eq("line\nbreak"),
        lambda: Filter.any_of(),
        lambda: Filter.any_of("", "x"),  # '[|x]' is not an IN for PrestaShop
        lambda: Filter.any_of("a", "b,c"),
        lambda: Filter.not_in(),
        lambda: Filter.like(""),
        lambda: Filter.like("x]"),
        lambda: Filter.gt(""),
        lambda: Filter.eq(True),  # type: ignore[arg-type]
        lambda: Filter.eq(1.5),  # type: ignore[arg-type]
    ],
)
def test_filter_refusals(build: Callable[[], Filter]) -> None:
    with pytest.raises(ValueError):
        build()


@given(st.text(max_size=30))
def test_eq_either_refuses_or_is_an_equality_for_prestashop(text: str) -> None:
    try:
        flt = Filter.eq(text)
    except ValueError:
        return
    match = re.match(r"^(.*)\[(.*)\](.*)$", flt.expr)
    assert match is not None and match.group(1) == "" and match.group(3) == ""
    assert match.group(2) == text
    assert "|" not in text and not re.match(r"^([\d.:\-\s]+),([\d.:\-\s]+)$", text)


# ---------------------------------------------------------------------------------------- paging


def dated_rows(spec: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """[(date, count), …] -> rows with increasing ids."""
    rows: list[dict[str, Any]] = []
    for date, count in spec:
        for _ in range(count):
            rows.append({"id": len(rows) + 1, "date_upd": date, "reference": f"R{len(rows) + 1}"})
    return rows


async def collect(pages: AsyncIterator[Page]) -> list[Page]:
    return [page async for page in pages]


def assert_date_1(shop: FakeShop) -> None:
    for request in shop.seen:
        dated = any(k in (f"filter[{d}]" for d in DATE_FIELDS) for k in request.query) or any(
            d in request.query.get("sort", "") for d in DATE_FIELDS
        )
        if dated:
            assert request.query.get("date") == "1", request.query


async def test_keyset_250_rows_in_one_second_page_100(shop: FakeShop, client: PrestaShopClient) -> None:
    shop.tables["products"] = dated_rows([("2026-01-01 10:00:00", 250), ("2026-01-01 10:00:01", 30)])
    pages = await collect(client.changes("products", None, page_size=100, overlap_s=2))
    ids = [r["id"] for page in pages for r in page.records]
    assert ids == list(range(1, 281))  # no skip, no duplicate, keyset order
    assert len(shop.lists("products")) <= 6  # no loop
    assert pages[-1].cursor == ("2026-01-01 10:00:01", 280)
    first = shop.lists("products")[0].query
    assert first["filter[date_upd]"] == "[0000-00-00 00:00:00,9999-12-31 23:59:59]"
    assert first["sort"] == "[date_upd_ASC,id_ASC]" and first["limit"] == "0,100"
    assert all(request.query["limit"].startswith("0,") for request in shop.lists("products"))
    assert_date_1(shop)


async def test_keyset_record_saved_mid_pass_is_read_again_and_nothing_skipped(
    shop: FakeShop, client: PrestaShopClient
) -> None:
    shop.tables["products"] = dated_rows([("2026-01-01 10:00:00", 250), ("2026-01-01 10:00:05", 20)])
    calls = 0

    def save_mid_pass(fake: FakeShop) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # after the first page (ids 1..100) was read: two saves in the shop
            rows = fake.tables["products"]
            rows[49]["date_upd"] = "2026-01-01 10:00:09"  # already read: moves ahead of the cursor
            rows[149]["date_upd"] = "2026-01-01 10:00:09"  # not read yet: moves ahead too

    shop.on_list = save_mid_pass
    pages = await collect(client.changes("products", None, page_size=100, overlap_s=0))
    ids = [r["id"] for page in pages for r in page.records]
    assert set(ids) == set(range(1, 271))
    assert ids.count(50) == 2 and ids.count(150) == 1
    assert ids[-2:] == [50, 150]
    assert_date_1(shop)


async def test_changes_start_overlap_seconds_before_since(shop: FakeShop, client: PrestaShopClient) -> None:
    shop.tables["products"] = dated_rows(
        [("2026-01-01 09:59:58", 1), ("2026-01-01 10:00:00", 2), ("2026-01-02 00:00:00", 1)]
    )
    pages = await collect(client.changes("products", ("2026-01-01 10:00:00", 3), page_size=10, overlap_s=2))
    assert shop.lists("products")[0].query["filter[date_upd]"] == "[2026-01-01 09:59:58,9999-12-31 23:59:59]"
    assert [r["id"] for page in pages for r in page.records] == [1, 2, 3, 4]


async def test_changes_without_overlap_starts_right_after_since(
    shop: FakeShop, client: PrestaShopClient
) -> None:
    shop.tables["products"] = dated_rows([("2026-01-01 10:00:00", 3), ("2026-01-01 10:00:01", 2)])
    pages = await collect(client.changes("products", ("2026-01-01 10:00:00", 2), page_size=10, overlap_s=0))
    assert [r["id"] for page in pages for r in page.records] == [3, 4, 5]
    first, second = (s.query for s in shop.lists("products")[:2])
    assert (
        first["filter[date_upd]"] == "[2026-01-01 10:00:00,2026-01-01 10:00:00]"
        and first["filter[id]"] == ">[2]"
    )
    assert second["filter[date_upd]"] == ">[2026-01-01 10:00:00]" and "filter[id]" not in second


async def test_changes_empty_shop_yields_nothing(shop: FakeShop, client: PrestaShopClient) -> None:
    shop.tables["products"] = []
    assert await collect(client.changes("products", None, page_size=50, overlap_s=2)) == []
    assert len(shop.seen) == 1


async def test_changes_by_id_for_append_only_resources(shop: FakeShop, client: PrestaShopClient) -> None:
    shop.tables["order_histories"] = [
        {"id": i, "id_order": 1, "date_add": "2026-01-01 00:00:00"} for i in range(1, 26)
    ]
    pages = await collect(
        client.changes("order_histories", ("", 5), page_size=10, overlap_s=2, change_field="id")
    )
    assert [r["id"] for page in pages for r in page.records] == list(range(6, 26))
    assert [s.query["filter[id]"] for s in shop.lists("order_histories")] == [">[5]", ">[15]", ">[25]"]
    assert pages[0].cursor == ("", 15)


async def test_sweep_reads_few_fields_by_id(shop: FakeShop, client: PrestaShopClient) -> None:
    shop.tables["stock_availables"] = [
        {"id": i, "id_product": i, "quantity": -i, "location": ""} for i in range(1, 8)
    ]
    pages = await collect(client.sweep("stock_availables", ("id_product", "quantity"), page_size=3))
    assert pages[0].records[0] == {"id": 1, "id_product": 1, "quantity": -1}
    assert [page.size for page in pages] == [3, 3, 1]
    assert all(s.query["display"] == "[id,id_product,quantity]" for s in shop.lists("stock_availables"))
    assert all(s.query["sort"] == "[id_ASC]" for s in shop.lists("stock_availables"))


async def test_page_broken_by_one_record_falls_back_record_by_record(
    shop: FakeShop, client: PrestaShopClient
) -> None:
    shop.tables["products"] = dated_rows([("2026-01-01 10:00:00", 15), ("2026-01-01 11:00:00", 15)])
    shop.broken = {15, 18}  # 15 ends a full page (its position is unknown), 18 sits inside one
    with structlog.testing.capture_logs() as logs:
        pages = await collect(client.changes("products", None, page_size=5, overlap_s=2))
    ids = [r["id"] for page in pages for r in page.records]
    assert set(ids) == set(range(1, 31)) - {15, 18}
    assert len(ids) == 28
    failed = [f for page in pages for f in page.failed]
    assert sorted(f.record_id for f in failed) == [15, 18]  # each reported once
    for failure in failed:
        assert isinstance(failure, RecordReadError) and isinstance(failure.cause, ShopPhpError)
        assert failure.where.record_id == str(failure.record_id) and failure.status == 500
    assert any(page.fallback for page in pages)
    assert any(entry["event"] == "prestashop.page_fallback" for entry in logs)
    assert_date_1(shop)


async def test_a_pass_ends_when_nothing_moves(shop: FakeShop, client: PrestaShopClient) -> None:
    shop.tables["products"] = dated_rows([("2026-01-01 10:00:00", 4)])
    shop.broken = {1, 2, 3, 4}
    pages = await collect(client.changes("products", None, page_size=2, overlap_s=2))
    assert sorted(f.record_id for page in pages for f in page.failed) == [1, 2]
    assert len(shop.seen) < 20


async def test_network_errors_during_fallback_stop_the_pass(shop: FakeShop, client: PrestaShopClient) -> None:
    shop.tables["products"] = dated_rows([("2026-01-01 10:00:00", 3)])
    shop.broken = {2}

    original = shop.listing

    def listing(resource: str, query: Any) -> web.Response:
        if query.get("filter[id]") == "[1]":
            raise web.HTTPServiceUnavailable(text="down")
        return original(resource, query)

    shop.listing = listing  # type: ignore[method-assign]
    with pytest.raises(TransientError):
        await collect(client.changes("products", None, page_size=10, overlap_s=2))


# ----------------------------------------------------------------------------------- classify table


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (200, JSON_HEADERS, b'{"products":[]}', None),
        (200, JSON_HEADERS, b"", BadResponse),
        (200, JSON_HEADERS, b"<br />\n<b>Notice</b>: Undefined index {...}", BadResponse),
        (200, XML_HEADERS, b'<?xml version="1.0"?><prestashop><products>', ConfigError),  # XML for a JSON ask
        (401, {}, b"", ConfigError),
        (403, {}, b"<html>Forbidden by WAF</html>", ConfigError),
        (404, {}, b"", NotFound),
        (404, JSON_HEADERS, error_body(131, "This Product (6) does not exists on this shop"), NotFound),
        (404, {"Content-Type": "text/html"}, b"<html>Not Found</html>", ConfigError),
        (404, {"PSWS-Version": "1.7.8.8"}, b"<html>Not Found</html>", NotFound),
        (400, JSON_HEADERS, error_body(37, "sort syntax"), PermanentError),
        (400, JSON_HEADERS, error_body(39, "limit syntax"), PermanentError),
        (400, JSON_HEADERS, error_body(34, "dynamic field"), PermanentError),
        (500, {}, b"", ShopPhpError),
        (500, JSON_HEADERS, error_body(999, "This group shop doesn't have shops"), ConfigError),
        (503, JSON_HEADERS, error_body(22, "The PrestaShop webservice is disabled"), ConfigError),
        (503, {}, b"", TransientError),
        (504, {}, b"<html>Gateway Time-out</html>", TransientError),
        (418, {}, b"", PermanentError),
    ],
)
def test_classify_table(
    status: int, headers: dict[str, str], body: bytes, expected: type[Exception] | None
) -> None:
    error = classify(status, headers, body, expected="json", where=WHERE)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected, error
        assert error.where == WHERE


def test_classify_xml_error_body_and_retry_after_date() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<prestashop><errors><error><code><![CDATA[132]]></code>'
        b"<message><![CDATA[No permission for this key on this shop]]></message>"
        b"</error></errors></prestashop>"
    )
    error = classify(403, XML_HEADERS, body, expected="xml", where=WHERE)
    assert isinstance(error, ConfigError) and "code 132" in str(error)
    assert pserrors.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert pserrors.retry_after_seconds("soon") is None


def test_transport_errors_are_transient() -> None:
    assert isinstance(pserrors.transport_error(TimeoutError(), where=WHERE), TransientError)
    reset = pserrors.transport_error(aiohttp.ServerDisconnectedError(), where=WHERE)
    assert isinstance(reset, TransientError) and reset.where == WHERE
    assert isinstance(pserrors.transport_error(aiohttp.ClientPayloadError("cut"), where=WHERE), BadResponse)


@settings(max_examples=300, deadline=None)
@given(
    status=st.integers(min_value=100, max_value=599),
    body=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)),
    expected=st.sampled_from(["json", "xml", "binary"]),
)
def test_classify_never_crashes(status: int, body: bytes, expected: str) -> None:
    error = classify(status, {}, body, expected=expected, where=WHERE)  # type: ignore[arg-type]
    assert error is None or isinstance(error, (ConfigError, TransientError, PermanentError, NotFound))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_xml_parser_raises_only_bad_response_on_arbitrary_bytes(body: bytes) -> None:
    try:
        psxml.parse(b"<prestashop>" + body + b"</prestashop>")
        psxml.parse(body)
    except BadResponse:
        pass


_XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="]"), max_size=20
)


@settings(max_examples=150, deadline=None)
@given(
    fields=st.dictionaries(st.from_regex(r"\A[a-z][a-z_]{0,10}\Z"), _XML_TEXT, max_size=6),
    names=st.lists(st.tuples(st.integers(1, 9), _XML_TEXT), max_size=3, unique_by=lambda t: t[0]),
    option_ids=st.lists(st.integers(1, 9999), max_size=4),
)
def test_xml_parser_round_trips_generated_records(
    fields: dict[str, str], names: list[tuple[int, str]], option_ids: list[int]
) -> None:
    fields.pop("id", None)
    fields.pop("name", None)
    fields.pop("associations", None)
    xml = ['<?xml version="1.0" encoding="UTF-8"?><prestashop xmlns:xlink="http://www.w3.org/1999/xlink">']
    xml.append("<product><id><![CDATA[7]]></id>")
    xml += [f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()]
    if names:
        xml.append(
            "<name>" + "".join(f'<language id="{i}"><![CDATA[{t}]]></language>' for i, t in names) + "</name>"
        )
    xml.append(
        '<associations><product_option_values nodeType="product_option_value" api="product_option_values">'
    )
    xml += [
        f'<product_option_value xlink:href="http://s/api/product_option_values/{i}"><0><![CDATA[]]></0>'
        "</product_option_value>"
        for i in option_ids
    ]
    xml.append("</product_option_values></associations></product></prestashop>")
    record = psxml.parse("".join(xml).encode())["product"]
    expected: dict[str, Any] = {"id": "7", **fields}
    if names:
        expected["name"] = [{"id": str(i), "value": t} for i, t in names]
    if option_ids:
        expected["associations"] = {"product_option_values": [{"id": str(i)} for i in option_ids]}
    assert record == expected


# ------------------------------------------------------------------------------------------ resources


def test_resource_specs() -> None:
    expected = {
        "categories",
        "products",
        "combinations",
        "product_options",
        "product_option_values",
        "stock_availables",
        "customers",
        "addresses",
        "orders",
        "order_details",
        "order_histories",
        "order_payments",
        "order_invoices",
        "order_carriers",
        "order_slip",
        "order_states",
        "carriers",
        "taxes",
        "tax_rules",
        "tax_rule_groups",
        "countries",
        "currencies",
        "languages",
        "shops",
        "shop_groups",
        "configurations",
    }
    assert set(RESOURCES) == expected
    assert (
        spec("order_slip").list_key == "order_slips" and spec("order_histories").single_key == "order_history"
    )
    for name in ("products", "categories", "customers", "addresses", "orders"):
        assert spec(name).change_field == "date_upd"
    for name in ("combinations", "stock_availables", "order_states", "carriers"):
        assert spec(name).change_field is None and "id" in spec(name).sweep_fields
    assert spec("order_payments").change_field == "id"
    assert spec("customers").deletable == "soft" and spec("products").deletable == "hard"
    assert spec("warehouses").list_key == "warehouses"  # unknown resources get a generic spec


async def test_listing_key_comes_from_the_spec(shop: FakeShop, client: PrestaShopClient) -> None:
    canned(shop, "/order_slip", (200, JSON_HEADERS, b'{"order_slips":[{"id":1,"id_order":3}]}'))
    assert await client.fetch("order_slip") == [{"id": 1, "id_order": 3}]
    canned(shop, "/orders", (200, JSON_HEADERS, b'{"errors":[],"orders":[]}'))
    assert await client.fetch("orders") == []
    canned(shop, "/customers", (200, JSON_HEADERS, b'{"something":{"id":1}}'))
    with pytest.raises(BadResponse, match="no 'customers' key"):
        await client.fetch("customers")


async def test_changes_refuses_filters_on_the_walked_fields(client: PrestaShopClient) -> None:
    with pytest.raises(ValueError, match="may not constrain"):
        await collect(
            client.changes("products", None, page_size=5, overlap_s=0, filters={"date_upd": Filter.gt(1)})
        )
    with pytest.raises(ValueError, match="change_field"):
        await collect(client.changes("products", None, page_size=5, overlap_s=0, change_field="position"))
