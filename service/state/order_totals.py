"""The ``order_totals`` table (migration 0002): one row per order pushed, saying how its totals came out.

``ps2doli report totals`` lists the rows whose outcome is not ``exact``: a rounding line made up a residual
(``adjusted``), the residual was above ``orders.total_tolerance`` and the order was refused (``refused``), or
Dolibarr's total read back after the push is not the shop's (``mismatch``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from service.state.store import StateStore


@dataclass(frozen=True)
class TotalsRow:
    shop: str
    order_id: int
    reference: str
    currency: str
    shop_total: Decimal
    lines_total: Decimal
    dolibarr_total: Decimal | None
    delta: Decimal
    outcome: str
    note: str
    checked_at: float


async def save(
    store: StateStore,
    shop: str,
    order_id: int,
    *,
    reference: str,
    currency: str,
    shop_total: Decimal,
    lines_total: Decimal,
    dolibarr_total: Decimal | None,
    delta: Decimal,
    outcome: str,
    note: str = "",
) -> None:
    async with store.transaction() as db:
        await db.execute(
            "INSERT INTO order_totals(shop, order_id, reference, currency, shop_total, lines_total, "
            "dolibarr_total, delta, outcome, note, checked_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(shop, order_id) DO UPDATE SET reference=excluded.reference, "
            "currency=excluded.currency, shop_total=excluded.shop_total, lines_total=excluded.lines_total, "
            "dolibarr_total=excluded.dolibarr_total, delta=excluded.delta, outcome=excluded.outcome, "
            "note=excluded.note, checked_at=excluded.checked_at",
            (
                shop,
                order_id,
                reference,
                currency,
                str(shop_total),
                str(lines_total),
                "" if dolibarr_total is None else str(dolibarr_total),
                str(delta),
                outcome,
                note[:2000],
                time.time(),
            ),
        )


async def rows(store: StateStore, shop: str | None = None, *, differing_only: bool = True) -> list[TotalsRow]:
    sql = "SELECT * FROM order_totals WHERE 1=1"
    params: list[object] = []
    if shop is not None:
        sql += " AND shop=?"
        params.append(shop)
    if differing_only:
        sql += (
            " AND (outcome != 'exact' OR note != '')"  # a note: what the shop recorded but Dolibarr could not
        )
    sql += " ORDER BY shop, order_id"
    async with store.transaction() as db, db.execute(sql, params) as cursor:
        found = list(await cursor.fetchall())
    return [
        TotalsRow(
            shop=r["shop"],
            order_id=int(r["order_id"]),
            reference=r["reference"],
            currency=r["currency"],
            shop_total=Decimal(r["shop_total"]),
            lines_total=Decimal(r["lines_total"]),
            dolibarr_total=Decimal(r["dolibarr_total"]) if r["dolibarr_total"] else None,
            delta=Decimal(r["delta"]),
            outcome=r["outcome"],
            note=r["note"],
            checked_at=float(r["checked_at"]),
        )
        for r in found
    ]
