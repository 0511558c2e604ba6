"""The real servers' outage answers, modelled by the simulators' fault plans (docs/dolibarr-simulator.md, "Outages"),
over real sockets with ps2doli's engine: Dolibarr's database stopped (its four answers), a line DELETE repeated
after its answer was lost, the shop's webservice switched off. Each is what tests/real/test_outages.py met on the
real pair; here each one alone, so that a test fails when the handling of that answer in
service/dolibarr/errors.py or service/prestashop/errors.py goes.

The outcome every time: nothing filed as refused, nothing made twice, the record arrives once the fault passes.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from service.sandbox import dolibarr_database as database
from service.sandbox.harness import Sandbox
from service.sandbox.shop_model import ShopData
from tests.conftest import SandboxFactory, engine_for
from tests.e2e.catalog_support import catalog_overrides, files, product_of
from tests.e2e.test_cli import ps2doli, write_config
from tests.e2e.test_core_pipeline import expected_categories, expected_products, expected_thirdparties
from tests.e2e.test_orders import (
    PAYMENT_ACCEPTED,
    dolibarr_invoice,
    dolibarr_order,
    french_customer,
    orders_pass,
    shop_total,
    simple_products,
    small_shop,
)

CATALOG = ("categories", "products", "customers")


async def passes_until_ok(
    sandbox: Sandbox, state: Path, resources: tuple[str, ...], *, tries: int = 4, **settings: Any
) -> list[list[Any]]:
    """Passes of ``resources`` until one round ends ok everywhere (an outage may end a pass: transient). No pass
    may file a record: a record filed and then retried from the failure queue by a later pass would leave the
    queue empty at the end, so the passes are asked."""
    rounds: list[list[Any]] = []
    for _ in range(tries):
        async with engine_for(sandbox, state, resources=resources, **settings) as w:
            reports = [await w.engine.run_pass("main", r) for r in resources]
        rounds.append(reports)
        filed = [(r.resource, r.failed) for r in reports if r.failed]
        assert not filed, f"records filed as refused during the outage: {filed}"
        if all(r.outcome == "ok" for r in reports):
            return rounds
    raise AssertionError([(r.resource, r.outcome, r.error) for r in rounds[-1]])


async def failures(sandbox: Sandbox, state: Path, resources: tuple[str, ...] = CATALOG) -> list[str]:
    async with engine_for(sandbox, state, resources=resources) as w:
        return [f"{f.kind} {f.ps_id}: {f.message}" for f in await w.store.failures()]


def assert_catalog_once(sandbox: Sandbox) -> None:
    data = sandbox.dolibarr
    for table, expected in (
        ("categories", expected_categories(sandbox.shop.data)),
        ("products", expected_products(sandbox.shop.data)),
        ("thirdparties", expected_thirdparties(sandbox)),
    ):
        counts = Counter(str(row.get("ref_ext") or "") for row in data.table(table).values())
        assert set(counts) == expected, table
        assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]


# ------------------------------------------------------------------------------------- Dolibarr's database


async def test_the_key_lookup_failing_as_the_database_goes_away_files_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """503 'Error when fetching user api_key :' on creates (api_access.class.php could not read the key's user):
    the call never ran, so it is sent again; it used to be a refusal that filed the record."""
    faults = sandbox.dolibarr_faults
    faults.only_methods = frozenset({"POST"})
    faults.start_outage("db_key_lookup", requests=3)
    state = tmp_path / "s.sqlite3"
    await passes_until_ok(sandbox, state, CATALOG)
    assert faults.injected["db_key_lookup"] == 3
    assert await failures(sandbox, state) == []
    assert_catalog_once(sandbox)


async def test_a_401_for_the_key_accepted_before_is_the_database_going_away_not_a_wrong_key(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """401 'Error user not valid' for the key the process was using (api_access.class.php read the key's row, then
    failed to load its user: real 20.0.2, MariaDB stopped mid-sync, the products pass ended as a configuration
    error, exit 2). The call never ran: tried again, no pass ends on a configuration error, nothing filed."""
    faults = sandbox.dolibarr_faults
    state = tmp_path / "s.sqlite3"
    async with engine_for(sandbox, state, resources=CATALOG) as w:
        categories = await w.engine.run_pass("main", "categories")
        faults.only_methods = frozenset({"POST"})
        faults.start_outage("db_user_fetch", requests=2)
        products = await w.engine.run_pass("main", "products")
        customers = await w.engine.run_pass("main", "customers")
    assert faults.injected["db_user_fetch"] == 2
    for report in (categories, products, customers):
        assert report.error_kind != "config", report
    await passes_until_ok(sandbox, state, CATALOG)
    assert await failures(sandbox, state) == []
    assert_catalog_once(sandbox)


async def test_a_key_refused_again_and_again_is_a_wrong_key_after_all(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The other side of the rule above: a key revoked while the process runs is a configuration error once it
    is refused three times in a row."""
    faults = sandbox.dolibarr_faults
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=CATALOG) as w:
        await w.engine.run_pass("main", "categories")
        faults.start_outage("db_user_fetch")
        report = await w.engine.run_pass("main", "customers")
    assert report.outcome == "error" and report.error_kind == "config", report
    assert "Dolibarr refused the API key" in report.error
    assert 3 <= faults.injected["db_user_fetch"] <= 4


async def test_the_database_down_page_ends_the_pass_quietly_and_the_next_one_brings_everything(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Every request answered dol_print_error()'s page (202, 500, 200): the pass ends saying the database is
    unreachable, never quoting the page (it names the database host and user), no cursor moves, nothing is
    filed; once the database is back the next pass brings every record, once."""
    faults = sandbox.dolibarr_faults
    faults.start_outage("db_page")
    state = tmp_path / "s.sqlite3"
    async with engine_for(sandbox, state, resources=("customers",)) as w:
        report = await w.engine.run_pass("main", "customers")
        cursor = await w.store.cursor("main", "customers")
    assert report.outcome == "error" and report.error_kind == "transient", report
    assert "cannot reach its database" in report.error, report.error
    for secret in (database.DB_HOST, f"user={database.DB_USER}", database.DB_CONNECT_ERROR):
        assert secret not in report.error
    assert cursor is None
    assert faults.injected["db_page"] >= 3  # each status of the page met at least once
    assert sandbox.dolibarr.count("thirdparties") == 0

    faults.end_outage()
    await passes_until_ok(sandbox, state, CATALOG)
    assert await failures(sandbox, state) == []
    assert_catalog_once(sandbox)


async def _one_order_through_an_outage(
    make_sandbox: SandboxFactory,
    tmp_path: Path,
    kind: str,
    paths: tuple[str, ...],
    methods: frozenset[str] | None = None,
) -> tuple[Sandbox, ShopData, int]:
    """A paid order synced while its first two requests on ``paths`` get the outage answer ``kind``: the passes
    end ok, nothing filed. Returns the sandbox, the shop and the order's id for the test's own checks."""
    shop = small_shop()
    a, b = simple_products(shop)[:2]
    oid = shop.create_order(french_customer(shop), [(a, 2), (b, 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    faults = sandbox.dolibarr_faults
    faults.only_paths = paths
    faults.only_methods = methods
    faults.start_outage(kind, requests=2)
    state = tmp_path / "s.sqlite3"
    await passes_until_ok(sandbox, state, ("orders",))
    assert faults.injected[kind] == 2
    assert await failures(sandbox, state, ("orders",)) == []
    invoice = dolibarr_invoice(sandbox, oid)
    assert invoice is not None and Decimal(invoice["total_ttc"]) == shop_total(shop, oid)
    assert sandbox.dolibarr.count("invoices") == 1 and sandbox.dolibarr.count("payments") == 1
    return sandbox, shop, oid


async def test_a_validation_failing_without_a_reason_is_tried_again_not_filed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """500 'Error when validating Order: ' / 'Invoice: ' (the object's error empty: its connection went away):
    a validation is repeatable; it was a refusal that filed the order, left without its validated invoice."""
    sandbox, _, oid = await _one_order_through_an_outage(
        make_sandbox, tmp_path, "db_no_reason", ("/validate",)
    )
    order, invoice = dolibarr_order(sandbox, oid), dolibarr_invoice(sandbox, oid)
    assert order is not None and int(order["status"]) >= 1 and not order["ref"].startswith("(PROV")
    assert invoice is not None and not invoice["ref"].startswith("(PROV")
    assert sandbox.dolibarr.count("orders") == 1


async def test_a_payment_whose_invoice_rate_could_not_be_read_is_tried_again_not_filed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """400 'Payment error : FailedToFoundTheConversionRateForInvoice': Paiement::create reads the invoice's rate
    before its first INSERT, and the database went away (real 20.0.2, MariaDB stopped mid-sync, in CI: the order
    was filed for good, its invoice left unpaid). Nothing was stored: the payment is tried again, once."""
    await _one_order_through_an_outage(make_sandbox, tmp_path, "db_payment_rate", ("/payments",))


async def test_a_payment_whose_bank_line_met_a_lost_database_is_tried_again_not_filed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """400 'Add payment to bank error : MySQL server has gone away': addPaymentToBank failed and the payment's
    transaction rolled back (real 20.0.2 in CI, MariaDB stopped mid-sync: the order filed for good, its invoice
    unpaid). Nothing was stored: the payment is tried again, once."""
    await _one_order_through_an_outage(make_sandbox, tmp_path, "db_payment_bank", ("/payments",))


async def test_an_invoice_create_failing_without_a_reason_is_looked_up_and_sent_again_not_filed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """500 "Error creating invoice" with ``"0": null`` (the invoice's error empty: its connection went away; real
    20.0.2 in CI, the order filed for good and its invoice missing). Looked up, then made once."""
    await _one_order_through_an_outage(
        make_sandbox, tmp_path, "db_no_reason", ("/invoices",), frozenset({"POST"})
    )


async def test_an_upload_whose_file_could_not_be_indexed_is_sent_again_not_filed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """500 "Failed to move file into '...'" (dol_move() put the file in place, then could not index it): the upload
    overwrites, so it is sent again; it was a refusal that filed the product's images."""
    shop = small_shop(10)
    sandbox = await make_sandbox({"main": shop})
    faults = sandbox.dolibarr_faults
    faults.start_outage("db_file", requests=2)  # only uploads get it
    state = tmp_path / "s.sqlite3"
    resources = ("categories", "products", "images")
    await passes_until_ok(sandbox, state, resources, shop_overrides=catalog_overrides())
    assert faults.injected["db_file"] == 2
    assert await failures(sandbox, state, resources) == []
    data = sandbox.dolibarr
    for pid in simple_products(shop):
        expected = {f"ps-image-{i}.jpg": shop.image_bytes(i) for i in shop.product_image_ids(pid)}
        assert files(data, product_of(data, "main", pid)["id"]) == expected


async def test_a_database_outage_of_mixed_answers_loses_nothing_and_makes_nothing_twice(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """``database_down`` for a while mid-sync: each request the answer that fits it."""
    faults = sandbox.dolibarr_faults
    faults.seed = 5
    faults.rng.seed(5)
    faults.start_outage("database_down", requests=12)
    state = tmp_path / "s.sqlite3"
    await passes_until_ok(sandbox, state, CATALOG, tries=6)
    assert faults.injected["database_down"] == 12
    assert await failures(sandbox, state) == []
    assert_catalog_once(sandbox)


# ------------------------------------------------------------------------------- a line DELETE repeated


async def test_a_line_delete_whose_answer_is_lost_is_repeated_and_does_not_file_the_order(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """The order's lines are replaced after an edit in the shop; the answer of the first line DELETE is lost after
    Dolibarr deleted the line (a 502 or a reset); the DELETE repeated gets 405 ErrorLineIDDoesNotMatchWithObjectID
    (Commande::deleteLine: the line is not on the order any more): done, not a refusal (bench/real_crash.py
    filed order 33 that way, left a draft with one line of three)."""
    shop = small_shop()
    a, b = simple_products(shop)[:2]
    oid = shop.create_order(french_customer(shop), [(a, 2), (b, 1)], state_id=PAYMENT_ACCEPTED)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    no_invoices = {"main": {"orders": {"invoices": False}}}
    assert (await orders_pass(sandbox, state, shop_overrides=no_invoices)).outcome == "ok"
    number = dolibarr_order(sandbox, oid)["ref"]  # type: ignore[index]

    # the back office adds one unit to the first line
    shop.advance(60)
    detail_id = min(shop.index().details_by_order[oid])
    detail = shop.get("order_details", detail_id)
    cent = Decimal("0.01")
    unit_excl = Decimal(str(detail["unit_price_tax_excl"]))
    unit_incl = Decimal(str(detail["unit_price_tax_incl"]))
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
        total_products_wt=Decimal(str(current["total_products_wt"])) + unit_incl.quantize(cent),
        total_products=Decimal(str(current["total_products"])) + unit_excl.quantize(cent),
    )
    faults = sandbox.dolibarr_faults
    faults.only_methods = frozenset({"DELETE"})
    faults.only_paths = ("/lines/",)
    faults.fail_next, faults.fail_next_kind = 1, "error_after"
    sandbox.dolibarr_requests.reset()
    report = await orders_pass(sandbox, state, shop_overrides=no_invoices)

    assert faults.injected["error_after"] == 1
    deletes = Counter(p for m, p in sandbox.dolibarr_requests.raw if m == "DELETE")
    assert max(deletes.values()) == 2  # the cut one, sent again
    assert report.outcome == "ok" and report.updated == 1 and report.failed == 0, report
    assert await failures(sandbox, state, ("orders",)) == []
    order = dolibarr_order(sandbox, oid)
    assert order is not None and order["ref"] == number and Decimal(order["total_ttc"]) == new_total
    assert sorted(int(Decimal(line["qty"])) for line in order["lines"] if line["fk_product"]) == [1, 3]
    assert sandbox.dolibarr.count("orders") == 1


# ------------------------------------------------------------------------------- the shop's webservice off


async def test_the_shops_webservice_switched_off_ends_the_sync_with_exit_2_naming_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """PS_WEBSERVICE = 0: 503 with PrestaShop error 22. An admin's switch: the sync exits 2 saying so, no cursor
    moves, nothing is filed nor written; switched on again, the next sync brings everything."""
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))
    shop_faults = sandbox.shop.faults
    shop_faults.start_outage("webservice_off")
    code, out, err = await ps2doli("sync", config=config)
    assert code == 2, out + err
    assert "the webservice is disabled in the shop's back office: code 22" in out + err
    assert shop_faults.injected["webservice_off"] >= 1
    assert sandbox.dolibarr_requests.writes() == 0
    code, out, _ = await ps2doli("status", "--json", config=config)
    assert code == 0
    rows = json.loads(out)
    assert all(r["cursor"] is None and r["failures"] == 0 for r in rows), rows

    shop_faults.end_outage()
    code, out, err = await ps2doli("sync", config=config)
    assert code == 0, out + err
    assert await failures(sandbox, tmp_path / "state.sqlite3") == []
    assert_catalog_once(sandbox)
