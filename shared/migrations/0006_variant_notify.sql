-- Tell waiters when a variant is finished, on whichever node made it: a request waiting for
-- a variant another process is making LISTENs on kitteh_variants (services/resize/waiters.py)
-- instead of polling the store. A trigger, so every writer of the state notifies, and the
-- notification is delivered only when the transaction that finished it commits.
-- depends: 0004_access

CREATE FUNCTION kitteh_variant_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IN ('ready', 'dropped', 'failed') THEN
        PERFORM pg_notify('kitteh_variants', NEW.image_id || ' ' || NEW.kind || ' ' || NEW.format);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER variants_finished AFTER UPDATE OF state ON variants
    FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state)
    EXECUTE FUNCTION kitteh_variant_finished();
