"""Dolibarr answers the error table misread (found by the crash harness and the deletion tests)."""

from __future__ import annotations

import json

import pytest

from service.dolibarr.errors import (
    CategoryAlreadyExists,
    DatabaseBusy,
    ObjectInUse,
    classify,
    dolibarr_message,
)
from service.errors import AmbiguousWrite, ConfigError, PermanentError, TransientError, Where


def restler(status: int, message: str, detail: str) -> bytes:
    """Dolibarr's error body as captured (products.create_duplicate_ref.response.json): details inside error."""
    return json.dumps({"error": {"code": status, "message": message, "0": detail}}).encode()


@pytest.mark.parametrize(
    "detail",
    [
        "CategoryExistsAtSameLevel",  # translations not loaded: the key
        "Impossible to add the tag/category Tees : This category already exists with this ref",  # translated
        "Impossible to add the tag/category Tees : Tag/category already exists at this level",
        "Impossible d'ajouter la catégorie Tees : Cette catégorie existe déjà avec cette réf",
    ],
)
def test_a_category_that_exists_at_the_same_level_is_recognised_in_any_wording(detail: str) -> None:
    """Regression: only the language key was recognised; the translated sentence became a plain PermanentError,
    so an ambiguous category create retried after its answer was lost failed for good instead of adopting the
    category it had made."""
    body = restler(500, "Internal Server Error: Error when creating category", detail)
    error = classify("POST", 500, {}, body, Where(), route="/categories")
    assert isinstance(error, CategoryAlreadyExists)


def test_a_delete_refused_because_the_record_has_children_is_object_in_use() -> None:
    """A customer with orders: Dolibarr refuses the delete with a 500; the reconcile falls back to deactivating."""
    body = restler(500, "Internal Server Error: Error when deleting thirdparty", "ErrorRecordHasChildren")
    error = classify("DELETE", 500, {}, body, Where(), route="/thirdparties/4")
    assert isinstance(error, ObjectInUse)
    # the same words on a create are not about deleting: a plain refusal
    other = classify("POST", 500, {}, body, Where(), route="/thirdparties")
    assert isinstance(other, PermanentError) and not isinstance(other, ObjectInUse)


def test_the_message_of_a_refusal_carries_dolibarrs_reason() -> None:
    """Regression: the numbered details were read at the top level of the body, but Restler puts them under
    "error": a failure said "Error creating product" without "ErrorBarCodeAlreadyUsed"."""
    body = restler(500, "Internal Server Error: Error creating product", "ErrorBarCodeAlreadyUsed")
    assert dolibarr_message(body) == "Error creating product: ErrorBarCodeAlreadyUsed"
    error = classify("POST", 500, {}, body, Where(shop="main"), route="/products")
    assert isinstance(error, PermanentError) and "ErrorBarCodeAlreadyUsed" in str(error)


def answer(status: int, message: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": message}}).encode()


def test_insufficient_rights_is_a_configuration_error() -> None:
    """Real Dolibarr 20.0.2 with a module off: 'Insufficient rights to read currency'. The pattern expected
    'Insufficiant', so it was a PermanentError and a sync exited 3 instead of 2."""
    body = answer(403, "Forbidden: Insufficient rights to read currency")
    assert isinstance(classify("GET", 403, {}, body, Where(), route="/multicurrencies"), ConfigError)


@pytest.mark.parametrize(
    ("route", "status", "message"),
    [
        (
            "/products",
            500,
            "Internal Server Error: Error creating product: Deadlock found when trying to get lock",
        ),
        ("/orders", 500, "Internal Server Error: Error creating order: Lock wait timeout exceeded"),
        ("/stockmovements", 503, "Service Unavailable: Error when create stock movement : Deadlock found"),
        ("/products/2/variants", 500, "Internal Server Error: Error creating new product variant"),
        (
            "/products/73",
            500,
            "Internal Server Error: Error updating product: Duplicate entry '73' for key 'uk_product_extrafields'",
        ),
    ],
)
def test_lock_conflicts_on_writes_are_database_busy_not_refusals(
    route: str, status: int, message: str
) -> None:
    """Real Dolibarr under parallel writes: each ended the pass (or failed the record) instead of a retry."""
    method = "PUT" if route == "/products/73" else "POST"
    error = classify(method, status, {}, answer(status, message), Where(), route=route)
    assert isinstance(error, DatabaseBusy)


def test_a_stock_movement_refused_without_a_reason_stays_a_refusal() -> None:
    """A service's stock movement: 503 with nothing after the colon is not a lock conflict."""
    body = answer(503, "Service Unavailable: Error when create stock movement : ")
    error = classify("POST", 503, {}, body, Where(), route="/stockmovements")
    assert isinstance(error, PermanentError) and not isinstance(error, DatabaseBusy)


def test_a_payment_whose_invoice_rate_could_not_be_read_is_transient_not_a_refusal() -> None:
    """Regression (real 20.0.2, MariaDB stopped mid-sync): Paiement::create answers this 400 when its SELECT of the
    invoice's multicurrency_tx fails, before it inserts anything; it was a PermanentError that filed the order."""
    body = json.dumps(
        {
            "error": {
                "code": 400,
                "message": "Bad Request: Payment error : FailedToFoundTheConversionRateForInvoice",
            }
        }
    ).encode()
    error = classify("POST", 400, {}, body, Where(), route="/invoices/paymentsdistributed")
    assert isinstance(error, TransientError) and not isinstance(error, PermanentError)
    assert "nothing was stored" in str(error)
    other = json.dumps({"error": {"code": 400, "message": "Bad Request: Payment error : ErrorAmountTooHigh"}})
    assert isinstance(
        classify("POST", 400, {}, other.encode(), Where(), route="/invoices/paymentsdistributed"),
        PermanentError,
    )


@pytest.mark.parametrize(
    "message",
    [
        "Bad Request: Add payment to bank error : MySQL server has gone away",
        "Bad Request: Payment error : Lost connection to MySQL server during query",
        "Bad Request: Payment error : Server shutdown in progress",
        "Bad Request: Payment error : ",
        "Bad Request: Add payment to bank error : ",
    ],
)
def test_a_payment_rolled_back_because_the_database_went_away_is_transient_not_a_refusal(
    message: str,
) -> None:
    """Regression (real 20.0.2 in CI, MariaDB stopped mid-sync): the payment endpoints run in one transaction and
    answer 400 with the database's error, or none; 'Add payment to bank error : MySQL server has gone away' was a
    PermanentError that filed the order, its invoice left unpaid. Nothing was stored: try again."""
    body = json.dumps({"error": {"code": 400, "message": message}}).encode()
    error = classify("POST", 400, {}, body, Where(), route="/invoices/paymentsdistributed")
    assert isinstance(error, TransientError) and not isinstance(error, PermanentError), error


def test_a_create_failing_with_an_empty_object_error_is_ambiguous_not_a_refusal() -> None:
    """Regression (real 20.0.2, MariaDB stopped mid-sync): RestException(500, "Error creating invoice",
    [$invoice->error]) with that error empty answers ``"0": null``; it read "Error creating invoice: None", a
    refusal that filed the order. Without a reason the database may have gone away mid-call: look it up, retry."""
    body = json.dumps(
        {"error": {"code": 500, "message": "Internal Server Error: Error creating invoice", "0": None}}
    ).encode()
    error = classify("POST", 500, {}, body, Where(), route="/invoices")
    assert isinstance(error, AmbiguousWrite), error
    assert "None" not in str(error)
    refused = restler(500, "Internal Server Error: Error creating invoice", "ErrorFieldRequired")
    assert isinstance(classify("POST", 500, {}, refused, Where(), route="/invoices"), PermanentError)
