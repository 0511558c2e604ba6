"""The order mapper, pure: states, entry, lines and totals per rounding mode, payments shared out, credit notes."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.dolibarr.model import Ref
from service.mapping.context import MappingError, OrderState, ShopContext
from service.mapping.orders import (
    OrderSource,
    allocate_payments,
    dolibarr_total,
    fit_unit,
    map_order,
    order_progress,
    payment_type,
    state_meaning,
)
from service.settings import OrderSettings

CENT = Decimal("0.01")


def r2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def r3(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def r6(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


# the 13 states of a default 1.7.8 install, by flags (service/sandbox/shop_generator.py)
STATES = {
    1: OrderState(1, "Awaiting check payment"),
    2: OrderState(2, "Payment accepted", invoice=True, paid=True, logable=True),
    3: OrderState(3, "Processing in progress", invoice=True, paid=True, logable=True, delivery=True),
    4: OrderState(4, "Shipped", invoice=True, paid=True, logable=True, delivery=True, shipped=True),
    5: OrderState(5, "Delivered", invoice=True, paid=True, logable=True, delivery=True, shipped=True),
    6: OrderState(6, "Canceled", cancelled=True),
    7: OrderState(7, "Refunded", invoice=True, refunded=True),
    8: OrderState(8, "Payment error", error=True),
    10: OrderState(10, "Awaiting bank wire payment"),
}
TAXES = {1: Decimal("20"), 2: Decimal("10"), 3: Decimal("5.5"), 4: Decimal("0")}
RATE_TAX = {v: k for k, v in TAXES.items()}


def ctx(**orders: Any) -> ShopContext:
    return ShopContext(
        shop="main",
        zone=ZoneInfo("Europe/Paris"),
        orders=OrderSettings(**orders),
        order_states=STATES,
        currencies={1: "EUR", 2: "USD"},
        tax_by_id=TAXES,
        tax_rates={1: Decimal("20"), 2: Decimal("10"), 3: Decimal("5.5"), 4: Decimal("0")},
        main_currency="EUR",
    )


def line(
    n: int, unit: str, qty: int, rate: str, round_type: int = 2, pid: int | None = None, **extra: Any
) -> dict[str, Any]:
    """An order_details row computed as PrestaShop does for the round type."""
    excl = Decimal(unit)
    vat = Decimal(rate)
    incl = r6(excl * (1 + vat / 100))
    if round_type == 1:
        tot_excl, tot_incl = r2(excl) * qty, r2(incl) * qty
    elif round_type == 3:
        tot_excl, tot_incl = r3(excl * qty), r3(incl * qty)
    else:
        tot_excl, tot_incl = r2(excl * qty), r2(incl * qty)
    return {
        "id": n,
        "id_order": 1,
        "product_id": pid or n,
        "product_attribute_id": 0,
        "product_name": f"Product {n}",
        "product_reference": f"REF-{n}",
        "product_quantity": qty,
        "product_price": str(excl),
        "reduction_percent": "0.00",
        "reduction_amount_tax_excl": "0.000000",
        "unit_price_tax_excl": str(excl),
        "unit_price_tax_incl": str(incl),
        "total_price_tax_excl": str(tot_excl),
        "total_price_tax_incl": str(tot_incl),
        "associations": {"taxes": [{"id": RATE_TAX[vat]}]},
        **extra,
    }


def order(details: list[dict[str, Any]], round_type: int = 2, **fields: Any) -> dict[str, Any]:
    """An order whose totals are what PrestaShop stores for these lines (products only unless told)."""
    if round_type == 3:
        groups: dict[Decimal, Decimal] = {}
        for d in details:
            rate = Decimal(TAXES[d["associations"]["taxes"][0]["id"]])
            groups[rate] = (
                groups.get(rate, Decimal(0)) + Decimal(d["unit_price_tax_excl"]) * d["product_quantity"]
            )
        products_wt = sum((r2(v * (1 + k / 100)) for k, v in groups.items()), Decimal(0))
    else:
        products_wt = sum((Decimal(d["total_price_tax_incl"]) for d in details), Decimal(0))
    base: dict[str, Any] = {
        "id": 1,
        "reference": "XKBKNABJK",
        "id_customer": 7,
        "id_address_delivery": 3,
        "id_address_invoice": 3,
        "id_currency": 1,
        "current_state": 2,
        "module": "ps_checkpayment",
        "payment": "Payment by check",
        "invoice_number": 1,
        "date_add": "2025-10-26 02:30:00",
        "round_type": round_type,
        "conversion_rate": "1.000000",
        "total_products_wt": str(products_wt),
        "total_shipping_tax_incl": "0",
        "total_shipping_tax_excl": "0",
        "carrier_tax_rate": "20.000",
        "total_wrapping_tax_incl": "0",
        "total_wrapping_tax_excl": "0",
        "total_discounts_tax_incl": "0",
        "total_discounts_tax_excl": "0",
    }
    base.update(fields)
    if "total_paid_tax_incl" not in fields:
        paid = (
            products_wt
            + Decimal(base["total_shipping_tax_incl"])
            + Decimal(base["total_wrapping_tax_incl"])
            - Decimal(base["total_discounts_tax_incl"])
        )
        base["total_paid_tax_incl"] = str(paid)
    return base


CUSTOMER = {"id": 7, "firstname": "Léa", "lastname": "Martin", "email": "lea@example.fr", "is_guest": 0}
ADDRESS = {
    "id": 3,
    "id_customer": 7,
    "id_country": 8,
    "lastname": "Martin",
    "address1": "1 rue",
    "city": "Paris",
}


def source(o: dict[str, Any], details: list[dict[str, Any]], **kw: Any) -> OrderSource:
    kw.setdefault(
        "histories", [{"id": 1, "id_order": 1, "id_order_state": o["current_state"], "date_add": "x"}]
    )
    return OrderSource(order=o, details=details, customer=CUSTOMER, addresses={3: ADDRESS}, **kw)


def lines_total(bundle: Any) -> Decimal:
    return sum(
        (dolibarr_total(ln.qty, ln.subprice, ln.remise_percent, ln.tva_tx) for ln in bundle.document.lines),
        Decimal(0),
    )


# ------------------------------------------------------------------------------------------------ states


@pytest.mark.parametrize(
    ("state", "status", "invoiced"),
    [
        (1, "draft", False),
        (2, "validated", True),
        (3, "validated", True),
        (4, "closed", True),
        (5, "closed", True),
        (6, "cancelled", False),
        (7, None, True),
        (8, None, False),
        (10, "draft", False),
    ],
)
def test_states_mean_what_their_flags_say(state: int, status: str | None, invoiced: bool) -> None:
    meaning = state_meaning(STATES[state])
    assert (meaning.status, meaning.invoiced) == (status, invoiced)


def test_an_override_replaces_one_states_meaning() -> None:
    assert state_meaning(STATES[3], "delivered").status == "closed"
    assert (
        state_meaning(STATES[2], "ignore").status is None and not state_meaning(STATES[2], "ignore").invoiced
    )
    assert state_meaning(STATES[1], "validated").status == "validated"


def test_a_validated_order_never_goes_back_to_draft_and_a_refund_keeps_its_status() -> None:
    history = [
        {"id": i, "id_order": 1, "id_order_state": s, "date_add": f"2025-01-0{i} 10:00:00"}
        for i, s in enumerate((1, 2, 10, 4, 7), start=1)
    ]
    progress = order_progress({"id": 1, "current_state": 7}, history, ctx())
    assert progress.status == "closed" and progress.invoiced and not progress.cancelled
    overridden = order_progress({"id": 1, "current_state": 7}, history, ctx(state_overrides={4: "ignore"}))
    assert overridden.status == "validated"


def test_payment_types_from_settings_then_the_builtin_modules_then_the_default() -> None:
    settings = OrderSettings(
        payment_types={"ps_checkout": "CB", "Bank wire": "VIR"}, default_payment_type="LIQ"
    )
    assert payment_type(settings, "ps_checkout") == "CB"
    assert payment_type(settings, "Bank wire", "whatever") == "VIR"
    assert payment_type(settings, "ps_checkpayment") == "CHQ"
    assert payment_type(settings, "stripe_official") == "LIQ"


# ------------------------------------------------------------------------------------------------- lines


def test_fit_unit_keeps_the_shops_price_when_it_gives_the_amount_and_finds_one_otherwise() -> None:
    assert fit_unit(Decimal(2), Decimal("99.80"), Decimal(20), natural=Decimal("41.583333")) == Decimal(
        "41.583333"
    )
    # per item: 12 x round(9.998, 2) = 120.00, while 12 x 8.331667 x 1.2 = 119.98
    unit = fit_unit(Decimal(12), Decimal("120.00"), Decimal(20), natural=Decimal("8.331667"))
    assert unit is not None and dolibarr_total(Decimal(12), unit, Decimal(0), Decimal(20)) == Decimal(
        "120.00"
    )
    negative = fit_unit(Decimal(1), Decimal("-16.15"), Decimal("5.5"))
    assert negative is not None and dolibarr_total(
        Decimal(1), negative, Decimal(0), Decimal("5.5")
    ) == Decimal("-16.15")


@pytest.mark.parametrize("round_type", [1, 2, 3])
def test_lines_end_on_the_shops_total_for_each_rounding_mode(round_type: int) -> None:
    details = [
        line(1, "8.331667", 12, "20", round_type),
        line(2, "0.010000", 7, "5.5", round_type),
        line(3, "12345.678900", 3, "10", round_type),
        line(4, "2.990000", 5, "20", round_type),
    ]
    bundle = map_order(source(order(details, round_type), details), ctx())
    assert bundle.totals.outcome == "exact", bundle.totals
    assert lines_total(bundle) == Decimal(bundle.document.expected_total_ttc or 0)
    assert bundle.document.ref_client == "XKBKNABJK / 1"
    assert bundle.document.lines[0].product == Ref("product", "ps-main-product-1")


def test_shipping_wrapping_and_a_discount_over_two_rates_are_lines_that_add_up() -> None:
    details = [line(1, "41.583333", 2, "20"), line(2, "90.000000", 1, "10")]
    o = order(
        details,
        total_shipping_tax_incl="6.90",
        total_shipping_tax_excl="5.75",
        total_wrapping_tax_incl="2.40",
        total_wrapping_tax_excl="2.00",
        total_discounts_tax_incl="15.00",
        total_discounts_tax_excl="13.09",
    )
    bundle = map_order(source(o, details, carrier_name="Colissimo"), ctx())
    assert bundle.totals.outcome == "exact"
    descriptions = [ln.description for ln in bundle.document.lines]
    assert "Shipping: Colissimo" in descriptions and "Gift wrapping" in descriptions
    discounts = [ln for ln in bundle.document.lines if ln.description.startswith("Discount")]
    assert {d.description for d in discounts} == {"Discount (VAT 20%)", "Discount (VAT 10%)"}
    assert sum(
        (dolibarr_total(d.qty, d.subprice, d.remise_percent, d.tva_tx) for d in discounts), Decimal(0)
    ) == Decimal("-15.00")
    assert lines_total(bundle) == Decimal(o["total_paid_tax_incl"])


def test_a_residual_within_tolerance_is_a_rounding_line_and_above_it_is_refused() -> None:
    details = [line(1, "10.000000", 1, "20")]
    adjusted = map_order(source(order(details, total_paid_tax_incl="12.03"), details), ctx())
    assert adjusted.totals.outcome == "adjusted" and adjusted.totals.delta == Decimal("0.03")
    assert adjusted.document.lines[-1].description == "Rounding adjustment"
    assert lines_total(adjusted) == Decimal("12.03")
    refused = map_order(source(order(details, total_paid_tax_incl="13.00"), details), ctx())
    assert refused.totals.outcome == "refused" and refused.totals.delta == Decimal("1.00")
    tolerant = map_order(
        source(order(details, total_paid_tax_incl="13.00"), details), ctx(total_tolerance=Decimal(2))
    )
    assert tolerant.totals.outcome == "adjusted"


def test_a_line_discount_is_sent_as_a_percentage_of_the_price_before_it() -> None:
    d = line(1, "8.000000", 3, "20")
    d.update(product_price="10.000000", reduction_percent="20.00")
    bundle = map_order(source(order([d]), [d]), ctx())
    [product] = bundle.document.lines
    assert product.remise_percent == Decimal("20.00") and product.subprice == Decimal("10.000000")
    assert bundle.totals.outcome == "exact"


def test_order_rows_are_enough_when_order_details_cannot_be_read() -> None:
    d = line(1, "41.583333", 2, "20")
    rows = [
        {
            k: d[k]
            for k in (
                "id",
                "product_id",
                "product_attribute_id",
                "product_quantity",
                "product_name",
                "product_reference",
                "product_price",
                "unit_price_tax_incl",
                "unit_price_tax_excl",
            )
        }
    ]
    o = order([d], associations={"order_rows": rows})
    bundle = map_order(OrderSource(order=o, customer=CUSTOMER, addresses={3: ADDRESS}), ctx())
    assert bundle.totals.outcome == "exact" and bundle.document.lines[0].tva_tx == Decimal(20)


def test_an_order_in_another_currency_sends_main_currency_prices_that_convert_back_to_the_cent() -> None:
    details = [line(1, "45.015000", 3, "20"), line(2, "9.990000", 1, "5.5")]
    o = order(details, id_currency=2, conversion_rate="1.082500")
    bundle = map_order(source(o, details), ctx())
    assert bundle.document.currency == "USD" and bundle.document.currency_rate == Decimal("1.0825")
    rate = Decimal("1.0825")
    total = sum(
        (
            dolibarr_total(
                ln.qty, (ln.subprice * rate).quantize(Decimal("0.00001")), ln.remise_percent, ln.tva_tx
            )
            for ln in bundle.document.lines
        ),
        Decimal(0),
    )
    assert total == Decimal(o["total_paid_tax_incl"])


# ------------------------------------------------------------------------------------------- entry, notes


def test_entry_follows_the_invoicing_state_unless_created_is_asked() -> None:
    details = [line(1, "10.000000", 1, "20")]
    waiting = order(details, current_state=1, invoice_number=0)
    assert not map_order(source(waiting, details), ctx()).entered
    draft = map_order(source(waiting, details), ctx(entry="created"))
    assert draft.entered and draft.status == "draft" and draft.invoice is None


def test_a_cancellation_after_invoicing_plans_a_credit_note_of_the_whole_invoice() -> None:
    details = [line(1, "10.000000", 2, "20")]
    o = order(details, current_state=6)
    history = [
        {"id": 1, "id_order": 1, "id_order_state": 2, "date_add": "2025-01-01 10:00:00"},
        {"id": 2, "id_order": 1, "id_order_state": 6, "date_add": "2025-01-02 10:00:00"},
    ]
    bundle = map_order(source(o, details, histories=history), ctx())
    assert bundle.status == "cancelled" and bundle.invoice is not None
    [note] = bundle.credit_notes
    assert note.ps_id == "cancel-1" and note.document.credit_note_of == Ref("invoice", "ps-main-invoice-1")
    assert [ln.subprice for ln in note.document.lines] == [-ln.subprice for ln in bundle.invoice.lines]


def test_a_credit_slip_is_a_credit_note_of_its_lines_and_shipping() -> None:
    details = [line(1, "10.000000", 2, "20")]
    o = order(details, total_shipping_tax_incl="6.90", total_shipping_tax_excl="5.75")
    slip = {
        "id": 4,
        "id_order": 1,
        "amount": "18.90",
        "total_shipping_tax_incl": "6.90",
        "total_shipping_tax_excl": "5.75",
        "date_add": "2025-11-01 10:00:00",
        "associations": {
            "order_slip_details": [
                {
                    "id_order_detail": 1,
                    "product_quantity": 1,
                    "amount_tax_excl": "10.00",
                    "amount_tax_incl": "12.00",
                }
            ]
        },
    }
    bundle = map_order(source(o, details, slips=[slip]), ctx())
    [note] = bundle.credit_notes
    total = sum(
        (dolibarr_total(ln.qty, ln.subprice, ln.remise_percent, ln.tva_tx) for ln in note.document.lines),
        Decimal(0),
    )
    assert total == Decimal("-18.90") and note.ps_id == "slip-4"
    assert note.document.ref_ext == "ps-main-creditnote-4"


def test_a_credit_slip_refunds_its_totals_with_tax_not_its_amount_field() -> None:
    # regression (real PrestaShop 1.7.8, slip 1 of the seeded shop): "amount" is the products WITHOUT tax (70.75)
    # for 84.90 + 9.48 refunded; reading it as the total gave a credit note of -118.01 for a 94.38 order
    details = [line(1, "33.250000", 1, "20"), line(2, "18.750000", 2, "20")]
    o = order(details, total_shipping_tax_incl="9.48", total_shipping_tax_excl="7.90")
    slip = {
        "id": 1,
        "id_order": 1,
        "amount": "70.750000",
        "total_products_tax_excl": "70.750000",
        "total_products_tax_incl": "84.900000",
        "total_shipping_tax_excl": "7.900000",
        "total_shipping_tax_incl": "9.480000",
        "shipping_cost": 1,
        "shipping_cost_amount": "9.480000",
        "date_add": "2026-01-12 07:15:00",
        "associations": {
            "order_slip_details": [
                {"id": 1, "id_order_detail": 1, "product_quantity": 1, "amount_tax_incl": "39.900000"},
                {"id": 1, "id_order_detail": 2, "product_quantity": 2, "amount_tax_incl": "45.000000"},
            ]
        },
    }
    bundle = map_order(source(o, details, slips=[slip]), ctx())
    [note] = bundle.credit_notes
    total = sum(
        (dolibarr_total(ln.qty, ln.subprice, ln.remise_percent, ln.tva_tx) for ln in note.document.lines),
        Decimal(0),
    )
    assert total == Decimal("-94.38")
    assert not any("credit slip" in w for w in bundle.warnings)


def test_a_customer_gone_from_the_shop_is_named_by_the_invoice_address() -> None:
    details = [line(1, "10.000000", 1, "20")]
    bundle = map_order(OrderSource(order=order(details), details=details, addresses={3: ADDRESS}), ctx())
    assert bundle.thirdparty.name == "Martin" and bundle.thirdparty.ref_ext == "ps-main-customer-7"


def test_an_order_without_lines_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="order_rows"):
        map_order(source(order([]), []), ctx())


def test_an_implausible_derived_vat_rate_is_a_mapping_error_naming_the_price() -> None:
    # regression (CI, hypothesis): prices derived a rate of 5.4E+146 % (here 5.4E+15 %), and quantizing
    # it raised decimal.InvalidOperation out of the mapper instead of a MappingError
    details = [line(1, "10", 1, "20")]
    details[0].update(
        {"associations": {}, "unit_price_tax_excl": "0.000001", "unit_price_tax_incl": "54000000"}
    )
    with pytest.raises(MappingError, match=r"unit_price_tax_incl.*implausible VAT rate"):
        map_order(source(order(details), details), ctx())


def test_an_amount_of_implausible_size_is_a_mapping_error_naming_it() -> None:
    # regression (hypothesis, locally): total_discounts_tax_incl = 1e+26 raised decimal.InvalidOperation from
    # the rounding to the cent instead of a MappingError
    details = [line(1, "10", 1, "20")]
    with pytest.raises(MappingError, match="total_discounts_tax_incl"):
        map_order(source(order(details, total_discounts_tax_incl="1e+26"), details), ctx())


# ----------------------------------------------------------------------------------------------- payments


def test_payments_are_shared_over_the_orders_of_a_split_cart_and_the_excess_is_kept_apart() -> None:
    orders = [{"id": 1, "total_paid_tax_incl": "50.00"}, {"id": 2, "total_paid_tax_incl": "30.00"}]
    payments = [{"id": 9, "amount": "85.00", "date_add": "2025-01-01 10:00:00"}]
    shares, excess = allocate_payments(payments, orders)
    assert shares == {(9, 1): Decimal("50.00"), (9, 2): Decimal("30.00")} and excess == {9: Decimal("5.00")}


def test_partial_payments_fill_an_order_in_date_order_and_a_duplicate_finds_nothing_left() -> None:
    orders = [{"id": 1, "total_paid_tax_incl": "100.00"}]
    payments = [
        {"id": 2, "amount": "60.00", "date_add": "2025-01-02 10:00:00"},
        {"id": 1, "amount": "40.00", "date_add": "2025-01-01 10:00:00"},
        {"id": 3, "amount": "100.00", "date_add": "2025-01-03 10:00:00"},
    ]
    shares, excess = allocate_payments(payments, orders)
    assert shares == {(1, 1): Decimal("40.00"), (2, 1): Decimal("60.00")} and excess == {3: Decimal("100.00")}


# ------------------------------------------------------------------------------------------ the property


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 3),
    st.lists(
        st.tuples(
            st.integers(1, 99_999_999).map(lambda n: Decimal(n).scaleb(-6)),
            st.integers(1, 40),
            st.sampled_from(["0", "5.5", "10", "20"]),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_any_order_priced_as_prestashop_does_reconciles_to_the_cent(
    round_type: int, spec: list[tuple[Decimal, int, str]]
) -> None:
    details = [line(n, str(unit), qty, rate, round_type) for n, (unit, qty, rate) in enumerate(spec, start=1)]
    bundle = map_order(source(order(details, round_type), details), ctx())
    assert bundle.totals.outcome == "exact", bundle.totals
    assert lines_total(bundle) == Decimal(bundle.document.expected_total_ttc or 0)
