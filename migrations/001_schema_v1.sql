-- anycatch schema v1.
--
-- Conventions kept for a later move to Citus (see docs/scaling.md): the big
-- tables (results, catchment_latest, catchment_changes) are keyed by
-- target_id first, which is the distribution column; every primary key of a
-- partitioned table contains the partition key (ts); there are no foreign
-- keys into or out of the big tables.

CREATE TABLE enrollment_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    token_hash  bytea NOT NULL UNIQUE,          -- sha256 of the secret token
    max_uses    integer CHECK (max_uses IS NULL OR max_uses > 0), -- NULL = unlimited
    uses        integer NOT NULL DEFAULT 0,
    expires_at  timestamptz,                    -- NULL = never
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE probes (
    id             text PRIMARY KEY,            -- 'p-…' for ours, 'atlas:<prb_id>' for imported
    origin         text NOT NULL DEFAULT 'anycatch' CHECK (origin IN ('anycatch', 'atlas')),
    public_key     bytea,                       -- ed25519 key the probe signs with (NULL for external probes)
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    token_id       bigint REFERENCES enrollment_tokens (id) ON DELETE SET NULL,
    version        text NOT NULL DEFAULT '',
    capabilities   jsonb NOT NULL DEFAULT '{}',
    src_addr       inet,                        -- address last seen from
    prefix         cidr,                        -- announced prefix of src_addr (GeoIP/ASN db)
    asn            bigint,
    as_name        text,
    country        text,                        -- ISO 3166-1 alpha-2
    continent      text,                        -- two-letter continent code
    city           text,
    declared_lat   double precision,            -- volunteer-declared; wins over GeoIP
    declared_lon   double precision,
    geo_lat        double precision,            -- GeoIP
    geo_lon        double precision,
    spool_depth    integer NOT NULL DEFAULT 0,
    dropped        bigint NOT NULL DEFAULT 0,
    first_seen     timestamptz NOT NULL DEFAULT now(),
    last_seen      timestamptz
);
CREATE INDEX probes_src_addr_idx ON probes (src_addr);
CREATE INDEX probes_asn_idx ON probes (asn);
CREATE INDEX probes_country_idx ON probes (country);

CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL DEFAULT '',
    key_prefix    text NOT NULL UNIQUE,         -- first characters of the key, for lookup and display
    key_hash      bytea NOT NULL,               -- sha256 of the whole key
    scope         text NOT NULL CHECK (scope IN ('read', 'admin')),
    rate_per_min  integer,                      -- NULL = server default
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- A target is one anycast service: its addresses and what to measure.
CREATE TABLE targets (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    description     text NOT NULL DEFAULT '',
    addr4           inet,
    addr6           inet,
    interval_sec    integer NOT NULL DEFAULT 300 CHECK (interval_sec BETWEEN 10 AND 86400),
    specs           jsonb NOT NULL DEFAULT '[]', -- array of measure.Spec
    identity_order  text[] NOT NULL DEFAULT '{hostname_bind,id_server,nsid}',
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (addr4 IS NOT NULL OR addr6 IS NOT NULL)
);

CREATE TABLE sites (
    target_id   integer NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    code        text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9._-]{0,31}$'),
    name        text NOT NULL DEFAULT '',
    lat         double precision,
    lon         double precision,
    unicast4    inet,
    unicast6    inet,
    PRIMARY KEY (target_id, code)
);

-- Ordered identity -> site rules per target (lowest position first).
CREATE TABLE site_rules (
    target_id   integer NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    source      text NOT NULL CHECK (source IN ('hostname_bind', 'id_server', 'nsid', 'any')),
    match       text NOT NULL CHECK (match IN ('regex', 'exact')),
    pattern     text NOT NULL,                  -- regex with a (?P<site>…) group, or the exact identity
    site        text NOT NULL DEFAULT '',       -- site code for exact rules (or a fixed code for a regex)
    note        text NOT NULL DEFAULT '',
    PRIMARY KEY (target_id, position)
);

-- Results, partitioned by day on ts. Fields catchment and latency queries
-- need are real columns; the full result is payload (without the raw DNS
-- bytes, which live in raw, one element per DNS exchange).
--
-- payload is json, not jsonb: it is only ever read back whole and decoded
-- in Go, and jsonb input builds a binary tree of every result on insert
-- (about 40% of PostgreSQL's insert cost for an identity result, see
-- docs/benchmarks.md); json input only checks the syntax. Cast to jsonb in
-- a query that ever needs to look inside. The primary key, in (target_id,
-- ts, id) order, is also the index result listings and their keyset
-- cursors use, so no second index is maintained at ingest.
CREATE TABLE results (
    target_id   integer NOT NULL,
    ts          timestamptz NOT NULL,
    id          uuid NOT NULL,                  -- probe-generated UUIDv7
    probe_id    text NOT NULL,
    kind        text NOT NULL,
    msm         text NOT NULL,
    af          smallint NOT NULL,
    dst         inet NOT NULL,
    rtt_ms      real,                           -- representative RTT, NULL when none
    loss        real,                           -- ping loss fraction
    identity    text,                           -- identity string used for site identification
    site        text,                           -- identified site code; NULL = unidentified or unreachable
    error       text,
    payload     json NOT NULL,
    raw         bytea[],
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_id, ts, id)
) PARTITION BY RANGE (ts);
CREATE INDEX results_probe_ts_idx ON results (probe_id, ts, id);

-- The latest observed site per (target, probe, address family).
CREATE TABLE catchment_latest (
    target_id    integer NOT NULL,
    probe_id     text NOT NULL,
    af           smallint NOT NULL,
    state        text NOT NULL CHECK (state IN ('site', 'unidentified', 'unreachable')),
    site         text,
    identity     text,
    rtt_ms       real,
    observed_at  timestamptz NOT NULL,
    since        timestamptz NOT NULL,          -- when this site was first seen in the current run
    result_id    uuid NOT NULL,
    PRIMARY KEY (target_id, probe_id, af)
);

-- One row each time a probe's observed site for a target changes (the first
-- observation included, with from_state NULL).
CREATE TABLE catchment_changes (
    target_id      integer NOT NULL,
    ts             timestamptz NOT NULL,
    probe_id       text NOT NULL,
    af             smallint NOT NULL,
    from_state     text,
    from_site      text,
    from_identity  text,
    from_rtt_ms    real,
    from_ts        timestamptz,                 -- last observation of the previous state: the change happened in (from_ts, ts]
    to_state       text NOT NULL,
    to_site        text,
    to_identity    text,
    to_rtt_ms      real,
    result_id      uuid NOT NULL,
    PRIMARY KEY (target_id, ts, probe_id, af)
);
-- The catchment at an earlier time is each track's latest change at or
-- before it: an index-only backward scan of this index.
CREATE INDEX catchment_changes_latest_idx ON catchment_changes (target_id, probe_id, af, ts)
    INCLUDE (to_state, to_site, to_identity);
