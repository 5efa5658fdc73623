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

-- Register many patients at once (a registry migration: hms-tui patient import), one
-- statement and one transaction per batch, every row audited as hms.add_patient's. The
-- arrays are the rows' names, phones and dates of birth, of equal length. Someone who looks
-- registered already, or appears twice in the batch (hms.patient_duplicates' rule), is refused
-- with SQLSTATE HM410 naming the first such row (1-based in the batch), unless
-- p_allow_duplicate; nothing of the batch is then added. Returns how many were added.
CREATE FUNCTION hms.import_patients(p_names text[], p_phones text[], p_births date[],
                                    p_allow_duplicate boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    n     integer := coalesce(cardinality(p_names), 0);
    clash record;
    added integer;
BEGIN
    PERFORM hms.begin_action('patient_import');
    IF coalesce(cardinality(p_phones), 0) <> n OR coalesce(cardinality(p_births), 0) <> n THEN
        PERFORM hms.fail('HM422', 'names, phones and dates of birth must be as many');
    END IF;
    IF n > 50000 THEN  -- one statement must end within the clinic's statement limit
        PERFORM hms.fail('HM422', format('at most 50000 patients per batch, not %s', n));
    END IF;
    SELECT r.k, r.birth INTO clash FROM unnest(p_births) WITH ORDINALITY AS r(birth, k)
     WHERE r.birth > hms.business_date() ORDER BY r.k LIMIT 1;
    IF FOUND THEN
        PERFORM hms.fail('HM422', format('row %s: date of birth %s is in the future', clash.k, clash.birth));
    END IF;
    IF NOT coalesce(p_allow_duplicate, false) THEN
        -- The same rule as hms.patient_duplicates, against the registry and within the batch.
        WITH r AS MATERIALIZED (
            SELECT r.k, r.name, r.birth,
                   lower(regexp_replace(btrim(coalesce(r.name, '')), '[\s,]+', ' ', 'g')) AS name_key,
                   regexp_replace(coalesce(r.phone, ''), '[^0-9]', '', 'g') AS digits
              FROM unnest(p_names, p_phones, p_births) WITH ORDINALITY AS r(name, phone, birth, k))
        SELECT x.k, x.name, x.what INTO clash FROM (
            -- LATERAL ... LIMIT: one index probe per row, never a scan of the registry
            SELECT i.k, i.name, m.what
              FROM r i CROSS JOIN LATERAL (
                   SELECT format('%s %s', p.mrn, p.name) AS what FROM hms.patients p
                    WHERE i.birth IS NOT NULL AND p.birth_date = i.birth
                      AND lower(regexp_replace(p.name, '[\s,]+', ' ', 'g')) = i.name_key
                    LIMIT 1) m
            UNION ALL
            SELECT i.k, i.name, m.what
              FROM r i CROSS JOIN LATERAL (
                   SELECT format('%s %s', p.mrn, p.name) AS what FROM hms.patients p
                    WHERE length(i.digits) >= 3 AND p.phone IS NOT NULL
                      AND regexp_replace(coalesce(p.phone, ''), '[^0-9]', '', 'g') = i.digits
                    LIMIT 1) m
            UNION ALL
            SELECT i.k, i.name, format('row %s, %s', j.k, j.name)
              FROM r i JOIN r j ON j.birth = i.birth AND j.name_key = i.name_key AND j.k < i.k
            UNION ALL
            SELECT i.k, i.name, format('row %s, %s', j.k, j.name)
              FROM r i JOIN r j ON length(i.digits) >= 3 AND j.digits = i.digits AND j.k < i.k) x
         ORDER BY x.k LIMIT 1;
        IF FOUND THEN
            PERFORM hms.fail('HM410', format('row %s: %s may be registered already (%s); '
                                             'import anyway (--allow-duplicate)',
                                             clash.k, clash.name, clash.what));
        END IF;
    END IF;
    INSERT INTO hms.patients (name, phone, birth_date)
    SELECT hms.trim_text(r.name), nullif(hms.trim_text(r.phone), ''), r.birth
      FROM unnest(p_names, p_phones, p_births) WITH ORDINALITY AS r(name, phone, birth, k)
     ORDER BY r.k;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
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

-- What search matches: the name in lower case (p_lname) holds the text, or the MRN starts
-- with it, or, when the text is phone digits (at least three, with only spaces, '+' or '-'
-- besides), the phone's digits hold them. pat is the lower-case text with % and _ escaped
-- (they match literally); digits is NULL unless the text is phone digits.
CREATE FUNCTION hms.search_match(p_lname text, p_mrn text, p_phone text, pat text, digits text)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_lname LIKE '%' || pat || '%'
        OR lower(p_mrn) LIKE pat || '%'
        OR (digits IS NOT NULL
            -- the phone's digits: it holds only digits, spaces, '-' and a leading '+' (CHECK)
            AND translate(coalesce(p_phone, ''), '+ -', '') LIKE '%' || digits || '%')
$$;

-- Search's third group (hms.search_patients): matches that neither have the MRN lt nor a
-- name starting with it, latest registered first, at most p_need. Two ways to find them:
--
-- Latest first: read the patients backwards by id (the table lies in that order) and keep
-- the matches; p_rows bounds how many are read (NULL: no bound). A common text meets its
-- first matches soon.
CREATE FUNCTION hms.search_recent(lt text, pat text, digits text, p_need integer, p_rows integer)
RETURNS bigint[]
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN ARRAY(
        SELECT w.id FROM (SELECT p.id, lower(p.name) COLLATE "C" AS lname, p.mrn, p.phone
                            FROM hms.patients p ORDER BY p.id DESC LIMIT p_rows) w
         WHERE hms.search_match(w.lname, w.mrn, w.phone, pat, digits)
           AND NOT w.lname LIKE pat || '%' AND lower(w.mrn) <> lt
         ORDER BY w.id DESC LIMIT p_need);
END $$;

-- From the gram and MRN indexes (0009_scale.sql): every patient holding all the text's
-- pieces, each kept only if it truly matches, latest first. NULL when more than p_cap match
-- (p_cap NULL: no bound): a text that common is better read latest first.
CREATE FUNCTION hms.search_by_grams(lt text, pat text, digits text, p_need integer, p_cap integer)
RETURNS bigint[]
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    found_ bigint[];
    n      bigint;
BEGIN
    -- One index per branch, so no branch's index condition is evaluated again per row;
    -- UNION ALL, so the limit stops the reading (a patient found twice is kept once below,
    -- and counted twice against the cap: the cap only chooses the way, never the result).
    SELECT array_agg(DISTINCT c.id), count(*) INTO found_, n FROM (
        SELECT c.id FROM (
            SELECT p.id, lower(p.name) COLLATE "C" AS lname, p.mrn, p.phone FROM hms.patients p
             WHERE hms.search_grams(lower(p.name), 1)
                   @> CASE WHEN length(lt) < 3 THEN ARRAY[lt] ELSE hms.search_grams(lt, 3) END
            UNION ALL
            SELECT p.id, lower(p.name) COLLATE "C", p.mrn, p.phone FROM hms.patients p
             WHERE lower(p.mrn) COLLATE "C" LIKE pat || '%'
            UNION ALL
            SELECT p.id, lower(p.name) COLLATE "C", p.mrn, p.phone FROM hms.patients p
             WHERE digits IS NOT NULL AND p.phone IS NOT NULL
               AND hms.search_grams(regexp_replace(p.phone, '[^0-9]', '', 'g'), 3)
                   @> hms.search_grams(digits, 3)) c
         WHERE hms.search_match(c.lname, c.mrn, c.phone, pat, digits)
           AND NOT c.lname LIKE pat || '%' AND lower(c.mrn) <> lt
         LIMIT p_cap + 1) c;
    IF n > p_cap THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY(SELECT x FROM unnest(found_) x ORDER BY x DESC LIMIT p_need);
END $$;

-- Patients matching a name part, an MRN prefix or phone digits (hms.search_match), in this
-- order: an MRN equal to the text, then names that start with it, by name (lower case,
-- character order) and id, then the other matches, latest registered first; for an empty
-- text, the latest registered. tests/test_search.py holds it to the one-query definition.
--
-- Fast at a million patients without pg_trgm (the embedded server has none): the first two
-- groups are index ranges in their order; the third is read latest first when the text is
-- letters (a common text matches soon), from the gram indexes first when it holds a digit
-- (phones and MRNs are rare in names), the other way when the first gives up.
CREATE FUNCTION hms.search_patients(p_text text, p_limit integer DEFAULT 50)
RETURNS TABLE (id bigint, mrn text, name text, phone text, birth_date date, age integer, active_visits text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp
SET plan_cache_mode = force_custom_plan AS $$  -- the text decides which index serves
DECLARE
    t      text := btrim(coalesce(p_text, ''));
    lim    integer := least(greatest(p_limit, 1), 500);
    lt     text := lower(btrim(coalesce(p_text, '')));
    pat    text := hms.like_escape(lower(btrim(coalesce(p_text, ''))));
    digits text := regexp_replace(coalesce(p_text, ''), '[^0-9]', '', 'g');
    today  date := hms.business_date();
    ids    bigint[];
    more   bigint[];
    need   integer;
BEGIN
    IF NOT (length(digits) >= 3 AND digits = regexp_replace(t, '[ +-]', '', 'g')) THEN
        digits := NULL;
    END IF;
    IF t = '' THEN
        ids := ARRAY(SELECT p.id FROM hms.patients p ORDER BY p.id DESC LIMIT lim);
    ELSE
        ids := ARRAY(SELECT p.id FROM hms.patients p WHERE lower(p.mrn) COLLATE "C" = lt
                      ORDER BY lower(p.name) COLLATE "C", p.id LIMIT lim);
        ids := ids || ARRAY(
            SELECT p.id FROM hms.patients p
             WHERE lower(p.name) COLLATE "C" LIKE pat || '%' AND lower(p.mrn) <> lt
             ORDER BY lower(p.name) COLLATE "C", p.id LIMIT lim - cardinality(ids));
        need := lim - cardinality(ids);
    END IF;
    IF need > 0 AND t ~ '[0-9]' THEN
        more := coalesce(hms.search_by_grams(lt, pat, digits, need, 2000),
                         hms.search_recent(lt, pat, digits, need, NULL));
    ELSIF need > 0 THEN
        more := hms.search_recent(lt, pat, digits, need, 5000);
        IF cardinality(more) < need THEN
            more := hms.search_by_grams(lt, pat, digits, need, NULL);
        END IF;
    END IF;
    ids := ids || coalesce(more, '{}');
    RETURN QUERY
    SELECT p.id, p.mrn, p.name, p.phone, p.birth_date,
           CASE WHEN p.birth_date IS NULL THEN NULL
                ELSE extract(year FROM age(today, p.birth_date))::integer END,
           (SELECT string_agg(coalesce(v.token, d.code || ' booked') || ' ' || v.status, ', ' ORDER BY v.id)
              FROM hms.visits v JOIN hms.doctors d ON d.id = v.doctor_id
             WHERE v.patient_id = p.id AND v.business_date = today
               AND v.status IN ('BOOKED', 'WAITING', 'CALLED', 'IN_CONSULTATION'))
      FROM unnest(ids) WITH ORDINALITY AS x(id, n) JOIN hms.patients p ON p.id = x.id
     ORDER BY x.n;
END $$;
