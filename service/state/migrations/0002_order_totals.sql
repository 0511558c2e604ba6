-- ps2doli state, version 2: how each order's totals came out in Dolibarr (ps2doli report totals).

CREATE TABLE order_totals (
    shop            TEXT NOT NULL,
    order_id        INTEGER NOT NULL,
    reference       TEXT NOT NULL DEFAULT '',
    currency        TEXT NOT NULL DEFAULT '',
    shop_total      TEXT NOT NULL,              -- the shop's total_paid_tax_incl (decimal text)
    lines_total     TEXT NOT NULL,              -- what Dolibarr computes from the lines before a rounding line
    dolibarr_total  TEXT NOT NULL DEFAULT '',   -- total_ttc (multicurrency_total_ttc) read back after the push
    delta           TEXT NOT NULL DEFAULT '0',  -- shop_total - lines_total: the rounding line, when there is one
    outcome         TEXT NOT NULL,              -- exact | adjusted | refused | mismatch
    note            TEXT NOT NULL DEFAULT '',
    checked_at      REAL NOT NULL,
    PRIMARY KEY (shop, order_id)
);
CREATE INDEX order_totals_outcome ON order_totals (shop, outcome);
