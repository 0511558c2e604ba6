"""A state change of an order in the real shop, made through its webservice (``POST /api/order_histories``, as the
back office does), costs exactly the Dolibarr writes it needs (docs/orders.md). Tests run in file order on one
pair synced once (Dolibarr with Multicurrency on)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.real.apis import Dolibarr, Shop
from tests.real.realpair import Pair

SHIPPED, PAYMENT_ACCEPTED, CANCELED, REFUNDED = 4, 2, 6, 7


@dataclass
class Synced:
    pair: Pair
    settings: Path

    def set_state(self, order_id: int, state: int) -> None:
        xml = (
            f"<prestashop><order_history><id_order>{order_id}</id_order>"
            f"<id_order_state>{state}</id_order_state></order_history></prestashop>"
        )

        async def go() -> None:
            async with aiohttp.ClientSession() as session:
                await Shop(self.pair.ps_url, self.pair.ps_key, session).write("POST", "order_histories", xml)

        asyncio.run(go())

    def sync_orders(self) -> Counter[str]:
        self.pair.mark_writes()
        done = self.pair.ps2doli(self.settings, "sync", "--resource", "orders")
        assert done.returncode == 0, done.stdout + done.stderr[-2000:]
        return Counter(re.sub(r"/\d+", "/N", " ".join(w.split()[:2])) for w in self.pair.writes())

    def dolibarr(self, path: str) -> Any:
        async def go() -> Any:
            async with aiohttp.ClientSession() as session:
                return await Dolibarr(self.pair.doli_api, self.pair.doli_key, session).get(path)

        return asyncio.run(go())


@pytest.fixture(scope="module")
def synced(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> Synced:
    folder = tmp_path_factory.mktemp("orders-changes")
    pair.reset("clean-mc")
    settings = pair.settings(folder, shop={"catalog_only": False})
    first = pair.ps2doli(settings, "sync")
    assert first.returncode == 0, first.stdout
    return Synced(pair, settings)


def test_shipped_closes_the_order_with_one_write(synced: Synced) -> None:
    # S62: order 104, "Payment accepted", validated in Dolibarr
    synced.set_state(104, SHIPPED)
    assert synced.sync_orders() == Counter({"POST /api/index.php/orders/N/close": 1})
    assert int(synced.dolibarr("/orders/ref_ext/ps-main-order-104")["status"]) == 3


def test_refunded_without_a_credit_slip_changes_nothing(synced: Synced) -> None:
    synced.set_state(104, REFUNDED)  # the refund itself is a credit slip (a credit note), not a state
    assert synced.sync_orders() == Counter()


def test_a_payment_accepted_makes_the_order_its_invoice_and_its_payment(synced: Synced) -> None:
    # S73: order 127 awaited a bank wire, so it was not in Dolibarr; PrestaShop now invoices it and records the
    # payment: one order (created with its lines, validated, two contacts), one invoice (the same), one payment
    synced.set_state(127, PAYMENT_ACCEPTED)
    assert synced.sync_orders() == Counter(
        {
            "POST /api/index.php/orders": 1,
            "POST /api/index.php/orders/N/contact/N/BILLING": 1,
            "POST /api/index.php/orders/N/contact/N/SHIPPING": 1,
            "POST /api/index.php/orders/N/validate": 1,
            "POST /api/index.php/invoices": 1,
            "POST /api/index.php/invoices/N/contact/N/BILLING": 1,
            "POST /api/index.php/invoices/N/contact/N/SHIPPING": 1,
            "POST /api/index.php/invoices/N/validate": 1,
            "POST /api/index.php/invoices/paymentsdistributed": 1,
        }
    )
    invoice = synced.dolibarr("/invoices/ref_ext/ps-main-invoice-127")
    assert int(invoice["status"]) == 2 and invoice["total_ttc"].startswith("595.80")


def test_a_cancellation_after_delivery_is_a_credit_note_and_a_cancelled_order(synced: Synced) -> None:
    # S61: order 99, delivered, invoiced and paid
    synced.set_state(99, CANCELED)
    assert synced.sync_orders() == Counter(
        {
            "POST /api/index.php/invoices": 1,
            "POST /api/index.php/invoices/N/contact/N/BILLING": 1,
            "POST /api/index.php/invoices/N/contact/N/SHIPPING": 1,
            "POST /api/index.php/invoices/N/validate": 1,
            "PUT /api/index.php/orders/N": 1,
        }
    )
    assert int(synced.dolibarr("/orders/ref_ext/ps-main-order-99")["status"]) == -1
    note = synced.dolibarr("/invoices/ref_ext/ps-main-cancel-99")
    assert int(note["type"]) == 2 and note["total_ttc"].startswith("-139.94")


def test_a_cancellation_before_the_order_entered_changes_nothing(synced: Synced) -> None:
    synced.set_state(126, CANCELED)  # S72: awaiting a cheque, never invoiced
    assert synced.sync_orders() == Counter()
    assert synced.dolibarr("/orders/ref_ext/ps-main-order-126") is None


def test_after_the_changes_a_sync_writes_nothing(synced: Synced) -> None:
    assert synced.sync_orders() == Counter()
