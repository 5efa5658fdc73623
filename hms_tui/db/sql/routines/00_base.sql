-- Helpers every area uses. Routines (functions, views, triggers) are applied as a whole:
-- hms_tui/db/migrate.py drops them all and re-creates them from these files, in file-name
-- order, whenever one of the files changes. So a file holds the current truth of its area.

CREATE FUNCTION hms.epoch_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint
$$;

CREATE FUNCTION hms.like_escape(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(replace(replace(t, '\', '\\'), '%', '\%'), '_', '\_')
$$;

CREATE FUNCTION hms.fail(p_code text, p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message;
END $$;

-- Names the desk action for the audit trail (transaction-local).
CREATE FUNCTION hms.begin_action(p_action text) RETURNS void
LANGUAGE sql AS $$
    SELECT set_config('hms.action', p_action, true)
$$;

CREATE FUNCTION hms.parse_priority(p text) RETURNS hms.priority
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF upper(btrim(coalesce(p, ''))) NOT IN ('NORMAL', 'URGENT', 'EMERGENCY') THEN
        PERFORM hms.fail('HM422', format('priority %L is invalid; use normal, urgent or emergency', p));
    END IF;
    RETURN upper(btrim(p))::hms.priority;
END $$;

CREATE FUNCTION hms.make_token(p_prefix text, p_serial integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_prefix || '-' || hms.pad_number(p_serial, 3)
$$;
