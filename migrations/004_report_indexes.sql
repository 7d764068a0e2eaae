-- Historical catchment reads each track's latest change at or before a
-- time. Including the to_ columns makes that read an index-only scan of
-- this index (no heap visits for 10,000 probes' changes). It replaces
-- catchment_changes_probe_idx, which had the same key.
CREATE INDEX catchment_changes_latest_idx ON catchment_changes (target_id, probe_id, af, ts)
    INCLUDE (to_state, to_site, to_identity);
DROP INDEX catchment_changes_probe_idx;
