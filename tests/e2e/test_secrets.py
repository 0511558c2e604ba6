"""Secrets and safety, end to end: no API key (nor the customers' password hashes and secure keys) in a full debug
log of a demo-like run, in errors, in ``status`` output or in the state database; hostile values in sqlfilters
lookups; owner-only state files; TLS off only where asked, with a warning."""

from __future__ import annotations

import base64
import io
import json
import stat
from pathlib import Path
from urllib.parse import quote

import pytest
import structlog

from service import logs
from service.app import wired
from service.dolibarr.model import ref_ext
from service.engine.reconcile import Reconciler
from service.engine.sweeps import Sweeper
from service.prestashop import values
from service.sandbox.harness import Sandbox
from tests.e2e.test_cli import ps2doli, write_config


def forms(key: str) -> list[str]:
    """Every form a key could leak in: as is, in a Basic header, URL-encoded."""
    return [key, base64.b64encode(f"{key}:".encode()).decode(), quote(key, safe="")]


@pytest.fixture(autouse=True)
def restore_logging() -> object:
    yield None
    structlog.reset_defaults()


async def test_no_key_password_hash_or_secure_key_in_a_full_debug_log_nor_in_the_state(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shop = sandbox.shop.data
    secrets = [*forms(sandbox.shop.key), *forms(sandbox.dolibarr_key)]
    customer_secrets = [
        str(c.get(name))
        for c in shop.table("customers").values()
        for name in ("passwd", "secure_key")
        if len(str(c.get(name) or "")) >= 8
    ]
    assert customer_secrets
    # a customer that cannot be mapped (its failure keeps a summary of the record) ...
    broken = max(shop.table("customers"))
    shop.update("customers", broken, firstname="", lastname="", company="", email="")
    log_file = tmp_path / "debug.log"
    with log_file.open("w") as stream:
        # no secrets given to the redactor: what is logged must be clean by itself
        logs.configure("debug", stream=stream, json=True)
        settings = sandbox.settings(tmp_path / "state.sqlite3")
        async with wired(settings) as w:
            for resource in ("categories", "products", "customers"):
                await w.engine.run_pass("main", resource)
            # ... errors with bodies on both sides, a refused key, a sweep and a reconcile
            sandbox.dolibarr_faults.fail_next, sandbox.dolibarr_faults.fail_next_kind = 3, "error_after"
            sandbox.shop.faults.fail_next, sandbox.shop.faults.fail_next_kind = 2, "html"
            shop.advance(5)
            for cid in sorted(shop.table("customers"))[:5]:
                shop.update("customers", cid, lastname="Changed")
            await w.engine.run_pass("main", "customers")
            await Sweeper(w.engine).run("main", "customers")
            await Reconciler(w.engine).run("main", "products")
            sandbox.shop.faults.fail_next, sandbox.shop.faults.fail_next_kind = 1, "unauthorized"
            try:
                await w.engine.run_pass("main", "categories")
            except Exception as exc:  # the refused key: a configuration error, whose text is checked too
                stream.write(str(exc) + "\n")
            assert_state_files_clean(tmp_path, [*secrets, *customer_secrets], while_open=True)
    text = log_file.read_text()
    assert "prestashop.request" in text and "dolibarr_request" in text, "a debug log of real requests"
    assert "record.failed" in text
    for secret in secrets:
        assert secret not in text
    for value in customer_secrets:
        assert value not in text
    assert_state_files_clean(tmp_path, [*secrets, *customer_secrets])


def assert_state_files_clean(folder: Path, secrets: list[str], *, while_open: bool = False) -> None:
    """The database (and while it is open its WAL and shared-memory files): none of the secrets, owner-only."""
    files = sorted(folder.glob("state.sqlite3*"))
    assert len(files) >= (3 if while_open else 1), files
    for path in files:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, path.name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


async def test_status_and_failures_output_show_no_key(sandbox: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox.settings_data(tmp_path / "state.sqlite3"))
    sandbox.dolibarr_faults.down = True
    code, out, err = await ps2doli("sync", "--resource", "customers", config=config)
    assert code == 3
    sandbox.dolibarr_faults.down = False
    for command in (("status",), ("status", "--json"), ("failures", "list")):
        code, out, err = await ps2doli(*command, config=config)
        assert code == 0
        for secret in [*forms(sandbox.shop.key), *forms(sandbox.dolibarr_key)]:
            assert secret not in out + err, command


async def test_tls_verification_is_on_unless_turned_off_per_endpoint_with_a_warning(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = sandbox.settings_data(tmp_path / "state.sqlite3")
    _, out, err = await ps2doli("status", config=write_config(tmp_path, data))
    assert "verification_off" not in out + err
    data["shops"][0]["verify_tls"] = False
    _, out, err = await ps2doli("status", config=write_config(tmp_path, data))
    warnings = [json.loads(line) for line in err.splitlines() if "verification_off" in line]
    assert [(w.get("shop"), w.get("side")) for w in warnings] == [("main", None)]


async def test_hostile_values_in_sqlfilters_lookups_match_only_themselves(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """An e-mail and a reference written to break out of Dolibarr's sqlfilters quoting: the lookups must neither
    adopt the objects an ERP user made by hand nor fail."""
    data = sandbox.dolibarr
    victim = data.create_thirdparty({"name": "Victim by hand", "email": "victim@example.com"})
    hostile_ref = "VICTIM') or (t.ref:like:'%"
    by_hand_product = data.create_product({"ref": "VICTIM", "label": "By hand"})
    same_ref = data.create_product({"ref": hostile_ref, "label": "By hand, with the hostile ref"})
    shop = sandbox.shop.data
    customer = min(i for i, c in shop.table("customers").items() if not int(c.get("is_guest") or 0))
    hostile_email = "x') or (t.email:like:'%victim%"
    shop.update("customers", customer, email=hostile_email)
    with_combinations = {values.as_int(c["id_product"]) for c in shop.table("combinations").values()}
    product = min(set(shop.table("products")) - with_combinations)
    shop.update("products", product, reference=hostile_ref)

    async with wired(sandbox.settings(tmp_path / "state.sqlite3")) as w:
        for resource in ("categories", "products", "customers"):
            report = await w.engine.run_pass("main", resource)
            assert report.outcome == "ok", report.error
    assert not data.thirdparties[victim].get("ref_ext"), "the hand-made thirdparty was not adopted"
    mine = data.find_one("thirdparties", ref_ext=ref_ext("main", "customer", customer))
    assert mine is not None and mine["email"] == hostile_email and int(mine["id"]) != victim
    assert not data.products[by_hand_product].get("ref_ext") and not data.products[same_ref].get("ref_ext")
    # Dolibarr stores a ref as Product::create cleans it (quotes, spaces and colons become "_"): the hand-made
    # product holds that ref, so ours takes the next free one
    stored = "VICTIM_)_or_(t.ref_like__%"
    assert data.products[same_ref]["ref"] == stored
    created = data.find_one("products", ref_ext=ref_ext("main", "product", product))
    assert created is not None and created["ref"] == stored + "-1"


def test_the_redactor_hides_configured_secrets_and_secret_named_fields_wherever_they_are() -> None:
    """The last line of defence: whatever puts a key in an event (a message, a nested value, an exception's text),
    the configured secrets become *** and fields named like secrets are dropped."""
    stream = io.StringIO()
    logs.configure("debug", secrets=["S3CR3T-KEY-0123456789", "tiny"], stream=stream, json=True)
    log = structlog.get_logger("test")
    try:
        raise RuntimeError("auth failed for S3CR3T-KEY-0123456789")
    except RuntimeError:
        log.exception(
            "leak.attempt",
            url="http://x/api?ws_key=S3CR3T-KEY-0123456789",
            nested={"deep": ["S3CR3T-KEY-0123456789"], "passwd": "$2y$10$hash"},
            secure_key="abcdef0123456789",
            note="tiny words stay",
        )
    event = json.loads(stream.getvalue())
    text = stream.getvalue()
    assert (
        "S3CR3T-KEY-0123456789" not in text and "$2y$10$hash" not in text and "abcdef0123456789" not in text
    )
    assert event["secure_key"] == "***" and event["nested"]["passwd"] == "***"
    assert event["note"] == "tiny words stay"  # secrets under 6 characters are not searched for
