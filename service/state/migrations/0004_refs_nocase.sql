-- ps2doli state, version 4: product refs looked up as Dolibarr's unique key compares them.
--
-- Dolibarr's uk_product_ref ignores case (MariaDB's *_ci collation): REF-1 is taken once ref-1 exists. A ref held
-- by another record of ours in another case was sent anyway, refused (ErrorProductAlreadyExists) and the next
-- number tried: two requests per number for each product whose shop reference differs from another only by case.
-- SQLite's NOCASE folds ASCII letters only; an accent variant is still found by Dolibarr's refusal, as before.
DROP INDEX records_by_ref;
CREATE INDEX records_by_ref ON records (kind, ref COLLATE NOCASE);
