"""The command line as an admin uses it: exit statuses, status output, check, configuration errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import tomli_w

from service.sandbox.harness import Sandbox


async def ps2doli(*args: str, config: Path | None = None) -> tuple[int, str, str]:
    command = [sys.executable, "-m", "service.cli", *args]
    if config is not None:
        command += ["--config", str(config)]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ}
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(tomli_w.dumps(data))
    path.chmod(0o600)
    return path


async def test_sync_exits_0_then_status_shows_cursors_and_no_failures(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))
    code, out, err = await ps2doli("sync", config=config)
    assert code == 0, out + err
    assert "products" in out and "created" in out

    code, out, _ = await ps2doli("status", "--json", config=config)
    assert code == 0
    rows = {(r["shop"], r["resource"]): r for r in json.loads(out)}
    products = rows[("main", "products")]
    assert products["cursor"] is not None and products["failures"] == 0
    assert products["last_pass"]["outcome"] == "ok" and products["mapped"]["product"] > 0
    assert sandbox.shop.key not in out


async def test_sync_exits_3_when_dolibarr_is_down_and_2_on_a_wrong_setting(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))
    sandbox.dolibarr_faults.down = True
    code, out, err = await ps2doli("sync", "--resource", "customers", config=config)
    assert code == 3, out + err
    sandbox.dolibarr_faults.down = False

    data = sandbox.settings_data(tmp_path / "state.sqlite3")
    data["shops"][0]["page_size"] = 0
    code, _, err = await ps2doli("sync", config=write_config(tmp_path, data))
    assert code == 2
    assert "shops.main.page_size = 0" in err


async def test_check_names_what_the_key_cannot_do(sandbox: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))
    code, out, err = await ps2doli("check", config=config)
    assert code == 0, out + err
    assert "all good" in out

    data = sandbox.settings_data(tmp_path / "state.sqlite3")
    data["dolibarr"]["api_key"] = "not-the-right-key"
    code, out, err = await ps2doli("check", config=write_config(tmp_path, data))
    assert code == 2
    assert "not-the-right-key" not in out + err


async def test_a_settings_file_readable_by_others_gets_a_warning(sandbox: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))
    config.chmod(0o644)
    _, out, err = await ps2doli("status", config=config)
    assert "settings.readable_by_others" in out + err
