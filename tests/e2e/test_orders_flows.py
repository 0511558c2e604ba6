"""Orders end to end, the harder cases: guests, e-mail matches, products gone, split carts, partial and ambiguous
payments, refunds, cancellations, children without date_upd, catalog-only mode. Real sockets, both simulators."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from service.app import wired
from service.dolibarr.model import ref_ext
from service.engine.backfill import backfill
from service.errors import ConfigError
from service.mapping.customers import email_key
from service.prestashop import values
from service.sandbox.dolibarr_sim import DolibarrSimOptions
from service.sandbox.harness import Sandbox
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import OrderLine, ShopData
from service.settings import parse_settings
from tests.conftest import SandboxFactory, engine_for
from tests.e2e.test_orders import (
    AWAITING_CHECK,
    AWAITING_WIRE,
    CANCELED,
    PAYMENT_ACCEPTED,
    REFUNDED,
    SHIPPED,
    dolibarr_invoice,
    dolibarr_order,
    french_customer,
    orders_pass,
    shop_total,
    simple_products,
    small_shop,
)

ORDERS = ("orders",)


def add_guest(shop: ShopData, email: str, lastname: str) -> int:
    cid = shop.add(
        "customers",
        firstname="Guest",
        lastname=lastname,
        email=email,
        is_guest=1,
        id_lang=1,
        secure_key="0" * 32,
        active=1,
    )
    shop.add(
        "addresses",
        id_customer=cid,
        id_country=8,
        alias="Mon adresse",
        lastname=lastname,
        firstname="Guest",
        address1="1 rue de la Paix",
        postcode="75002",
        city="Paris",
    )
    return cid


async def failures_of(sandbox: Sandbox, state: Path) -> list[Any]:
    async with engine_for(sandbox, state, resources=ORDERS) as w:
        return await w.store.failures("main")


async def order_state(sandbox: Sandbox, state: Path, oid: int) -> dict[str, Any]:
    async with engine_for(sandbox, state, resources=ORDERS) as w:
        row = await w.store.record("main", "order", str(oid))
    assert row is not None
    loaded = json.loads(row.state)
    assert isinstance(loaded, dict)
    return loaded


# ------------------------------------------------------------------------------------------------ customers


@pytest.mark.parametrize("policy", ["per_email", "shared"])
async def test_guest_checkouts_follow_the_guest_policy(
    make_sandbox: SandboxFactory, tmp_path: Path, policy: str
) -> None:
    shop = small_shop()
    products = simple_products(shop)
    first = add_guest(shop, "Guest@Example.org", "Dupont")
    second = add_guest(shop, "guest@example.org ", "Dupont")  # the same person checking out again
    other = add_guest(shop, "other@example.org", "Martin")
    orders = [
        shop.create_order(c, [(products[0], 1)], state_id=PAYMENT_ACCEPTED) for c in (first, second, other)
    ]
    sandbox = await make_sandbox({"main": shop})
    report = await orders_pass(
        sandbox, tmp_path / "state.sqlite3", shop_overrides={"main": {"orders": {"guest_policy": policy}}}
    )
    assert report.outcome == "ok" and report.created == 3, report
    data = sandbox.dolibarr
    if policy == "per_email":
        assert data.count("thirdparties") == 2
        assert (
            len(data.find("thirdparties", ref_ext=ref_ext("main", "guest", email_key("guest@example.org"))))
            == 1
        )
    else:
        [shared] = data.thirdparties.values()
        assert shared["ref_ext"] == ref_ext("main", "guest", "shared") and shared["name"] == "Guest customers"
    for oid in orders:
        assert dolibarr_order(sandbox, oid) is not None


async def test_a_customer_already_in_dolibarr_by_email_is_adopted_and_two_are_a_recorded_failure(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    customer = french_customer(shop)
    email = str(shop.get("customers", customer)["email"])
    oid = shop.create_order(customer, [(simple_products(shop)[0], 1)], state_id=PAYMENT_ACCEPTED)

    one = await make_sandbox({"main": shop})
    existing = one.dolibarr.create_thirdparty({"name": "Made by hand", "email": email})
    report = await orders_pass(one, tmp_path / "one.sqlite3")
    assert report.outcome == "ok", report.error
    assert one.dolibarr.count("thirdparties") == 1, "adopted, never a second thirdparty"
    assert one.dolibarr.thirdparties[existing]["ref_ext"] == ref_ext("main", "customer", customer)
    order = dolibarr_order(one, oid)
    assert order is not None and order["socid"] == str(existing)

    two = await make_sandbox({"main": shop})
    ids = [two.dolibarr.create_thirdparty({"name": f"Hand {n}", "email": email}) for n in (1, 2)]
    report = await orders_pass(two, tmp_path / "two.sqlite3")
    assert report.failed == 1 and dolibarr_order(two, oid) is None
    assert two.dolibarr.count("thirdparties") == 2, "no guess, no third one"
    [failure] = await failures_of(two, tmp_path / "two.sqlite3")
    assert failure.ps_id == str(oid)
    assert email in failure.message and all(str(i) in failure.message for i in ids)


# ---------------------------------------------------------------------------------------------------- lines


async def test_a_product_gone_from_the_shop_becomes_a_described_free_text_line(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    a, b = simple_products(shop)[:2]
    oid = shop.create_order(french_customer(shop), [(a, 2), (b, 1)], state_id=PAYMENT_ACCEPTED)
    name = str(shop.get("order_details", min(shop.index().details_by_order[oid]))["product_name"])
    shop.delete("products", a)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    report = await orders_pass(sandbox, state)
    assert report.outcome == "ok" and report.created == 1, report
    order = dolibarr_order(sandbox, oid)
    assert order is not None and Decimal(order["total_ttc"]) == shop_total(shop, oid)
    free = [line for line in order["lines"] if not line["fk_product"] and line["product_type"] != "1"]
    assert len(free) == 1 and name in free[0]["desc"] and "no longer in the shop" in free[0]["desc"]
    assert any(line["fk_product"] for line in order["lines"]), "the other product is linked"
    warnings = (await order_state(sandbox, state, oid))["warnings"]
    assert any(ref_ext("main", "product", a) in w for w in warnings)


async def test_the_order_is_validated_with_the_configured_warehouse(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    a = simple_products(shop)[0]
    shop.create_order(french_customer(shop), [(a, 3)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    report = await orders_pass(
        sandbox, tmp_path / "state.sqlite3", shop_overrides={"main": {"orders": {"validate_warehouse_id": 1}}}
    )
    assert report.outcome == "ok", report.error
    product = sandbox.dolibarr.find_one("products", ref_ext=ref_ext("main", "product", a))
    assert product is not None
    assert sandbox.dolibarr.stock[int(product["id"])][1]["reel"] == Decimal(-3)


# ------------------------------------------------------------------------------------------------- payments


async def test_a_split_cart_pays_both_invoices_once_and_reports_the_voucher_counted_twice(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    by_price = sorted(
        simple_products(shop), key=lambda p: -values.as_decimal(shop.get("products", p)["price"])
    )
    a, b, c = by_price[:3]
    oid_a, oid_b = shop.create_split_order(
        french_customer(shop), [(a, 1), (b, 2)], [(c, 1)], discount_amount="5.00", state_id=PAYMENT_ACCEPTED
    )
    assert shop.get("orders", oid_a)["reference"] == shop.get("orders", oid_b)["reference"]
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    report = await orders_pass(sandbox, state)
    assert report.outcome == "ok" and report.created == 2, report
    data = sandbox.dolibarr
    assert data.count("payments") == 2, "the one shop payment, shared over the two invoices"
    for oid in (oid_a, oid_b):
        invoice = dolibarr_invoice(sandbox, oid)
        assert invoice is not None and invoice["paye"] == "1"
        assert data.paid_amount(int(invoice["id"])) == shop_total(shop, oid)
    warnings = (await order_state(sandbox, state, oid_b))["warnings"]
    assert any("exceeds" in w and "5.00" in w for w in warnings), warnings
    ref = shop.get("orders", oid_a)["reference"]
    assert dolibarr_order(sandbox, oid_a)["ref_client"] == f"{ref} / {oid_a}"  # type: ignore[index]


async def test_partial_payments_an_ambiguous_payment_write_and_a_duplicate_payment_are_each_recorded_once(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    a, b = simple_products(shop)[:2]
    oid = shop.create_order(
        french_customer(shop),
        [(a, 2), (b, 3)],
        state_id=AWAITING_WIRE,
        module="ps_wirepayment",
        payment="Bank wire",
    )
    reference = str(shop.get("orders", oid)["reference"])
    total = shop_total(shop, oid)
    half = (total / 2).quantize(Decimal("0.01"))
    sandbox = await make_sandbox({"main": shop}, dolibarr_options=DolibarrSimOptions(bad_key_delay_s=0.0))
    state = tmp_path / "state.sqlite3"
    shop.advance(60)
    shop.add_payment(reference, half, "Bank wire", f"VIR-{reference}")
    await orders_pass(sandbox, state)
    assert dolibarr_order(sandbox, oid) is None, "a partial payment does not make an invoice"

    shop.advance(60)
    shop.add_payment(reference, total - half, "Bank wire", f"VIR-{reference}")
    shop.advance(60)
    shop.change_order_state(oid, PAYMENT_ACCEPTED)  # fully paid already: no payment added by the shop
    faults = sandbox.dolibarr_faults
    faults.only_paths, faults.fail_next, faults.fail_next_kind = ("paymentsdistributed",), 1, "error_after"
    report = await orders_pass(sandbox, state)
    assert report.outcome == "ok", report.error
    invoice = dolibarr_invoice(sandbox, oid)
    assert invoice is not None and invoice["paye"] == "1"
    data = sandbox.dolibarr
    assert data.count("payments") == 2, "the ambiguous write was looked up, not repeated"
    assert data.paid_amount(int(invoice["id"])) == total
    assert {p["type"] for p in data.payments.values()} == {"VIR"}
    assert len({p["num_payment"] for p in data.payments.values()}) == 2, "one transaction id, two payments"

    shop.advance(60)
    shop.change_order_state(oid, SHIPPED, duplicate_payment=True)  # the overpayment seen in the field
    report = await orders_pass(sandbox, state)
    assert report.outcome == "ok", report.error
    assert data.count("payments") == 2
    order = dolibarr_order(sandbox, oid)
    assert order is not None and order["status"] == "3"


# ---------------------------------------------------------------------------------------- refunds, cancels


async def test_credit_slips_become_validated_credit_notes_of_the_invoice(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    a, b = simple_products(shop)[:2]
    oid = shop.create_order(french_customer(shop), [(a, 2), (b, 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    await orders_pass(sandbox, state)
    detail = min(shop.index().details_by_order[oid])
    shop.advance(60)
    partial = shop.add_credit_slip(oid, lines=[(detail, 1)])
    await orders_pass(sandbox, state)
    shop.advance(60)
    full = shop.add_credit_slip(oid, id_order_state=REFUNDED)
    report = await orders_pass(sandbox, state)
    assert report.outcome == "ok", report.error

    invoice = dolibarr_invoice(sandbox, oid)
    assert invoice is not None
    for slip in (partial, full):
        note = sandbox.dolibarr.find_one("invoices", ref_ext=ref_ext("main", "creditnote", slip))
        assert note is not None and note["type"] == "2" and note["status"] == "1"
        assert note["fk_facture_source"] == invoice["id"]
        amount = Decimal(str(shop.get("order_slip", slip)["amount"])).quantize(Decimal("0.01"))
        assert Decimal(note["total_ttc"]) == -amount
    assert sandbox.dolibarr.count("invoices") == 3
    order = dolibarr_order(sandbox, oid)
    assert order is not None and order["status"] == "1", "a refund does not change the order's status"


async def test_a_cancellation_after_invoicing_is_credited_and_the_order_cancelled_in_dolibarr(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Dolibarr 20 has no cancel route: the order is cancelled with ``PUT /orders/{id}`` ``{"statut": -1}``
    (Commande::update writes it as given), after the invoice is credited; nothing is left for the admin."""
    shop = small_shop()
    oid = shop.create_order(french_customer(shop), [(simple_products(shop)[0], 2)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    await orders_pass(sandbox, state)
    shop.advance(60)
    shop.change_order_state(oid, CANCELED)
    sandbox.dolibarr_requests.reset()
    report = await orders_pass(sandbox, state)
    assert report.outcome == "ok" and report.failed == 0, report.error
    assert await failures_of(sandbox, state) == []
    note = sandbox.dolibarr.find_one("invoices", ref_ext=ref_ext("main", "cancel", oid))
    assert note is not None and note["type"] == "2" and Decimal(note["total_ttc"]) == -shop_total(shop, oid)
    order = dolibarr_order(sandbox, oid)
    assert order is not None and order["status"] == order["statut"] == "-1"
    assert order["ref"].startswith("CO"), "a cancelled order keeps its number"
    assert sandbox.dolibarr_requests.raw.count(("PUT", f"/api/index.php/orders/{order['id']}")) == 1

    # read again (date_upd moved, nothing else): no write, cancelled once, credited once
    shop.advance(60)
    shop.update("orders", oid)
    sandbox.dolibarr_requests.reset()
    report = await orders_pass(sandbox, state)
    assert report.failed == 0 and sandbox.dolibarr_requests.writes() == 0
    assert sandbox.dolibarr.count("invoices") == 2, "credited once"


async def test_with_entry_created_an_order_waits_as_a_draft_and_a_cancelled_draft_is_deleted(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    products = simple_products(shop)
    kept = shop.create_order(french_customer(shop), [(products[0], 1)], state_id=AWAITING_CHECK)
    dropped = shop.create_order(french_customer(shop), [(products[1], 1)], state_id=AWAITING_CHECK)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    created = {"main": {"orders": {"entry": "created"}}}
    await orders_pass(sandbox, state, shop_overrides=created)
    for oid in (kept, dropped):
        order = dolibarr_order(sandbox, oid)
        assert order is not None and order["status"] == "0"
    assert sandbox.dolibarr.count("invoices") == 0

    shop.advance(60)
    shop.change_order_state(kept, PAYMENT_ACCEPTED)
    shop.change_order_state(dropped, CANCELED)
    report = await orders_pass(sandbox, state, shop_overrides=created)
    assert report.outcome == "ok", report.error
    order = dolibarr_order(sandbox, kept)
    assert order is not None and order["status"] == "1"
    assert dolibarr_invoice(sandbox, kept) is not None
    assert dolibarr_order(sandbox, dropped) is None, "the draft of a cancelled order is deleted"
    sandbox.dolibarr_requests.reset()
    await orders_pass(sandbox, state, shop_overrides=created)
    assert sandbox.dolibarr_requests.writes() == 0


# ------------------------------------------------------------------------------------------------ changes


async def test_a_state_change_that_did_not_move_the_orders_date_upd_is_found_by_its_history(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    products = simple_products(shop)
    old = shop.create_order(french_customer(shop), [(products[0], 1)], state_id=PAYMENT_ACCEPTED)
    shop.advance(86400)
    shop.create_order(french_customer(shop), [(products[1], 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    await orders_pass(sandbox, state)

    shop.advance(3600)
    before = shop.get("orders", old)["date_upd"]
    shop.change_order_state(old, SHIPPED)
    shop.table("orders")[old]["date_upd"] = before  # a history row written without saving the order
    shop.touch()
    report = await orders_pass(sandbox, state)
    assert report.outcome == "ok", report.error
    order = dolibarr_order(sandbox, old)
    assert order is not None and order["status"] == "3"


async def test_catalog_only_syncs_the_catalog_and_customers_and_no_order(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    shop.create_order(french_customer(shop), [(simple_products(shop)[0], 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    data = sandbox.settings_data(
        tmp_path / "state.sqlite3",
        resources=("categories", "products", "customers"),
        shop_overrides={"main": {"catalog_only": True}},
    )
    settings = parse_settings(data, base_dir=tmp_path)
    assert "orders" not in settings.shop("main").enabled()
    async with wired(settings) as w:
        reports = await w.engine.run_many([("main", r) for r in settings.shop("main").enabled()])
        assert all(r.outcome == "ok" for r in reports), [r.error for r in reports]
        with pytest.raises(ConfigError, match="orders are off"):
            await backfill(w.engine, "main", dt.date(2020, 1, 1))
    assert sandbox.dolibarr.count("orders") == 0 and sandbox.dolibarr.count("invoices") == 0
    assert sandbox.dolibarr.count("products") > 0 and sandbox.dolibarr.count("thirdparties") > 0
    data["shops"][0]["resources"]["orders"]["enabled"] = True
    with pytest.raises(ConfigError, match="catalog_only"):
        parse_settings(data, base_dir=tmp_path)


async def test_order_lines_are_computed_from_each_line_quantity(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """A line of 12 at an awkward unit price, rounded per item by the shop, still ends on its total."""
    shop = small_shop(round_type=1)
    a = simple_products(shop)[0]
    shop.update("products", a, price="8.331667")
    oid = shop.create_order(french_customer(shop), [OrderLine(a, 12)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    await orders_pass(sandbox, tmp_path / "state.sqlite3")
    order = dolibarr_order(sandbox, oid)
    assert order is not None and Decimal(order["total_ttc"]) == shop_total(shop, oid)
    assert values.as_int(order["lines"][0]["qty"]) == 12


async def test_an_order_edited_in_the_shop_after_validation_is_updated_and_keeps_its_number(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    a, b = simple_products(shop)[:2]
    oid = shop.create_order(french_customer(shop), [(a, 2), (b, 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    no_invoices = {"main": {"orders": {"invoices": False}}}
    await orders_pass(sandbox, state, shop_overrides=no_invoices)
    order = dolibarr_order(sandbox, oid)
    assert order is not None and order["status"] == "1"
    number = order["ref"]

    # the back office adds one unit to the first line
    shop.advance(60)
    detail_id = min(shop.index().details_by_order[oid])
    detail = shop.get("order_details", detail_id)
    unit_excl, unit_incl = (
        Decimal(str(detail["unit_price_tax_excl"])),
        Decimal(str(detail["unit_price_tax_incl"])),
    )
    cent = Decimal("0.01")
    added_excl, added_incl = unit_excl.quantize(cent), unit_incl.quantize(cent)
    detail.update(
        product_quantity=3,
        total_price_tax_excl=(unit_excl * 3).quantize(cent),
        total_price_tax_incl=(unit_incl * 3).quantize(cent),
    )
    current = shop.get("orders", oid)
    new_total = shop_total(shop, oid) + (unit_incl * 3).quantize(cent) - (unit_incl * 2).quantize(cent)
    shop.update(
        "orders",
        oid,
        total_paid_tax_incl=new_total,
        total_paid=new_total,
        total_products_wt=Decimal(str(current["total_products_wt"])) + added_incl,
        total_products=Decimal(str(current["total_products"])) + added_excl,
    )
    report = await orders_pass(sandbox, state, shop_overrides=no_invoices)
    assert report.outcome == "ok" and report.updated == 1, report
    order = dolibarr_order(sandbox, oid)
    assert order is not None and order["status"] == "1" and order["ref"] == number
    assert Decimal(order["total_ttc"]) == new_total
    assert sorted(int(Decimal(line["qty"])) for line in order["lines"] if line["fk_product"]) == [1, 3]
    assert sandbox.dolibarr.count("invoices") == 0


async def test_an_order_deleted_in_dolibarr_by_hand_is_made_again_at_its_next_change(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    oid = shop.create_order(french_customer(shop), [(simple_products(shop)[0], 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "state.sqlite3"
    await orders_pass(sandbox, state, shop_overrides={"main": {"orders": {"invoices": False}}})
    order = dolibarr_order(sandbox, oid)
    assert order is not None
    sandbox.dolibarr.orders.remove(int(order["id"]))
    shop.advance(60)
    shop.change_order_state(oid, SHIPPED)
    report = await orders_pass(sandbox, state, shop_overrides={"main": {"orders": {"invoices": False}}})
    assert report.outcome == "ok" and report.created == 1, report
    again = dolibarr_order(sandbox, oid)
    assert again is not None and again["status"] == "3" and again["id"] != order["id"]


async def test_an_address_is_loaded_on_its_own_by_its_ref_ext(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    customer = french_customer(shop)
    address = min(
        a for a, row in shop.table("addresses").items() if values.as_int(row["id_customer"]) == customer
    )
    sandbox = await make_sandbox({"main": shop})
    async with engine_for(sandbox, tmp_path / "state.sqlite3", resources=("customers",)) as w:
        await w.engine.run_pass("main", "customers")
        from service.dolibarr.model import Ref

        contact_id = await w.engine.ensure(
            w.settings.shop("main"), Ref("contact", ref_ext("main", "address", address))
        )
    contact = sandbox.dolibarr.contacts[contact_id]
    owner = sandbox.dolibarr.find_one("thirdparties", ref_ext=ref_ext("main", "customer", customer))
    assert owner is not None and contact["socid"] == owner["id"]
    assert contact["ref_ext"] == ref_ext("main", "address", address)


async def test_orders_and_invoices_carry_the_configured_payment_terms(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    oid = shop.create_order(french_customer(shop), [(simple_products(shop)[0], 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    report = await orders_pass(
        sandbox, tmp_path / "state.sqlite3", shop_overrides={"main": {"orders": {"payment_terms": "30D"}}}
    )
    assert report.outcome == "ok", report.error
    order, invoice = dolibarr_order(sandbox, oid), dolibarr_invoice(sandbox, oid)
    assert (
        order is not None and order["cond_reglement_code"] == "30D" and order["mode_reglement_code"] == "CHQ"
    )
    assert invoice is not None and invoice["cond_reglement_code"] == "30D"
    assert int(invoice["date_lim_reglement"]) == int(invoice["date"]) + 30 * 86400

    other = await make_sandbox({"main": shop})
    report = await orders_pass(
        other, tmp_path / "other.sqlite3", shop_overrides={"main": {"orders": {"payment_terms": "45D"}}}
    )
    assert report.failed == 1
    [failure] = await failures_of(other, tmp_path / "other.sqlite3")
    assert "45D" in failure.message and "RECEP" in failure.message


async def test_payments_go_to_the_configured_bank_account(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = small_shop()
    oid = shop.create_order(french_customer(shop), [(simple_products(shop)[0], 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    shop_account = sandbox.dolibarr.add_bank_account("SHOP", "The shop's account")
    report = await orders_pass(
        sandbox,
        tmp_path / "state.sqlite3",
        shop_overrides={"main": {"orders": {"bank_account_id": shop_account}}},
    )
    assert report.outcome == "ok", report.error
    [payment] = sandbox.dolibarr.payments.values()
    assert payment["fk_account"] == str(shop_account)
    assert Decimal(payment["amount"]) == shop_total(shop, oid)


async def test_an_initial_customers_pass_lists_hand_made_thirdparties_once_and_adopts_by_email(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = generate_shop(5, categories=4, products=24, customers=30, orders=0)
    shop.advance(3600)
    customers = sorted(cid for cid, c in shop.table("customers").items() if not values.as_int(c["deleted"]))
    email = str(shop.get("customers", customers[-1])["email"])
    sandbox = await make_sandbox({"main": shop})
    existing = sandbox.dolibarr.create_thirdparty({"name": "Made by hand", "email": email})
    sandbox.dolibarr_requests.reset()
    async with engine_for(sandbox, tmp_path / "state.sqlite3", resources=("customers",)) as w:
        report = await w.engine.run_pass("main", "customers")
    assert report.outcome == "ok", report.error
    assert sandbox.dolibarr.thirdparties[existing]["ref_ext"] == ref_ext("main", "customer", customers[-1])
    assert len(sandbox.dolibarr.find("thirdparties", email=email)) == 1, "adopted, never a second one"
    lookups = sandbox.dolibarr_requests.total("GET", "/thirdparties")
    assert lookups < len(customers) / 2, f"{lookups} look-ups for {len(customers)} customers"


async def test_passes_after_the_first_of_a_running_service_make_no_dolibarr_request(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """One process (``ps2doli run``): its start-up checks (status, modules, currency, extrafields) once, then a
    pass of every resource over an unchanged shop asks Dolibarr nothing."""
    shop = small_shop()
    shop.create_order(french_customer(shop), [(simple_products(shop)[0], 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    resources = ("categories", "products", "combinations", "stock", "images", "customers", "orders")
    async with engine_for(sandbox, tmp_path / "state.sqlite3", resources=resources) as w:
        first = await w.engine.run_many([("main", r) for r in resources])
        assert all(r.outcome == "ok" for r in first), [r.error for r in first]
        assert sum(r.created for r in first) > 0
        sandbox.dolibarr_requests.reset()
        again = await w.engine.run_many([("main", r) for r in resources])
    assert all(r.outcome == "ok" for r in again), [r.error for r in again]
    assert sandbox.dolibarr_requests.total() == 0, sandbox.dolibarr_requests.counts
