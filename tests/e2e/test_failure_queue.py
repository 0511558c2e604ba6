"""The failure queue as an admin meets it, through ``ps2doli`` in a subprocess on a settings file pointing at the
simulators: a record Dolibarr refuses is listed, holds nothing back, and ``failures retry`` pushes it once the
cause is fixed; a record whose dependency failed waits for it instead of being pushed broken."""

from __future__ import annotations

import json
from pathlib import Path

from service.dolibarr.model import ref_ext
from service.prestashop import values
from service.sandbox.shop_generator import generate_shop
from service.sandbox.shop_model import ShopData
from tests.conftest import SandboxFactory
from tests.e2e.test_cli import ps2doli, write_config

BARCODE = "3760000000017"


def simple_products(shop: ShopData) -> list[int]:
    with_combinations = {values.as_int(c["id_product"]) for c in shop.table("combinations").values()}
    return sorted(set(shop.table("products")) - with_combinations)


async def test_a_refused_record_is_listed_holds_nothing_back_and_is_pushed_by_retry_once_fixed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = generate_shop(31, categories=6, products=25, customers=8)
    sandbox = await make_sandbox({"main": shop})
    sandbox.dolibarr.barcode_module = True  # Dolibarr refuses a barcode another product holds
    first, second = simple_products(shop)[:2]
    for pid in simple_products(shop):
        shop.update("products", pid, ean13="")
    shop.update("products", first, ean13=BARCODE)
    shop.update("products", second, ean13=BARCODE)  # saved later: pushed after the first one
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))

    code, out, err = await ps2doli("sync", config=config)
    assert code == 1, out + err  # 1: some records failed and were recorded
    refused = ref_ext("main", "product", second)
    assert sandbox.dolibarr.find_one("products", ref_ext=ref_ext("main", "product", first)) is not None
    assert sandbox.dolibarr.find_one("products", ref_ext=refused) is None
    expected = {ref_ext("main", "product", p) for p in simple_products(shop)} - {refused}
    assert expected <= {str(p.get("ref_ext")) for p in sandbox.dolibarr.products.values()}, (
        "the others went on"
    )

    code, out, _ = await ps2doli("failures", "list", config=config)
    assert code == 0
    line = next(line for line in out.splitlines() if f"product {second} " in line)
    assert "products" in line and "attempts 1" in line
    assert "ErrorBarCodeAlreadyUsed" in out and f"shop=main resource=products id={second}" in out

    code, out, _ = await ps2doli("status", "--json", config=config)
    rows = {r["resource"]: r for r in json.loads(out)}
    # the product, and its images (a side item of the product) waiting for it
    assert rows["products"]["failures"] >= 1 and rows["products"]["last_pass"]["outcome"] == "partial"
    position, last_id = rows["products"]["cursor"]
    last = max(shop.table("products").values(), key=lambda p: (p["date_upd"], p["id"]))
    assert (position, last_id) == (last["date_upd"], last["id"]), "the cursor moved past the refused record"
    code, out, _ = await ps2doli("status", config=config)
    assert "record(s) wait in the failure queue: see 'ps2doli failures list'" in out

    # the admin frees the barcode in Dolibarr; retrying now pushes the record, and only it
    holder = sandbox.dolibarr.find_one("products", ref_ext=ref_ext("main", "product", first))
    assert holder is not None
    sandbox.dolibarr.products.update_obj(int(holder["id"]), barcode=None)
    sandbox.dolibarr_requests.reset()
    code, out, err = await ps2doli("failures", "retry", "--all", config=config)
    assert code == 0, out + err
    assert "0 failure(s) left" in out
    pushed = sandbox.dolibarr.find_one("products", ref_ext=refused)
    assert pushed is not None and pushed["barcode"] == BARCODE
    assert sandbox.dolibarr_requests.total("POST", "/products") == 1
    code, out, _ = await ps2doli("failures", "list", config=config)
    assert "no failures" in out


async def test_a_record_whose_dependency_failed_waits_for_it_and_follows_it_on_retry(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    shop = generate_shop(32, categories=6, products=30, customers=4)
    sandbox = await make_sandbox({"main": shop})
    # a category without a name in the shop's language cannot be mapped; its products must wait for it
    in_category: dict[int, list[int]] = {}
    for pid, product in shop.table("products").items():
        for cid in product.get("_categories", []):
            if cid not in (1, 2):
                in_category.setdefault(cid, []).append(pid)
    broken = max(in_category, key=lambda c: len(in_category[c]))
    waiting = set(in_category[broken])
    shop.set_name("categories", broken, "")
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))

    code, out, err = await ps2doli("sync", config=config)
    assert code == 1, out + err
    category = ref_ext("main", "category", broken)
    assert sandbox.dolibarr.find_one("categories", ref_ext=category) is None
    synced = {
        str(p.get("ref_ext")).removeprefix("ps-main-product-") for p in sandbox.dolibarr.products.values()
    }
    pushed = {int(ps_id.split("-")[0]) for ps_id in synced if ps_id.split("-")[0].isdigit()}
    assert not pushed & waiting, "no product is pushed without its category"
    assert pushed, "the products of other categories went on"

    code, out, _ = await ps2doli("failures", "list", config=config)
    assert f"category {broken} " in out and "field=name" in out
    assert f"waits for {category}" in out
    shop_requests = sandbox.shop.requests.total("GET", "/api/categories")

    shop.set_name("categories", broken, "Named at last")
    code, out, err = await ps2doli("failures", "retry", "--all", config=config)
    assert code == 0, out + err
    found = sandbox.dolibarr.find_one("categories", ref_ext=category)
    assert found is not None and found["label"] == "Named at last"
    linked = {oid for t, oid in sandbox.dolibarr.category_links.get(int(found["id"]), {}) if t == "product"}
    assert len(linked) >= len(waiting)
    code, out, _ = await ps2doli("failures", "list", config=config)
    assert "no failures" in out
    assert shop_requests > 0


async def test_a_refused_record_read_again_by_a_sweep_waits_for_its_retry_instead_of_being_sent_again(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # regression (real pair): a record Dolibarr refuses for good was POSTed again by every pass that read it
    shop = generate_shop(32, categories=4, products=12, customers=2)
    sandbox = await make_sandbox({"main": shop})
    sandbox.dolibarr.barcode_module = True
    first, second = simple_products(shop)[:2]
    for pid in simple_products(shop):
        shop.update("products", pid, ean13="")
    shop.update("products", first, ean13=BARCODE)
    shop.update("products", second, ean13=BARCODE)
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))
    code, out, err = await ps2doli("sync", config=config)
    assert code == 1, out + err

    sandbox.dolibarr_requests.reset()
    code, out, err = await ps2doli("sweep", "--resource", "products", config=config)
    assert sandbox.dolibarr_requests.total("POST", "/products") == 0, "sent again before its retry was due"
    code, out, _ = await ps2doli("failures", "list", config=config)
    assert "attempts 1" in out  # no new attempt was made
