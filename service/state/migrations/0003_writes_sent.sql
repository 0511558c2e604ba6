-- ps2doli state, version 3: creates sent to Dolibarr whose outcome is not committed yet.
--
-- A row is written (and committed) just before a create or a payment is sent, and deleted in the transaction that
-- commits its record. A row left at start-up means a process stopped (SIGKILL, OOM, power cut) while that write
-- was in flight: Dolibarr may still be running it, so the next process looks for it by ref_ext, and again until
-- the write must be over (dolibarr.timeout_s after sent_at), before it writes it again (ObjectWriter.landed_earlier).
CREATE TABLE writes_sent (
    shop     TEXT NOT NULL,
    ref_ext  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    sent_at  REAL NOT NULL,   -- time.time() when it was sent
    PRIMARY KEY (shop, ref_ext)
);
