"""``python -m service.sandbox serve``: both simulators in a process of their own, their URLs and keys printed,
request counts on ``/_stats``, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from service.sandbox.serve import route_of

REPO = Path(__file__).resolve().parents[2]


def _get(url: str, key: str | None = None) -> Any:
    request = urllib.request.Request(url, headers={"DOLAPIKEY": key} if key else {})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def test_serve_prints_its_urls_counts_requests_and_stops_on_sigterm() -> None:
    cmd = [sys.executable, "-m", "service.sandbox", "serve", "--products", "20", "--customers", "5"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("READY "):
                break
        info = json.loads(printed[-1][len("READY ") :])
        text = "".join(printed)
        assert info["dolibarr_url"] in text and info["prestashop_url"] in text
        assert info["dolibarr_key"] in text and info["prestashop_key"] in text
        assert "[[shops]]" in text  # the settings.toml snippet
        assert info["generated"]["products"] == 20
        assert _get(info["dolibarr_url"] + "/status", info["dolibarr_key"])["success"]["code"] == 200
        stats = _get(info["dolibarr_stats"])
        assert stats["requests"] == 1 and stats["routes"] == {"GET /status": 1}
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    final = json.loads(next(line for line in rest.splitlines() if line.startswith("STATS "))[6:])
    assert final["dolibarr"]["requests"] == 1


def test_routes_group_ids_and_values() -> None:
    assert route_of("GET", "/api/index.php/products/12/categories") == "GET /products/{id}/categories"
    assert (
        route_of("GET", "/api/index.php/products/ref_ext/ps-main-product-1")
        == "GET /products/ref_ext/{value}"
    )
    assert (
        route_of("GET", "/api/index.php/thirdparties", "sqlfilters=x&limit=1")
        == "GET /thirdparties?sqlfilters"
    )
    assert route_of("GET", "/api/products", "display=full") == "GET /api/products"
