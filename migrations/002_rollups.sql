-- Result rollups for latency reports and historical catchments, so those
-- never scan raw results. results_hourly holds one row per (target, hour,
-- probe, af, kind, site); results_daily the same per UTC day. Both are
-- rebuilt for a time range by store.DB.RollupResults (idempotent), which a
-- periodic job runs over the last hours to absorb late uploads.
-- site is '' for results without an identified site (ping, trace,
-- unidentified or unreachable dns/identity results).

CREATE TABLE results_hourly (
    target_id   integer NOT NULL,
    hour        timestamptz NOT NULL,
    probe_id    text NOT NULL,
    af          smallint NOT NULL,
    kind        text NOT NULL,
    site        text NOT NULL DEFAULT '',
    results     integer NOT NULL,           -- results in the bucket
    answered    integer NOT NULL,           -- results with an RTT
    rtt_sum     double precision NOT NULL DEFAULT 0,
    rtt_min     real,
    loss_sum    double precision NOT NULL DEFAULT 0, -- sum of ping loss fractions
    loss_n      integer NOT NULL DEFAULT 0,          -- results with a loss value
    first_ts    timestamptz NOT NULL,
    last_ts     timestamptz NOT NULL,
    PRIMARY KEY (target_id, hour, probe_id, af, kind, site)
);

CREATE TABLE results_daily (
    target_id   integer NOT NULL,
    day         timestamptz NOT NULL,       -- UTC midnight
    probe_id    text NOT NULL,
    af          smallint NOT NULL,
    kind        text NOT NULL,
    site        text NOT NULL DEFAULT '',
    results     integer NOT NULL,
    answered    integer NOT NULL,
    rtt_sum     double precision NOT NULL DEFAULT 0,
    rtt_min     real,
    loss_sum    double precision NOT NULL DEFAULT 0,
    loss_n      integer NOT NULL DEFAULT 0,
    first_ts    timestamptz NOT NULL,
    last_ts     timestamptz NOT NULL,
    PRIMARY KEY (target_id, day, probe_id, af, kind, site)
);

-- Probe listing filters status on last_seen; keyset pagination is by id.
CREATE INDEX probes_last_seen_idx ON probes (last_seen);
