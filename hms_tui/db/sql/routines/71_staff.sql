-- Staff logins: one PostgreSQL role per person, a member of one hms group role.
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
    -- Group roles are cluster-wide: only this clinic's registry says whose login it is.
    IF s.login IS NULL OR s.role IS NULL
       OR NOT EXISTS (SELECT 1 FROM hms.staff WHERE login = s.login) THEN
        PERFORM hms.fail('HM404', format('no staff login %s in this clinic (%s)', p_login,
                                         current_database()));
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
    INSERT INTO hms.staff (login) VALUES (v_login) ON CONFLICT DO NOTHING;
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
      FROM hms.staff st JOIN pg_roles r ON r.rolname = st.login, LATERAL hms.staff_row(r.rolname) s
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
           CASE WHEN hms.session_is_owner() THEN 'owner'
                WHEN EXISTS (SELECT 1 FROM hms.staff WHERE login = session_user) THEN s.role
           END,
           s.doctors, s.can_login
      FROM hms.staff_row(session_user) s
$$;
