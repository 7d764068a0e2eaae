-- Alert rules, alerts (firing and resolved: the history), webhook endpoints
-- and their delivery log (issue 18). Small tables: alerts and deliveries
-- grow with incidents, not with measurements.

-- A rule's parameters (kind, thresholds, windows …) are its JSON
-- definition, validated in Go (package alert); the columns are what
-- queries filter on.
CREATE TABLE alert_rules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id   integer NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    enabled     boolean NOT NULL DEFAULT true,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_target_idx ON alert_rules (target_id);

-- One row per alert: opened when it fires, closed (resolved_at) when it
-- resolves. At most one firing alert per (rule, af, subject).
CREATE TABLE alerts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id      bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    target_id    integer NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    af           smallint NOT NULL,
    subject      text NOT NULL DEFAULT '',
    status       text NOT NULL CHECK (status IN ('firing', 'resolved')),
    started_at   timestamptz NOT NULL,
    resolved_at  timestamptz,
    body         jsonb NOT NULL,          -- the alert as notified (summary, sites before/after, probes)
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
CREATE UNIQUE INDEX alerts_one_firing_idx ON alerts (rule_id, af, subject) WHERE status = 'firing';
CREATE INDEX alerts_target_started_idx ON alerts (target_id, started_at DESC);
CREATE INDEX alerts_started_idx ON alerts (started_at DESC);

CREATE TABLE webhooks (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL DEFAULT '',
    url            text NOT NULL,
    secret         text NOT NULL,          -- HMAC key; needed in clear to sign
    allow_private  boolean NOT NULL DEFAULT false,
    target_id      integer REFERENCES targets (id) ON DELETE CASCADE, -- NULL: every target
    max_attempts   integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 20),
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- The delivery log: one row per notification per endpoint, updated after
-- every attempt.
CREATE TABLE webhook_deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id    bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    alert_id      bigint REFERENCES alerts (id) ON DELETE SET NULL,
    event         text NOT NULL CHECK (event IN ('firing', 'resolved', 'test')),
    state         text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    last_status   integer,
    last_error    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    payload       bytea NOT NULL DEFAULT ''  -- the exact body sent (and signed), so a restart can resume retries
);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id DESC);
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (id) WHERE state = 'pending';
