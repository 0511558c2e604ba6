"""Deletions end to end: records gone from the shop, the on_delete policy applied by the next reconcile pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structlog

from service.app import Wired
from service.dolibarr.model import ref_ext
from service.engine.reconcile import Reconciler
from service.engine.sweeps import Sweeper
from service.prestashop import values
from service.sandbox.dolibarr_sim import DolibarrSimOptions
from service.sandbox.harness import Sandbox
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import ShopData
from tests.conftest import SandboxFactory, engine_for
from tests.e2e.test_cli import ps2doli, write_config

CATALOG = ("categories", "products", "customers")


def policy(**on_delete: str) -> dict[str, Any]:
    return {"main": {"resources": {name: {"on_delete": value} for name, value in on_delete.items()}}}


async def first_sync(w: Wired, resources: tuple[str, ...] = CATALOG) -> None:
    for resource in resources:
        report = await w.engine.run_pass("main", resource)
        assert report.outcome == "ok", report.error


def combinations_of(shop: ShopData) -> dict[int, list[int]]:
    combos: dict[int, list[int]] = {}
    for cid, combination in shop.table("combinations").items():
        combos.setdefault(values.as_int(combination["id_product"]), []).append(cid)
    return combos


def product(sandbox: Sandbox, ps_id: str) -> dict[str, Any] | None:
    return sandbox.dolibarr.find_one("products", ref_ext=ref_ext("main", "product", ps_id))


async def test_deleted_products_and_combinations_are_deactivated_once_by_the_next_reconcile(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shop = sandbox.shop.data
    combos = combinations_of(shop)
    simple = min(set(shop.table("products")) - set(combos))
    with_combos, other = sorted(p for p in combos if len(combos[p]) >= 2)[:2]
    async with engine_for(sandbox, tmp_path / "s.sqlite3") as w:
        await first_sync(w)
        shop.delete("products", simple)
        shop.delete("products", with_combos)
        lost, kept = sorted(combos[other])[:2]
        shop.delete("combinations", lost)

        report = await Reconciler(w.engine).run("main", "products")
        assert report.outcome == "ok", report.error
        assert report.deleted == 1 + len(combos[with_combos]) + 1

        retired = [str(simple), f"{other}-{lost}"] + [f"{with_combos}-{c}" for c in combos[with_combos]]
        for ps_id in retired:
            found = product(sandbox, ps_id)
            assert found is not None, ps_id
            assert (found["status"], found["status_buy"]) == ("0", "0"), ps_id
            row = await w.store.record("main", "product", ps_id)
            assert row is not None and row.deleted and row.dolibarr_id == int(found["id"])
        still = product(sandbox, f"{other}-{kept}")
        assert still is not None and still["status"] == "1"

        # nothing more to do: no Dolibarr request at all, and neither passes nor sweeps bring them back
        sandbox.dolibarr_requests.reset()
        again = await Reconciler(w.engine).run("main", "products")
        assert again.deleted == 0 and sandbox.dolibarr_requests.writes() == 0
        assert (await w.engine.run_pass("main", "products")).outcome == "ok"
        sweep = await Sweeper(w.engine).run("main", "products")
        assert sweep.outcome == "ok" and sweep.created == 0
        assert sandbox.dolibarr_requests.writes() == 0, sandbox.dolibarr_requests.counts
        assert (await w.store.count_deleted("main", "product")) == len(retired)


async def test_delete_policy_deletes_and_falls_back_to_deactivating_when_dolibarr_refuses(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    for conflict in (False, True):
        sandbox = await make_sandbox(dolibarr_options=DolibarrSimOptions(delete_product_conflict=conflict))
        shop = sandbox.shop.data
        simple = min(set(shop.table("products")) - set(combinations_of(shop)))
        state = tmp_path / f"s{conflict}.sqlite3"
        async with engine_for(sandbox, state, shop_overrides=policy(products="delete")) as w:
            await first_sync(w, ("categories", "products"))
            shop.delete("products", simple)
            report = await Reconciler(w.engine).run("main", "products")
            assert report.outcome == "ok" and report.deleted == 1, report.error
            row = await w.store.record("main", "product", str(simple))
            assert row is not None and row.deleted
            found = product(sandbox, str(simple))
            if conflict:  # 409 "probably used" (quirks/products.delete.409-*): deactivated instead
                assert found is not None and found["status"] == "0"
                assert "deactivated" in report.error and row.dolibarr_id == int(found["id"])
            else:
                assert found is None and row.dolibarr_id is None
                assert sandbox.dolibarr_requests.total("DELETE", "/products/") == 1


async def test_a_deleted_category_loses_our_product_links_or_is_deleted(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    for on_delete in ("deactivate", "delete"):
        sandbox = await make_sandbox()
        shop = sandbox.shop.data
        async with engine_for(
            sandbox, tmp_path / f"{on_delete}.sqlite3", shop_overrides=policy(categories=on_delete)
        ) as w:
            await first_sync(w)
            # a leaf category holding products, one of which an ERP user also put there by hand
            linked = {
                cid: links
                for cid, links in sandbox.dolibarr.category_links.items()
                if any(t == "product" for t, _ in links)
            }
            leaves = [
                c
                for c in sandbox.dolibarr.categories.values()
                if int(c["id"]) in linked
                and not any(
                    int(o.get("fk_parent") or 0) == int(c["id"]) for o in sandbox.dolibarr.categories.values()
                )
            ]
            category = leaves[0]
            category_id = int(category["id"])
            ps_category = int(str(category["ref_ext"]).rsplit("-", 1)[1])
            by_hand = sandbox.dolibarr.create_product({"ref": "HANDMADE", "label": "Made in Dolibarr"})
            sandbox.dolibarr.link_category(category_id, "product", by_hand)

            shop.delete("categories", ps_category)
            report = await Reconciler(w.engine).run("main", "categories")
            assert report.outcome == "ok" and report.deleted == 1, report.error
            row = await w.store.record("main", "category", str(ps_category))
            assert row is not None and row.deleted
            if on_delete == "deactivate":
                assert category_id in sandbox.dolibarr.categories
                left = {
                    oid for t, oid in sandbox.dolibarr.category_links.get(category_id, {}) if t == "product"
                }
                assert left == {by_hand}, "our products leave it, the hand-made link stays"
            else:
                assert category_id not in sandbox.dolibarr.categories

            # the products' own sweep converges on the shop's links, with no write left to do
            sweep = await Sweeper(w.engine).run("main", "products")
            assert sweep.outcome == "ok" and sweep.failed == 0, sweep.error
            sandbox.dolibarr_requests.reset()
            assert (await Sweeper(w.engine).run("main", "products")).updated == 0
            assert sandbox.dolibarr_requests.writes() == 0


async def test_a_soft_deleted_customer_is_deactivated_at_once_and_deleted_by_policy_without_coming_back(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    sandbox = await make_sandbox()
    shop = sandbox.shop.data
    ids = sorted(i for i, c in shop.table("customers").items() if not values.as_int(c.get("is_guest")))
    plain, with_order = ids[:2]
    async with engine_for(sandbox, tmp_path / "s.sqlite3", shop_overrides=policy(customers="delete")) as w:
        await first_sync(w)
        thirdparty = sandbox.dolibarr.find_one(
            "thirdparties", ref_ext=ref_ext("main", "customer", with_order)
        )
        assert thirdparty is not None
        sandbox.dolibarr.create_order({"socid": thirdparty["id"], "date": 1767225600})

        shop.advance(5)
        shop.soft_delete("customers", plain)
        shop.soft_delete("customers", with_order)
        # the next pass already deactivates them (the mapper reads deleted=1)
        report = await w.engine.run_pass("main", "customers")
        assert report.updated == 2
        for cid in (plain, with_order):
            found = sandbox.dolibarr.find_one("thirdparties", ref_ext=ref_ext("main", "customer", cid))
            assert found is not None and str(found["status"]) == "0"

        report = await Reconciler(w.engine).run("main", "customers")
        assert report.outcome == "ok" and report.deleted == 2, report.error
        assert sandbox.dolibarr.find_one("thirdparties", ref_ext=ref_ext("main", "customer", plain)) is None
        # a customer with orders cannot be deleted (ErrorRecordHasChildren): deactivated instead
        kept = sandbox.dolibarr.find_one("thirdparties", ref_ext=ref_ext("main", "customer", with_order))
        assert kept is not None and str(kept["status"]) == "0"

        sandbox.dolibarr_requests.reset()
        shop.advance(5)
        shop.update("customers", plain, lastname="Edited after deletion")
        await w.engine.run_pass("main", "customers")
        sweep = await Sweeper(w.engine).run("main", "customers")
        assert sweep.created == 0 and sweep.outcome == "ok"
        assert sandbox.dolibarr_requests.writes() == 0, sandbox.dolibarr_requests.counts
        assert sandbox.dolibarr.find_one("thirdparties", ref_ext=ref_ext("main", "customer", plain)) is None


async def test_a_deleted_order_is_reported_and_never_mirrored(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = generate_shop(3, categories=4, products=12, customers=6, orders=6)
    sandbox = await make_sandbox({"main": shop})
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("orders",)) as w:
        report = await w.engine.run_pass("main", "orders")
        assert report.outcome in ("ok", "partial"), report.error
        synced = await w.store.records("main", "order")
        order_id = int(min((ps_id for ps_id, r in synced.items() if r.dolibarr_id), key=int))
        doc = synced[str(order_id)].dolibarr_id
        assert doc in sandbox.dolibarr.orders
        shop.delete("orders", order_id)
        sandbox.dolibarr_requests.reset()
        with structlog.testing.capture_logs() as events:
            report = await Reconciler(w.engine).run("main", "orders")
        assert report.outcome == "ok" and report.deleted == 1, report.error
        assert sandbox.dolibarr_requests.total() == 0, "Dolibarr is not even asked"
        assert doc in sandbox.dolibarr.orders
        gone = [e for e in events if e["event"] == "record.gone_from_shop"]
        assert gone and gone[0]["ps_id"] == str(order_id) and gone[0]["log_level"] == "warning"
        row = await w.store.record("main", "order", str(order_id))
        assert row is not None and row.deleted and row.dolibarr_id == doc
        # reported once: the next reconcile has nothing to say
        assert (await Reconciler(w.engine).run("main", "orders")).deleted == 0

    code, out, err = await ps2doli(
        "status",
        config=write_config(tmp_path, sandbox.settings_data(tmp_path / "s.sqlite3", resources=("orders",))),
    )
    assert code == 0 and "1 order(s) disappeared from the shop" in out, out + err


async def test_ps2doli_reconcile_applies_the_policies_and_status_shows_what_is_gone(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "s.sqlite3"))
    code, out, err = await ps2doli("sync", config=config)
    assert code == 0, out + err
    shop = sandbox.shop.data
    simple = min(set(shop.table("products")) - set(combinations_of(shop)))
    shop.delete("products", simple)
    code, out, err = await ps2doli("reconcile", config=config)
    assert code == 0, out + err
    line = next(line for line in out.splitlines() if " products " in line)
    assert "reconcile: retired     1" in line
    found = product(sandbox, str(simple))
    assert found is not None and found["status"] == "0"
    code, out, _ = await ps2doli("status", config=config)
    assert "main: gone from the shop: product 1" in out
    assert f"product {simple}: deactivated" in out
    code, out, _ = await ps2doli("status", "--json", config=config)
    rows = {r["resource"]: r for r in json.loads(out)}
    assert rows["products"]["gone"] == {"product": 1}
    assert rows["products"]["last_reconcile"]["retired"] == 1


async def test_a_listing_that_would_retire_most_of_the_catalog_is_refused_unless_forced(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shop = sandbox.shop.data
    async with engine_for(sandbox, tmp_path / "s.sqlite3") as w:
        await first_sync(w)
        for pid in list(shop.table("products")):
            shop.delete("products", pid)
        sandbox.dolibarr_requests.reset()
        report = await Reconciler(w.engine).run("main", "products")
        assert report.outcome == "refused" and "--force" in report.error
        assert sandbox.dolibarr_requests.writes() == 0
        assert await w.store.count_deleted("main", "product") == 0
        forced = await Reconciler(w.engine).run("main", "products", force=True)
        assert forced.outcome == "ok" and forced.deleted == await w.store.count_deleted("main", "product") > 0


async def test_a_soft_deleted_address_deactivates_its_contact(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """PrestaShop marks an address deleted (also when an address used by an order is edited: a new one is made)."""
    shop = generate_shop(4, categories=4, products=12, customers=6, orders=6)
    sandbox = await make_sandbox({"main": shop})
    async with engine_for(sandbox, tmp_path / "s.sqlite3", resources=("customers", "orders")) as w:
        await first_sync(w, ("customers",))
        await w.engine.run_pass("main", "orders")
        contacts = {
            ps_id: r for ps_id, r in (await w.store.records("main", "contact")).items() if r.dolibarr_id
        }
        assert contacts, "orders brought their addresses as contacts"
        addresses = shop.table("addresses")
        already = {
            p for p in contacts if values.as_int(addresses[int(p.removeprefix("address-"))]["deleted"])
        }
        ps_id, row = min((p, r) for p, r in contacts.items() if p not in already)
        shop.soft_delete("addresses", int(ps_id.removeprefix("address-")))
        report = await Reconciler(w.engine).run("main", "customers")
        # addresses PrestaShop had already replaced (edited after an order used them) are retired too
        assert report.outcome == "ok" and report.deleted == 1 + len(already), report.error
        contact = sandbox.dolibarr.contacts[row.dolibarr_id]
        assert str(contact.get("statut", contact.get("status"))) == "0"
        retired = await w.store.record("main", "contact", ps_id)
        assert retired is not None and retired.deleted and retired.dolibarr_id == row.dolibarr_id
