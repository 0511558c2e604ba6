-- ps2doli state, version 1: cursors, synced records (mapping + hash), failures, runs.

CREATE TABLE cursors (
    shop        TEXT NOT NULL,
    resource    TEXT NOT NULL,
    -- keyset (date_upd, id) as the shop's local-time text; for id watermarks the date is ''
    position    TEXT NOT NULL,
    last_id     INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (shop, resource)
);

-- One row per PrestaShop record ps2doli has pushed: where it went and the hash of what was sent.
CREATE TABLE records (
    shop         TEXT NOT NULL,
    kind         TEXT NOT NULL,    -- category | product | thirdparty | contact | order | invoice | payment | stock | file
    ps_id        TEXT NOT NULL,    -- "12", combinations "12-3", files "12/4"
    dolibarr_id  INTEGER,
    ref_ext      TEXT NOT NULL DEFAULT '',
    ref          TEXT NOT NULL DEFAULT '',   -- the Dolibarr ref handed out (stable across syncs)
    hash         TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT '',   -- e.g. a document's last pushed status, a stock level
    deleted      INTEGER NOT NULL DEFAULT 0, -- gone from the shop, policy applied
    synced_at    REAL NOT NULL,
    PRIMARY KEY (shop, kind, ps_id)
);
CREATE INDEX records_by_ref ON records (kind, ref);
CREATE INDEX records_by_ref_ext ON records (kind, ref_ext);
CREATE INDEX records_by_dolibarr ON records (kind, dolibarr_id);

CREATE TABLE failures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    shop        TEXT NOT NULL,
    resource    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    ps_id       TEXT NOT NULL,
    error_class TEXT NOT NULL,
    message     TEXT NOT NULL,
    payload     TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 1,
    first_at    REAL NOT NULL,
    last_at     REAL NOT NULL,
    next_at     REAL NOT NULL,
    UNIQUE (shop, kind, ps_id)
);
CREATE INDEX failures_due ON failures (next_at);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    shop        TEXT NOT NULL,
    resource    TEXT NOT NULL,
    mode        TEXT NOT NULL DEFAULT 'pass',  -- pass | sweep | reconcile | backfill | retry
    started_at  REAL NOT NULL,
    finished_at REAL,
    outcome     TEXT NOT NULL DEFAULT 'running', -- running | ok | partial | error
    created     INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_latest ON runs (shop, resource, id);
