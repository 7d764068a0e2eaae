-- Service-side catchment census (issue 19, docs/census.md): anycatch-site
-- agents at the anycast sites send ICMP echo requests from the anycast
-- address to a hitlist and report which site received each reply.

-- Census is opt-in per target, by an admin, with a send-rate ceiling.
CREATE TABLE census_targets (
    target_id   integer PRIMARY KEY REFERENCES targets (id) ON DELETE CASCADE,
    enabled     boolean NOT NULL DEFAULT false,
    max_pps     integer NOT NULL DEFAULT 100 CHECK (max_pps BETWEEN 1 AND 10000),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Site agents are probes rows with origin 'site' (same key, same signed
-- requests), bound here to one target and site code. An admin issues a
-- one-time token per (target, site); issuing a new one replaces the
-- binding (and the agent enrolled with the old one stops being a site).
ALTER TABLE probes DROP CONSTRAINT probes_origin_check;
ALTER TABLE probes ADD CONSTRAINT probes_origin_check CHECK (origin IN ('anycatch', 'atlas', 'site'));

CREATE TABLE census_agents (
    target_id    integer NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    site         text NOT NULL CHECK (site ~ '^[a-z0-9][a-z0-9._-]{0,31}$'),
    token_hash   bytea NOT NULL UNIQUE,      -- sha256 of the one-time site token
    probe_id     text UNIQUE,                -- NULL until enrolled
    created_at   timestamptz NOT NULL DEFAULT now(),
    enrolled_at  timestamptz,
    PRIMARY KEY (target_id, site)
);

CREATE TABLE census_rounds (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id   integer NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    sender      text NOT NULL,
    hitlist     text NOT NULL CHECK (hitlist ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    rate_pps    integer NOT NULL CHECK (rate_pps BETWEEN 1 AND 10000),
    prefix4     smallint NOT NULL DEFAULT 24 CHECK (prefix4 BETWEEN 8 AND 32),
    prefix6     smallint NOT NULL DEFAULT 48 CHECK (prefix6 BETWEEN 16 AND 128),
    secret      bytea NOT NULL,              -- MAC key of the probe payload
    started_at  timestamptz NOT NULL,
    closes_at   timestamptz NOT NULL,
    late_until  timestamptz NOT NULL,
    CHECK (closes_at > started_at AND late_until >= closes_at)
);
CREATE INDEX census_rounds_target_idx ON census_rounds (target_id, id);

-- Every (round, replying address, receiving site): the census catchment of
-- a round is prefix -> site over these rows. Geolocation is looked up at
-- ingest (the collector has the GeoIP readers).
CREATE TABLE census_replies (
    round_id     bigint NOT NULL REFERENCES census_rounds (id) ON DELETE CASCADE,
    addr         inet NOT NULL,
    site         text NOT NULL,
    prefix       cidr NOT NULL,
    rtt_ms       real,
    sent_at      timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    late         boolean NOT NULL,
    asn          bigint,
    country      text,
    lat          double precision,
    lon          double precision,
    PRIMARY KEY (round_id, addr, site)
);
