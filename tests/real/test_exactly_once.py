"""Exactly once on the real pair: ``ps2doli sync`` of the whole seeded shop (catalog, customers, orders with
invoices and payments) SIGKILLed at random moments, then run to its end, must leave Dolibarr exactly as one
uninterrupted run does (the session's ``clean_run``). Then, on that synced pair: the state file lost, and hand
edits in Dolibarr (docs/operations.md, "Hand edits in Dolibarr" and "Crash safety").

Judged through Dolibarr's REST API (``ledger.py``) and its access log only. The kill moments come from a fixed
seed, spread over the clean run's length, so CI gives the same verdict each time; ``bench/real_crash.py`` runs the
same with more kills.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.real.apis import Dolibarr, Shop
from tests.real.faults import CrashReport, crash_sync, failures
from tests.real.ledger import CleanRun, Ledger, differences, full_settings, ledger_of, money
from tests.real.realpair import Pair
from tests.real.shop_edits import set_fields
from tests.real.shop_traffic import SHIPPED, set_order_state, set_price

KILLS = 12
SEED = 20261207
# POST routes that make a new Dolibarr object or movement (not a status change of an existing one)
CREATES = re.compile(
    r"^POST /api/index\.php/(products|categories|thirdparties|contacts|orders|invoices|stockmovements"
    r"|invoices/createfromorder/\d+|invoices/paymentsdistributed|invoices/\d+/payments|documents/upload"
    r"|categories/\d+/objects/product/\d+|orders/\d+/lines|invoices/\d+/lines)\b"
)


@dataclass
class Crashed:
    settings: Path
    report: CrashReport
    ledger: Ledger
    last_exit: int
    last_writes: list[str]
    failures: list[str]


@pytest.fixture(scope="module")
def crashed(pair: Pair, clean_run: CleanRun, tmp_path_factory: pytest.TempPathFactory) -> Crashed:
    folder = tmp_path_factory.mktemp("crash")
    pair.reset("clean-mc")
    settings = full_settings(pair, folder)
    report = crash_sync(pair, settings, kills=KILLS, span_s=clean_run.seconds, seed=SEED)
    ledger = ledger_of(pair)
    pair.mark_writes()
    last = pair.ps2doli(settings, "sync")
    return Crashed(settings, report, ledger, last.returncode, pair.writes(), failures(pair, settings))


def dolibarr(pair: Pair, work: Any) -> Any:
    async def go() -> Any:
        async with aiohttp.ClientSession() as session:
            return await work(Dolibarr(pair.doli_api, pair.doli_key, session))

    return asyncio.run(go())


def shop(pair: Pair, work: Any) -> Any:
    async def go() -> Any:
        async with aiohttp.ClientSession() as session:
            return await work(Shop(pair.ps_url, pair.ps_key, session))

    return asyncio.run(go())


def one(pair: Pair, path: str, ref_ext: str) -> dict[str, Any]:
    """The one Dolibarr object of a list route holding ``ref_ext``."""
    rows = dolibarr(pair, lambda d: d.all(path, sqlfilters=f"(t.ref_ext:=:'{ref_ext}')"))
    assert len(rows) == 1, (path, ref_ext, len(rows))
    return rows[0]  # type: ignore[no-any-return]


def lose_state(settings: Path) -> None:
    for path in settings.parent.glob("state.sqlite3*"):
        path.unlink()


def sync(pair: Pair, settings: Path) -> list[str]:
    """One ``ps2doli sync`` that must exit 0; the REST writes it made (``METHOD path status``)."""
    pair.mark_writes()
    done = pair.ps2doli(settings, "sync")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return pair.writes()


# ------------------------------------------------------------------------------------------- the crashes
def test_sigkilled_at_random_moments_the_sync_ends_with_what_a_clean_run_makes(
    crashed: Crashed, clean_run: CleanRun, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(f"\nreal crash test: {crashed.report.render()}; clean run {clean_run.seconds:.1f}s")
    assert crashed.report.kills >= 10
    assert crashed.report.final_exit == 0
    assert crashed.ledger.duplicates() == {}
    assert differences(clean_run.ledger, crashed.ledger) == []
    assert crashed.ledger.counts() == clean_run.ledger.counts()
    assert crashed.failures == clean_run.failures


def test_every_invoice_is_validated_and_every_payment_landed_once(crashed: Crashed) -> None:
    ledger = crashed.ledger
    assert ledger.count("invoices") > 100 and ledger.count("payments") > 90
    drafts = [key for key, (_, status, *_) in ledger.invoices.items() if status == "0"]
    assert drafts == []
    assert [key for key, n in ledger.refs["payments"].items() if n != 1] == []


def test_order_totals_are_the_shops(crashed: Crashed, pair: Pair) -> None:
    """Orders in the shop's main currency (EUR) total in Dolibarr what they total in the shop; the others are
    held equal to the clean run's by the first test."""

    async def totals(s: Shop) -> dict[str, tuple[int, Decimal]]:
        rows = await s.all("orders", display="[id,id_currency,total_paid_tax_incl]")
        return {
            f"ps-main-order-{r['id']}": (int(r["id_currency"]), money(r["total_paid_tax_incl"])) for r in rows
        }

    in_shop = shop(pair, totals)
    eur = [key for key in crashed.ledger.orders if in_shop[key][0] == 2]
    assert len(eur) > 80
    wrong = {
        key: (crashed.ledger.orders[key][1], in_shop[key][1])
        for key in eur
        if abs(crashed.ledger.orders[key][1] - in_shop[key][1]) > Decimal("0.01")
    }
    assert wrong == {}


def test_after_the_crashes_one_more_sync_writes_nothing(crashed: Crashed) -> None:
    assert crashed.last_exit == 0
    assert crashed.last_writes == []


# ------------------------------------------------------------------------------------- the state file lost
def test_a_lost_state_file_creates_nothing_and_adopts_everything_by_ref_ext(
    crashed: Crashed, pair: Pair
) -> None:
    """Issue 10: every object (categories, products, customers, addresses, orders, invoices, payments, stock,
    images) is found by ref_ext and compared with what Dolibarr holds: nothing is written at all (before, each
    adopted object got one blind PUT: 377 writes)."""
    lose_state(crashed.settings)
    writes = sync(pair, crashed.settings)
    assert [w for w in writes if CREATES.match(w)] == []
    assert writes == []
    after = ledger_of(pair)
    assert after.duplicates() == {}
    assert differences(crashed.ledger, after) == []
    assert sync(pair, crashed.settings) == []  # and the state is whole again


def test_a_lost_state_file_writes_only_what_changed_in_the_shop_meanwhile(
    crashed: Crashed, pair: Pair
) -> None:
    product = one(pair, "/products", "ps-main-product-31")
    third = one(pair, "/thirdparties", "ps-main-customer-20")
    lose_state(crashed.settings)
    shop(pair, lambda s: set_price(s, 31, Decimal("18.25")))
    shop(pair, lambda s: set_fields(s, "customers", 20, {"lastname": "Rousseau-Lefèvre"}))
    writes = sync(pair, crashed.settings)
    assert sorted(" ".join(w.split()[:2]) for w in writes) == [
        f"PUT /api/index.php/products/{product['id']}",
        f"PUT /api/index.php/thirdparties/{third['id']}",
    ]
    assert money(one(pair, "/products", "ps-main-product-31")["price"]) == Decimal("18.25")
    assert one(pair, "/thirdparties", "ps-main-customer-20")["name"] == "Mathilde Rousseau-Lefèvre"
    assert sync(pair, crashed.settings) == []


# ----------------------------------------------------------------------------- hand edits in Dolibarr
def test_a_product_changed_by_hand_in_dolibarr_keeps_the_edit_until_the_shop_changes_it(
    crashed: Crashed, pair: Pair
) -> None:
    product = one(pair, "/products", "ps-main-product-30")
    dolibarr(pair, lambda d: d.write("PUT", f"/products/{product['id']}", {"label": "Edited in Dolibarr"}))
    assert sync(pair, crashed.settings) == []  # the shop did not change: the hand edit stays
    shop(pair, lambda s: set_fields(s, "products", 30, {"price": "12.340000"}))
    writes = sync(pair, crashed.settings)
    assert [" ".join(w.split()[:2]) for w in writes] == [f"PUT /api/index.php/products/{product['id']}"]
    after = dolibarr(pair, lambda d: d.get(f"/products/{product['id']}"))
    assert after["label"] == product["label"]  # the shop's values, all of them, again
    assert money(after["price"]) == Decimal("12.34")


def test_a_product_deleted_by_hand_in_dolibarr_is_made_again_once_when_the_shop_changes_it(
    crashed: Crashed, pair: Pair
) -> None:
    product = one(pair, "/products", "ps-main-product-42")
    dolibarr(pair, lambda d: d.write("DELETE", f"/products/{product['id']}"))
    assert sync(pair, crashed.settings) == []  # unchanged in the shop: nothing to do, nothing noticed
    shop(pair, lambda s: set_fields(s, "products", 42, {"price": "21.000000"}))
    sync(pair, crashed.settings)
    made = dolibarr(pair, lambda d: d.all("/products", sqlfilters="(t.ref_ext:=:'ps-main-product-42')"))
    assert len(made) == 1 and int(made[0]["id"]) != int(product["id"])
    assert made[0]["ref"] == product["ref"] and money(made[0]["price"]) == Decimal("21.00")
    assert sync(pair, crashed.settings) == []


def test_a_thirdparty_changed_by_hand_keeps_the_edit_while_the_customer_is_unchanged(
    crashed: Crashed, pair: Pair
) -> None:
    third = one(pair, "/thirdparties", "ps-main-customer-2")
    dolibarr(pair, lambda d: d.write("PUT", f"/thirdparties/{third['id']}", {"phone": "+33100000000"}))
    assert sync(pair, crashed.settings) == []
    assert one(pair, "/thirdparties", "ps-main-customer-2")["phone"] == "+33100000000"


def test_an_order_deleted_by_hand_in_dolibarr_is_made_again_once_when_the_shop_order_changes(
    crashed: Crashed, pair: Pair
) -> None:
    # order 25 (S03, payment accepted): its invoice and payment stay in Dolibarr
    order = one(pair, "/orders", "ps-main-order-25")
    dolibarr(pair, lambda d: d.write("DELETE", f"/orders/{order['id']}"))
    assert sync(pair, crashed.settings) == []  # unchanged in the shop: left as the admin made it
    shop(pair, lambda s: set_order_state(s, 25, SHIPPED))
    sync(pair, crashed.settings)
    after = ledger_of(pair)
    assert after.refs["orders"]["ps-main-order-25"] == 1
    assert after.orders["ps-main-order-25"][0] == "3"  # closed: the goods left
    assert after.orders["ps-main-order-25"][1] == crashed.ledger.orders["ps-main-order-25"][1]
    assert after.refs["invoices"]["ps-main-invoice-25"] == 1
    assert after.payments == crashed.ledger.payments
    assert after.duplicates() == {}
    assert sync(pair, crashed.settings) == []
