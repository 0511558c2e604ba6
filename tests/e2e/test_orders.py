"""Orders -> invoices -> payments end to end, over real sockets: a simulated shop into a simulated Dolibarr."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from service.dolibarr.model import ref_ext
from service.prestashop import values
from service.sandbox.dolibarr_sim import DolibarrSimOptions
from service.sandbox.harness import Sandbox
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import OrderLine, ShopData
from service.state import order_totals
from tests.conftest import SandboxFactory, engine_for
from tests.e2e.test_backfill import ps2doli, write_config

ORDERS = ("orders",)
RACY = DolibarrSimOptions(bad_key_delay_s=0.0, race_quirks=True)

# the default order states of a 1.7.8 install (shop_generator): ids only used to drive the shop
AWAITING_CHECK, PAYMENT_ACCEPTED, PROCESSING, SHIPPED, DELIVERED, CANCELED, REFUNDED = 1, 2, 3, 4, 5, 6, 7
AWAITING_WIRE = 10


def small_shop(seed: int = 5, **kwargs: Any) -> ShopData:
    shop = generate_shop(seed, categories=4, products=24, customers=8, orders=0, **kwargs)
    shop.advance(3600)
    return shop


def simple_products(shop: ShopData) -> list[int]:
    """Active products without combinations, with a tax rules group, by id."""
    with_combinations = {values.as_int(c["id_product"]) for c in shop.table("combinations").values()}
    return [
        pid
        for pid, p in sorted(shop.table("products").items())
        if pid not in with_combinations and shop.product_view(pid)["active"]
    ]


def french_customer(shop: ShopData) -> int:
    """A registered customer whose default address is in France (20 % VAT on the standard rate)."""
    for cid, customer in sorted(shop.table("customers").items()):
        if values.as_int(customer["is_guest"]) or values.as_int(customer["deleted"]):
            continue
        for address in shop.table("addresses").values():
            mine = values.as_int(address["id_customer"]) == cid and not values.as_int(address["deleted"])
            if mine and values.as_int(address["id_country"]) == 8:
                return cid
    raise AssertionError("the generated shop has no French customer")


def order_ref_ext(order_id: int) -> str:
    return ref_ext("main", "order", order_id)


def dolibarr_order(sandbox: Sandbox, order_id: int) -> dict[str, Any] | None:
    return sandbox.dolibarr.find_one("orders", ref_ext=order_ref_ext(order_id))


def dolibarr_invoice(sandbox: Sandbox, order_id: int) -> dict[str, Any] | None:
    return sandbox.dolibarr.find_one("invoices", ref_ext=ref_ext("main", "invoice", order_id))


def shop_total(shop: ShopData, order_id: int) -> Decimal:
    return Decimal(str(shop.get("orders", order_id)["total_paid_tax_incl"])).quantize(Decimal("0.01"))


async def orders_pass(sandbox: Sandbox, state: Path, **settings: Any) -> Any:
    async with engine_for(sandbox, state, resources=ORDERS, **settings) as w:
        return await w.engine.run_pass("main", "orders")


async def test_an_order_through_its_states_is_one_order_one_invoice_its_payment_once_and_closed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    sandbox = await make_sandbox({"main": shop}, dolibarr_options=RACY)
    state = tmp_path / "state.sqlite3"
    data = sandbox.dolibarr
    customer = french_customer(shop)
    a, b = simple_products(shop)[:2]

    oid = shop.create_order(customer, [(a, 2), (b, 1)], state_id=AWAITING_CHECK)
    report = await orders_pass(sandbox, state)
    assert report.outcome == "ok", report.error
    assert dolibarr_order(sandbox, oid) is None, "awaiting payment: not invoiced yet, so not in Dolibarr"

    shop.advance(3600)
    shop.change_order_state(oid, PAYMENT_ACCEPTED)
    report = await orders_pass(sandbox, state)
    assert report.outcome == "ok" and report.created == 1, report
    order = dolibarr_order(sandbox, oid)
    assert order is not None and order["status"] == "1", "validated"
    reference = shop.get("orders", oid)["reference"]
    assert order["ref_client"] == f"{reference} / {oid}"
    assert Decimal(order["total_ttc"]) == shop_total(shop, oid)
    invoice = dolibarr_invoice(sandbox, oid)
    assert invoice is not None and invoice["status"] == "2" and invoice["paye"] == "1", "validated, then paid"
    assert Decimal(invoice["total_ttc"]) == shop_total(shop, oid)
    assert invoice["ref_client"] == order["ref_client"]
    number = shop.get("orders", oid)["invoice_number"]
    assert f"PrestaShop invoice number {number}" in (invoice["note_private"] or "")
    assert data.paid_amount(int(invoice["id"])) == shop_total(shop, oid)

    for next_state in (SHIPPED, DELIVERED):
        shop.advance(3600)
        shop.change_order_state(oid, next_state)
        sandbox.dolibarr_requests.reset()
        report = await orders_pass(sandbox, state)
        assert report.outcome == "ok", report.error

    assert data.count("orders") == 1 and data.count("invoices") == 1 and data.count("payments") == 1
    order = dolibarr_order(sandbox, oid)
    assert order is not None and order["status"] == "3", "shipped then delivered: closed"
    invoice = dolibarr_invoice(sandbox, oid)
    assert invoice is not None and invoice["paye"] == "1"
    assert data.count("thirdparties") == 1

    sandbox.dolibarr_requests.reset()
    report = await orders_pass(sandbox, state)
    assert sandbox.dolibarr_requests.writes() == 0, sandbox.dolibarr_requests.counts


async def test_a_status_change_alone_is_pushed_with_one_status_call(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    customer = french_customer(shop)
    oid = shop.create_order(customer, [(simple_products(shop)[0], 1)], state_id=PAYMENT_ACCEPTED)
    await orders_pass(sandbox, state)
    shop.advance(600)
    shop.change_order_state(oid, SHIPPED)
    sandbox.dolibarr_requests.reset()
    report = await orders_pass(sandbox, state)
    assert report.updated == 1, report
    requests = sandbox.dolibarr_requests
    assert requests.writes() == 1 and requests.total("POST", "/orders/{id}/close") == 1, requests.counts
    order = dolibarr_order(sandbox, oid)
    assert order is not None and order["status"] == "3"


async def test_fifty_orders_of_one_new_customer_synced_at_once_make_one_thirdparty(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    sandbox = await make_sandbox({"main": shop}, dolibarr_options=RACY)
    customer = french_customer(shop)
    products = simple_products(shop)
    ids = [
        shop.create_order(customer, [(products[n % len(products)], 1 + n % 3)], state_id=PAYMENT_ACCEPTED)
        for n in range(50)
    ]
    report = await orders_pass(
        sandbox,
        tmp_path / "state.sqlite3",
        dolibarr={"max_concurrency": 8},
        shop_overrides={"main": {"page_size": 50}},
    )
    assert report.outcome == "ok" and report.created == 50, report
    data = sandbox.dolibarr
    assert data.count("thirdparties") == 1
    assert len(data.find("thirdparties", ref_ext=ref_ext("main", "customer", customer))) == 1
    assert data.count("contacts") == 1, "the one address, once"
    refs = [o["ref"] for o in data.orders.values()]
    assert len(set(refs)) == 50 and all(r.startswith("CO") for r in refs), "validated one at a time"
    invoice_refs = [i["ref"] for i in data.invoices.values()]
    assert len(set(invoice_refs)) == 50 and all(r.startswith("FA") for r in invoice_refs)
    for oid in ids:
        order = dolibarr_order(sandbox, oid)
        assert order is not None and Decimal(order["total_ttc"]) == shop_total(shop, oid)


@pytest.mark.parametrize("round_type", [1, 2, 3])
async def test_order_lines_follow_each_rounding_mode_to_the_cent(
    make_sandbox: SandboxFactory, tmp_path: Path, round_type: int
) -> None:
    shop = small_shop(round_type=round_type)
    sandbox = await make_sandbox({"main": shop})
    customer = french_customer(shop)
    products = simple_products(shop)
    oid = shop.create_order(
        customer,
        [OrderLine(products[0], 7), OrderLine(products[1], 3), OrderLine(products[2], 11)],
        state_id=PAYMENT_ACCEPTED,
    )
    report = await orders_pass(sandbox, tmp_path / "state.sqlite3")
    assert report.outcome == "ok", report.error
    order = dolibarr_order(sandbox, oid)
    assert order is not None and Decimal(order["total_ttc"]) == shop_total(shop, oid)
    async with engine_for(sandbox, tmp_path / "state.sqlite3", resources=ORDERS) as w:
        [row] = await order_totals.rows(w.store, differing_only=False)
    assert row.outcome in ("exact", "adjusted") and row.dolibarr_total == shop_total(shop, oid)


async def test_an_order_in_another_currency_adds_the_currency_or_is_entered_in_the_main_one(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Multicurrency on: Dolibarr would silently keep a document in a currency it does not list in the main
    currency, so the client adds it first (POST /multicurrencies, once) and the order, its invoice and its payment
    are in dollars. Multicurrency off: the order is entered in the main currency at the order's rate, the rate on
    its public note, and ``report totals`` lists it as converted."""
    usd = 2
    shop = small_shop()
    customer = french_customer(shop)
    a, b = simple_products(shop)[:2]
    oid = shop.create_order(customer, [(a, 3), (b, 1)], currency_id=usd, state_id=PAYMENT_ACCEPTED)
    other = shop.create_order(customer, [(a, 1)], currency_id=usd, state_id=PAYMENT_ACCEPTED)
    rate = Decimal("1.0825")

    on = await make_sandbox(
        {"main": shop}, dolibarr_options=DolibarrSimOptions(bad_key_delay_s=0.0, multicurrency_enabled=True)
    )
    assert [c["code"] for c in on.dolibarr.multicurrencies()] == ["EUR"], "the live server's list: EUR only"
    report = await orders_pass(on, tmp_path / "on.sqlite3")
    assert report.outcome == "ok" and report.created == 2 and report.failed == 0, report
    assert on.dolibarr_requests.total("POST", "/multicurrencies") == 1, "added once, for both orders"
    [added] = [c for c in on.dolibarr.multicurrencies() if c["code"] == "USD"]
    assert Decimal(added["rate"]["rate"]) == rate
    for order_id in (oid, other):
        order = dolibarr_order(on, order_id)
        assert (
            order is not None
            and order["multicurrency_code"] == "USD"
            and order["fk_multicurrency"] == added["id"]
        )
        assert Decimal(order["multicurrency_tx"]) == rate
        assert Decimal(order["multicurrency_total_ttc"]) == shop_total(shop, order_id)
        invoice = dolibarr_invoice(on, order_id)
        assert invoice is not None and invoice["multicurrency_code"] == "USD"
        assert Decimal(invoice["multicurrency_total_ttc"]) == shop_total(shop, order_id)
        assert invoice["paye"] == "1", "paid in dollars, in full"

    off = await make_sandbox({"main": shop})
    report = await orders_pass(off, tmp_path / "off.sqlite3")
    assert report.outcome == "ok" and report.failed == 0, report
    assert off.dolibarr_requests.total(contains="/multicurrencies") == 0
    order = dolibarr_order(off, oid)
    assert order is not None and order["multicurrency_code"] == "EUR"
    assert "USD" in order["note_public"] and str(rate) in order["note_public"]
    converted = shop_total(shop, oid) / rate
    assert abs(Decimal(order["total_ttc"]) - converted) <= Decimal("0.05"), (order["total_ttc"], converted)
    invoice = dolibarr_invoice(off, oid)
    assert invoice is not None and invoice["multicurrency_code"] == "EUR" and invoice["paye"] == "1"
    async with engine_for(off, tmp_path / "off.sqlite3", resources=ORDERS) as w:
        assert await w.store.failures("main") == []
        rows = {r.order_id: r for r in await order_totals.rows(w.store)}
    assert rows[oid].outcome == "converted" and rows[oid].dolibarr_total == Decimal(order["total_ttc"])


def products_by_tax_group(shop: ShopData) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for pid in simple_products(shop):
        groups.setdefault(values.as_int(shop.get("products", pid)["id_tax_rules_group"]), []).append(pid)
    return groups


async def test_a_table_of_orders_with_mixed_taxes_discounts_shipping_wrapping_and_rounding_reconciles(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = generate_shop(9, categories=4, products=60, customers=8, orders=0)
    shop.advance(3600)
    customer = french_customer(shop)
    groups = products_by_tax_group(shop)
    assert len([g for g in groups if g]) >= 3, "several VAT rates among the products"
    mixed = [groups[g][n % len(groups[g])] for n, g in enumerate(sorted(groups))]
    variants: list[dict[str, Any]] = [
        {},
        {"discount_percent": 10},
        {"discount_amount": "5.00"},
        {"free_shipping": True, "carrier_id": 3},
        {"gift_wrapping": True, "gift_message": "Bon anniversaire !"},
        {"discount_percent": 15, "gift_wrapping": True, "carrier_id": 2},
        {"discount_amount": "10.00", "free_shipping": True, "carrier_id": 2},
        {"carrier_id": 1},  # click & collect: no shipping
    ]
    ids: list[int] = []
    for round_type in (1, 2, 3):
        for n, extra in enumerate(variants):
            lines = [OrderLine(pid, 1 + (n + k * 3) % 7) for k, pid in enumerate(mixed[n % 2 :])]
            ids.append(
                shop.create_order(customer, lines, round_type=round_type, state_id=PAYMENT_ACCEPTED, **extra)
            )
    # two orders whose own totals do not add up (FIELD-NOTES): one cent off, and a whole euro off
    cent_off = shop.create_order(customer, [OrderLine(mixed[0], 2)], state_id=PAYMENT_ACCEPTED)
    euro_off = shop.create_order(customer, [OrderLine(mixed[1], 2)], state_id=PAYMENT_ACCEPTED)
    for oid, drift in ((cent_off, Decimal("0.01")), (euro_off, Decimal("1.00"))):
        total = shop_total(shop, oid) + drift
        shop.update("orders", oid, total_paid_tax_incl=total, total_paid=total)

    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    report = await orders_pass(sandbox, state)
    assert report.created == len(ids) + 1 and report.failed == 1, report

    for oid in [*ids, cent_off]:
        order, invoice = dolibarr_order(sandbox, oid), dolibarr_invoice(sandbox, oid)
        assert order is not None and invoice is not None
        assert Decimal(order["total_ttc"]) == shop_total(shop, oid), (oid, order["total_ttc"])
        assert Decimal(invoice["total_ttc"]) == shop_total(shop, oid)
    assert dolibarr_order(sandbox, euro_off) is None

    async with engine_for(sandbox, state, resources=ORDERS) as w:
        rows = {r.order_id: r for r in await order_totals.rows(w.store, differing_only=False)}
        [failure] = await w.store.failures("main")
    assert len(rows) == len(ids) + 2
    for row in rows.values():
        assert row.delta == row.shop_total - row.lines_total
        assert row.outcome in ("exact", "adjusted", "refused"), row
    assert all(rows[oid].outcome == "exact" for oid in ids), [
        rows[o] for o in ids if rows[o].outcome != "exact"
    ]
    assert rows[cent_off].outcome == "adjusted" and rows[cent_off].delta == Decimal("0.01")
    assert rows[euro_off].outcome == "refused" and rows[euro_off].delta == Decimal("1.00")
    assert failure.ps_id == str(euro_off)
    assert str(shop_total(shop, euro_off)) in failure.message and "1.00" in failure.message
    adjusted = dolibarr_order(sandbox, cent_off)
    assert adjusted is not None
    assert any(
        line["desc"] == "Rounding adjustment" and Decimal(line["total_ttc"]) == Decimal("0.01")
        for line in adjusted["lines"]
    )

    # the admin's view of it
    config = write_config(tmp_path, sandbox.settings_data(state, resources=ORDERS))
    code, out, err = await ps2doli("report", "totals", config=config)
    assert code == 0, out + err
    listed = {int(line.split()[1]) for line in out.splitlines() if line.startswith("main ")}
    assert listed == {cent_off, euro_off}, out
    assert "adjusted" in out and "refused" in out and "2 order(s) whose totals differ" in out


async def test_an_initial_pass_of_orders_reads_no_total_no_remainder_and_looks_invoices_up_in_one_listing(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Issue 12: an order validated in the push has its total in the validation's answer, an invoice created
    and validated in it owes its total (no read before its payment), and an initial pass looks invoices and
    contacts up in one listing each instead of one request per create."""
    shop = small_shop()
    sandbox = await make_sandbox({"main": shop}, dolibarr_options=RACY)
    customer = french_customer(shop)
    products = simple_products(shop)
    ids = [
        shop.create_order(customer, [(products[n % len(products)], 1 + n % 3)], state_id=PAYMENT_ACCEPTED)
        for n in range(24)
    ]
    sandbox.dolibarr_requests.reset()
    report = await orders_pass(
        sandbox, tmp_path / "state.sqlite3", shop_overrides={"main": {"page_size": 50}}
    )
    assert report.outcome == "ok" and report.created == 24, report
    requests = sandbox.dolibarr_requests
    counts = requests.counts
    assert requests.total("GET", "/orders/{id}") == 0, counts
    assert requests.total("GET", "/invoices/{id}") == 0, counts
    assert requests.total("GET", "/invoices/ref_ext") == 0, counts
    assert requests.total("GET", "/invoices") == 1, counts  # the listing by ref_ext prefix
    assert requests.total("GET", "/contacts") <= 1, counts
    data = sandbox.dolibarr
    for oid in ids:
        order = dolibarr_order(sandbox, oid)
        invoice = dolibarr_invoice(sandbox, oid)
        assert order is not None and Decimal(order["total_ttc"]) == shop_total(shop, oid)
        assert invoice is not None and invoice["paye"] == "1"
        assert data.paid_amount(int(invoice["id"])) == shop_total(shop, oid)
    async with engine_for(sandbox, tmp_path / "state.sqlite3", resources=ORDERS) as w:
        rows = {r.order_id: r for r in await order_totals.rows(w.store, differing_only=False)}
    assert sorted(rows) == sorted(ids)
    assert all(row.dolibarr_total == shop_total(shop, oid) for oid, row in rows.items())
