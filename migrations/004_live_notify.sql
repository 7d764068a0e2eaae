-- Live channel (issue 16): every change to what probes measure (targets,
-- their sites and identity rules) notifies channel anycatch_targets, so each
-- running collector reloads at once and pushes new schedules to its
-- connected probes, whichever process made the change (API, CLI on the same
-- database, another server instance). Statement-level triggers: a bulk
-- edit notifies once; PostgreSQL also folds identical notifications of
-- one transaction into one, and delivers them only on commit. The payload
-- is only the table name: listeners re-read the targets.
CREATE FUNCTION anycatch_notify_targets() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('anycatch_targets', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER targets_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON targets
    FOR EACH STATEMENT EXECUTE FUNCTION anycatch_notify_targets();
CREATE TRIGGER sites_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION anycatch_notify_targets();
CREATE TRIGGER site_rules_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON site_rules
    FOR EACH STATEMENT EXECUTE FUNCTION anycatch_notify_targets();

-- Confirmation bursts: a result showed a probe's catchment place moved, and
-- the collector asked the probes likely affected too to measure at once.
-- Catchment changes recorded within seconds after at on the same target
-- came from a burst's confirmations.
CREATE TABLE confirmation_bursts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL,
    target_id      integer NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    msm            text NOT NULL,
    trigger_probe  text NOT NULL,
    from_place     text NOT NULL,   -- "site:CODE", "unreachable" or "unidentified"
    to_place       text NOT NULL,
    nudged         text[] NOT NULL  -- probe ids asked to measure now
);
CREATE INDEX confirmation_bursts_target_at ON confirmation_bursts (target_id, at);
