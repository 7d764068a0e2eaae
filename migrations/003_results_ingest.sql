-- Cheaper result ingest (measured in docs/benchmarks.md). At tens of
-- thousands of results per second PostgreSQL's share of the work is
-- parsing payloads and maintaining indexes; this migration removes what
-- paid for neither a query nor an invariant.
--
-- payload becomes json: it is only ever read back whole and decoded in Go
-- (no SQL looks inside it), and jsonb input built a binary tree of every
-- result on insert, about 40% of PostgreSQL's insert cost for a typical
-- identity result. json input only checks the syntax and keeps the text.
-- Casts between json and jsonb are assignment casts, so jsonb expressions
-- still insert. If a query ever needs to look inside payloads, cast to
-- jsonb there or add an expression index.
--
-- The primary key (target_id, id, ts) and results_target_ts_idx
-- (target_id, ts, id) held the same columns in a different order: the key
-- now uses the listing order (result listings filter on target and time
-- and sort by (ts, id); the catchment rebuild looks results up by target,
-- ts and id), and the second index goes. The key still leads with the
-- distribution column and contains the partition key.
--
-- Both changes rewrite existing partitions once, under an exclusive lock.
ALTER TABLE results DROP CONSTRAINT results_pkey;
DROP INDEX results_target_ts_idx;
ALTER TABLE results ALTER COLUMN payload TYPE json;
ALTER TABLE results ADD PRIMARY KEY (target_id, ts, id);
