"""DolibarrSoapClient over real sockets.

- against the SOAP simulator (service.sandbox.dolibarr_soap_sim): the whole port, faults included;
- the simulator's WSDLs and answers against the envelopes captured from Dolibarr 20.0.2
  (shared/reference/dolibarr/soap): same bytes for the WSDLs, same element names and xsi:types for answers;
- the client against the captured answers themselves, served by a tiny aiohttp server.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from service.dolibarr.errors import DatabaseBusy, RefAlreadyExists
from service.dolibarr.model import (
    CategoryPayload,
    ContactPayload,
    DocumentPayload,
    LinePayload,
    PaymentPayload,
    ProductPayload,
    Ref,
    ThirdpartyPayload,
)
from service.dolibarr.port import DolibarrPort
from service.dolibarr.soap import DolibarrSoapClient, _day
from service.errors import AmbiguousWrite, BadResponse, ConfigError, NotFound, PermanentError, TransientError
from service.sandbox.dolibarr_soap_sim import (
    DEFAULT_KEY,
    DEFAULT_LOGIN,
    DEFAULT_PASSWORD,
    OPERATIONS_KEY,
    STORE_KEY,
    WSDL,
    SoapStore,
    create_app,
    render_wsdl,
)
from service.sandbox.faults import FaultPlan
from service.sandbox.runner import RunningServer, start_app
from service.settings import DolibarrSettings, RetrySettings, Secret
from tests.dolibarr.soap_support import soap_sync_document

SOAP_REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "dolibarr" / "soap"
needs_captures = pytest.mark.skipif(
    not SOAP_REFERENCE.is_dir(), reason=f"Dolibarr SOAP captures not found at {SOAP_REFERENCE}"
)
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
FAST = RetrySettings(attempts=3, base_delay_s=0.01, max_delay_s=0.05)
CUSTOMER = Ref("thirdparty", "ps-main-customer-7")
TEE = Ref("product", "ps-main-product-12")
SHIPPING = Ref("product", "ps-main-product-99")
DAY = 1764158400  # 2025-11-26 12:00 UTC: the same calendar day in every zone between UTC-11 and UTC+11


def settings(url: str, **overrides: Any) -> DolibarrSettings:
    values: dict[str, Any] = {
        "url": url,
        "api_key": Secret(DEFAULT_KEY),
        "backend": "soap",
        "login": DEFAULT_LOGIN,
        "password": Secret(DEFAULT_PASSWORD),
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return DolibarrSettings(**values)


@pytest.fixture
async def sim() -> AsyncIterator[RunningServer]:
    running = await start_app(create_app(faults=FaultPlan()))
    yield running
    await running.stop()


@pytest.fixture
async def client(sim: RunningServer) -> AsyncIterator[DolibarrSoapClient]:
    soap = DolibarrSoapClient(settings(sim.url), FAST)
    yield soap
    await soap.close()


def store(sim: RunningServer) -> SoapStore:
    return sim.app[STORE_KEY]


def operations(sim: RunningServer) -> dict[str, int]:
    return dict(sim.app[OPERATIONS_KEY])


def plan(sim: RunningServer) -> FaultPlan:
    from service.sandbox.faults import FAULTS_KEY

    return sim.app[FAULTS_KEY]


def customer(**changes: Any) -> ThirdpartyPayload:
    base = ThirdpartyPayload(
        ref_ext=CUSTOMER.ref_ext,
        name="ACME Customer",
        email="acme@example.com",
        phone="+33999999999",
        address="1 rue de la Paix",
        zip="69001",
        town="Lyon",
        country_code="FR",
        note_private="from PrestaShop",
    )
    return replace(base, **changes)


def tee(**changes: Any) -> ProductPayload:
    base = ProductPayload(
        ref_ext=TEE.ref_ext,
        ref="PS-SKU-12",
        label="T-shirt blue",
        description="Short description",
        price=Decimal("24"),
        tva_tx=Decimal("20"),
        extrafields=(("longdescription", "Long description"),),
    )
    return replace(base, **changes)


def order_payload(kind: str = "order", ref_ext: str = "ps-main-order-5") -> DocumentPayload:
    return DocumentPayload(
        kind=kind,  # type: ignore[arg-type]
        ref_ext=ref_ext,
        thirdparty=CUSTOMER,
        date=DAY,
        ref_client="PS-ORDER-5",
        lines=(
            LinePayload(
                "T-shirt blue", Decimal(2), Decimal(25), Decimal(20), product=TEE, remise_percent=Decimal(4)
            ),
            LinePayload("Gift wrap", Decimal(1), Decimal(3), Decimal(20), service=True),
            LinePayload("Shipping", Decimal(1), Decimal(5), Decimal(20), product=SHIPPING, service=True),
        ),
        note_private="PrestaShop order 5",
    )


async def seed(client: DolibarrSoapClient) -> dict[Ref, int]:
    tid = await client.create(customer(), {})
    pid = await client.create(tee(), {})
    sid = await client.create(
        ProductPayload(
            ref_ext=SHIPPING.ref_ext,
            ref="SHIPPING",
            label="Shipping fee",
            price=Decimal(5),
            tva_tx=Decimal(20),
            service=True,
        ),
        {},
    )
    return {CUSTOMER: tid, TEE: pid, SHIPPING: sid}


# ------------------------------------------------------------------------------------------- the port


def test_the_client_is_a_dolibarr_port() -> None:
    port: DolibarrPort = DolibarrSoapClient(settings("http://127.0.0.1:1"), FAST)
    assert port is not None


async def test_capabilities_say_what_soap_cannot_do(client: DolibarrSoapClient) -> None:
    caps = await client.capabilities()
    assert caps.version == "20.0.2"
    assert (caps.categories, caps.variants, caps.stock, caps.documents, caps.payments) == (False,) * 5
    assert not caps.multicurrency
    assert await client.check_access() == []


async def test_check_access_names_a_missing_permission() -> None:
    running = await start_app(create_app(denied=frozenset({"getOrder"})))
    soap = DolibarrSoapClient(settings(running.url), FAST)
    try:
        problems = await soap.check_access()
    finally:
        await soap.close()
        await running.stop()
    assert len(problems) == 1
    assert "read orders" in problems[0] and "permission" in problems[0]


async def test_thirdparty_create_get_update_and_lookups(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    tid = await client.create(customer(), {})
    got = await client.get("thirdparty", tid)
    assert got["id"] == tid
    assert got["ref"] == "ACME Customer"
    assert got["ref_ext"] == CUSTOMER.ref_ext
    assert (got["email"], got["zip"], got["town"], got["country_code"]) == (
        "acme@example.com",
        "69001",
        "Lyon",
        "FR",
    )
    assert (got["client"], got["status"], got["vat_used"]) == ("1", "1", "1")
    code = got["customer_code"]
    assert code and code.startswith("CU")

    await client.update(tid, customer(name="ACME Corp", email="billing@acme.example", country_code="BE"), {})
    got = await client.get("thirdparty", tid)
    assert (got["ref"], got["email"], got["country_code"]) == ("ACME Corp", "billing@acme.example", "BE")
    assert got["customer_code"] == code, "an update keeps the customer code"
    assert got["note_private"] == "from PrestaShop"

    found = await client.find_by_ref_ext("thirdparty", CUSTOMER.ref_ext)
    assert found is not None and (found.id, found.ref, found.status) == (tid, "ACME Corp", "1")
    listed = await client.list_ref_ext("thirdparty", "ps-main-")
    assert list(listed) == [CUSTOMER.ref_ext] and listed[CUSTOMER.ref_ext].id == tid
    assert await client.list_ref_ext("thirdparty", "ps-other-") == {}

    await client.set_active("thirdparty", tid, False)
    assert store(sim).thirdparties[tid]["status"] == 0
    assert store(sim).thirdparties[tid]["name"] == "ACME Corp", "deactivating keeps the other fields"


async def test_an_update_without_address_keeps_the_address_an_order_wrote(client: DolibarrSoapClient) -> None:
    """A customer's payload carries no address (PrestaShop keeps addresses apart); over SOAP an order writes its
    invoice address on the thirdparty (no contacts): a later customer update leaves it there."""
    tid = await client.create(customer(address="", zip="", town="", country_code="", phone=""), {})
    await client.update(tid, customer(), {})  # the order's invoice address
    await client.update(
        tid, customer(name="ACME Corp", address="", zip="", town="", country_code="", phone=""), {}
    )
    got = await client.get("thirdparty", tid)
    assert (got["ref"], got["address"], got["zip"], got["town"], got["country_code"]) == (
        "ACME Corp",
        "1 rue de la Paix",
        "69001",
        "Lyon",
        "FR",
    )


async def test_text_above_the_bmp_is_left_out_for_a_utf8_connection(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    """dolibarr.charset = "utf8" (the default, as Dolibarr installs itself): over SOAP as over REST, a
    4-byte character is left out of what is sent (the real server refuses it: "Incorrect string value")."""
    pid = await client.create(tee(label="\U0001f381 Carte cadeau", ref="\U0001f381-CARTE-50"), {})
    got = await client.get("product", pid)
    assert (got["label"], got["ref"]) == ("Carte cadeau", "-CARTE-50")
    found = await client.find_product_by_ref("\U0001f381-CARTE-50")
    assert found is not None and found.id == pid


async def test_product_create_get_update_delete(client: DolibarrSoapClient, sim: RunningServer) -> None:
    pid = await client.create(tee(), {})
    got = await client.get("product", pid)
    assert (got["ref"], got["label"], got["price_net"], got["price"]) == (
        "PS-SKU-12",
        "T-shirt blue",
        "24.00000000",
        "28.80000000",
    )
    assert (got["vat_rate"], got["price_base_type"], got["type"]) == ("20.0000", "HT", "0")
    assert got["options_longdescription"] == "Long description"

    await client.update(pid, tee(label="T-shirt navy", price=Decimal("19.90"), extrafields=()), {})
    got = await client.get("product", pid)
    assert (got["label"], got["price_net"]) == ("T-shirt navy", "19.90000000")
    assert got["options_longdescription"] == "Long description", "extrafields not in the payload are kept"

    found = await client.find_product_by_ref("PS-SKU-12")
    assert found is not None and found.id == pid and found.ref_ext == TEE.ref_ext
    assert await client.find_product_by_ref("NOPE") is None
    assert (await client.find_by_ref_ext("product", TEE.ref_ext)) is not None
    assert list(await client.list_ref_ext("product", "ps-main-")) == [TEE.ref_ext]

    await client.set_active("product", pid, False)
    assert (store(sim).products[pid]["status"], store(sim).products[pid]["status_buy"]) == (0, 0)
    assert store(sim).products[pid]["price"] == Decimal("19.90"), "deactivating keeps the price"

    with pytest.raises(RefAlreadyExists):
        await client.create(tee(ref_ext="ps-main-product-13"), {})
    with pytest.raises(ConfigError, match="extrafield 'material'"):
        await client.create(
            tee(ref_ext="ps-main-product-14", ref="X", extrafields=(("material", "cotton"),)), {}
        )

    await client.delete("product", pid)
    assert pid not in store(sim).products
    await client.delete("product", pid)  # already gone: nothing to do


async def test_order_with_lines_validate_and_invoice(client: DolibarrSoapClient, sim: RunningServer) -> None:
    ids = await seed(client)
    oid = await client.create(order_payload(), ids)
    order = await client.get("order", oid)
    assert order["status"] == 0 and order["ref"] == f"(PROV{oid})"
    assert order["ref_ext"] == "ps-main-order-5"
    assert order["date"] == _day(DAY).isoformat()
    lines = order["lines"]
    assert [line["desc"] for line in lines] == ["T-shirt blue", "Gift wrap", "Shipping"]
    # the 4 % discount is folded into the unit price: SOAP order lines carry no discount Dolibarr reads
    assert (lines[0]["subprice"], lines[0]["qty"], lines[0]["total_ht"]) == (
        "24.00000000",
        "2",
        "48.00000000",
    )
    assert lines[0]["fk_product"] == str(ids[TEE]) and lines[1]["fk_product"] is None
    assert order["total_ttc"] == "67.2"

    await client.set_document_status("order", oid, "validated")
    validated = await client.find_by_ref_ext("order", "ps-main-order-5")
    assert validated is not None and validated.status == "1" and validated.ref.startswith("CO")
    calls = operations(sim).get("validOrder", 0)
    await client.set_document_status("order", oid, "validated")
    assert operations(sim).get("validOrder", 0) == calls, "already validated: no call"

    iid = await client.invoice_from_order(oid, order_payload("invoice", "ps-main-invoice-5"), ids)
    invoice = await client.get("invoice", iid)
    assert invoice["ref_ext"] == "ps-main-invoice-5" and invoice["status"] == 0
    assert invoice["total_ttc"] == "67.2"
    assert [line["total_ht"] for line in await client.document_lines("invoice", iid)] == [
        "48.0",
        "3.0",
        "5.0",
    ]
    found = await client.find_by_ref_ext("invoice", "ps-main-invoice-5")
    assert found is not None and found.id == iid

    await client.set_document_status("invoice", iid, "closed")  # validate, then classify paid
    invoice = await client.get("invoice", iid)
    assert invoice["status"] == 2 and invoice["ref"].startswith("FA")

    await client.set_document_status("order", oid, "closed")
    assert store(sim).orders[oid]["statut"] == 3

    assert list(await client.list_ref_ext("order", "ps-main-")) == ["ps-main-order-5"]
    # Dolibarr 20.0.2 cannot list invoices over SOAP (DB_ERROR_NOSUCHFIELD, as the real pair answers): a
    # ConfigError the engine reads as "look them up one by one", asked of Dolibarr once per client
    calls = operations(sim).get("getInvoicesForThirdParty", 0)
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"getInvoicesForThirdParty cannot run on this Dolibarr"):
            await client.list_ref_ext("invoice", "ps-main-")
    assert operations(sim).get("getInvoicesForThirdParty", 0) == calls + 1

    # Dolibarr's own createInvoiceFromOrder works, but leaves ref_ext empty (why the port does not use it)
    native = await client.create_invoice_from_order(oid)
    copied = await client.get("invoice", native)
    assert copied["ref_ext"] is None and len(copied["lines"]) == 3


async def test_line_totals_are_dolibarrs_and_the_customer_ref_heads_the_public_note(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    """As calcul_price_total (the real 20.0.2: Commande::addline recomputes order lines, createInvoice stores the
    totals it is sent): the TTC from the unrounded HT, so an 8-decimal unit price 2.00461894 at 20 % is 2.00 +
    0.41 = 2.41 in the order and in its invoice alike. createOrder reads no ref_client (real: ref_client stays
    NULL) and the invoice type has none: the customer ref heads the public note of both."""
    ids = await seed(client)
    line = LinePayload("Gift wrapping", Decimal(1), Decimal("2.00461894"), Decimal(20), service=True)
    order = replace(order_payload(), lines=(line,), note_public="Invoice address: Jean Erp, Nantes")
    oid = await client.create(order, ids)
    iid = await client.create(replace(order, kind="invoice", ref_ext="ps-main-invoice-5"), ids)
    for kind, doc_id in (("order", oid), ("invoice", iid)):
        got = await client.get(kind, doc_id)  # type: ignore[arg-type]
        assert (got["total_ht"], got["total_tva"], got["total_ttc"]) == ("2.0", "0.41", "2.41"), kind
        assert got["note_public"] == "Customer ref: PS-ORDER-5\nInvoice address: Jean Erp, Nantes", kind
    assert store(sim).orders[oid]["ref_client"] is None


# validOrder's whole answer on the real 20.0.2, for a draft it validated and for an id that does not exist alike
REAL_VALID_ORDER_BODY = (
    '<SOAP-ENV:Body><ns1:validOrderResponse xmlns:ns1="http://www.dolibarr.org/ns/">'
    '<result xsi:type="tns:result"></result></ns1:validOrderResponse></SOAP-ENV:Body>'
)


def _valid_order_request(order_id: int, key: str = DEFAULT_KEY) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><soap-env:Envelope '
        'xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>'
        '<ns0:validOrder xmlns:ns0="http://www.dolibarr.org/ns/"><authentication>'
        f"<dolibarrkey>{key}</dolibarrkey><sourceapplication>ps2doli</sourceapplication>"
        f"<login>{DEFAULT_LOGIN}</login><password>{DEFAULT_PASSWORD}</password><entity>1</entity>"
        f"</authentication><id>{order_id}</id><id_warehouse></id_warehouse></ns0:validOrder>"
        "</soap-env:Body></soap-env:Envelope>"
    ).encode()


async def test_valid_order_answers_no_result_code_so_the_client_reads_the_order_back(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    """nusoap, given validOrder's single output part, takes the whole returned array as it: the real server
    answers an empty <result> whether it validated, refused, or did not know the id or the key. The simulator
    answers the same; the client validates with updateOrder status 1 (errors reported) and uses validOrder
    only for a warehouse, reading the order back."""
    ids = await seed(client)
    oid = await client.create(order_payload(), ids)
    for order_id, key in ((99999, DEFAULT_KEY), (oid, "wrong-key"), (oid, DEFAULT_KEY)):
        answer = await _post(sim.url, "order", _valid_order_request(order_id, key))
        assert REAL_VALID_ORDER_BODY in answer.decode(), answer
    assert store(sim).orders[oid]["statut"] == 1

    second = await client.create(order_payload(ref_ext="ps-main-order-6"), ids)
    before = dict(operations(sim))
    await client.set_document_status("order", second, "validated")
    assert operations(sim)["updateOrder"] == before.get("updateOrder", 0) + 1
    assert operations(sim).get("validOrder", 0) == before.get("validOrder", 0)

    third = await client.create(order_payload(ref_ext="ps-main-order-7"), ids)
    await client.set_document_status("order", third, "validated", warehouse_id=1)
    assert store(sim).orders[third]["statut"] == 1
    assert operations(sim)["validOrder"] == before.get("validOrder", 0) + 1


async def test_a_document_of_an_unknown_thirdparty_is_refused_with_the_databases_words(
    client: DolibarrSoapClient,
) -> None:
    """The real 20.0.2 inserts and lets MariaDB refuse: KO with the foreign key's message, a PermanentError."""
    ids = {**await seed(client), CUSTOMER: 999999}
    for kind, table in (("order", "commande"), ("invoice", "facture")):
        with pytest.raises(PermanentError, match=f"CONSTRAINT `fk_{table}_fk_soc` FOREIGN KEY"):
            await client.create(order_payload(kind, f"ps-main-{kind}-9"), ids)


async def test_cancel_validates_a_draft_and_reopens_a_closed_order_first(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    """Commande::cancel only moves a validated order and answers OK for any other (the real 20.0.2 left three
    invoiced-then-cancelled drafts as drafts): the client validates a draft, reopens a closed order, then
    cancels, and reads the order back."""
    ids = await seed(client)
    draft = await client.create(order_payload(), ids)
    await client._update_order(draft, {"status": -1})  # what Dolibarr does with a draft: OK, nothing changed
    assert store(sim).orders[draft]["statut"] == 0
    await client.set_document_status("order", draft, "cancelled")
    closed = await client.create(order_payload(ref_ext="ps-main-order-6"), ids)
    await client.set_document_status("order", closed, "closed")
    await client.set_document_status("order", closed, "cancelled")
    for oid in (draft, closed):
        assert store(sim).orders[oid]["statut"] == -1
        assert str(store(sim).orders[oid]["ref"]).startswith("CO"), "a cancelled order keeps its number"


async def test_a_changed_draft_document_cannot_be_rewritten(client: DolibarrSoapClient) -> None:
    ids = await seed(client)
    oid = await client.create(order_payload(), ids)
    await client.update(oid, order_payload(), ids)  # same content: nothing to do
    changed = replace(order_payload(), lines=order_payload().lines[:1])
    with pytest.raises(PermanentError, match="cannot change a document's lines"):
        await client.update(oid, changed, ids)


async def test_not_found(client: DolibarrSoapClient) -> None:
    with pytest.raises(NotFound):
        await client.get("thirdparty", 999999)
    with pytest.raises(NotFound):
        await client.get("order", 999999)
    assert await client.find_by_ref_ext("thirdparty", "ps-main-customer-404") is None
    assert await client.find_by_ref_ext("invoice", "ps-main-invoice-404") is None


async def test_bad_key_is_a_config_error_that_never_quotes_it(sim: RunningServer) -> None:
    wrong = "not-the-key-0123456789"
    soap = DolibarrSoapClient(settings(sim.url, api_key=Secret(wrong)), FAST)
    try:
        with pytest.raises(ConfigError) as caught:
            await soap.capabilities()
        assert "security key" in str(caught.value) and wrong not in str(caught.value)
        problems = await soap.check_access()
        assert len(problems) == 1 and wrong not in problems[0]
    finally:
        await soap.close()
    assert operations(sim)["getVersions"] == 2, "a ConfigError is not retried"


async def test_bad_password_is_a_config_error(sim: RunningServer) -> None:
    soap = DolibarrSoapClient(settings(sim.url, password=Secret("wrong-password-42")), FAST)
    try:
        with pytest.raises(ConfigError, match="login") as caught:
            await soap.get("thirdparty", 1)
        assert "wrong-password-42" not in str(caught.value)
    finally:
        await soap.close()


async def test_http_500_on_a_create_is_an_ambiguous_write(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    await client.capabilities()
    await client.find_by_ref_ext("thirdparty", "ps-main-customer-0")  # WSDL loaded: faults hit the POST
    faults = plan(sim)
    faults.only_methods = frozenset({"POST"})
    faults.only_paths = ("server_thirdparty",)
    faults.fail_next, faults.fail_next_kind = 1, "error"
    with pytest.raises(AmbiguousWrite, match="ref_ext"):
        await client.create(customer(), {})
    assert store(sim).thirdparties == {}, "the 500 came before Dolibarr ran: nothing stored"

    # the write happened, then the answer was lost (500 or reset): the lookup the engine makes finds it
    faults.fail_next, faults.fail_next_kind = 1, "error_after"
    with pytest.raises(AmbiguousWrite):
        await client.create(customer(), {})
    found = await client.find_by_ref_ext("thirdparty", CUSTOMER.ref_ext)
    assert found is not None and found.id in store(sim).thirdparties


async def test_a_deadlock_is_database_busy_retried_and_halves_the_limit_when_frequent(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    """A create whose transaction deadlocked answers KO with the database's words (HTTP 200), nothing stored:
    the client retries it, and lowers its concurrency when deadlocks are frequent, as the REST client does."""
    await client.capabilities()
    assert client.limit.limit == client.limit.maximum == 4  # dolibarr.max_concurrency
    faults = plan(sim)
    faults.only_methods = frozenset({"POST"})
    faults.fail_next, faults.fail_next_kind = 1, "deadlock"
    pid = await client.create(tee(), {})
    assert faults.injected["deadlock"] == 1 and list(store(sim).products) == [pid]
    assert (client.limit.limit, client.limit.decreases) == (4, 0)  # one deadlock: retried, no slower
    faults.fail_next = (
        10  # every attempt deadlocks: the error reaches the engine, which retries after a lookup
    )
    with pytest.raises(DatabaseBusy, match="Deadlock found"):
        await client.create(customer(), {})
    assert store(sim).thirdparties == {}
    assert faults.injected["deadlock"] == 1 + FAST.attempts  # retried as often as any transient error
    assert (client.limit.limit, client.limit.decreases) == (2, 1)  # deadlocks in a row: halved
    faults.fail_next = 0
    assert (await client.get("product", pid))["ref"] == "PS-SKU-12"  # reads never deadlock


async def test_a_reset_on_a_create_is_ambiguous_and_on_a_read_is_retried(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    ids = await seed(client)
    await client.capabilities()
    faults = plan(sim)
    faults.only_methods = frozenset({"POST"})
    faults.fail_next, faults.fail_next_kind = 1, "reset"
    with pytest.raises(AmbiguousWrite):
        await client.create(order_payload(), ids)
    faults.fail_next, faults.fail_next_kind = 2, "reset"
    assert (await client.get("thirdparty", ids[CUSTOMER]))["ref"] == "ACME Customer"
    faults.fail_next, faults.fail_next_kind = 5, "error"
    with pytest.raises(TransientError) as caught:
        await client.get("thirdparty", ids[CUSTOMER])
    assert not isinstance(caught.value, AmbiguousWrite)


async def test_a_truncated_or_html_answer_is_a_bad_response(sim: RunningServer) -> None:
    soap = DolibarrSoapClient(settings(sim.url), RetrySettings(attempts=1))
    try:
        await soap.capabilities()
        faults = plan(sim)
        faults.only_methods = frozenset({"POST"})
        for kind in ("truncate", "html"):
            faults.fail_next, faults.fail_next_kind = 1, kind
            with pytest.raises(BadResponse):
                await soap.get("thirdparty", 1)
        faults.fail_next, faults.fail_next_kind = 1, "truncate"
        with pytest.raises(AmbiguousWrite):
            await soap.create(customer(), {})
    finally:
        await soap.close()


async def test_a_timeout_is_transient(sim: RunningServer) -> None:
    soap = DolibarrSoapClient(settings(sim.url, timeout_s=0.3), RetrySettings(attempts=1))
    try:
        await soap.capabilities()
        faults = plan(sim)
        faults.timeout_s = 2.0
        faults.only_methods = frozenset({"POST"})
        faults.fail_next, faults.fail_next_kind = 1, "timeout"
        with pytest.raises(TransientError) as caught:
            await soap.get("thirdparty", 1)
        assert not isinstance(caught.value, AmbiguousWrite)
        faults.fail_next, faults.fail_next_kind = 1, "timeout"
        with pytest.raises(AmbiguousWrite):
            await soap.create(customer(), {})
    finally:
        await soap.close()


UNSUPPORTED = [
    (
        "create a category",
        lambda c: c.create(CategoryPayload(ref_ext="ps-main-category-3", label="Tees"), {}),
    ),
    (
        "create a contact",
        lambda c: c.create(ContactPayload(ref_ext="c", thirdparty=CUSTOMER, lastname="Doe"), {}),
    ),
    ("create a variant", lambda c: c.create_variant(1, (("Size", "M"),), tee(), {})),
    ("link a category", lambda c: c.link_category(1, "product", 1)),
    ("unlink a category", lambda c: c.unlink_category(1, "product", 1)),
    ("read stock", lambda c: c.stock_level(1, 1)),
    ("move stock", lambda c: c.move_stock(1, 1, Decimal(1), "sync")),
    ("list files", lambda c: c.list_files("product", 1)),
    ("upload a file", lambda c: c.upload_file("product", 1, "a.jpg", b"x")),
    ("delete a file", lambda c: c.delete_file("product", 1, "a.jpg")),
    (
        "add a payment",
        lambda c: c.add_payment(
            PaymentPayload(
                ref_ext="p", invoice=Ref("invoice", "i"), date=DAY, amount=Decimal(1), payment_type="CB"
            ),
            {},
        ),
    ),
    ("list payments", lambda c: c.invoice_payments(1)),
    ("payment types", lambda c: c.payment_type_ids()),
    ("bank accounts", lambda c: c.bank_account_ids()),
    ("warehouses", lambda c: c.warehouse_ids()),
    ("thirdparties by email", lambda c: c.find_thirdparties_by_email("a@b.c")),
    ("category by ref_ext", lambda c: c.find_by_ref_ext("category", "ps-main-category-3")),
    ("list contacts", lambda c: c.list_ref_ext("contact", "ps-main-")),
    ("delete an order", lambda c: c.delete("order", 1)),
    ("mark an order shipped", None),
]


@pytest.mark.parametrize(("what", "call"), UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
async def test_what_soap_cannot_do_is_a_config_error_naming_rest(
    client: DolibarrSoapClient, sim: RunningServer, what: str, call: Any
) -> None:
    if call is None:  # needs an order first
        ids = await seed(client)
        oid = await client.create(order_payload(), ids)

        def call(c: DolibarrSoapClient) -> Any:
            return c.set_document_status("order", oid, "shipped")

    before = sum(operations(sim).values())
    with pytest.raises(ConfigError) as caught:
        await call(client)
    assert "REST backend" in caught.value.message
    if what != "mark an order shipped":
        assert sum(operations(sim).values()) == before, "refused without asking Dolibarr"


async def test_foreign_currency_and_credit_notes_are_refused(client: DolibarrSoapClient) -> None:
    ids = await seed(client)
    with pytest.raises(PermanentError, match="main currency"):
        await client.create(replace(order_payload(), currency="USD"), ids)
    with pytest.raises(ConfigError, match="credit notes"):
        await client.create(replace(order_payload("invoice"), credit_note_of=Ref("invoice", "x")), ids)


async def test_extrafields_come_from_the_wsdl(client: DolibarrSoapClient) -> None:
    fields = await client.extrafields("product")
    assert list(fields) == ["longdescription"]
    assert await client.extrafields("societe") == {}


async def test_module_off_and_wrong_url_are_config_errors() -> None:
    running = await start_app(create_app(module_enabled=False))
    try:
        soap = DolibarrSoapClient(settings(running.url), FAST)
        with pytest.raises(ConfigError, match="module"):
            await soap.capabilities()
        await soap.close()
        soap = DolibarrSoapClient(settings(running.url + "/erp"), FAST)
        with pytest.raises(ConfigError, match="404"):
            await soap.capabilities()
        await soap.close()
    finally:
        await running.stop()


async def test_a_rest_url_is_trimmed_to_the_root(sim: RunningServer) -> None:
    soap = DolibarrSoapClient(settings(sim.url + "/api/index.php"), FAST)
    try:
        assert soap.root == sim.url
        assert (await soap.capabilities()).version == "20.0.2"
    finally:
        await soap.close()


async def test_a_shared_session_is_not_closed(sim: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        soap = DolibarrSoapClient(settings(sim.url), FAST, session=session)
        await soap.capabilities()
        await soap.close()
        assert not session.closed


async def test_envelopes_are_what_the_wsdl_says() -> None:
    seen: list[tuple[str, str, bytes]] = []

    @web.middleware
    async def spy(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "POST":
            seen.append(
                (request.headers["Content-Type"], request.headers["SOAPAction"], await request.read())
            )
        return await handler(request)

    app = create_app()
    app.middlewares.append(spy)
    running = await start_app(app)
    soap = DolibarrSoapClient(settings(running.url), FAST)
    try:
        await soap.create(customer(), {})
    finally:
        await soap.close()
        await running.stop()
    content_type, action, body = seen[-1]
    assert content_type == "text/xml; charset=utf-8"
    assert action == '"http://www.dolibarr.org/ns/#createThirdParty"'
    doc = etree.fromstring(body)
    auth = doc.find(".//authentication")
    assert auth is not None
    assert auth.findtext("sourceapplication") == "ps2doli"
    assert auth.findtext("dolibarrkey") == DEFAULT_KEY and auth.findtext("entity") == "1"
    thirdparty = doc.find(".//thirdparty")
    assert thirdparty is not None and thirdparty.findtext("ref") == "ACME Customer"
    assert thirdparty.findtext("client") == "1" and thirdparty.findtext("vat_used") == "1"
    assert thirdparty.find("fax") is None and thirdparty.find("id") is None, "unset fields are not sent"


# ------------------------------------------------------------------------ the simulator vs the captures


@needs_captures
async def test_simulator_wsdls_are_the_captured_bytes(sim: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        for name in WSDL:
            captured = (SOAP_REFERENCE / f"server_{name}.wsdl").read_bytes()
            assert render_wsdl(name, f"http://127.0.0.1:8080/webservices/server_{name}.php") == captured
            async with session.get(f"{sim.url}/webservices/server_{name}.php?wsdl") as answer:
                assert answer.headers["Content-Type"] == "text/xml; charset=ISO-8859-1"
                served = await answer.read()
            assert served == captured.replace(b"127.0.0.1:8080", f"127.0.0.1:{sim.port}".encode())
    listed = json.loads((SOAP_REFERENCE / "operations.json").read_text())
    assert {f"server_{n}": sorted(o.name for o in s.operations) for n, s in WSDL.items()} == listed


def skeleton(xml: bytes) -> list[tuple[str, str | None, bool]]:
    """Every element of an envelope as (path, xsi:type, nil), values left out."""
    out: list[tuple[str, str | None, bool]] = []

    def walk(element: Any, path: str) -> None:
        for child in element:
            if not isinstance(child.tag, str):
                continue
            here = f"{path}/{etree.QName(child).localname}"
            out.append((here, child.get(XSI_TYPE), child.get(XSI_NIL) == "true"))
            walk(child, here)

    walk(etree.fromstring(xml), "")
    return out


def same_shape(mine: bytes, captured: bytes) -> None:
    a, b = skeleton(mine), skeleton(captured)
    assert [p for p, _, _ in a] == [p for p, _, _ in b]
    for (path, type_a, nil_a), (_, type_b, nil_b) in zip(a, b, strict=True):
        if nil_a or nil_b:  # a null in one and a value in the other: the data differs, not the shape
            continue
        assert type_a == type_b, f"{path}: {type_a} != {type_b}"


def same_structure(mine: Any, captured: Any, path: str = "") -> None:
    """Both parsed with zeep (through the client): same keys, same Python types where both have a value."""
    if mine is None or captured is None:
        return
    assert type(mine) is type(captured), f"{path}: {type(mine).__name__} != {type(captured).__name__}"
    if isinstance(mine, dict):
        assert mine.keys() == captured.keys(), f"{path}: {sorted(mine)} != {sorted(captured)}"
        for key in mine:
            same_structure(mine[key], captured[key], f"{path}.{key}")
    elif isinstance(mine, list):
        assert len(mine) == len(captured), path
        for i, (x, y) in enumerate(zip(mine, captured, strict=True)):
            same_structure(x, y, f"{path}[{i}]")


async def _post(url: str, server: str, request: bytes) -> bytes:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/webservices/server_{server}.php",
            data=request,
            headers={"Content-Type": "text/xml; charset=utf-8"},
        ) as answer,
    ):
        assert answer.status == 200
        return await answer.read()


def _with_id(request: bytes, new_id: int) -> bytes:
    return re.sub(rb"<id>\d+</id>", f"<id>{new_id}</id>".encode(), request, count=1)


@needs_captures
@pytest.mark.parametrize(
    ("server", "operation", "key"),
    [
        ("other", "getVersions", None),
        ("thirdparty", "getThirdParty", CUSTOMER),
        ("productorservice", "getProductOrService", TEE),
        ("order", "getOrder", "order"),
        ("invoice", "getInvoice", "invoice"),
        ("category", "getCategory", "category"),
    ],
)
async def test_simulator_answers_have_the_captured_shape(
    client: DolibarrSoapClient, sim: RunningServer, server: str, operation: str, key: Any
) -> None:
    """The captured request, replayed against the simulator holding the same data as the captured Dolibarr:
    the answer has the captured elements, in the captured order, with the captured xsi:types; and zeep reads
    both into the same structure."""
    ids = await seed(client)
    ids[Ref("product", "ps-capture-tee")] = ids[TEE]
    capture_order = replace(
        order_payload(),
        lines=(
            LinePayload("T-shirt blue", Decimal(2), Decimal(24), Decimal(20), product=TEE),
            LinePayload("Free text line (no product)", Decimal(1), Decimal(3), Decimal(20), service=True),
            LinePayload("Shipping", Decimal(1), Decimal(5), Decimal(20), product=SHIPPING, service=True),
        ),
        note_public="Thank you",
    )
    oid = await client.create(capture_order, ids)
    await client.set_document_status("order", oid, "validated")
    capture_invoice = replace(
        capture_order,
        kind="invoice",
        ref_ext="ps-main-invoice-5",
        lines=(
            capture_order.lines[0],
            capture_order.lines[2],
            LinePayload("Discount line", Decimal(1), Decimal(-2), Decimal(20), service=True),
        ),
        note_public="Thanks",
    )
    iid = await client.create(capture_invoice, ids)
    await client.set_document_status("invoice", iid, "closed")
    cid = store(sim).add_category("Tee-shirts 190928")
    object_id = (
        {"order": oid, "invoice": iid, "category": cid}.get(key) if isinstance(key, str) else ids.get(key)
    )

    request = (SOAP_REFERENCE / f"server_{server}.{operation}.request.xml").read_bytes()
    if object_id is not None:
        request = _with_id(request, object_id)
    mine = await _post(sim.url, server, request)
    captured = (SOAP_REFERENCE / f"server_{server}.{operation}.response.xml").read_bytes()
    same_shape(mine, captured)
    same_structure(
        await client.read_envelope(server, operation, mine),
        await client.read_envelope(server, operation, captured),
    )


@needs_captures
async def test_simulator_error_answers_have_the_captured_shape(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    request = (SOAP_REFERENCE / "server_thirdparty.getThirdParty.notfound.request.xml").read_bytes()
    captured = (SOAP_REFERENCE / "server_thirdparty.getThirdParty.notfound.response.xml").read_bytes()
    mine = await _post(sim.url, "thirdparty", request)
    same_shape(mine, captured)
    assert mine.count(b"Object not found for id=999999 nor ref= nor ref_ext=") == 1

    request = (
        (SOAP_REFERENCE / "server_other.getVersions.request.xml")
        .read_bytes()
        .replace(DEFAULT_KEY.encode(), b"wrong")
    )
    captured = (SOAP_REFERENCE / "server_other.getVersions.badkey.response.xml").read_bytes()
    mine = await _post(sim.url, "other", request)
    same_shape(mine, captured)
    assert skeleton(mine) == skeleton(captured)


# getInvoicesForThirdParty as the real Dolibarr 20.0.2 answers it, whatever the thirdparty (its SQL selects
# llx_facture.total, a column the table no longer has); taken from the real pair
REAL_INVOICE_LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope '
    b'SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/" '
    b'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    b'xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:tns="http://www.dolibarr.org/ns/">'
    b'<SOAP-ENV:Body><ns1:getInvoicesForThirdPartyResponse xmlns:ns1="http://www.dolibarr.org/ns/">'
    b'<result xsi:type="tns:result"><result_code xsi:type="xsd:string">DB_ERROR_NOSUCHFIELD</result_code>'
    b'<result_label xsi:type="xsd:string">Unknown column &apos;total&apos; in &apos;SELECT&apos;</result_label>'
    b'</result><invoices xsi:nil="true" xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="tns:invoice[0]"/>'
    b"</ns1:getInvoicesForThirdPartyResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"
)


async def test_simulator_cannot_list_invoices_like_dolibarr_20(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    """The orders pass lists invoices on an initial sync; the simulator once answered the listing that the real
    20.0.2 refuses, so 18 orders of the real SOAP run failed while the fast suite was green."""
    await client.create(customer(ref_ext="ps-main-customer-1"), {})
    request = (
        b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        b'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="http://www.dolibarr.org/ns/">'
        b"<soapenv:Body><ns:getInvoicesForThirdParty><authentication><dolibarrkey>"
        + DEFAULT_KEY.encode()
        + b"</dolibarrkey><sourceapplication>t</sourceapplication><login>"
        + DEFAULT_LOGIN.encode()
        + b"</login><password>"
        + DEFAULT_PASSWORD.encode()
        + b"</password><entity></entity></authentication><idthirdparty>all</idthirdparty>"
        b"</ns:getInvoicesForThirdParty></soapenv:Body></soapenv:Envelope>"
    )
    mine = await _post(sim.url, "invoice", request)
    assert skeleton(mine) == skeleton(REAL_INVOICE_LISTING)
    result = etree.fromstring(mine).find(".//result")
    assert result is not None
    assert (result.findtext("result_code"), result.findtext("result_label")) == (
        "DB_ERROR_NOSUCHFIELD",
        "Unknown column 'total' in 'SELECT'",
    )


@needs_captures
async def test_simulator_lists_rows_untyped_like_dolibarr(
    client: DolibarrSoapClient, sim: RunningServer
) -> None:
    """getListOfThirdParties over the same four thirdparties as the capture (two complete, two bare names):
    the same untyped rows, with the same nulls."""
    for n in (1, 2):
        await client.create(customer(ref_ext=f"ps-main-customer-{n}"), {})
        await client.create(
            ThirdpartyPayload(ref_ext="", name=f"Bare {n}", address="", zip="", town="", phone=""), {}
        )
    request = (SOAP_REFERENCE / "server_thirdparty.getListOfThirdParties.request.xml").read_bytes()
    mine = await _post(sim.url, "thirdparty", request)
    captured = (SOAP_REFERENCE / "server_thirdparty.getListOfThirdParties.response.xml").read_bytes()
    assert skeleton(mine) == skeleton(captured)
    assert b'SOAP-ENC:arrayType=":[4]"' in mine


# ------------------------------------------------------------------------ the client vs the captures


def _capture_app() -> web.Application:
    """Serves the captured WSDLs and answers each operation with its captured response (NOT_FOUND for id
    999999, BAD_VALUE_FOR_SECURITY_KEY for another key), like the Dolibarr they were captured from."""

    async def handle(request: web.Request) -> web.StreamResponse:
        server = request.match_info["server"]
        if request.method == "GET":
            return web.Response(
                body=(SOAP_REFERENCE / f"server_{server}.wsdl").read_bytes(),
                headers={"Content-Type": "text/xml; charset=ISO-8859-1"},
            )
        body = await request.read()
        operation = request.headers["SOAPAction"].strip('"').rsplit("#", 1)[-1]
        variant = ""
        if DEFAULT_KEY.encode() not in body:
            variant = ".badkey"
        elif b"<id>999999</id>" in body:
            variant = ".notfound"
        path = SOAP_REFERENCE / f"server_{server}.{operation}{variant}.response.xml"
        if not path.exists():
            raise web.HTTPInternalServerError(text="no capture")
        return web.Response(body=path.read_bytes(), headers={"Content-Type": "text/xml; charset=UTF-8"})

    app = web.Application()
    app.router.add_route("*", "/webservices/server_{server}.php", handle)
    return app


@pytest.fixture
async def captures() -> AsyncIterator[RunningServer]:
    running = await start_app(_capture_app())
    yield running
    await running.stop()


def _zeep_json(name: str) -> Any:
    return json.loads((SOAP_REFERENCE / f"{name}.zeep.json").read_text())["result"]


@needs_captures
async def test_client_reads_every_captured_answer(captures: RunningServer) -> None:
    soap = DolibarrSoapClient(settings(captures.url), FAST)
    try:
        assert (await soap.capabilities()).version == "20.0.2"
        assert await soap.versions() == {
            k: v for k, v in _zeep_json("server_other.getVersions").items() if k != "result"
        }

        thirdparty = await soap.get("thirdparty", 4)
        expected = _zeep_json("server_thirdparty.getThirdParty")["thirdparty"]
        for key, value in expected.items():
            if key.startswith("date_"):
                assert thirdparty[key] == value.replace(" ", "T")
            elif key == "id":
                assert thirdparty[key] == 4
            else:
                assert thirdparty[key] == value, key
        with pytest.raises(NotFound, match="999999"):
            await soap.get("thirdparty", 999999)

        product = await soap.get("product", 7)
        assert (product["ref"], product["price_net"], product["options_longdescription"]) == (
            "PS-SKU-190928",
            "24.00000000",
            "Updated long description",
        )
        assert product["images"] == []

        order = await soap.get("order", 3)
        assert order["ref"] == "CO2611-0002" and order["status"] == 1 and order["total_ttc"] == "67.2"
        # zeep alone reads no line here (untyped items, captured zeep.json has []): the client reads all three
        assert [line["desc"] for line in order["lines"]] == [
            "T-shirt blue",
            "Free text line (no product)",
            "Shipping",
        ]
        assert [line["fk_product"] for line in order["lines"]] == ["7", None, "8"]
        assert order["lines"][0]["subprice"] == "24.00000000"

        invoice = await soap.get("invoice", 4)
        assert invoice["ref_ext"] == "ps-invoice-190928" and invoice["status"] == 2
        assert [line["total_ht"] for line in invoice["lines"]] == ["48.0", "5.0", "-2.0"]
        assert [line["fk_product"] for line in invoice["lines"]] == ["7", "8", None]

        category = await soap.get("category", 6)
        assert (category["label"], category["type"], category["photos"]) == ("Tee-shirts 190928", "0", [])

        listed = await soap.list_ref_ext("thirdparty", "ps-customer-")
        assert {k: v.id for k, v in listed.items()} == {"ps-customer-190859": 1, "ps-customer-190928": 4}
    finally:
        await soap.close()

    bad = DolibarrSoapClient(settings(captures.url, api_key=Secret("bad")), FAST)
    try:
        with pytest.raises(ConfigError, match="security key"):
            await bad.capabilities()
    finally:
        await bad.close()


@needs_captures
@pytest.mark.parametrize(
    "name",
    sorted(p.name.removesuffix(".response.xml") for p in SOAP_REFERENCE.glob("*.response.xml"))
    if SOAP_REFERENCE.is_dir()
    else [],
)
async def test_client_parses_the_captured_envelope_like_zeep(captures: RunningServer, name: str) -> None:
    """Each captured answer, read by the client, holds what zeep read from it (zeep.json), plus the untyped
    array items zeep drops."""
    server, operation = name.removeprefix("server_").split(".")[:2]
    soap = DolibarrSoapClient(settings(captures.url), FAST)
    body = (SOAP_REFERENCE / f"{name}.response.xml").read_bytes()
    expected = _zeep_json(name)
    try:
        code = expected["result"]["result_code"]
        if code != "OK":
            with pytest.raises((NotFound, ConfigError)):
                await soap.read_envelope(server, operation, body)
            return
        parts = await soap.read_envelope(server, operation, body)
    finally:
        await soap.close()
    _contains(parts, expected, name)


def _contains(mine: Any, zeep_json: Any, path: str) -> None:
    if isinstance(zeep_json, dict) and "_value_1" in zeep_json and "arrayType" in zeep_json:
        count = int(re.search(r"\[(\d+)\]", zeep_json["arrayType"]).group(1))  # type: ignore[union-attr]
        assert isinstance(mine, list) and len(mine) == count, path
        for i, item in enumerate(zeep_json["_value_1"] or []):
            _contains(mine[i], item, f"{path}[{i}]")
    elif isinstance(zeep_json, dict):
        assert isinstance(mine, dict), path
        for key, value in zeep_json.items():
            assert key in mine, f"{path}.{key}"
            _contains(mine[key], value, f"{path}.{key}")
    elif isinstance(zeep_json, str) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00", zeep_json):
        assert mine == zeep_json.replace(" ", "T"), path
    else:
        assert mine == zeep_json, f"{path}: {mine!r} != {zeep_json!r}"


@needs_captures
async def test_php_warnings_around_the_envelope_are_cut_off_but_a_cut_body_is_refused(
    captures: RunningServer,
) -> None:
    soap = DolibarrSoapClient(settings(captures.url), FAST)
    body = (SOAP_REFERENCE / "server_thirdparty.getThirdParty.response.xml").read_bytes()
    warning = (
        b"<br />\n<b>Warning</b>:  foreach() argument must be of type array|object in <b>x.php</b><br />\n"
    )
    try:
        parts = await soap.read_envelope("thirdparty", "getThirdParty", warning + body + b"\n<!-- 0.2s -->")
        assert parts["thirdparty"]["ref"] == "ACME Customer 190928"
        with pytest.raises(BadResponse):
            await soap.read_envelope("thirdparty", "getThirdParty", warning + body[: len(body) // 2])
        with pytest.raises(AmbiguousWrite):
            await soap.read_envelope(
                "thirdparty", "createThirdParty", b"<html><body>Fatal error</body></html>"
            )
    finally:
        await soap.close()


@needs_captures
async def test_an_iso_8859_1_envelope_is_read(captures: RunningServer) -> None:
    """Old nusoap servers (Dolibarr 3.x) answer in ISO-8859-1, as their WSDLs are declared."""
    soap = DolibarrSoapClient(settings(captures.url), FAST)
    body = (SOAP_REFERENCE / "server_thirdparty.getThirdParty.response.xml").read_text(encoding="utf-8")
    latin = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>' + body.replace("Lyon", "Bourg-en-Bresse Cédex")
    ).encode("iso-8859-1")
    try:
        parts = await soap.read_envelope("thirdparty", "getThirdParty", latin)
    finally:
        await soap.close()
    assert parts["thirdparty"]["town"] == "Bourg-en-Bresse Cédex"


# ------------------------------------------------------------------------ the engine over SOAP


async def test_the_engine_syncs_customers_over_soap_and_adopts_them_after_losing_its_state(
    tmp_path: Path,
) -> None:
    """A simulated shop into the SOAP simulator, through the real wiring (settings -> make_port -> engine): the
    first pass creates every customer once; a pass with a fresh state database finds them all through the bulk
    listing (getListOfThirdParties) and creates nothing."""
    from service.app import wired
    from service.sandbox import prestashop_sim
    from service.sandbox.shop_generator import generate_shop
    from service.settings import parse_settings

    shop = generate_shop(1, categories=4, products=5, customers=12)
    shop_server = await start_app(prestashop_sim.create_app(shop, key=prestashop_sim.DEFAULT_KEY))
    soap_server = await start_app(create_app())

    def document(state: Path) -> dict[str, Any]:
        return soap_sync_document(
            state,
            soap_server.url,
            shop_server.url,
            shop.timezone,
            resources={"customers": {"enabled": True, "interval_s": 5}},
        )

    try:
        for run, state in enumerate((tmp_path / "a.sqlite3", tmp_path / "b.sqlite3")):
            async with wired(parse_settings(document(state), base_dir=tmp_path)) as w:
                assert isinstance(w.port, DolibarrSoapClient)
                [report] = await w.engine.run_many([("main", "customers")])
            assert report.outcome == "ok", report.error
            assert (report.created, report.failed) == ((12, 0) if run == 0 else (0, 0))
        thirdparties = store(soap_server).thirdparties.values()
        assert len({tp["ref_ext"] for tp in thirdparties}) == len(thirdparties) == 12
        assert soap_server.app[OPERATIONS_KEY]["createThirdParty"] == 12
    finally:
        await soap_server.stop()
        await shop_server.stop()


async def test_orders_over_soap_land_without_contacts_and_a_second_pass_writes_nothing(
    tmp_path: Path,
) -> None:
    """Orders into the SOAP simulator through the real wiring: no contact is asked of SOAP (Capabilities.contacts
    is False), each invoiced order lands once with its lines and its invoice, its addresses on the public note
    with the customer ref (SOAP stores no ref_client), the invoice address on the thirdparty; a second pass makes
    no SOAP write."""
    from service.app import wired
    from service.sandbox import prestashop_sim
    from service.sandbox.shop_generator import generate_shop
    from service.settings import parse_settings
    from service.state import order_totals

    # more orders than BULK_LOOKUP_THRESHOLD: the first pass is an initial one, which lists orders and invoices
    # in bulk (the invoice listing fails on 20.0.2: the real SOAP run once failed 18 orders on it)
    shop = generate_shop(5, categories=3, products=6, customers=4, orders=30, combination_share=0)
    shop_server = await start_app(prestashop_sim.create_app(shop, key=prestashop_sim.DEFAULT_KEY))
    soap_server = await start_app(create_app())
    document = soap_sync_document(
        tmp_path / "s.sqlite3",
        soap_server.url,
        shop_server.url,
        shop.timezone,
        orders={"guest_policy": "shared"},
        resources={
            r: {"enabled": r in ("products", "customers", "orders")}
            for r in ("categories", "combinations", "stock", "images")
        },
    )
    writes = ("create", "update", "valid", "delete")
    try:
        async with wired(parse_settings(document, base_dir=tmp_path)) as w:
            caps = await w.port.capabilities()
            assert (caps.contacts, caps.credit_notes, caps.payments) == (False, False, False)
            reports = await w.engine.run_many([("main", r) for r in ("products", "customers", "orders")])
            assert [(r.resource, r.outcome) for r in reports] == [
                ("products", "ok"),
                ("customers", "ok"),
                ("orders", "ok"),
            ], [r.error for r in reports]
            ops = soap_server.app[OPERATIONS_KEY]
            before = sum(n for op, n in ops.items() if op.startswith(writes))
            [again] = await w.engine.run_many([("main", "orders")])
            assert again.outcome == "ok"
            assert sum(n for op, n in ops.items() if op.startswith(writes)) == before
            # as after a SIGKILL between an order's commit and its totals check (the real pair lost three
            # orders from report totals so): records incomplete, no totals; the next pass checks them, no write
            listed = {r.order_id for r in await order_totals.rows(w.store, "main", differing_only=False)}
            async with w.store.transaction() as db:
                await db.execute("DELETE FROM order_totals")
                await db.execute("DELETE FROM cursors WHERE resource='orders'")  # the killed pass's page
                await db.execute(
                    "UPDATE records SET hash='', state=json_remove(state, '$.totals', '$.complete') "
                    "WHERE kind='order' AND dolibarr_id IS NOT NULL"
                )
            [after_crash] = await w.engine.run_many([("main", "orders")])
            assert after_crash.outcome == "ok"
            assert sum(n for op, n in ops.items() if op.startswith(writes)) == before
            rows = await order_totals.rows(w.store, "main", differing_only=False)
            assert {r.order_id for r in rows} == listed
        orders = list(store(soap_server).orders.values())
        assert orders, "no order landed"
        assert len({o["ref_ext"] for o in orders}) == len(orders)
        ps_orders = shop.table("orders")
        for order in orders:
            oid = int(str(order["ref_ext"]).rsplit("-", 1)[1])
            note = str(order.get("note_public") or "")
            assert note.startswith(f"Customer ref: {ps_orders[oid]['reference']} / {oid}"), note
            assert "Invoice address: " in note and "Delivery address: " in note, note
            assert order["lines"], order["ref_ext"]
        invoices = list(store(soap_server).invoices.values())
        assert len({i["ref_ext"] for i in invoices}) == len(invoices) > 0
        with_address = [t for t in store(soap_server).thirdparties.values() if t.get("town")]
        assert with_address, "no invoice address reached a thirdparty"
    finally:
        await soap_server.stop()
        await shop_server.stop()


async def test_products_created_before_a_lost_commit_are_adopted_over_soap(tmp_path: Path) -> None:
    """As after a SIGKILL between Dolibarr's answer and the commit (real pair): a products pass with a fresh
    state database finds every product by ref_ext (getListOfProductsOrServices) and adopts it; comparing an
    adopted product's category links must not end the pass (SOAP holds none: object_categories is empty)."""
    from service.app import wired
    from service.sandbox import prestashop_sim
    from service.sandbox.shop_generator import generate_shop
    from service.settings import parse_settings

    shop = generate_shop(2, categories=3, products=6, customers=1, combination_share=0)
    shop_server = await start_app(prestashop_sim.create_app(shop, key=prestashop_sim.DEFAULT_KEY))
    soap_server = await start_app(create_app())

    def document(state: Path) -> dict[str, Any]:
        return soap_sync_document(state, soap_server.url, shop_server.url, shop.timezone, catalog_only=True)

    try:
        outcomes = []
        for state in (tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"):
            async with wired(parse_settings(document(state), base_dir=tmp_path)) as w:
                [report] = await w.engine.run_many([("main", "products")])
            outcomes.append((report.outcome, report.created, report.failed))
        created = outcomes[0][1]
        assert created > 0 and outcomes == [("ok", created, 0), ("ok", 0, 0)], outcomes
        assert soap_server.app[OPERATIONS_KEY]["createProductOrService"] == created
    finally:
        await soap_server.stop()
        await shop_server.stop()


async def test_a_redirect_is_a_config_error_naming_the_target() -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(location=f"https://erp.example.com{request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", moved)
    running = await start_app(app)
    soap = DolibarrSoapClient(settings(running.url), FAST)
    try:
        with pytest.raises(
            ConfigError, match=re.escape("https://erp.example.com/webservices/server_other.php")
        ):
            await soap.capabilities()
    finally:
        await soap.close()
        await running.stop()


@pytest.mark.parametrize(
    ("catalog", "blocking"),
    [({"warehouse_id": 1}, []), ({"warehouse_id": 1, "combinations": "variants"}, ["variants"])],
)
async def test_check_over_soap_names_what_steps_aside_and_fails_only_for_variants(
    client: DolibarrSoapClient, catalog: dict[str, Any], blocking: list[str]
) -> None:
    """``ps2doli check`` reads feature_findings: over SOAP each part the servers cannot hold is a note (enabling
    a module would not help), and only combinations = "variants" fails."""
    from service.features import feature_findings
    from service.settings import parse_settings

    shops = parse_settings(
        {
            "dolibarr": {
                "url": "http://erp",
                "api_key": "k",
                "backend": "soap",
                "login": "a",
                "password": "p",
            },
            "shops": [{"name": "main", "url": "http://shop", "api_key": "s", "catalog": catalog}],
        },
        base_dir=Path("/tmp"),
    ).shops
    findings = feature_findings(await client.capabilities(), shops)
    assert [f.text for f in findings if f.blocking and not any(b in f.text for b in blocking)] == []
    assert len([f for f in findings if f.blocking]) == len(blocking)
    notes = " | ".join(f.text for f in findings if not f.blocking)
    assert "shop main: synced over SOAP: products, flat combinations, customers, orders" in notes
    for what in ("categories", "stock", "images", "contacts", "customer refs", "payments", "credit notes"):
        assert f"steps aside over SOAP: {what}" in notes, what
