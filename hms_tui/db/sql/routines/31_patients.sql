-- Patients: registration and search.

CREATE FUNCTION hms.patient_by_id(p_id bigint) RETURNS hms.patients
LANGUAGE plpgsql STABLE AS $$
DECLARE p hms.patients;
BEGIN
    SELECT * INTO p FROM hms.patients WHERE id = p_id;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no patient with id %s', p_id));
    END IF;
    RETURN p;
END $$;

-- Patients who may be the person being registered (or edited) again: the same name, case
-- and spacing aside, and the same date of birth; or the same phone digits. Rows like
-- hms.search_patients', oldest first.
CREATE FUNCTION hms.patient_duplicates(p_name text, p_phone text, p_birth_date date,
                                       p_except bigint DEFAULT NULL)
RETURNS TABLE (id bigint, mrn text, name text, phone text, birth_date date, age integer, active_visits text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    WITH q AS (
        SELECT lower(regexp_replace(btrim(coalesce(p_name, '')), '[\s,]+', ' ', 'g')) AS name_key,
               regexp_replace(coalesce(p_phone, ''), '[^0-9]', '', 'g') AS digits
    )
    SELECT p.id, p.mrn, p.name, p.phone, p.birth_date,
           CASE WHEN p.birth_date IS NULL THEN NULL
                ELSE extract(year FROM age(hms.business_date(), p.birth_date))::integer END,
           NULL::text
      FROM hms.patients p, q
     WHERE p.id IS DISTINCT FROM p_except
       AND ((p_birth_date IS NOT NULL AND p.birth_date = p_birth_date
             AND lower(regexp_replace(p.name, '[\s,]+', ' ', 'g')) = q.name_key)
            OR (length(q.digits) >= 3 AND p.phone IS NOT NULL
                AND regexp_replace(coalesce(p.phone, ''), '[^0-9]', '', 'g') = q.digits))
     ORDER BY p.id
     LIMIT 20
$$;

CREATE FUNCTION hms.assert_birth_date(p_birth_date date) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_birth_date > hms.business_date() THEN
        PERFORM hms.fail('HM422', format('date of birth %s is in the future', p_birth_date));
    END IF;
END $$;

-- Register a patient. Someone who looks registered already (hms.patient_duplicates) is
-- refused with SQLSTATE HM410, naming the matches, unless p_allow_duplicate.
CREATE FUNCTION hms.add_patient(p_name text, p_phone text, p_birth_date date,
                                p_allow_duplicate boolean DEFAULT false) RETURNS hms.patients
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    p     hms.patients;
    found text;
BEGIN
    PERFORM hms.begin_action('patient_add');
    PERFORM hms.assert_birth_date(p_birth_date);
    IF NOT coalesce(p_allow_duplicate, false) THEN
        SELECT string_agg(format('%s %s%s%s', d.mrn, d.name,
                                 CASE WHEN d.birth_date IS NULL THEN '' ELSE ', born ' || d.birth_date END,
                                 CASE WHEN d.phone IS NULL THEN '' ELSE ', phone ' || d.phone END),
                          '; ' ORDER BY d.id)
          INTO found FROM hms.patient_duplicates(p_name, p_phone, p_birth_date) d;
        IF found IS NOT NULL THEN
            PERFORM hms.fail('HM410', format('%s may be registered already: %s; use that record, '
                                             'or register anyway (--allow-duplicate)', p_name, found));
        END IF;
    END IF;
    INSERT INTO hms.patients (name, phone, birth_date)
    VALUES (hms.trim_text(p_name), nullif(hms.trim_text(p_phone), ''), p_birth_date)
    RETURNING * INTO p;
    RETURN p;
END $$;

-- Correct a patient's name, phone or date of birth (NULL: unchanged; '' clears the phone,
-- p_clear_birth_date clears the date). Audited like every change; every screen re-reads the
-- names it shows (60_notify.sql).
CREATE FUNCTION hms.update_patient(p_id bigint, p_name text, p_phone text, p_birth_date date,
                                   p_clear_birth_date boolean DEFAULT false) RETURNS hms.patients
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE p hms.patients;
BEGIN
    PERFORM hms.begin_action('patient_update');
    PERFORM hms.patient_by_id(p_id);
    PERFORM hms.assert_birth_date(p_birth_date);
    UPDATE hms.patients SET
        name = coalesce(hms.trim_text(p_name), name),
        phone = CASE WHEN hms.trim_text(p_phone) = '' THEN NULL
                     ELSE coalesce(hms.trim_text(p_phone), phone) END,
        birth_date = CASE WHEN coalesce(p_clear_birth_date, false) THEN NULL
                          ELSE coalesce(p_birth_date, birth_date) END
     WHERE id = p_id
    RETURNING * INTO p;
    RETURN p;
END $$;

CREATE FUNCTION hms.get_patient(p_id bigint) RETURNS hms.patients
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.patient_by_id(p_id)
$$;

-- Patients matching a name part, an MRN prefix or phone digits; % and _ match literally.
CREATE FUNCTION hms.search_patients(p_text text, p_limit integer DEFAULT 50)
RETURNS TABLE (id bigint, mrn text, name text, phone text, birth_date date, age integer, active_visits text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    WITH q AS (
        SELECT btrim(coalesce(p_text, '')) AS t,
               hms.like_escape(lower(btrim(coalesce(p_text, '')))) AS pat,
               regexp_replace(coalesce(p_text, ''), '[^0-9]', '', 'g') AS digits
    )
    SELECT p.id, p.mrn, p.name, p.phone, p.birth_date,
           CASE WHEN p.birth_date IS NULL THEN NULL
                ELSE extract(year FROM age(hms.business_date(), p.birth_date))::integer END,
           (SELECT string_agg(coalesce(v.token, d.code || ' booked') || ' ' || v.status, ', ' ORDER BY v.id)
              FROM hms.visits v JOIN hms.doctors d ON d.id = v.doctor_id
             WHERE v.patient_id = p.id AND v.business_date = hms.business_date()
               AND v.status IN ('BOOKED', 'WAITING', 'CALLED', 'IN_CONSULTATION'))
      FROM hms.patients p, q
     WHERE q.t = ''
        OR lower(p.name) LIKE '%' || q.pat || '%'
        OR lower(p.mrn) LIKE q.pat || '%'
        OR (length(q.digits) >= 3 AND q.digits = regexp_replace(q.t, '[ +-]', '', 'g')
            AND regexp_replace(coalesce(p.phone, ''), '[^0-9]', '', 'g') LIKE '%' || q.digits || '%')
     ORDER BY (lower(p.mrn) = lower(q.t)) DESC, (lower(p.name) LIKE q.pat || '%') DESC,
              CASE WHEN q.t = '' THEN p.id END DESC, lower(p.name), p.id
     LIMIT least(greatest(p_limit, 1), 500)
$$;
