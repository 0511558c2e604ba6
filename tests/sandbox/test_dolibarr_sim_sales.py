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
    assert data.multicurrencies()[-1]["code"] == "USD"
