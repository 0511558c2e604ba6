"""Bad input from the shop, end to end: a record of the wrong shape is filed with an error naming shop, resource,
id and field, while the others and the cursor go on; a broken answer ends the pass without moving the cursor;
strange but valid values (zero dates, enormous or control-character strings) go through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.dolibarr.model import ref_ext
from service.sandbox.harness import Sandbox
from tests.conftest import engine_for


def registered(sandbox: Sandbox) -> list[int]:
    customers = sandbox.shop.data.table("customers")
    return sorted(i for i, c in customers.items() if not int(c.get("is_guest") or 0))


CORRUPTIONS: list[tuple[str, str, dict[str, Any], str | None]] = [
    # resource, what, fields written into the record as the shop would send them, the field named (None: the
    # shop itself cannot render the record - a PHP fatal error - which is read alone and filed unreadable)
    ("products", "letters for the tax rules id", {"id_tax_rules_group": "abc"}, "id_tax_rules_group"),
    ("products", "a word where a flag is expected", {"active": "maybe"}, "active"),
    ("products", "a decimal the shop cannot render", {"price": "12,50"}, None),
    ("categories", "a word where a flag is expected", {"active": "maybe"}, "active"),
    (
        "customers",
        "nothing to name the customer by",
        {"firstname": "", "lastname": None, "company": "", "email": ""},
        "lastname",
    ),
    ("customers", "a list where a flag is expected", {"active": [1]}, "active"),
]


@pytest.mark.parametrize(
    ("resource", "what", "fields", "field"), CORRUPTIONS, ids=[c[1] for c in CORRUPTIONS]
)
async def test_a_record_of_the_wrong_shape_is_filed_naming_it_and_the_rest_goes_on(
    sandbox: Sandbox, tmp_path: Path, resource: str, what: str, fields: dict[str, Any], field: str | None
) -> None:
    shop = sandbox.shop.data
    table = shop.table(resource)
    ids = registered(sandbox) if resource == "customers" else sorted(i for i in table if i > 2)
    victim = ids[len(ids) // 2]
    shop.update(resource, victim)  # bumps date_upd; then the raw values, as a broken module would store them
    table[victim].update(fields)
    for row in shop.product_shop.get(victim, {}).values() if resource == "products" else ():
        row.update({k: v for k, v in fields.items() if k in row})  # shop fields are read from product_shop
    shop.touch()
    resources = ("categories", "products", "customers")
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=resources) as w:
        reports = {r: await w.engine.run_pass("main", r) for r in resources}
        report = reports[resource]
        assert report.outcome == "partial" and report.failed >= 1, report
        # the other resources go on (products of a refused category wait for it: partial)
        assert all(r.outcome in ("ok", "partial") for r in reports.values())
        failures = await w.store.failures("main", resource=resource)
        mine = [f for f in failures if f.ps_id.removeprefix("customer-").split("-")[0] == str(victim)]
        assert mine, [f.message for f in failures]
        message = mine[0].message
        named = f"field={field}" if field else "cannot be read"
        for part in ("shop=main", f"resource={resource}", f"id={mine[0].ps_id}", named):
            assert part in message, message
        assert "passwd" not in mine[0].payload and "secure_key" not in mine[0].payload
        # the others went through, and the cursor is at the end of the resource
        assert report.created + report.unchanged + report.updated > 0
        cursor = await w.store.cursor("main", resource)
        last = max(table.values(), key=lambda r: (r["date_upd"], r["id"]))
        assert cursor is not None
        if field:  # mapped or not, the record was read: the cursor goes on to the end
            assert cursor.as_tuple() == (last["date_upd"], last["id"])
        else:  # the position of a record that cannot be read is unknown: the cursor stays before it
            assert cursor.as_tuple() < (table[victim]["date_upd"], victim)


async def test_zero_dates_enormous_and_control_character_strings_go_through(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shop = sandbox.shop.data
    first, second = registered(sandbox)[:2]
    shop.table("customers")[first]["date_upd"] = "0000-00-00 00:00:00"
    shop.update(
        "customers", second, lastname="Ctrl\x01\x1b[31m\u202e" + "é" * 5000, firstname='O\'Neil ("x")'
    )
    shop.touch()
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("customers",)) as w:
        report = await w.engine.run_pass("main", "customers")
        assert report.outcome == "ok", report.error
        cursor = await w.store.cursor("main", "customers")
        assert cursor is not None and not cursor.position.startswith("0000")
    for customer in (first, second):
        assert (
            sandbox.dolibarr.find_one("thirdparties", ref_ext=ref_ext("main", "customer", customer))
            is not None
        )


@pytest.mark.parametrize("kind", ["truncate", "html"])
async def test_a_broken_xml_answer_ends_the_pass_naming_shop_and_resource_and_keeps_the_cursor(
    sandbox: Sandbox, tmp_path: Path, kind: str
) -> None:
    overrides = {"main": {"output_format": "xml"}}
    async with engine_for(
        sandbox, tmp_path / "s.sqlite3", resources=("customers",), shop_overrides=overrides
    ) as w:
        assert (await w.engine.run_pass("main", "customers")).outcome == "ok"
        before = await w.store.cursor("main", "customers")
        sandbox.shop.data.advance(5)
        sandbox.shop.data.update("customers", registered(sandbox)[0], lastname="Later")
        faults = sandbox.shop.faults
        faults.only_paths, faults.fail_next, faults.fail_next_kind = ("/api/customers",), 50, kind
        report = await w.engine.run_pass("main", "customers")
        faults.clear()
        assert report.outcome == "error"
        assert "shop=main" in report.error and "resource=customers" in report.error
        assert await w.store.cursor("main", "customers") == before
        assert (await w.engine.run_pass("main", "customers")).updated == 1


async def test_a_mapper_bug_on_one_record_files_that_record_instead_of_ending_the_pass(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Regression (property tests): a mapper let a ValueError out for a strange value (orders: gift = -1); the
    pass ended on it at every poll and nothing after that record was ever synced. The streams now file such a
    record like a MappingError, naming the exception."""
    from service.engine.streams import CustomerStream
    from service.mapping.context import ShopContext

    victim = registered(sandbox)[3]

    class CustomersWithABug(CustomerStream):
        def map_record(self, record: dict[str, Any], ctx: ShopContext) -> list[Any]:
            if int(record["id"]) == victim:
                return [{}][1]  # IndexError: a bug, not a MappingError
            return super().map_record(record, ctx)

    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("customers",)) as w:
        w.engine.register_stream("customers", CustomersWithABug)
        report = await w.engine.run_pass("main", "customers")
        assert report.outcome == "partial" and report.failed == 1
        failure = (await w.store.failures("main"))[0]
        assert "IndexError" in failure.message and f"id=customer-{victim}" in failure.message
        assert report.created >= len(registered(sandbox)) - 1, "the others went on"
        cursor = await w.store.cursor("main", "customers")
        last = max(sandbox.shop.data.table("customers").values(), key=lambda r: (r["date_upd"], r["id"]))
        assert cursor is not None and cursor.as_tuple() == (last["date_upd"], last["id"])


async def test_a_customer_fixed_in_the_shop_leaves_the_failure_queue_with_its_first_good_push(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Regression: a customer that could not be mapped was filed as "6" while its record is "customer-6": its
    first good push did not clear the failure, which stayed listed until its next retry (up to 6 hours later)."""
    shop = sandbox.shop.data
    victim = registered(sandbox)[2]
    shop.update("customers", victim, firstname="", lastname="", company="", email="")
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("customers",)) as w:
        assert (await w.engine.run_pass("main", "customers")).failed == 1
        assert [f.ps_id for f in await w.store.failures("main")] == [f"customer-{victim}"]
        shop.advance(5)
        shop.update("customers", victim, lastname="Fixed")
        report = await w.engine.run_pass("main", "customers")
        assert report.outcome == "ok" and report.created == 1
        assert await w.store.failures("main") == []
