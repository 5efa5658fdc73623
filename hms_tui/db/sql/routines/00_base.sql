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

-- Superusers and members of the schema owner (the embedded default, the demo, maintenance)
-- are trusted with the schema; every other login is staff.
CREATE FUNCTION hms.session_is_owner() RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN  -- plpgsql: its plan is cached (an SQL function's is made again on every call)
    RETURN (SELECT r.rolsuper OR pg_has_role(session_user, (SELECT c.relowner FROM pg_class c
                                                             WHERE c.oid = 'hms.visits'::regclass),
                                             'MEMBER')
              FROM pg_roles r
             WHERE r.rolname = session_user);
END $$;

-- The longest statement and idle-in-transaction timeouts a desk session may have, as
-- settings values; hms_tui sets them with every call (db/connection.py).
CREATE FUNCTION hms.session_limits(OUT statement_timeout text, OUT idle_timeout text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT statement_limit_s || 's', idle_limit_s || 's' FROM hms.settings
$$;

-- Every desk action begins here: the session must not be able to hold what the action locks
-- longer than the clinic allows, and a staff login must belong to this clinic.
--   * the action is not inside a transaction that has been open for a while (BEGIN ...,
--     where a client could keep the queue's lock while it waits): the transaction may be at
--     most a second old when the action begins (the extended query protocol starts it a moment
--     before the call; an explicit BEGIN long before is refused);
--   * statement_timeout and idle_in_transaction_session_timeout are on and within the
--     clinic's limits (whatever the session or the role was set to).
-- Then the action is named for the audit trail (transaction-local).
CREATE FUNCTION hms.begin_action(p_action text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lim record;
BEGIN
    IF NOT coalesce(hms.session_is_owner(), false) THEN
        IF NOT EXISTS (SELECT 1 FROM hms.staff WHERE login = session_user) THEN
            PERFORM hms.fail('HM403', format('login %s is not staff of this clinic (%s)',
                                             session_user, current_database()));
        END IF;
        IF clock_timestamp() - transaction_timestamp() > interval '1 second' THEN
            PERFORM hms.fail('HM403', 'a desk action runs as a transaction of its own, not '
                             'inside a longer one (BEGIN ... COMMIT); nothing was changed');
        END IF;
        SELECT * INTO lim FROM hms.session_limits();
        IF current_setting('statement_timeout')::interval NOT BETWEEN interval '1 ms'
                                                             AND lim.statement_timeout::interval
           OR current_setting('idle_in_transaction_session_timeout')::interval
                  NOT BETWEEN interval '1 ms' AND lim.idle_timeout::interval THEN
            PERFORM hms.fail('HM403', format(
                'this session''s timeouts (statement %s, idle in transaction %s) are off or '
                'above the clinic''s limits (%s, %s); nothing was changed',
                current_setting('statement_timeout'),
                current_setting('idle_in_transaction_session_timeout'),
                lim.statement_timeout, lim.idle_timeout));
        END IF;
    END IF;
    PERFORM set_config('hms.action', p_action, true);
END $$;

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

-- A trigger that refuses the change with the message it is given.
CREATE FUNCTION hms.reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'HM423', MESSAGE = TG_ARGV[0];
END $$;

-- Input rules the desk functions apply to what they are given, exactly as
-- hms_tui/domain/validation.py does (tests/test_input_parity.py checks both sides agree):
-- surrounding spaces trimmed; codes ASCII; amounts plain decimals with at most two places.
CREATE FUNCTION hms.trim_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT btrim(t, E' \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000')
$$;

-- A doctor code or token prefix as stored (upper case), or a refusal naming what it is.
CREATE FUNCTION hms.parse_code(p_text text, p_what text DEFAULT 'doctor code') RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE t text := hms.trim_text(p_text);
BEGIN
    IF p_what = 'token prefix' THEN
        IF t IS NULL OR t !~ '^[A-Za-z0-9]{1,6}$' THEN
            PERFORM hms.fail('HM422', format('token prefix %L is invalid; use 1-6 letters or digits (A-Z, 0-9)', left(t, 20)));
        END IF;
    ELSIF t IS NULL OR t !~ '^[A-Za-z][A-Za-z0-9]{0,7}$' THEN
        PERFORM hms.fail('HM422', format('%s %L is invalid; use a letter then up to 7 letters or digits (A-Z, 0-9), e.g. D1',
                                         p_what, left(t, 20)));
    END IF;
    RETURN upper(t);
END $$;

CREATE FUNCTION hms.parse_amount(p_text text, p_what text DEFAULT 'amount') RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE t text := hms.trim_text(p_text);
BEGIN
    IF t IS NULL OR t !~ '^[0-9]{1,8}(\.[0-9]{1,2})?$' OR t::numeric > 10000000 THEN
        PERFORM hms.fail('HM422', format('%s %L is not an amount from 0 to 10000000 with at most two decimal places',
                                         p_what, left(t, 20)));
    END IF;
    RETURN t::numeric(12, 2);
END $$;
