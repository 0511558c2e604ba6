"""What ps2doli made in the real Dolibarr, read through Dolibarr's REST API only: every object carrying a
``ps-`` ref_ext (products, categories, thirdparties, contacts, orders, invoices and credit notes, payments), how
many times each ref_ext is there, and the figures an accountant checks (statuses, totals, paid amounts).

Two ledgers compare: a clean run's and a run through crashes or outages must hold the same objects, once each,
with the same figures (``differences``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from tests.real.apis import Dolibarr
from tests.real.faults import created_by_pass, failures
from tests.real.realpair import Pair
from tests.real.views import bounded

KINDS = ("products", "categories", "thirdparties", "contacts", "orders", "invoices", "payments")
CENT = Decimal("0.01")


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


@dataclass
class Ledger:
    refs: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> ref_ext -> how many objects hold it
    orders: dict[str, tuple[Any, ...]] = field(
        default_factory=dict
    )  # ref_ext -> (status, total_ttc, mc total)
    invoices: dict[str, tuple[Any, ...]] = field(
        default_factory=dict
    )  # ref_ext -> (type, status, paid, totals)
    # payment ref_ext -> {(invoice ref_ext, amount)}: where each payment landed
    payments: dict[str, set[tuple[str, Decimal]]] = field(default_factory=dict)
    products: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # ref_ext -> (label, price, status)

    def count(self, kind: str) -> int:
        return len(self.refs.get(kind, Counter()))

    def counts(self) -> dict[str, int]:
        return {kind: self.count(kind) for kind in KINDS}

    def duplicates(self) -> dict[str, list[str]]:
        """ref_ext held by two objects or more, by kind (must be empty: nothing twice)."""
        out = {kind: sorted(k for k, n in refs.items() if n > 1) for kind, refs in self.refs.items()}
        return {kind: keys for kind, keys in out.items() if keys}

    def total_duplicates(self) -> int:
        return sum(len(keys) for keys in self.duplicates().values())


async def read_ledger(doli: Dolibarr) -> Ledger:
    ledger = Ledger()

    def mine(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if str(r.get("ref_ext") or "").startswith("ps-")]

    products = mine(await doli.all("/products"))
    categories = mine(await doli.all("/categories", type="product"))
    thirdparties = mine(await doli.all("/thirdparties"))
    contacts = mine(await doli.all("/contacts"))
    orders = mine(await doli.all("/orders"))
    invoices = mine(await doli.all("/invoices"))
    for kind, rows in (
        ("products", products),
        ("categories", categories),
        ("thirdparties", thirdparties),
        ("contacts", contacts),
        ("orders", orders),
        ("invoices", invoices),
    ):
        ledger.refs[kind] = Counter(str(r["ref_ext"]) for r in rows)
    for row in products:
        ledger.products[str(row["ref_ext"])] = (row["label"], money(row["price"]), str(row["status"]))
    for row in orders:
        ledger.orders[str(row["ref_ext"])] = (
            str(row["statut"]),
            money(row["total_ttc"]),
            money(row.get("multicurrency_total_ttc")),
        )
    for row in invoices:
        ledger.invoices[str(row["ref_ext"])] = (
            str(row["type"]),
            str(row["statut"]),
            str(row["paye"]),
            money(row["total_ttc"]),
            money(row.get("multicurrency_total_ttc")),
        )
    # a payment distributed over two invoices is listed under each, with one Dolibarr ref: count the refs
    payment_refs: dict[str, set[str]] = {}

    async def payments_of(invoice: dict[str, Any]) -> None:
        rows = await doli.get(f"/invoices/{invoice['id']}/payments") or []
        for row in rows:
            key = str(row.get("ref_ext") or row.get("num") or "")
            if not key.startswith("ps-"):
                continue
            payment_refs.setdefault(key, set()).add(str(row["ref"]))
            ledger.payments.setdefault(key, set()).add((str(invoice["ref_ext"]), money(row["amount"])))

    await bounded([payments_of(i) for i in invoices], limit=6)
    ledger.refs["payments"] = Counter({key: len(refs) for key, refs in payment_refs.items()})
    return ledger


def ledger_of(pair: Pair) -> Ledger:
    async def work() -> Ledger:
        async with aiohttp.ClientSession() as session:
            return await read_ledger(Dolibarr(pair.doli_api, pair.doli_key, session))

    return asyncio.run(work())


def differences(
    reference: Ledger,
    got: Ledger,
    *,
    changed_products: frozenset[str] = frozenset(),
    new_orders: frozenset[str] = frozenset(),
) -> list[str]:
    """What ``got`` holds otherwise than ``reference`` (a clean run's): objects missing or unexpected, by kind,
    and the figures of orders, invoices, payments and products. ``changed_products`` (ref_ext) were edited in the
    shop meanwhile (their values are not compared); ``new_orders`` are the ids of orders placed meanwhile (their
    order, invoice and payments may be there on top)."""
    problems: list[str] = []

    def extra_allowed(kind: str, key: str) -> bool:
        if kind in ("orders", "invoices"):
            return key.rsplit("-", 1)[-1] in new_orders
        if kind == "payments":
            return key.rsplit("-", 1)[-1] in new_orders
        return False

    for kind in KINDS:
        want = set(reference.refs.get(kind, Counter()))
        have = set(got.refs.get(kind, Counter()))
        missing = sorted(want - have)
        unexpected = sorted(k for k in have - want if not extra_allowed(kind, k))
        if missing:
            problems.append(f"{kind}: {len(missing)} missing {missing[:10]}")
        if unexpected:
            problems.append(f"{kind}: {len(unexpected)} unexpected {unexpected[:10]}")
    for key, figures in reference.orders.items():
        if key in got.orders and got.orders[key] != figures:
            problems.append(f"order {key}: {got.orders[key]} instead of {figures}")
    for key, figures in reference.invoices.items():
        if key in got.invoices and got.invoices[key] != figures:
            problems.append(f"invoice {key}: {got.invoices[key]} instead of {figures}")
    for key, landed in reference.payments.items():
        if key in got.payments and got.payments[key] != landed:
            problems.append(f"payment {key}: {sorted(got.payments[key])} instead of {sorted(landed)}")
    for key, figures in reference.products.items():
        if key in got.products and key not in changed_products and got.products[key] != figures:
            problems.append(f"product {key}: {got.products[key]} instead of {figures}")
    return problems


def full_settings(pair: Pair, folder: Path, **overrides: Any) -> Path:
    """settings.toml for the whole seeded shop: catalog (flat combinations), customers, orders with invoices and
    payments into the pair's bank account."""
    return pair.settings(
        folder,
        shop={"catalog_only": False, **overrides.pop("shop", {})},
        orders={"bank_account_id": pair.bank_id, **overrides.pop("orders", {})},
        **overrides,
    )


@dataclass
class CleanRun:
    """One uninterrupted ``ps2doli sync`` of the seeded shop into ``clean-mc``: what the others are judged by."""

    settings: Path
    seconds: float
    exit_code: int
    ledger: Ledger
    failures: list[str]
    created: dict[str, int]  # what each resource's pass created


def clean_run(pair: Pair, folder: Path) -> CleanRun:
    pair.reset("clean-mc")
    settings = full_settings(pair, folder)
    t0 = time.monotonic()
    done = pair.ps2doli(settings, "sync")
    seconds = time.monotonic() - t0
    created = created_by_pass(done.stdout + done.stderr)
    return CleanRun(settings, seconds, done.returncode, ledger_of(pair), failures(pair, settings), created)
