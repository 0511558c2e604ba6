"""Orders: PrestaShop orders (with their lines, history, payments, invoices and credit slips) -> what Dolibarr
must hold for them. Pure functions, no I/O: the engine (``service/engine/orders.py``) reads the shop, calls
:func:`map_order` and pushes the resulting :class:`OrderBundle`.

The rules, in the order a reader meets them (``docs/orders.md`` explains each with examples):

- **States** are read by their flags (``invoice``, ``paid``, ``shipped``, ``delivery``, ``logable``) and the
  cancellation / refund / error marks of :class:`~service.mapping.context.OrderState`, never by id or name;
  ``orders.state_overrides`` may give a single state another meaning.
- **Entry**: with ``orders.entry = "invoice"`` an order enters Dolibarr once it has been in a state with the
  ``invoice`` flag; with ``"created"`` at once. An order cancelled before it ever entered stays out.
- **Lines** follow the shop's rounding (``round_type`` of the order: 1 per item, 2 per line, 3 on total) so that
  Dolibarr, which computes every line as ``calcul_price_total`` does (total HT = round(qty x unit x (1 -
  discount)), total TTC = round(unrounded HT x (1 + VAT))), ends on the shop's ``total_paid_tax_incl``. A line's
  unit price is the shop's when that gives the shop's amount; otherwise it is the price (8 decimals) that does.
  What the rounding modes do not explain is a *residual*: within ``orders.total_tolerance`` it becomes an
  explicit rounding line and is recorded; above it the order is refused with both totals.
- **Payments** of an order reference are shared out over the orders of that reference (a split cart) in id
  order, each capped at what the order costs; what is left over (a payment recorded twice, a voucher counted on
  each order of a split cart) is not recorded and is reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from service.dolibarr.model import (
    ContactPayload,
    DocumentPayload,
    LinePayload,
    ObjectKind,
    PaymentPayload,
    ProductPayload,
    Ref,
    ThirdpartyPayload,
    ref_ext,
)
from service.mapping import customers
from service.mapping.context import MappingError, OrderState, ShopContext
from service.mapping.fields import Record, read_decimal, read_flag, read_int, read_opt_decimal
from service.prestashop import values
from service.settings import OrderSettings

ZERO = Decimal(0)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
UNIT_PLACES = 8  # Dolibarr keeps unit prices in double(24,8) columns

# PrestaShop payment modules and payment method labels -> Dolibarr payment mode codes (overridden by
# ``orders.payment_types``; anything unknown gets ``orders.default_payment_type``)
BUILTIN_PAYMENT_TYPES: Mapping[str, str] = {
    "ps_wirepayment": "VIR",
    "ps_checkpayment": "CHQ",
    "ps_cashondelivery": "LIQ",
    "bank wire": "VIR",
    "payment by check": "CHQ",
    "payments by check": "CHQ",
    "cash on delivery (cod)": "LIQ",
}

# what an order's push does; a backfill of invoices or payments only does those
ALL_PARTS: tuple[str, ...] = ("order", "invoice", "payments", "credit_notes")

# the service products the order lines for shipping, discounts and gift wrapping use (one each per shop)
SERVICES: Mapping[str, str] = {"shipping": "Shipping", "discount": "Discount", "wrapping": "Gift wrapping"}


def round2(value: Decimal) -> Decimal:
    """PHP's ``round($x, 2)`` (half away from zero), as ``price2num($x, 'MT')`` does."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _percent(rate: Decimal) -> str:
    """``Decimal("20.000")`` -> ``"20"``, ``5.5`` -> ``"5.5"`` (never ``2E+1``)."""
    return format(rate.normalize(), "f")


def _q(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------- reading


def _text(record: Record, name: str) -> str:
    value = record.get(name)
    if value is None or value is False or isinstance(value, (dict, list)):
        return ""
    return " ".join(str(value).split())


def _timestamp(record: Record, name: str, ctx: ShopContext) -> int | None:
    try:
        text = values.as_date(record.get(name), name)
        return values.to_timestamp(text, ctx.zone, field=name) if text else None
    except ValueError as exc:
        raise MappingError(name, str(exc)) from None


# ----------------------------------------------------------------------------------------------- states


@dataclass(frozen=True)
class StateMeaning:
    """What entering a PrestaShop order state means for Dolibarr."""

    status: str | None  # draft | validated | closed | cancelled; None: leaves the status as it was
    invoiced: bool = False  # entering it bills the order (PrestaShop creates its invoice)
    paid: bool = False
    refunded: bool = False


def state_meaning(state: OrderState | None, override: str | None = None) -> StateMeaning:
    """Flags first; ``override`` (``orders.state_overrides``) replaces the meaning of one state."""
    invoice = bool(state and state.invoice)
    paid = bool(state and state.paid)
    if override is not None:
        return {
            "ignore": StateMeaning(None),
            "draft": StateMeaning("draft"),
            "validated": StateMeaning("validated", invoice, paid),
            "shipped": StateMeaning("closed", invoice, paid),
            "delivered": StateMeaning("closed", invoice, paid),
            "cancelled": StateMeaning("cancelled"),
            "refunded": StateMeaning(None, invoice, paid, refunded=True),
        }.get(override, StateMeaning(None))
    if state is None:
        return StateMeaning(None)
    if state.cancelled:
        return StateMeaning("cancelled")
    if state.refunded:
        return StateMeaning(None, invoice, paid, refunded=True)
    if state.error:
        return StateMeaning(None)
    if state.shipped:
        # goods left (shipped or delivered): Dolibarr 20's REST API cannot set "shipment in process", and an
        # order whose goods are gone has nothing left to do: closed ("delivered" in Dolibarr's words)
        return StateMeaning("closed", invoice, paid)
    if state.invoice or state.paid or state.logable:
        return StateMeaning("validated", invoice, paid)
    return StateMeaning("draft")  # awaiting payment, backorder not paid...


def _states_of(order: Record, histories: Sequence[Record]) -> list[int]:
    """The order's states in the order it went through them (history by date, then id), current last."""
    rows = sorted(
        (h for h in histories if read_int(h, "id_order_state")),
        key=lambda h: (str(h.get("date_add") or ""), read_int(h, "id")),
    )
    states = [read_int(h, "id_order_state") for h in rows]
    current = read_int(order, "current_state")
    if current and (not states or states[-1] != current):
        states.append(current)
    return states


@dataclass(frozen=True)
class OrderProgress:
    status: str  # what the Dolibarr order should be now
    invoiced: bool  # the order went through an invoicing state
    cancelled: bool  # its current meaning is a cancellation


def order_progress(order: Record, histories: Sequence[Record], ctx: ShopContext) -> OrderProgress:
    status = "draft"
    invoiced = False
    meanings = [
        state_meaning(ctx.order_states.get(sid), ctx.orders.state_overrides.get(sid))
        for sid in _states_of(order, histories)
    ]
    for meaning in meanings:
        invoiced = invoiced or meaning.invoiced
        if meaning.status is None:
            continue
        if meaning.status == "draft" and status != "draft":
            continue  # a validated order never goes back to draft
        status = meaning.status
    if not meanings and read_int(order, "invoice_number"):
        invoiced = True  # no history readable: the shop made an invoice
        status = "validated"
    return OrderProgress(status=status, invoiced=invoiced, cancelled=status == "cancelled")


def payment_type(settings: OrderSettings, *names: str) -> str:
    """The Dolibarr payment mode code for a payment module (``ps_wirepayment``) or method label."""
    for name in names:
        if name and name in settings.payment_types:
            return settings.payment_types[name]
    for name in names:
        code = BUILTIN_PAYMENT_TYPES.get(name.strip().lower()) if name else None
        if code:
            return code
    return settings.default_payment_type


# ------------------------------------------------------------------------------------------------ lines


def dolibarr_total(
    qty: Decimal, unit: Decimal, discount: Decimal, vat: Decimal, rate: Decimal | None = None
) -> Decimal:
    """The TTC total Dolibarr computes for a line (``calcul_price_total``): round(qty x unit x (1 - discount) x
    (1 + VAT)) from the unrounded HT. ``rate``: a foreign-currency document, whose amounts Dolibarr computes
    from the main-currency unit price sent (8 decimals) times the rate, rounded to 5 decimals ('MU')."""
    if rate is not None:
        unit = _q(_q(unit / rate, UNIT_PLACES) * rate, 5)
    return round2(unit * qty * (1 - discount / HUNDRED) * (1 + vat / HUNDRED))


def fit_unit(
    qty: Decimal,
    target: Decimal,
    vat: Decimal,
    *,
    natural: Decimal | None = None,
    discount: Decimal = ZERO,
    rate: Decimal | None = None,
) -> Decimal | None:
    """A unit price (tax excluded) for which Dolibarr's line total TTC is exactly ``target``: the natural one
    when it already is, else a 2-decimal one, else the 8-decimal (5 for a foreign currency) quotient. None when
    no price can (a quantity or discount of zero)."""
    candidates: list[Decimal] = []
    if natural is not None:
        candidates.append(natural)
    factor = qty * (1 - discount / HUNDRED) * (1 + vat / HUNDRED)
    if factor:
        exact = target / factor
        candidates += [round2(exact), _q(exact, 5 if rate is not None else UNIT_PLACES)]
    for unit in candidates:
        if dolibarr_total(qty, unit, discount, vat, rate) == target:
            return unit
    return None


@dataclass
class _Line:
    description: str
    qty: Decimal
    vat: Decimal
    target: Decimal  # the TTC amount this line must come to in Dolibarr
    natural: Decimal | None = None  # the shop's unit price, tax excluded, before discount
    discount: Decimal = ZERO
    product: Ref | None = None
    service: bool = False
    label: str = ""

    def unit(self, rate: Decimal | None) -> Decimal:
        found = fit_unit(
            self.qty, self.target, self.vat, natural=self.natural, discount=self.discount, rate=rate
        )
        if found is not None:
            return found
        return self.natural if self.natural is not None else ZERO

    def payload(self, rate: Decimal | None) -> LinePayload:
        unit = self.unit(rate)
        return LinePayload(
            description=self.description,
            qty=self.qty,
            subprice=_q(unit / rate, UNIT_PLACES) if rate is not None else unit,
            tva_tx=self.vat,
            product=self.product,
            remise_percent=self.discount,
            service=self.service,
            label=self.label,
        )

    def total(self, rate: Decimal | None) -> Decimal:
        return dolibarr_total(self.qty, self.unit(rate), self.discount, self.vat, rate)


def service_ref(ctx: ShopContext, name: str) -> Ref:
    """The service product order lines of one kind use: ``ps-{shop}-service-shipping``..."""
    return Ref("product", ref_ext(ctx.shop, "service", name))


def service_payload(ctx: ShopContext, name: str) -> ProductPayload:
    refs = {
        "shipping": ctx.orders.shipping_ref,
        "discount": ctx.orders.discount_ref,
        "wrapping": ctx.orders.wrapping_ref,
    }
    if name not in refs:
        raise MappingError("service", f"no service product named {name!r}")
    return ProductPayload(
        ref_ext=service_ref(ctx, name).ref_ext,
        ref=refs[name],
        label=SERVICES[name],
        description=f"{SERVICES[name]} of PrestaShop orders (shop {ctx.shop})",
        service=True,
        on_purchase=False,
    )


def _known_rates(ctx: ShopContext, extra: Iterable[Decimal] = ()) -> list[Decimal]:
    rates = {r.normalize() for r in (*ctx.tax_by_id.values(), *ctx.tax_rates.values(), *extra)}
    return sorted(rates | {ZERO}, reverse=True)


# A VAT rate derived from two prices outside this range is a corrupt record, not a tax.
MAX_PLAUSIBLE_RATE = Decimal(100)


def _snap_rate(raw: Decimal, known: Sequence[Decimal], field: str) -> Decimal:
    for rate in known:
        if abs(rate - raw) <= Decimal("0.05"):
            return rate
    if not ZERO <= raw <= MAX_PLAUSIBLE_RATE:
        raise MappingError(field, f"the prices give an implausible VAT rate ({raw:.6g} %)")
    return _q(raw, 3).normalize()


def detail_rate(detail: Record, ctx: ShopContext) -> Decimal:
    """The VAT rate of an order line: its taxes (``order_details`` association), else derived from its tax
    included and excluded unit prices and snapped to a rate the shop knows."""
    ids = values.assoc_ids(detail, "taxes") if isinstance(detail.get("associations"), Mapping) else None
    if ids:
        rates = [ctx.tax_by_id[i] for i in ids if i in ctx.tax_by_id]
        if len(rates) == len(ids):
            return sum(rates, ZERO).normalize()
    incl, excl = read_decimal(detail, "unit_price_tax_incl"), read_decimal(detail, "unit_price_tax_excl")
    if excl <= 0 or incl == excl:
        return ZERO
    return _snap_rate((incl / excl - 1) * HUNDRED, _known_rates(ctx), "unit_price_tax_incl")


def _rate_for(excl: Decimal, incl: Decimal, candidates: Sequence[Decimal], field: str) -> Decimal:
    """The rate among ``candidates`` that turns ``excl`` into ``incl`` (shipping, wrapping), else derived."""
    for rate in candidates:
        if round2(excl * (1 + rate / HUNDRED)) == incl:
            return rate
    if excl > 0:
        return _snap_rate((incl / excl - 1) * HUNDRED, candidates, field)
    return ZERO


# ----------------------------------------------------------------------------------------------- output


@dataclass(frozen=True)
class TotalsCheck:
    currency: str
    expected: Decimal  # the shop's total_paid_tax_incl, in the order's currency
    lines_total: Decimal  # what Dolibarr computes from the lines before any rounding line
    delta: Decimal  # expected - lines_total
    outcome: str  # exact | adjusted | refused | converted (in_main_currency)
    converted_total: Decimal | None = None  # converted: the main-currency total Dolibarr computes


@dataclass(frozen=True)
class PaymentPlan:
    ps_id: (
        str  # "{order_payment id}-{order id}": one shop payment may be shared by the orders of a split cart
    )
    payment: PaymentPayload
    skipped: str = ""  # why nothing is recorded for it (amount 0)


@dataclass(frozen=True)
class CreditNotePlan:
    ps_id: str  # "slip-{order_slip id}" or "cancel-{order id}"
    document: DocumentPayload


@dataclass(frozen=True)
class OrderBundle:
    """Everything Dolibarr must hold for one shop order. The engine pushes it in order: customer, addresses,
    order, status, invoice, payments, credit notes."""

    ref_ext: str
    order_id: int
    reference: str
    entered: bool  # False: the order stays out of Dolibarr (not invoiced yet, or cancelled before entering)
    status: str
    thirdparty: ThirdpartyPayload
    thirdparty_ps_id: str
    contacts: tuple[tuple[str, ContactPayload], ...]  # (ps_id, payload)
    document: DocumentPayload
    invoice: DocumentPayload | None
    payments: tuple[PaymentPlan, ...]
    credit_notes: tuple[CreditNotePlan, ...]
    totals: TotalsCheck
    warnings: tuple[str, ...] = ()
    # for a Dolibarr backend without contacts (SOAP): the invoice address as the thirdparty's own address
    # fields, (address ps_id, the thirdparty payload with them); see without_contacts()
    thirdparty_address: tuple[str, ThirdpartyPayload] | None = None
    # which parts a push may do (a backfill of invoices or payments only narrows it); not part of the digest
    parts: tuple[str, ...] = ALL_PARTS

    kind: ObjectKind = field(default="order", init=False)

    def digest_source(self) -> Any:
        """What the bundle's hash covers: everything pushed for the order itself (the customer and addresses
        are pushed once and followed by their own streams)."""
        return (
            self.entered,
            self.status,
            self.document,
            self.invoice,
            self.payments,
            self.credit_notes,
        )


@dataclass(frozen=True)
class OrderSource:
    """What was read from the shop for one order."""

    order: Record
    details: Sequence[Record] = ()
    histories: Sequence[Record] = ()
    payments: Sequence[Record] = ()  # order_payments of the order's reference
    siblings: Sequence[Record] = ()  # the orders of the reference (split cart), this one included
    invoices: Sequence[Record] = ()  # order_invoices of the order
    slips: Sequence[Record] = ()  # order_slip rows of the order
    customer: Record | None = None
    addresses: Mapping[int, Record] = field(default_factory=dict)
    carrier_name: str = ""


# ------------------------------------------------------------------------------------------------ orders


def order_ref(ctx: ShopContext, order_id: int) -> Ref:
    return Ref("order", ref_ext(ctx.shop, "order", order_id))


def invoice_ref(ctx: ShopContext, order_id: int) -> Ref:
    return Ref("invoice", ref_ext(ctx.shop, "invoice", order_id))


def ref_client(order: Record) -> str:
    """The shop's reference (shared by the orders of a split cart) and the order id: ``XKBKNABJK / 17``."""
    reference = _text(order, "reference")
    return f"{reference} / {read_int(order, 'id')}" if reference else str(read_int(order, "id"))


def _customer_record(source: OrderSource) -> Record:
    if source.customer is not None:
        return source.customer
    # the customer is gone from the shop: the invoice address names them
    address = source.addresses.get(read_int(source.order, "id_address_invoice")) or {}
    return {
        "id": read_int(source.order, "id_customer"),
        "lastname": address.get("lastname") or "",
        "firstname": address.get("firstname") or "",
        "company": address.get("company") or "",
        "email": "",
        "is_guest": 0,
    }


def _product_lines(source: OrderSource, ctx: ShopContext, warnings: list[str]) -> list[_Line]:
    rows = list(source.details) or values.assoc(source.order, "order_rows")
    if not rows:
        raise MappingError("order_rows", "the order has no lines")
    lines: list[_Line] = []
    for row in sorted(rows, key=lambda r: read_int(r, "id")):
        qty = Decimal(read_int(row, "product_quantity"))
        if qty <= 0:
            continue
        pid = read_int(row, "product_id")
        attribute = read_int(row, "product_attribute_id")
        unit = read_decimal(row, "unit_price_tax_excl")
        vat = detail_rate(row, ctx)
        incl = read_decimal(row, "total_price_tax_incl") if "total_price_tax_incl" in row else None
        if incl is None:  # order_rows only (no order_details): the unit price tax included times the quantity
            incl = read_decimal(row, "unit_price_tax_incl") * qty
        discount = ZERO
        natural = unit
        before = read_decimal(row, "product_price") if "reduction_percent" in row else ZERO
        percent = read_decimal(row, "reduction_percent") if "reduction_percent" in row else ZERO
        amount = (
            read_decimal(row, "reduction_amount_tax_excl") if "reduction_amount_tax_excl" in row else ZERO
        )
        if before > 0 and (percent > 0 or amount > 0) and before > unit:
            # a catalogue discount on the line: the price before it, and the discount as a percentage
            natural = before
            discount = percent if percent > 0 else _q((1 - unit / before) * HUNDRED, 4).normalize()
        name = _text(row, "product_name") or f"PrestaShop product {pid}"
        reference = _text(row, "product_reference")
        description = f"{name} ({reference})" if reference and reference not in name else name
        product = Ref("product", ref_ext(ctx.shop, "product", f"{pid}-{attribute}" if attribute else pid))
        lines.append(
            _Line(
                description=description,
                qty=qty,
                vat=vat,
                target=incl,  # rounded by the caller per round type
                natural=natural,
                discount=discount,
                product=product if pid else None,
            )
        )
    if not lines:
        raise MappingError("order_rows", "the order has no line with a quantity")
    return lines


def _set_targets(lines: list[_Line], round_type: int, rate: Decimal | None) -> None:
    """Each product line's TTC target, following the shop's rounding of the order."""
    if round_type != 3:
        for line in lines:
            line.target = round2(line.target)
        return
    # on total: per VAT rate, round(sum of unrounded lines x (1 + rate)); the lines, as Dolibarr computes them,
    # give a few cents more or less, which go to the largest line of that rate
    groups: dict[Decimal, list[_Line]] = {}
    for line in lines:
        groups.setdefault(line.vat, []).append(line)
    for vat, members in groups.items():
        raw = sum(
            ((m.natural or ZERO) * m.qty * (1 - m.discount / HUNDRED) for m in members),
            ZERO,
        )
        wanted = round2(raw * (1 + vat / HUNDRED))
        for m in members:
            m.target = dolibarr_total(m.qty, m.natural or ZERO, m.discount, m.vat, rate)
        gap = wanted - sum((m.target for m in members), ZERO)
        if gap:
            largest = max(members, key=lambda m: (m.target, -members.index(m)))
            largest.target += gap


def _discount_lines(
    ctx: ShopContext, products: Sequence[_Line], amount: Decimal, label: str, sign: Decimal = Decimal(-1)
) -> list[_Line]:
    """An order-level discount (tax included), shared over the product lines' VAT rates pro rata."""
    groups: dict[Decimal, Decimal] = {}
    for line in products:
        groups[line.vat] = groups.get(line.vat, ZERO) + line.target
    base = sum(groups.values(), ZERO)
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1], -kv[0]))
    if not ordered or base <= 0:
        ordered, base = [(ZERO, Decimal(1))], Decimal(1)
    lines: list[_Line] = []
    left = amount
    for n, (vat, weight) in enumerate(ordered):
        share = left if n == len(ordered) - 1 else round2(amount * weight / base)
        left -= share
        if not share:
            continue
        description = label if len(ordered) == 1 else f"{label} (VAT {_percent(vat)}%)"
        lines.append(
            _Line(
                description=description,
                qty=Decimal(1),
                vat=vat,
                target=sign * share,
                product=service_ref(ctx, "discount"),
                service=True,
            )
        )
    return lines


def _currency(order: Record, ctx: ShopContext) -> tuple[str, Decimal | None]:
    """("", None) for Dolibarr's main currency, else (ISO code, conversion rate)."""
    code = ctx.currencies.get(read_int(order, "id_currency"), "")
    if not code or code.upper() == ctx.main_currency.upper():
        return "", None
    rate = read_decimal(order, "conversion_rate")
    if rate <= 0:
        raise MappingError("conversion_rate", f"order in {code} without a conversion rate")
    return code.upper(), rate


def _lines_and_totals(
    source: OrderSource, ctx: ShopContext, rate: Decimal | None, currency: str, warnings: list[str]
) -> tuple[list[_Line], TotalsCheck]:
    order = source.order
    round_type = read_int(order, "round_type") or ctx.round_type
    products = _product_lines(source, ctx, warnings)
    _set_targets(products, round_type, rate)
    lines = list(products)
    known = _known_rates(ctx, (line.vat for line in products))

    shipping_incl = round2(read_decimal(order, "total_shipping_tax_incl"))
    if shipping_incl:
        shipping_excl = round2(read_decimal(order, "total_shipping_tax_excl"))
        carrier_rate = read_decimal(order, "carrier_tax_rate").normalize()
        vat = (
            carrier_rate
            if round2(shipping_excl * (1 + carrier_rate / HUNDRED)) == shipping_incl
            else _rate_for(shipping_excl, shipping_incl, known, "total_shipping_tax_incl")
        )
        name = f"Shipping: {source.carrier_name}" if source.carrier_name else "Shipping"
        lines.append(
            _Line(
                name,
                Decimal(1),
                vat,
                shipping_incl,
                natural=shipping_excl,
                product=service_ref(ctx, "shipping"),
                service=True,
            )
        )
    wrapping_incl = round2(read_decimal(order, "total_wrapping_tax_incl"))
    if wrapping_incl:
        wrapping_excl = round2(read_decimal(order, "total_wrapping_tax_excl"))
        lines.append(
            _Line(
                "Gift wrapping",
                Decimal(1),
                _rate_for(wrapping_excl, wrapping_incl, known, "total_wrapping_tax_incl"),
                wrapping_incl,
                natural=wrapping_excl,
                product=service_ref(ctx, "wrapping"),
                service=True,
            )
        )
    discounts = round2(read_decimal(order, "total_discounts_tax_incl"))
    if discounts > 0:
        lines += _discount_lines(ctx, products, discounts, "Discount")

    expected = round2(read_decimal(order, "total_paid_tax_incl"))
    lines_total = sum((line.total(rate) for line in lines), ZERO)
    delta = expected - lines_total
    if not delta:
        outcome = "exact"
    elif abs(delta) <= ctx.orders.total_tolerance:
        outcome = "adjusted"
        lines.append(_Line("Rounding adjustment", Decimal(1), ZERO, delta, natural=delta))
        warnings.append(
            f"the shop's total {expected} and the lines' total {lines_total} differ by {delta}: "
            "a rounding line makes up the difference"
        )
    else:
        outcome = "refused"
    return lines, TotalsCheck(currency or ctx.main_currency, expected, lines_total, delta, outcome)


def _note(order: Record, source: OrderSource) -> str:
    parts = [f"PrestaShop order {read_int(order, 'id')}, reference {_text(order, 'reference')}"]
    payment = _text(order, "payment")
    if payment:
        parts.append(f"Payment: {payment}")
    if source.carrier_name:
        parts.append(f"Carrier: {source.carrier_name}")
    if read_flag(order, "gift") and _text(order, "gift_message"):
        parts.append(f"Gift message: {_text(order, 'gift_message')}")
    note = str(order.get("note") or "").strip()
    if note:
        parts.append(f"Note: {note}")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------- payments


def allocate_payments(
    payments: Sequence[Record], orders: Sequence[Record]
) -> tuple[dict[tuple[int, int], Decimal], dict[int, Decimal]]:
    """Share the payments of one reference out over its orders: payments by (date, id), orders by id, each
    order taking at most what it costs. Returns ``{(payment id, order id): amount}`` and what each payment
    had left over."""
    need = {read_int(o, "id"): round2(read_decimal(o, "total_paid_tax_incl")) for o in orders}
    order_ids = sorted(need)
    shares: dict[tuple[int, int], Decimal] = {}
    excess: dict[int, Decimal] = {}
    for payment in sorted(payments, key=lambda p: (str(p.get("date_add") or ""), read_int(p, "id"))):
        pid = read_int(payment, "id")
        left = round2(read_decimal(payment, "amount"))
        if left <= 0:
            continue
        for oid in order_ids:
            take = min(left, need[oid])
            if take > 0:
                shares[(pid, oid)] = take
                need[oid] -= take
                left -= take
        if left > 0:
            excess[pid] = left
    return shares, excess


def _payment_plans(source: OrderSource, ctx: ShopContext, warnings: list[str]) -> tuple[PaymentPlan, ...]:
    order = source.order
    oid = read_int(order, "id")
    currency = read_int(order, "id_currency")
    payments = []
    for p in source.payments:
        if read_int(p, "id_currency") and currency and read_int(p, "id_currency") != currency:
            warnings.append(
                f"payment {read_int(p, 'id')} is in another currency than the order: not recorded, enter it by hand"
            )
            continue
        if round2(read_decimal(p, "amount")) < 0:
            warnings.append(
                f"payment {read_int(p, 'id')} is negative: refunds are credit notes, not recorded"
            )
            continue
        payments.append(p)
    siblings = list(source.siblings) or [order]
    if oid not in {read_int(s, "id") for s in siblings}:
        siblings.append(order)
    shares, excess = allocate_payments(payments, siblings)
    transactions = [_text(p, "transaction_id") for p in payments]
    plans: list[PaymentPlan] = []
    for payment in sorted(payments, key=lambda p: read_int(p, "id")):
        pid = read_int(payment, "id")
        amount = shares.get((pid, oid), ZERO)
        last = oid == max(read_int(s, "id") for s in siblings)
        skipped = ""
        if not amount:
            if pid not in excess or any(k[0] == pid for k in shares) or not last:
                continue  # this payment went to the other orders of the cart
            skipped = f"payment {pid} of {round2(read_decimal(payment, 'amount'))} finds nothing left to pay"
        if pid in excess and last:
            warnings.append(
                f"payment {pid} exceeds what the orders of {_text(order, 'reference')} cost by {excess[pid]}: "
                "the excess is not recorded"
            )
        transaction = _text(payment, "transaction_id")
        number = transaction
        if transaction and transactions.count(transaction) > 1:
            number = f"{transaction} #{pid}"  # two shop payments with one transaction id stay apart
        method = _text(payment, "payment_method")
        plans.append(
            PaymentPlan(
                ps_id=f"{pid}-{oid}",
                payment=PaymentPayload(
                    ref_ext=ref_ext(ctx.shop, "payment", f"{pid}-{oid}"),
                    invoice=invoice_ref(ctx, oid),
                    date=_timestamp(payment, "date_add", ctx) or 0,
                    amount=amount,
                    payment_type=payment_type(ctx.orders, method, _text(order, "module")),
                    number=number,
                    bank_account_id=ctx.orders.bank_account_id,
                ),
                skipped=skipped,
            )
        )
    return tuple(plans)


# ------------------------------------------------------------------------------------------ credit notes


def _slip_notes(
    source: OrderSource,
    ctx: ShopContext,
    products: Sequence[_Line],
    header: DocumentPayload,
    rate: Decimal | None,
    warnings: list[str],
) -> list[CreditNotePlan]:
    order = source.order
    oid = read_int(order, "id")
    rows = list(source.details) or values.assoc(order, "order_rows")
    by_detail = {read_int(r, "id"): r for r in rows}
    notes: list[CreditNotePlan] = []
    for slip in sorted(source.slips, key=lambda s: read_int(s, "id")):
        sid = read_int(slip, "id")
        total = _slip_total(slip)
        lines: list[_Line] = []
        for detail in values.assoc(slip, "order_slip_details"):
            did = read_int(detail, "id_order_detail")
            row = by_detail.get(did)
            qty = Decimal(read_int(detail, "product_quantity"))
            amount = round2(read_decimal(detail, "amount_tax_incl"))
            if row is None or qty <= 0 or not amount:
                continue
            pid, attribute = read_int(row, "product_id"), read_int(row, "product_attribute_id")
            lines.append(
                _Line(
                    f"Refund: {_text(row, 'product_name')}",
                    qty,
                    detail_rate(row, ctx),
                    -amount,
                    natural=-read_decimal(row, "unit_price_tax_excl"),
                    product=Ref(
                        "product", ref_ext(ctx.shop, "product", f"{pid}-{attribute}" if attribute else pid)
                    ),
                )
            )
        shipping = round2(read_decimal(slip, "total_shipping_tax_incl"))
        if shipping:
            shipping_excl = round2(read_decimal(slip, "total_shipping_tax_excl"))
            vat = _rate_for(
                shipping_excl,
                shipping,
                _known_rates(ctx, [read_decimal(order, "carrier_tax_rate")]),
                "total_shipping_tax_incl",
            )
            lines.append(
                _Line(
                    "Refund: shipping",
                    Decimal(1),
                    vat,
                    -shipping,
                    natural=-shipping_excl,
                    product=service_ref(ctx, "shipping"),
                    service=True,
                )
            )
        if not values.assoc(slip, "order_slip_details"):
            refunded = round2(read_decimal(slip, "total_products_tax_incl"))
            if refunded:
                for line in _discount_lines(ctx, products, refunded, "Refund"):
                    line.product, line.service = None, False  # a refund of an amount, not of products
                    lines.append(line)
        got = sum((line.total(rate) for line in lines), ZERO)
        gap = -total - got
        if gap:
            lines.append(_Line("Refund rounding adjustment", Decimal(1), ZERO, gap, natural=gap))
            if abs(gap) > ctx.orders.total_tolerance:
                warnings.append(f"credit slip {sid}: its lines and its amount {total} differ by {gap}")
        if not lines:
            continue
        notes.append(
            CreditNotePlan(
                ps_id=f"slip-{sid}",
                document=dataclasses.replace(
                    header,
                    kind="invoice",
                    ref_ext=ref_ext(ctx.shop, "creditnote", sid),
                    date=_timestamp(slip, "date_add", ctx) or header.date,
                    lines=tuple(line.payload(rate) for line in lines),
                    note_private=f"PrestaShop credit slip {sid} of order {oid}",
                    order=None,
                    credit_note_of=invoice_ref(ctx, oid),
                    expected_total_ttc=-total,
                ),
            )
        )
    return notes


def _slip_total(slip: Record) -> Decimal:
    """What a credit slip refunds, tax included. PrestaShop 1.7.7+ stores ``amount`` as the products' amount
    *without* tax (slip 1 of the seeded shop: amount 70.75 = total_products_tax_excl, for 84.90 + 9.48 shipping
    refunded): the totals with tax are the truth; ``amount`` (+ ``shipping_cost_amount``) only for older
    shops that lack them."""
    products = read_opt_decimal(slip, "total_products_tax_incl")
    if products is not None:
        return round2(products) + round2(read_decimal(slip, "total_shipping_tax_incl"))
    shipping = read_decimal(slip, "shipping_cost_amount") if read_flag(slip, "shipping_cost", False) else ZERO
    return round2(read_decimal(slip, "amount")) + round2(shipping)


def _cancel_note(ctx: ShopContext, invoice: DocumentPayload, order_id: int) -> CreditNotePlan:
    lines = tuple(dataclasses.replace(line, subprice=-line.subprice) for line in invoice.lines)
    return CreditNotePlan(
        ps_id=f"cancel-{order_id}",
        document=dataclasses.replace(
            invoice,
            ref_ext=ref_ext(ctx.shop, "cancel", order_id),
            lines=lines,
            note_private=f"PrestaShop order {order_id} was cancelled after it was invoiced",
            order=None,
            credit_note_of=invoice_ref(ctx, order_id),
            expected_total_ttc=-invoice.expected_total_ttc
            if invoice.expected_total_ttc is not None
            else None,
        ),
    )


# -------------------------------------------------------------------------------------------- map_order


def map_order(source: OrderSource, ctx: ShopContext) -> OrderBundle:
    """One shop order -> its :class:`OrderBundle`. Raises :class:`MappingError` naming the field."""
    order = source.order
    oid = read_int(order, "id")
    if not oid:
        raise MappingError("id", "an order without id")
    warnings: list[str] = []
    progress = order_progress(order, source.histories, ctx)
    entered = ctx.orders.entry == "created" or progress.invoiced

    customer = _customer_record(source)
    thirdparty = customers.map_customer(customer, ctx)
    owner = Ref("thirdparty", thirdparty.ref_ext)
    contacts: list[tuple[str, ContactPayload]] = []
    for field_name in ("id_address_invoice", "id_address_delivery"):
        aid = read_int(order, field_name)
        address = source.addresses.get(aid)
        if address is not None and aid not in {int(c[0]) for c in contacts}:
            contacts.append((str(aid), customers.map_address(address, owner, ctx)))
    billing = customers.address_ref(ctx, read_int(order, "id_address_invoice"))
    shipping = customers.address_ref(ctx, read_int(order, "id_address_delivery"))
    contact_refs = {c.ref_ext for _, c in contacts}

    currency, rate = _currency(order, ctx)
    lines, totals = _lines_and_totals(source, ctx, rate, currency, warnings)
    date = _timestamp(order, "date_add", ctx)
    if date is None:
        raise MappingError("date_add", "the order has no date")
    document = DocumentPayload(
        kind="order",
        ref_ext=order_ref(ctx, oid).ref_ext,
        thirdparty=owner,
        date=date,
        ref_client=ref_client(order),
        lines=tuple(line.payload(rate) for line in lines),
        payment_type=payment_type(ctx.orders, _text(order, "module"), _text(order, "payment")),
        payment_terms=ctx.orders.payment_terms,
        currency=currency,
        currency_rate=rate,
        note_private=_note(order, source),
        billing_contact=billing if billing.ref_ext in contact_refs else None,
        shipping_contact=shipping if shipping.ref_ext in contact_refs else None,
        expected_total_ttc=totals.expected,
    )

    invoice: DocumentPayload | None = None
    payments: tuple[PaymentPlan, ...] = ()
    notes: list[CreditNotePlan] = []
    if progress.invoiced and ctx.orders.invoices:
        ps_invoice = min(source.invoices, key=lambda i: read_int(i, "id"), default=None)
        number = read_int(ps_invoice, "number") if ps_invoice else read_int(order, "invoice_number")
        when = (_timestamp(ps_invoice, "date_add", ctx) if ps_invoice else None) or (
            _timestamp(order, "invoice_date", ctx) or date
        )
        invoice = dataclasses.replace(
            document,
            kind="invoice",
            ref_ext=invoice_ref(ctx, oid).ref_ext,
            date=when,
            note_private=(f"PrestaShop invoice number {number}\n" if number else "") + document.note_private,
            order=order_ref(ctx, oid),
        )
        if ctx.orders.payments:
            payments = _payment_plans(source, ctx, warnings)
        products = [line for line in lines if line.product is not None and not line.service]
        notes = _slip_notes(source, ctx, products, invoice, rate, warnings)
        if progress.cancelled and not notes:
            notes.append(_cancel_note(ctx, invoice, oid))
    elif source.slips:
        warnings.append("credit slips on an order that was never invoiced are not mirrored")

    return OrderBundle(
        ref_ext=document.ref_ext,
        order_id=oid,
        reference=_text(order, "reference"),
        entered=entered,
        status=progress.status,
        thirdparty=thirdparty,
        thirdparty_ps_id=thirdparty.ref_ext.removeprefix(f"ps-{ctx.shop}-"),
        contacts=tuple(contacts),
        document=document,
        invoice=invoice,
        payments=payments,
        credit_notes=tuple(notes),
        totals=totals,
        warnings=tuple(warnings),
    )


def in_main_currency(bundle: OrderBundle, main_currency: str) -> OrderBundle:
    """An order in another currency for a Dolibarr whose Multicurrency module is off: its documents in the main
    currency at the order's rate (the line prices already are: they are sent in the main currency either way,
    and Dolibarr's multicurrency fields are what would convert them back), the rate written on each document's
    public note, payments converted at the same rate. ``report totals`` lists the order as ``converted``, with
    the main-currency total Dolibarr computes from the lines."""
    document = bundle.document
    rate = document.currency_rate
    if not document.currency or rate is None:
        return bundle
    note = (
        f"PrestaShop order in {document.currency}: {bundle.totals.expected} {document.currency}, entered in "
        f"{main_currency} at the order's rate {rate} {document.currency} per {main_currency} (Dolibarr's "
        "Multicurrency module is off)"
    )

    def converted(doc: DocumentPayload) -> DocumentPayload:
        public = f"{doc.note_public}\n{note}" if doc.note_public else note
        return dataclasses.replace(doc, currency="", currency_rate=None, note_public=public)

    payments = tuple(
        dataclasses.replace(
            plan, payment=dataclasses.replace(plan.payment, amount=round2(plan.payment.amount / rate))
        )
        for plan in bundle.payments
    )
    main_total = sum(
        (dolibarr_total(ln.qty, ln.subprice, ln.remise_percent, ln.tva_tx) for ln in document.lines), ZERO
    )
    totals = dataclasses.replace(bundle.totals, outcome="converted", converted_total=main_total)
    return dataclasses.replace(
        bundle,
        document=converted(document),
        invoice=converted(bundle.invoice) if bundle.invoice is not None else None,
        payments=payments,
        credit_notes=tuple(
            dataclasses.replace(plan, document=converted(plan.document)) for plan in bundle.credit_notes
        ),
        totals=totals,
        warnings=(*bundle.warnings, note),
    )


def address_text(contact: ContactPayload) -> str:
    """An address on one line, as written on a document's note: name, company, street, town, country, phone."""
    name = customers.person_name(contact.firstname, contact.lastname)
    street = ", ".join(p.strip() for p in contact.address.splitlines() if p.strip())
    town = " ".join(p for p in (contact.zip, contact.town) if p)
    phone = contact.phone or contact.phone_mobile
    parts = (name, contact.company, street, town, contact.country_code, f"tel. {phone}" if phone else "")
    return ", ".join(p for p in parts if p)


def without_contacts(bundle: OrderBundle) -> OrderBundle:
    """An order for a Dolibarr backend that cannot hold contacts (``Capabilities.contacts`` False: SOAP). Its
    addresses go where such a backend can put them: both on the order's and invoice's public note (``Invoice
    address: ...`` / ``Delivery address: ...``, printed on the documents as the billing and shipping contacts
    would be), and the invoice address as the thirdparty's own address fields (``thirdparty_address``; not for
    the thirdparty all guests share). No contact is pushed, and no document names one."""
    by_ref = {contact.ref_ext: (ps_id, contact) for ps_id, contact in bundle.contacts}
    document = bundle.document
    billing = by_ref.get(document.billing_contact.ref_ext) if document.billing_contact else None
    shipping = by_ref.get(document.shipping_contact.ref_ext) if document.shipping_contact else None
    lines: list[str] = []
    if billing is not None:
        lines.append(f"Invoice address: {address_text(billing[1])}")
    if shipping is not None:
        same = billing is not None and shipping[0] == billing[0]
        lines.append(f"Delivery address: {'the invoice address' if same else address_text(shipping[1])}")
    note = "\n".join(lines)

    def moved(doc: DocumentPayload) -> DocumentPayload:
        public = "\n".join(p for p in (doc.note_public, note) if p)
        return dataclasses.replace(doc, billing_contact=None, shipping_contact=None, note_public=public)

    thirdparty_address: tuple[str, ThirdpartyPayload] | None = None
    if billing is not None and not bundle.thirdparty.ref_ext.endswith("-guest-shared"):
        contact = billing[1]
        thirdparty_address = (
            billing[0],
            dataclasses.replace(
                bundle.thirdparty,
                address=contact.address,
                zip=contact.zip,
                town=contact.town,
                country_code=contact.country_code,
                phone=contact.phone or contact.phone_mobile,
            ),
        )
    return dataclasses.replace(
        bundle,
        contacts=(),
        document=moved(document),
        invoice=moved(bundle.invoice) if bundle.invoice is not None else None,
        credit_notes=tuple(
            dataclasses.replace(plan, document=moved(plan.document)) for plan in bundle.credit_notes
        ),
        thirdparty_address=thirdparty_address,
    )
