-- 0003: who may do what.
--
-- Every person logs in as their own PostgreSQL role, a member of one group role:
--
--   hms_reception  patients, search, check-in, booking, arrival, cancel, priority, transfer,
--                  skip, requeue, bills; queue, board and timeline reads
--   hms_doctor     call-next, call, recall, start, complete, no-show, skip, requeue; reads;
--                  only on visits of the doctors linked to the login (hms.staff_doctors)
--   hms_display    the waiting-room view hms.display_queue (initials, no MRN or phone),
--                  the board, the business date and the clinic's rules
--   hms_admin      everything above, plus doctors, clinic settings, staff logins and the
--                  audit trail (SELECT on hms.audit_events / hms.audit_head, for `audit verify`)
--
-- The write path: group roles hold no privilege on any table (INSERT, UPDATE, DELETE,
-- TRUNCATE are never granted); every change is a SECURITY DEFINER function owned by the
-- schema owner, with `SET search_path = hms, pg_temp`, a lock_timeout, and EXECUTE granted
-- to the groups that need it, never to PUBLIC (REVOKE at the end of every migration, and
-- default privileges so a forgotten REVOKE does not open a new function to everyone).
-- Reads of the schema version (hms.schema_migrations, checked by every terminal at start)
-- are the one table SELECT the terminals get.
--
-- The audit trail records session_user, which a SECURITY DEFINER function cannot change and
-- a client cannot forge: with one login per person, the trail names the person.
--
-- Who runs this migration: a superuser, or a role with CREATEROLE that owns the database.
-- That role owns every hms object; the SECURITY DEFINER functions run as it. Superusers and
-- members of the owner role are never restricted to linked doctors (the embedded default and
-- the demo connect as the superuser `postgres`: zero set-up).

-- ---------------------------------------------------------------------------------------
-- Group roles: cluster-global, shared by every database of the cluster (many test
-- databases, or several clinics), so created idempotently; a concurrent creation of the
-- same name (two databases migrating at once) is not an error.
-- ---------------------------------------------------------------------------------------
DO $$
DECLARE
    g text;
    r pg_roles;
BEGIN
    FOREACH g IN ARRAY ARRAY['hms_reception', 'hms_doctor', 'hms_display', 'hms_admin'] LOOP
        SELECT * INTO r FROM pg_roles WHERE rolname = g;
        IF NOT FOUND THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                               'NOREPLICATION NOBYPASSRLS', g);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created by a concurrent migration of another database
            END;
        ELSIF r.rolsuper OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls OR r.rolcanlogin THEN
            -- Every member inherits a group's attributes' reach: refuse a dangerous group.
            RAISE EXCEPTION USING ERRCODE = 'HM409', MESSAGE = format(
                'role %s exists but is a login, superuser, CREATEROLE, REPLICATION or BYPASSRLS role; '
                'hms-tui uses it as a plain group role: fix or rename it first', g);
        END IF;
    END LOOP;
END $$;

-- Nothing in the schema for anyone but these groups (PUBLIC never had it; be explicit).
REVOKE ALL ON SCHEMA hms FROM PUBLIC;
GRANT USAGE ON SCHEMA hms TO hms_reception, hms_doctor, hms_display, hms_admin;

-- Functions created later by the owner are not executable by PUBLIC until granted. (Only the
-- database-wide form can revoke the built-in PUBLIC default; `IN SCHEMA` can only add.)
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- ---------------------------------------------------------------------------------------
-- Doctor links: which doctors' visits a doctor login may act on.
-- ---------------------------------------------------------------------------------------
CREATE TABLE hms.staff_doctors (
    login     text    NOT NULL CHECK (login ~ '^[a-z_][a-z0-9_.-]{0,62}$'),
    doctor_id integer NOT NULL REFERENCES hms.doctors,
    PRIMARY KEY (login, doctor_id)
);
-- Audited like every other table (entity 'staff_doctors'); never truncated.
CREATE TRIGGER staff_doctors_audit AFTER INSERT OR UPDATE OR DELETE ON hms.staff_doctors
    FOR EACH ROW EXECUTE FUNCTION hms.audit_row();
CREATE TRIGGER staff_doctors_no_truncate BEFORE TRUNCATE ON hms.staff_doctors
    FOR EACH STATEMENT EXECUTE FUNCTION hms.reject_change('staff_doctors cannot be truncated: it is part of the audited record');

-- Is the session's login a doctor-only login (restricted to its linked doctors)? Superusers,
-- members of the schema owner, and doctors who are also reception or admin are not.
-- session_user, not current_user: inside a SECURITY DEFINER function current_user is the owner.
CREATE FUNCTION hms.session_is_doctor_only() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT r.rolsuper
       AND NOT pg_has_role(session_user, (SELECT c.relowner FROM pg_class c
                                           WHERE c.oid = 'hms.visits'::regclass), 'MEMBER')
       AND pg_has_role(session_user, 'hms_doctor', 'MEMBER')
       AND NOT pg_has_role(session_user, 'hms_reception', 'MEMBER')
       AND NOT pg_has_role(session_user, 'hms_admin', 'MEMBER')
      FROM pg_roles r
     WHERE r.rolname = session_user
$$;

-- The one check every visit-changing action goes through (0001 calls it from hms.lock_visit
-- and hms.call_next; transfer goes through lock_visit).
CREATE OR REPLACE FUNCTION hms.assert_may_act(p_doctor integer) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE d hms.doctors;
BEGIN
    IF coalesce(hms.session_is_doctor_only(), false)
       AND NOT EXISTS (SELECT 1 FROM hms.staff_doctors
                        WHERE login = session_user AND doctor_id = p_doctor) THEN
        SELECT * INTO d FROM hms.doctors WHERE id = p_doctor;
        PERFORM hms.fail('HM403', format(
            'login %s may act only on visits of its own doctors (%s), not of %s (%s)',
            session_user,
            coalesce((SELECT string_agg(x.code, ', ' ORDER BY x.code)
                        FROM hms.staff_doctors s JOIN hms.doctors x ON x.id = s.doctor_id
                       WHERE s.login = session_user), 'none linked'),
            d.name, d.code));
    END IF;
END $$;

-- ---------------------------------------------------------------------------------------
-- The waiting-room display: today's active visits, with initials instead of names, no MRN,
-- no patient id, no phone, no cancel reason. Columns are exactly those of hms.visit_info, in
-- its order and types, so Visit.from_row reads a row as it reads one of hms.queue.
--
-- Read it in the order hms.queue returns (being served first, then the waiting line):
--   SELECT * FROM hms.display_queue WHERE doctor = $1
--    ORDER BY CASE status WHEN 'IN_CONSULTATION' THEN 0 WHEN 'CALLED' THEN 1
--                         WHEN 'WAITING' THEN 2 ELSE 3 END,
--             position, called_at DESC, serial
--
-- A view runs with its owner's rights on tables, but functions it calls are checked
-- against the reader: hms_display may execute the ones it calls (hms.business_date,
-- hms.consult_minutes, hms.wait_estimate), which read nothing private. security_barrier: a
-- reader's own (leaky) functions in WHERE never see rows the view filters out.
-- ---------------------------------------------------------------------------------------
CREATE VIEW hms.display_queue WITH (security_barrier) AS
SELECT q.id                      AS visit_id,
       q.token                   AS token,
       q.serial                  AS serial,
       q.pos                     AS position,
       q.status::text            AS status,
       q.priority::text          AS priority,
       0::bigint                 AS patient_id,
       -- 'Kumar, Anil' -> 'K. A.' (first letter of up to three name parts, like textsafe.initials)
       (SELECT coalesce(string_agg(upper(left(w.part, 1)) || '.', ' ' ORDER BY w.n), '')
          FROM (SELECT s.part, s.n, row_number() OVER (ORDER BY s.n) AS k
                  FROM regexp_split_to_table(replace(p.name, ',', ' '), '\s+')
                       WITH ORDINALITY AS s(part, n)
                 WHERE s.part <> '') w
         WHERE w.k <= 3)         AS patient_name,
       ''::text                  AS mrn,
       q.doctor                  AS doctor,
       q.doctor_name             AS doctor_name,
       q.room                    AS room,
       q.business_date           AS business_date,
       q.appointment_at          AS appointment_at,
       q.checked_in_at           AS checked_in_at,
       q.called_at               AS called_at,
       q.call_count              AS call_count,
       q.started_at              AS started_at,
       q.ended_at                AS ended_at,
       NULL::text                AS cancel_reason,
       q.transferred_from        AS transferred_from,
       (SELECT t.id FROM hms.visits t WHERE t.transferred_from = q.id) AS transferred_to,
       hms.wait_estimate(hms.consult_minutes(q.doctor_id, q.business_date), q.serving, q.pos)
                                 AS wait_minutes,
       false                     AS replayed
  FROM (SELECT v.*, d.code AS doctor, d.name AS doctor_name, d.room,
               CASE WHEN v.status = 'WAITING'
                    THEN row_number() OVER (PARTITION BY d.code, v.status = 'WAITING'
                                            ORDER BY v.priority DESC, v.queue_key, v.id)::integer
               END AS pos,
               count(*) FILTER (WHERE v.status IN ('CALLED', 'IN_CONSULTATION'))
                   OVER (PARTITION BY d.code) AS serving
          FROM hms.visits v
          JOIN hms.doctors d ON d.id = v.doctor_id
         WHERE v.business_date = hms.business_date()
           AND v.status IN ('WAITING', 'CALLED', 'IN_CONSULTATION')) q
  JOIN hms.patients p ON p.id = q.patient_id;

-- ---------------------------------------------------------------------------------------
-- Reads the terminals need that used to touch tables directly
-- ---------------------------------------------------------------------------------------
-- Bills of a visit (Desk.bills_for_visit read hms.bills itself; terminals may not).
CREATE FUNCTION hms.visit_bills(p_visit bigint) RETURNS SETOF hms.bill_info
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT i.* FROM hms.bills b, LATERAL hms.bill_info(b.id) i
     WHERE b.visit_id = p_visit ORDER BY b.id
$$;

-- ---------------------------------------------------------------------------------------
-- Staff logins
--
-- Managing roles from a SECURITY DEFINER function: the function runs as the schema owner.
-- * A superuser owner (the embedded server, the demo, a typical `db upgrade`) can do all of it.
-- * A non-superuser owner needs CREATEROLE. PostgreSQL 15 and older: CREATEROLE alone may
--   create, alter and grant membership in any non-superuser role. PostgreSQL 16 and newer:
--   CREATEROLE may create roles and is then implicitly ADMIN of the roles it created (so it
--   may ALTER them and set their defaults), but granting membership in hms_reception etc.
--   needs ADMIN OPTION on those groups. The owner has it when it created them (this
--   migration); if another role created them first, a superuser grants it once:
--       GRANT hms_reception, hms_doctor, hms_display, hms_admin TO <owner>
--             WITH ADMIN TRUE, INHERIT FALSE, SET FALSE;
--   (ADMIN only: the owner does not become a member that staff_list would show; not needed,
--   and not valid syntax, on 15). hms.assert_can_manage_roles() checks this up front and
--   says so.
-- * Membership shown and listed is membership with USAGE (inherited privileges), so an
--   ADMIN-only grant does not make the owner look like staff.
-- * Settings are put on each login (ALTER ROLE login SET ...): settings of a group role do
--   not apply to its members.
-- * Passwords arrive only as SCRAM-SHA-256 (or md5) verifiers computed by the client
--   (libpq's PQencryptPasswordConn): the clear text never reaches the server, its logs or
--   pg_stat_statements. NULL: no password (peer, cert or trust authentication).
-- ---------------------------------------------------------------------------------------
CREATE TYPE hms.staff_info AS (
    login     text,
    role      text,      -- reception, doctor, display, admin (comma-joined if several)
    doctors   text[],    -- codes of the linked doctors
    can_login boolean
);

CREATE FUNCTION hms.staff_group(p_role text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF lower(btrim(coalesce(p_role, ''))) NOT IN ('reception', 'doctor', 'display', 'admin') THEN
        PERFORM hms.fail('HM422', format('role %L is invalid; use reception, doctor, display or admin', p_role));
    END IF;
    RETURN 'hms_' || lower(btrim(p_role));
END $$;

CREATE FUNCTION hms.check_login(p_login text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_login IS NULL OR p_login !~ '^[a-z_][a-z0-9_.-]{0,62}$' THEN
        PERFORM hms.fail('HM422', format(
            'login %s is invalid; use 1-63 lower-case letters, digits, _ . or -, starting with a letter or _',
            coalesce(quote_literal(left(p_login, 80)), 'NULL')));
    END IF;
    IF p_login LIKE 'pg\_%' OR p_login LIKE 'hms\_%' THEN
        PERFORM hms.fail('HM422', format('login %s is reserved (pg_ and hms_ names are PostgreSQL''s and hms-tui''s own)', p_login));
    END IF;
    RETURN p_login;
END $$;

-- The settings every staff login gets: one stuck terminal cannot hold the counters.
CREATE FUNCTION hms.staff_settings() RETURNS TABLE (name text, setting text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('statement_timeout', '30s'),
           ('idle_in_transaction_session_timeout', '60s'),
           ('lock_timeout', '5s')
$$;

CREATE FUNCTION hms.staff_row(p_login text) RETURNS hms.staff_info
LANGUAGE sql STABLE AS $$
    SELECT ROW(
        r.rolname::text,
        (SELECT string_agg(DISTINCT substr(g.rolname, 5), ',' ORDER BY substr(g.rolname, 5))
           FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
          WHERE m.member = r.oid AND pg_has_role(m.member, m.roleid, 'USAGE')
            AND g.rolname IN ('hms_reception', 'hms_doctor', 'hms_display', 'hms_admin')),
        ARRAY(SELECT d.code FROM hms.staff_doctors s JOIN hms.doctors d ON d.id = s.doctor_id
               WHERE s.login = r.rolname ORDER BY d.code),
        r.rolcanlogin
    )::hms.staff_info
      FROM pg_roles r
     WHERE r.rolname = p_login
$$;

CREATE FUNCTION hms.assert_can_manage_roles() RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    me      pg_roles;
    missing text;
BEGIN
    SELECT * INTO me FROM pg_roles WHERE rolname = current_user;
    IF me.rolsuper THEN
        RETURN;
    END IF;
    IF NOT me.rolcreaterole THEN
        PERFORM hms.fail('HM403', format(
            'the hms schema owner %s cannot manage logins: a superuser must run ALTER ROLE %I CREATEROLE',
            current_user, current_user));
    END IF;
    IF current_setting('server_version_num')::integer >= 160000 THEN
        SELECT string_agg(g, ', ') INTO missing
          FROM unnest(ARRAY['hms_reception', 'hms_doctor', 'hms_display', 'hms_admin']) g
         WHERE NOT pg_has_role(current_user, g, 'USAGE WITH ADMIN OPTION');
        IF missing IS NOT NULL THEN
            PERFORM hms.fail('HM403', format(
                'the hms schema owner %s cannot grant %s (PostgreSQL 16+ needs ADMIN OPTION): a superuser '
                'must run GRANT hms_reception, hms_doctor, hms_display, hms_admin TO %I '
                'WITH ADMIN TRUE, INHERIT FALSE, SET FALSE',
                current_user, missing, current_user));
        END IF;
    END IF;
END $$;

-- A staff login (member of an hms group) that this admin may change.
CREATE FUNCTION hms.staff_target(p_login text) RETURNS hms.staff_info
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s hms.staff_info := hms.staff_row(hms.check_login(p_login));
BEGIN
    IF s.login IS NULL OR s.role IS NULL THEN
        PERFORM hms.fail('HM404', format('no staff login %s (a role in hms_reception, hms_doctor, hms_display or hms_admin)', p_login));
    END IF;
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = s.login) THEN
        PERFORM hms.fail('HM403', format('%s is a superuser; hms-tui does not manage superusers', s.login));
    END IF;
    RETURN s;
END $$;

CREATE FUNCTION hms.apply_staff_settings(p_login text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    st record;
    applied jsonb := '{}';
BEGIN
    FOR st IN SELECT * FROM hms.staff_settings() LOOP
        EXECUTE format('ALTER ROLE %I SET %I = %L', p_login, st.name, st.setting);
        applied := applied || jsonb_build_object(st.name, st.setting);
    END LOOP;
    RETURN applied;
END $$;

CREATE FUNCTION hms.staff_add(p_login text, p_role text, p_doctors text[] DEFAULT '{}',
                              p_password text DEFAULT NULL) RETURNS hms.staff_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v_login text := hms.check_login(p_login);
    grp     text := hms.staff_group(p_role);
    ids     integer[];
    codes   text[];
    applied jsonb;
BEGIN
    PERFORM hms.begin_action('staff_add');
    PERFORM hms.assert_can_manage_roles();
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_login) THEN
        PERFORM hms.fail('HM409', format('a role named %s already exists', v_login));
    END IF;
    IF grp = 'hms_doctor' AND cardinality(coalesce(p_doctors, '{}')) = 0 THEN
        PERFORM hms.fail('HM422', 'a doctor login needs at least one linked doctor (--doctor CODE)');
    END IF;
    IF grp <> 'hms_doctor' AND cardinality(coalesce(p_doctors, '{}')) > 0 THEN
        PERFORM hms.fail('HM422', 'only doctor logins are linked to doctors; drop --doctor');
    END IF;
    SELECT coalesce(array_agg(DISTINCT (hms.doctor_by_code(c)).id), '{}'),
           coalesce(array_agg(DISTINCT upper(btrim(c))), '{}')
      INTO ids, codes
      FROM unnest(coalesce(p_doctors, '{}')) c;
    IF p_password IS NOT NULL
       AND p_password !~ '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$'
       AND p_password !~ '^md5[0-9a-f]{32}$' THEN
        PERFORM hms.fail('HM422', 'the password must arrive as a SCRAM-SHA-256 verifier (hms-tui staff add '
                                  'computes it), never as clear text');
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
                   'NOBYPASSRLS PASSWORD %L', v_login, p_password);
    EXECUTE format('GRANT %I TO %I', grp, v_login);
    -- Group roles are cluster-wide: with CONNECT revoked from PUBLIC on each clinic's
    -- database, this grant is what lets the login into this clinic (and no other).
    BEGIN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), v_login);
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;  -- the owner does not own the database: CONNECT stays as the DBA set it
    END;
    applied := hms.apply_staff_settings(v_login);
    DELETE FROM hms.staff_doctors WHERE login = v_login;  -- links left by an earlier role of that name
    INSERT INTO hms.staff_doctors (login, doctor_id) SELECT v_login, unnest(ids);
    PERFORM hms.audit_append('staff', NULL, NULL, 'INSERT', NULL, jsonb_build_object(
        'login', v_login, 'role', substr(grp, 5), 'doctors', to_jsonb(codes),
        'password', p_password IS NOT NULL, 'can_login', true, 'settings', applied));
    RETURN hms.staff_row(v_login);
END $$;

CREATE FUNCTION hms.staff_list() RETURNS SETOF hms.staff_info
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT s.*
      FROM pg_roles r, LATERAL hms.staff_row(r.rolname) s
     WHERE EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                    WHERE m.member = r.oid AND pg_has_role(m.member, m.roleid, 'USAGE')
                      AND g.rolname IN ('hms_reception', 'hms_doctor', 'hms_display', 'hms_admin'))
     ORDER BY r.rolname
$$;

CREATE FUNCTION hms.staff_disable(p_login text) RETURNS hms.staff_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    s hms.staff_info := hms.staff_target(p_login);
BEGIN
    PERFORM hms.begin_action('staff_disable');
    PERFORM hms.assert_can_manage_roles();
    IF s.login = session_user THEN
        PERFORM hms.fail('HM409', 'you cannot disable your own login; ask another admin');
    END IF;
    EXECUTE format('ALTER ROLE %I NOLOGIN', s.login);
    -- End the person's open sessions too (needs pg_signal_backend or superuser; otherwise
    -- they end at their next reconnect).
    BEGIN
        PERFORM pg_terminate_backend(a.pid) FROM pg_stat_activity a
         WHERE a.usename = s.login AND a.pid <> pg_backend_pid();
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    PERFORM hms.audit_append('staff', NULL, NULL, 'UPDATE',
        jsonb_build_object('login', s.login, 'role', s.role, 'can_login', s.can_login),
        jsonb_build_object('login', s.login, 'role', s.role, 'can_login', false));
    RETURN hms.staff_row(s.login);
END $$;

CREATE FUNCTION hms.staff_enable(p_login text) RETURNS hms.staff_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    s       hms.staff_info := hms.staff_target(p_login);
    applied jsonb;
BEGIN
    PERFORM hms.begin_action('staff_enable');
    PERFORM hms.assert_can_manage_roles();
    EXECUTE format('ALTER ROLE %I LOGIN', s.login);
    applied := hms.apply_staff_settings(s.login);  -- also brings older logins up to date
    PERFORM hms.audit_append('staff', NULL, NULL, 'UPDATE',
        jsonb_build_object('login', s.login, 'role', s.role, 'can_login', s.can_login),
        jsonb_build_object('login', s.login, 'role', s.role, 'can_login', true, 'settings', applied));
    RETURN hms.staff_row(s.login);
END $$;

-- Link (p_link true) or unlink a doctor login and a doctor.
CREATE FUNCTION hms.staff_link(p_login text, p_doctor text, p_link boolean DEFAULT true)
RETURNS hms.staff_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    s hms.staff_info := hms.staff_target(p_login);
    d hms.doctors := hms.doctor_by_code(p_doctor);
BEGIN
    PERFORM hms.begin_action(CASE WHEN p_link THEN 'staff_link' ELSE 'staff_unlink' END);
    IF NOT pg_has_role(s.login, 'hms_doctor', 'MEMBER') THEN
        PERFORM hms.fail('HM422', format('%s is a %s login; only doctor logins are linked to doctors',
                                         s.login, s.role));
    END IF;
    IF p_link THEN
        INSERT INTO hms.staff_doctors (login, doctor_id) VALUES (s.login, d.id) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM hms.staff_doctors WHERE login = s.login AND doctor_id = d.id;
    END IF;
    RETURN hms.staff_row(s.login);
END $$;

-- Who am I: the session's login, its role and linked doctors ('owner' for superusers and
-- the schema owner). Terminals use it to pick their screen.
CREATE FUNCTION hms.whoami() RETURNS hms.staff_info
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT s.login,
           CASE WHEN r.rolsuper
                  OR pg_has_role(session_user, (SELECT c.relowner FROM pg_class c
                                                 WHERE c.oid = 'hms.visits'::regclass), 'MEMBER')
                THEN 'owner' ELSE s.role END,
           s.doctors, s.can_login
      FROM hms.staff_row(session_user) s, pg_roles r
     WHERE r.rolname = session_user
$$;

-- ---------------------------------------------------------------------------------------
-- Grants. Nothing on tables or sequences, except the two read-only ones noted.
-- ---------------------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA hms FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA hms FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA hms FROM PUBLIC;

-- Every terminal: its connection set-up, the schema version check, the board and rules.
GRANT SELECT ON hms.schema_migrations TO hms_reception, hms_doctor, hms_display, hms_admin;
GRANT EXECUTE ON FUNCTION
    hms.clinic_timezone(), hms.business_date(), hms.get_rules(), hms.doctor_list(),
    hms.doctor_board(), hms.whoami()
    TO hms_reception, hms_doctor, hms_display, hms_admin;

-- The waiting-room display reads the anonymised view, never hms.queue; the view's estimate
-- is computed by functions checked against the reader.
GRANT SELECT ON hms.display_queue TO hms_display, hms_admin;
GRANT EXECUTE ON FUNCTION hms.consult_minutes(integer, date),
    hms.wait_estimate(numeric, bigint, integer) TO hms_display, hms_admin;

-- Reception and doctors: queues, visits and their timelines; moving a patient back.
GRANT EXECUTE ON FUNCTION
    hms.get_doctor(text), hms.queue(text, boolean), hms.queue_changes(text, bigint),
    hms.visit_info(bigint, boolean),
    hms.visit_timeline(bigint), hms.skip(bigint, integer), hms.requeue(bigint)
    TO hms_reception, hms_doctor, hms_admin;

-- Reception: patients, check-in, booking, arrival, cancel, priority, transfer, bills.
GRANT EXECUTE ON FUNCTION
    hms.add_patient(text, text, date), hms.get_patient(bigint), hms.search_patients(text, integer),
    hms.checkin(text, bigint, text, text), hms.book(text, bigint, timestamp), hms.arrive(bigint),
    hms.cancel(bigint, text), hms.set_priority(bigint, text), hms.transfer(bigint, text),
    hms.create_bill(bigint, jsonb), hms.void_bill(text, text), hms.bill_info(bigint),
    hms.find_bill(text), hms.visit_bills(bigint)
    TO hms_reception, hms_admin;

-- Doctors: the consultation (on their own visits: hms.assert_may_act).
GRANT EXECUTE ON FUNCTION
    hms.call_next(text), hms.call(bigint), hms.recall(bigint), hms.start(bigint),
    hms.complete(bigint), hms.no_show(bigint)
    TO hms_doctor, hms_admin;

-- Admin: doctors, clinic settings, staff, the audit trail.
GRANT EXECUTE ON FUNCTION
    hms.add_doctor(text, text, text, text), hms.update_doctor(text, text, text, text, boolean),
    hms.configure(text, text, integer, integer, integer, integer),
    hms.audit_tail(integer, text, text, bigint),
    hms.staff_add(text, text, text[], text), hms.staff_list(), hms.staff_disable(text),
    hms.staff_enable(text), hms.staff_link(text, text, boolean)
    TO hms_admin;
-- `hms-tui audit verify` reads the rows and the head itself, to recompute every hash
-- independently of the functions that wrote them.
GRANT SELECT ON hms.audit_events, hms.audit_head TO hms_admin;
