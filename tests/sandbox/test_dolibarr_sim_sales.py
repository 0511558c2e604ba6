"""The Dolibarr simulator's orders and invoices, on the points the order sync relies on."""

from __future__ import annotations

from decimal import Decimal

from service.sandbox.dolibarr_model import DolibarrData


def _order(data: DolibarrData) -> int:
    socid = data.create_thirdparty({"name": "Customer"})
    return data.create_order(
        {"socid": socid, "date": 1767225600, "lines": [{"qty": 2, "subprice": 10, "tva_tx": 20}]}
    )


def test_a_validated_order_set_back_to_draft_keeps_its_number_when_validated_again() -> None:
    data = DolibarrData()
    oid = _order(data)
    data.validate_order(oid)
    ref = data.orders[oid]["ref"]
    assert ref.startswith("CO")
    data.order_to_draft(oid)
    data.validate_order(oid)
    assert data.orders[oid]["ref"] == ref
    assert data.next_order_ref(oid) != ref, "the counter did not move twice"


def test_documents_link_contacts_once_per_role() -> None:
    data = DolibarrData()
    oid = _order(data)
    cid = data.create_contact({"socid": data.orders[oid]["socid"], "lastname": "Billing"})
    data.link_contact("commande", oid, cid, "BILLING")
    data.link_contact("commande", oid, cid, "SHIPPING")
    assert data.document_contacts("commande", oid) == [(cid, "BILLING"), (cid, "SHIPPING")]
    assert data.order_out(oid)["contacts_ids"] == [str(cid)]


def test_a_foreign_currency_invoice_is_paid_in_its_currency() -> None:
    data = DolibarrData(multicurrency_enabled=True)
    usd = data.add_currency("USD", "US Dollar", Decimal("1.0825"))
    socid = data.create_thirdparty({"name": "Customer"})
    iid = data.create_invoice(
        {
            "socid": socid,
            "multicurrency_code": "USD",
            "multicurrency_tx": 1.0825,
            "lines": [{"qty": 1, "subprice": 92.378753, "tva_tx": 20}],
        }
    )
    data.validate_invoice(iid)
    due = Decimal(data.invoices[iid]["multicurrency_total_ttc"])
    assert due == Decimal("120.00")
    account = next(iter(data.bank_accounts))
    data.add_payment_distributed(
        {
            "arrayofamounts": {str(iid): {"amount": "", "multicurrency_amount": str(due)}},
            "datepaye": 1767225600,
            "paymentid": 6,
            "closepaidinvoices": "yes",
            "accountid": account,
        }
    )
    assert data.invoices[iid]["paye"] == "1"
    assert data.remain_to_pay_mc(iid) == 0
    assert data.invoices[iid]["fk_multicurrency"] == str(usd)
    assert [c["code"] for c in data.multicurrencies()] == ["EUR", "USD"]


def test_a_document_in_a_currency_not_in_the_list_is_silently_in_the_main_currency() -> None:
    """Commande::create / Facture::create: MultiCurrency::getIdFromCode() finds nothing, so the document is in
    the main currency at rate 1 - its amounts are the line prices, sent in the main currency (the shop's amounts
    divided by the rate). Live 20.0.2: a USD order came out in EUR."""
    data = DolibarrData(multicurrency_enabled=True)
    socid = data.create_thirdparty({"name": "Customer"})
    body = {
        "socid": socid,
        "date": 1767225600,
        "multicurrency_code": "USD",
        "multicurrency_tx": 1.0825,
        "lines": [{"qty": 1, "subprice": 92.378753, "tva_tx": 20}],
    }
    oid = data.create_order(body)
    iid = data.create_invoice(body)
    for doc in (data.orders[oid], data.invoices[iid]):
        assert (doc["multicurrency_code"], doc["multicurrency_tx"], doc["fk_multicurrency"]) == (
            "EUR",
            "1.00000000",
            "0",
        )
        assert doc["multicurrency_total_ttc"] == doc["total_ttc"] == "110.85000000"

    # once in the list, the same request keeps its currency; without a rate it takes the latest one
    usd = data.add_currency("USD", "USD", Decimal("1.1"))
    data.add_currency_rate(usd, Decimal("1.2"))
    oid = data.create_order(body)
    assert (data.orders[oid]["multicurrency_code"], data.orders[oid]["multicurrency_tx"]) == (
        "USD",
        "1.08250000",
    )
    oid = data.create_order({**body, "multicurrency_tx": None})
    assert data.orders[oid]["multicurrency_tx"] == "1.20000000"
    assert data.currency_out(usd)["rate"]["rate"] == "1.2"


def test_with_multicurrency_off_every_document_is_in_the_main_currency() -> None:
    data = DolibarrData()
    data.add_currency("USD", "USD", Decimal("1.1"))
    socid = data.create_thirdparty({"name": "Customer"})
    oid = data.create_order({"socid": socid, "date": 1767225600, "multicurrency_code": "USD"})
    assert data.orders[oid]["multicurrency_code"] == "EUR"


def test_an_invoice_created_with_linked_objects_is_linked_to_its_order() -> None:
    """Facture::create adds an element_element row for each ``linked_objects`` entry (add_object_linked)."""
    data = DolibarrData()
    oid = _order(data)
    socid = int(data.orders[oid]["socid"])
    iid = data.create_invoice({"socid": socid, "linked_objects": {"commande": oid}, "lines": []})
    assert list(data.invoice_out(iid)["linkedObjectsIds"]["commande"].values()) == [str(oid)]
    assert list(data.order_out(oid)["linkedObjectsIds"]["facture"].values()) == [str(iid)]
    other = data.create_invoice({"socid": socid, "linked_objects": {"commande": [str(oid)]}})
    assert sorted(data.order_out(oid)["linkedObjectsIds"]["facture"].values()) == [str(iid), str(other)]
