-- Issue 17: identity sources beyond DNS CHAOS.
--
-- Rules may name the new sources (http_header:<name>, http_body, ntp_refid,
-- egress_addr, trace_hop) and match address prefixes.
ALTER TABLE site_rules DROP CONSTRAINT site_rules_source_check;
ALTER TABLE site_rules ADD CONSTRAINT site_rules_source_check CHECK (
    source IN ('hostname_bind', 'id_server', 'nsid', 'any', 'http_body', 'ntp_refid', 'egress_addr', 'trace_hop')
    OR source ~ '^http_header:[a-z0-9][a-z0-9-]{0,63}$');
ALTER TABLE site_rules DROP CONSTRAINT site_rules_match_check;
ALTER TABLE site_rules ADD CONSTRAINT site_rules_match_check CHECK (match IN ('regex', 'exact', 'prefix'));

-- Which evidence named a result's site ("hostname_bind", "http_header:cf-ray",
-- "trace_hop", ...). Nullable without a default: adding it rewrites nothing.
ALTER TABLE results ADD COLUMN id_source text;

-- The source that named a track's current site, and when that source (or a
-- stronger one) last confirmed it: a weaker source does not override it
-- while it is fresh (catchment.SourceHold).
ALTER TABLE catchment_latest ADD COLUMN source text;
ALTER TABLE catchment_latest ADD COLUMN source_at timestamptz;
