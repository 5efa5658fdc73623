-- Doctors: who takes patients, in which room, with which token prefix; the day's board.

CREATE FUNCTION hms.doctor_by_code(p_code text) RETURNS hms.doctors
LANGUAGE plpgsql STABLE AS $$
DECLARE d hms.doctors;
BEGIN
    SELECT * INTO d FROM hms.doctors WHERE code = hms.parse_code(p_code);
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no doctor with code %s', p_code));
    END IF;
    RETURN d;
END $$;

CREATE FUNCTION hms.active_doctor(p_code text) RETURNS hms.doctors
LANGUAGE plpgsql STABLE AS $$
DECLARE d hms.doctors := hms.doctor_by_code(p_code);
BEGIN
    IF NOT d.active THEN
        PERFORM hms.fail('HM409', format('%s (%s) is not taking patients (inactive)', d.name, d.code));
    END IF;
    RETURN d;
END $$;

CREATE FUNCTION hms.add_doctor(p_code text, p_name text, p_room text, p_prefix text) RETURNS hms.doctors
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    d      hms.doctors;
    v_code   text;
    v_prefix text;
BEGIN
    PERFORM hms.begin_action('doctor_add');
    v_code := hms.parse_code(p_code);
    v_prefix := CASE WHEN p_prefix IS NULL THEN v_code ELSE hms.parse_code(p_prefix, 'token prefix') END;
    IF EXISTS (SELECT 1 FROM hms.doctors WHERE code = v_code) THEN
        PERFORM hms.fail('HM409', format('a doctor with code %s already exists', v_code));
    END IF;
    IF EXISTS (SELECT 1 FROM hms.doctors WHERE token_prefix = v_prefix) THEN
        PERFORM hms.fail('HM409', format('token prefix %s is already used by another doctor', v_prefix));
    END IF;
    INSERT INTO hms.doctors (code, name, room, token_prefix)
    VALUES (v_code, hms.trim_text(p_name), nullif(hms.trim_text(p_room), ''), v_prefix)
    RETURNING * INTO d;
    RETURN d;
END $$;

CREATE FUNCTION hms.update_doctor(p_code text, p_name text, p_room text, p_prefix text, p_active boolean)
RETURNS hms.doctors
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    d      hms.doctors := hms.doctor_by_code(p_code);
    v_prefix text := CASE WHEN p_prefix IS NULL THEN NULL ELSE hms.parse_code(p_prefix, 'token prefix') END;
BEGIN
    PERFORM hms.begin_action('doctor_update');
    IF v_prefix IS NOT NULL AND EXISTS (
        SELECT 1 FROM hms.doctors WHERE token_prefix = v_prefix AND id <> d.id) THEN
        PERFORM hms.fail('HM409', format('token prefix %s is already used by another doctor', v_prefix));
    END IF;
    UPDATE hms.doctors SET
        name = coalesce(hms.trim_text(p_name), name),
        room = CASE WHEN hms.trim_text(p_room) = '' THEN NULL ELSE coalesce(hms.trim_text(p_room), room) END,
        token_prefix = coalesce(v_prefix, token_prefix),
        active = coalesce(p_active, active)
     WHERE id = d.id
    RETURNING * INTO d;
    RETURN d;
END $$;

CREATE FUNCTION hms.doctor_list() RETURNS SETOF hms.doctors
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.doctors ORDER BY code
$$;

CREATE FUNCTION hms.get_doctor(p_code text) RETURNS hms.doctors
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.doctor_by_code(p_code)
$$;

-- Today's board: one row per doctor.
CREATE FUNCTION hms.doctor_board()
RETURNS TABLE (code text, name text, room text, token_prefix text, active boolean,
               serving text, waiting integer, seen integer, no_shows integer, issued integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT d.code, d.name, d.room, d.token_prefix, d.active,
           (SELECT (r.visit).token FROM hms.ranked(hms.day_visits(d.id, hms.business_date(), false), 0) r
             WHERE r.ord = 1 AND (r.visit).status IN ('CALLED', 'IN_CONSULTATION')),
           count(*) FILTER (WHERE v.status = 'WAITING')::integer,
           count(*) FILTER (WHERE v.status = 'COMPLETED')::integer,
           count(*) FILTER (WHERE v.status = 'NO_SHOW')::integer,
           count(v.serial)::integer
      FROM hms.doctors d
      LEFT JOIN hms.visits v ON v.doctor_id = d.id AND v.business_date = hms.business_date()
     GROUP BY d.id
     ORDER BY d.code
$$;
