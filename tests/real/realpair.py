"""The real Dolibarr 20.0.2 and PrestaShop 1.7.8.8 of ``../shared/realpair`` as the tests drive them.

The kit's scripts do the server work (``up.sh``, ``reset.sh``, ``writes.sh``); this module runs them, writes a
``settings.toml`` for ps2doli pointing at the pair, and runs ``ps2doli`` itself as a user would: a subprocess of
the installed console script. Judging is done through the servers' own HTTP APIs (``apis.py``) and Dolibarr's
access log (``writes.sh``), never through ps2doli's state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT.parent / "shared" / "realpair"
PS2DOLI = Path(sys.executable).parent / "ps2doli"


def kit_present() -> bool:
    return (KIT / "up.sh").is_file()


def home() -> Path:
    return Path(os.environ.get("REALPAIR_HOME", "/srv/realpair"))


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def up() -> dict[str, str]:
    """``up.sh``: builds the pair the first time (minutes, apt included), starts it later (about a second)."""
    done = subprocess.run(
        ["bash", str(KIT / "up.sh")], capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"realpair up.sh failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return read_env(home() / "env")


@dataclass
class Pair:
    env: dict[str, str]
    snapshot: str = ""
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    @property
    def doli_url(self) -> str:
        return self.env["REALPAIR_DOLI_URL"]

    @property
    def doli_api(self) -> str:
        return f"{self.doli_url}/api/index.php"

    @property
    def doli_key(self) -> str:
        return self.env["REALPAIR_DOLI_KEY"]

    @property
    def ps_url(self) -> str:
        return self.env["REALPAIR_PS_URL"]

    @property
    def ps_key(self) -> str:
        return self.env["REALPAIR_PS_KEY"]

    @property
    def warehouse_id(self) -> int:
        return int(self.env["REALPAIR_WAREHOUSE_ID"])

    @property
    def bank_id(self) -> int:
        return int(self.env["REALPAIR_BANK_ID"])

    def _script(self, name: str, *args: str) -> str:
        done = subprocess.run(
            ["bash", str(KIT / name), *args],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={**os.environ, "REALPAIR_HOME": self.env["REALPAIR_HOME"]},
        )
        if done.returncode != 0:
            raise RuntimeError(f"realpair {name} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def reset(self, snapshot: str = "clean") -> None:
        """Both servers back to their snapshots (Dolibarr ``clean`` or ``clean-mc``, the seeded shop), and
        Dolibarr's product files removed (``documents/`` is not part of the snapshots)."""
        self._script("reset.sh", snapshot)
        for folder in ("produit", "product"):
            shutil.rmtree(Path(self.env["REALPAIR_HOME"]) / "dolibarr" / "documents" / folder, True)
        self.snapshot = snapshot

    def mark_writes(self) -> None:
        self._script("writes.sh", "mark")

    def writes(self) -> list[str]:
        """The REST writes Dolibarr received since the mark: ``METHOD /api/index.php/... STATUS`` lines."""
        return [line for line in self._script("writes.sh", "list").splitlines() if line.strip()]

    def settings(self, folder: Path, **overrides: Any) -> Path:
        """A settings.toml for ps2doli against this pair, in ``folder`` (its state file beside it).
        ``overrides``: ``dolibarr={...}``, ``shop={...}``, ``catalog={...}``, ``orders={...}``,
        ``resources={...}`` merged into the defaults."""
        shop: dict[str, Any] = {
            "name": "main",
            "url": self.ps_url,
            "api_key": self.ps_key,
            "timezone": self.env.get("REALPAIR_PS_TIMEZONE", "Europe/Paris"),
            "catalog_only": True,
            **overrides.get("shop", {}),
        }
        shop["catalog"] = {"warehouse_id": self.warehouse_id, **overrides.get("catalog", {})}
        shop["orders"] = {"bank_account_id": self.bank_id, **overrides.get("orders", {})}
        if "resources" in overrides:
            shop["resources"] = overrides["resources"]
        document = {
            "state_path": str(folder / "state.sqlite3"),
            "log_level": overrides.get("log_level", "info"),
            "dolibarr": {
                "url": self.doli_api,
                "api_key": self.doli_key,
                "max_concurrency": 4,
                **overrides.get("dolibarr", {}),
            },
            "shops": [shop],
        }
        path = folder / "settings.toml"
        path.write_text(tomli_w.dumps(document))
        path.chmod(0o600)
        return path

    def ps2doli(self, settings: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``ps2doli <args> --config settings``, as a user runs it; the log goes to a file beside settings."""
        command = [str(PS2DOLI), *args, "--config", str(settings)]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=settings.parent
        )
        log = settings.parent / f"ps2doli-{len(self.runs) + 1}-{args[0]}.log"
        log.write_text(f"$ {' '.join(command)}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}")
        self.runs.append(done)
        return done
