-- Disabling a probe or a census site agent (issue 23) takes effect at once
-- in every running collector, whichever process made the change (API, CLI
-- on the same database, a new site token disabling the old agent): a
-- change of a keyed probe's status or key, or its deletion, notifies
-- channel anycatch_probes with the probe id. Collectors drop the cached
-- key and close the probe's live channel when it is no longer active.
-- Row-level, but only on status/key changes: heartbeats (last_seen) and
-- imported probes (no key) notify nothing.
CREATE FUNCTION anycatch_notify_probe() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('anycatch_probes', OLD.id);
    ELSE
        PERFORM pg_notify('anycatch_probes', NEW.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER probes_status_notify AFTER UPDATE OF status, public_key ON probes
    FOR EACH ROW
    WHEN (NEW.origin <> 'atlas' AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.public_key IS DISTINCT FROM NEW.public_key))
    EXECUTE FUNCTION anycatch_notify_probe();
CREATE TRIGGER probes_delete_notify AFTER DELETE ON probes
    FOR EACH ROW
    WHEN (OLD.origin <> 'atlas')
    EXECUTE FUNCTION anycatch_notify_probe();
