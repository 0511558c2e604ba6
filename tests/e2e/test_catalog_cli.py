"""``ps2doli check`` also checks the catalog's setup in Dolibarr: the long-description extrafield."""

from __future__ import annotations

from pathlib import Path

from service.sandbox.dolibarr_model import DolibarrData
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
