"""Dolibarr answers seen on the real pair while its database was stopped and started mid-sync
(tests/real/test_outages.py): an outage is never a record's refusal."""

from __future__ import annotations

import json

import pytest

from service.dolibarr.errors import classify
from service.errors import AmbiguousWrite, ConfigError, NotFound, PermanentError, TransientError, Where


def restler(status: int, message: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": message}}).encode()


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", "/categories/6/objects/product/253"),
        ("POST", "/products"),
        ("PUT", "/products/12"),
        ("GET", "/products/12"),
    ],
)
@pytest.mark.parametrize(
    "message",
    [
        "Service Unavailable: Error when fetching user api_key :",  # the database error text was empty
        "Service Unavailable: Error when fetching user api_key :Lost connection to server during query",
    ],
)
def test_the_key_lookup_failing_as_the_database_goes_away_is_transient_for_any_method(
    method: str, route: str, message: str
) -> None:
    """Regression: a 503 'Error when fetching user api_key :' (api_access.class.php could not read the key's
    user) was a PermanentError on writes: Dolibarr 'refused' a category link, filed in the failure queue with
    the product's images waiting for it, while the call had never run."""
    error = classify(method, 503, {}, restler(503, message), Where(), route=route)
    assert isinstance(error, TransientError)
    assert not isinstance(error, AmbiguousWrite | PermanentError)  # the call never ran: safe to send again
    assert "api_key" in str(error) and "nothing was done" in str(error)


def test_two_users_with_the_same_key_is_a_configuration_error() -> None:
    body = restler(
        503, "Service Unavailable: Error when fetching user api_key : More than 1 user with this apikey"
    )
    assert isinstance(classify("GET", 503, {}, body, Where(), route="/status"), ConfigError)


@pytest.mark.parametrize(
    ("route", "message", "idempotent", "expected"),
    [
        (
            "/invoices/60/validate",
            "Internal Server Error: Error when validating Invoice: ",
            True,
            TransientError,
        ),
        ("/orders/64/validate", "Internal Server Error: Error when validating Order: ", True, TransientError),
        ("/products", "Internal Server Error: Error creating product: ", False, AmbiguousWrite),
        (
            "/documents/upload",
            "Internal Server Error: Failed to move file into '/srv/x/documents/produit/demo_10-2/ps-image-20.jpg'",
            False,
            TransientError,
        ),
    ],
)
def test_a_5xx_without_a_reason_during_an_outage_is_not_a_refusal(
    route: str, message: str, idempotent: bool, expected: type[Exception]
) -> None:
    """Regression: while the real Dolibarr's MariaDB stopped (and php-fpm reloaded), 'Error when validating
    Invoice: ' (an empty reason) and an upload's 'Failed to move file into ...' were refusals: order 55 and a
    product's images were filed, and the sync ended without order 55's validated invoice and payment until the
    queue's retry came due."""
    body = restler(500, message)
    error = classify("POST", 500, {}, body, Where(), route=route, idempotent=idempotent)
    assert type(error) is expected


def test_a_5xx_with_a_reason_on_a_write_stays_a_refusal() -> None:
    body = restler(500, "Internal Server Error: Error when validating Invoice: ErrorBadValueForParameter")
    error = classify("POST", 500, {}, body, Where(), route="/invoices/1/validate", idempotent=True)
    assert isinstance(error, PermanentError)


@pytest.mark.parametrize("route", ["/orders/2/lines/3", "/invoices/60/lines/118"])
def test_deleting_a_line_that_is_gone_already_is_not_found(route: str) -> None:
    """Regression (bench/real_crash.py --cut-every 25): the answer of DELETE /orders/2/lines/3 was lost after
    Dolibarr deleted the line; the repeated DELETE got 405 ErrorLineIDDoesNotMatchWithObjectID, a refusal that
    filed order 33 and left it a draft holding one line of three (29.90 for 118.90), with no invoice nor
    payment until the failure queue's retry. The line is gone: that is what the delete wanted."""
    body = restler(405, "Method Not Allowed: ErrorLineIDDoesNotMatchWithObjectID")
    assert isinstance(classify("DELETE", 405, {}, body, Where(), route=route), NotFound)


# the real 20.0.2's answer to a second DELETE /invoices/1/lines/1 (captured on the real pair; SQL shortened)
INVOICE_LINE_GONE = (
    b"Dolibarr has detected a technical error.<br>\n"
    b"This information can be useful for diagnostic purposes (you can set option $dolibarr_main_prod to '1' to "
    b"hide sensitive information):<br>\n<b>Dolibarr:</b> 20.0.2 - https://www.dolibarr.org<br>\n"
    b"<b>Requested URL:</b> /api/index.php/invoices/1/lines/1<br>\n"
    b"<b>Latest database access request error:</b> No request in error<br>\n"
    b"<b>Message:</b> InvoiceLine with id 1 not found sql=SELECT fd.rowid, fd.fk_facture FROM llx_facturedet as fd "
    b"LEFT JOIN llx_product as p ON fd.fk_product = p.rowid WHERE fd.rowid = 1<br>\n"
) + restler(405, "Method Not Allowed")


def test_deleting_an_invoice_line_that_is_gone_already_is_not_found() -> None:
    """Regression (the simulators' line DELETE, then confirmed on the real pair): Facture::deleteLine of a line
    deleted already prints dol_print_error's page ("InvoiceLine with id 1 not found") before Restler's 405
    without a reason; read as the technical page, a repeated DELETE after a cut answer ended the pass instead of
    taking the line as deleted."""
    error = classify("DELETE", 405, {}, INVOICE_LINE_GONE, Where(), route="/invoices/1/lines/1")
    assert isinstance(error, NotFound)
    # the same page for another call is no line gone
    other = classify("PUT", 405, {}, INVOICE_LINE_GONE, Where(), route="/invoices/1/lines/1")
    assert not isinstance(other, NotFound)


def test_the_same_answer_to_another_call_stays_a_refusal() -> None:
    body = restler(405, "Method Not Allowed: ErrorLineIDDoesNotMatchWithObjectID")
    error = classify("PUT", 405, {}, body, Where(), route="/orders/2/lines/3")
    assert isinstance(error, PermanentError)
