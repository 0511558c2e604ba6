"""The catalog as the service runs it: ``ps2doli check`` checks the long-description extrafield; a restart does
not repeat the daily images check."""

from __future__ import annotations

from pathlib import Path

from service.app import wired
from service.sandbox.dolibarr_model import DolibarrData
from service.sandbox.harness import Sandbox
from service.scheduler import Service
from tests.conftest import SandboxFactory
from tests.e2e.test_cli import ps2doli, write_config


async def test_check_says_how_to_create_a_missing_long_description_extrafield(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    dolibarr = DolibarrData()
    dolibarr.extrafields.pop("product")
    sandbox = await make_sandbox(dolibarr=dolibarr)
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))
    code, out, err = await ps2doli("check", config=config)
    assert code == 2, out + err
    assert "MISSING" in out and "'longdescription'" in out and "Complementary attributes" in out

    dolibarr.add_extrafield("product", "longdescription", "Long description", "text")
    code, out, err = await ps2doli("check", config=config)
    assert code == 0, out + err
    assert "all good" in out


async def test_a_restart_does_not_run_the_daily_images_check_again(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = sandbox.settings(
        tmp_path / "s.sqlite3",
        resources=("categories", "products", "images"),
        shop_overrides={"main": {"resources": {"images": {"interval_s": 86400}}}},
    )
    async with wired(settings) as w:
        await Service(settings, w.engine).first_round()
        first = await w.store.last_run("main", "images")
        assert first is not None and first.outcome == "ok"
    sandbox.shop.requests.reset()
    async with wired(settings) as w:  # the service restarts
        await Service(settings, w.engine).first_round()
        assert await w.store.last_run("main", "images") == first
        assert (await w.store.last_run("main", "products")).id > first.id  # type: ignore[union-attr]
    assert sandbox.shop.requests.total(contains="/images/products/") == 0


async def test_sync_from_cron_skips_the_images_check_done_lately_unless_asked(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = sandbox.settings_data(tmp_path / "state.sqlite3", resources=("categories", "products", "images"))
    data["shops"][0]["resources"]["images"]["interval_s"] = 86400
    config = write_config(tmp_path, data)
    code, out, err = await ps2doli("sync", config=config)
    assert code == 0, out + err
    sandbox.shop.requests.reset()
    code, out, err = await ps2doli("sync", config=config)
    assert code == 0, out + err
    assert "images       skipped: checked lately (--resource images forces it)" in out
    assert sandbox.shop.requests.total(contains="/images/products/") == 0
    code, out, err = await ps2doli("sync", "--resource", "images", config=config)
    assert code == 0, out + err
    assert sandbox.shop.requests.total(contains="/images/products/") > 0
