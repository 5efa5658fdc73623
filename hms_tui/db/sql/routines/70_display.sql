-- The waiting-room display: what it may see of a queue. Initials instead of names, no MRN,
-- no patient id, no cancel reason; the same rows, order, positions and estimates as the desk
-- (hms.ranked), read through hms.display_queue (whole) or hms.live_display (changes).

-- 'Kumar, Anil' -> 'K. A.': the first letter of up to three name parts. Parts without a
-- letter (an emoji, a bracket, a digit) give none, so '😀 Sam [x]' -> 'S.'.
CREATE FUNCTION hms.initials(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(string_agg(upper(w.letter) || '.', ' ' ORDER BY w.n), '')
      FROM (SELECT l.letter, l.n, row_number() OVER (ORDER BY l.n) AS k
              FROM (SELECT substring(s.part FROM
                        -- not ASCII punctuation, digits or symbols, general punctuation,
                        -- symbols and emoji, variation selectors, zero-width characters
                        '[^\x01-\x40\x5b-\x60\x7b-\xbf\xd7\xf7\u2000-\u2bff\u3000-\u303f\ufe00-\ufe0f\ufeff\uff00-\uff20\U0001f000-\U0001faff]') AS letter,
                           s.n
                      FROM regexp_split_to_table(coalesce(p_name, ''), '[\s,]+')
                           WITH ORDINALITY AS s(part, n)) l
             WHERE l.letter IS NOT NULL) w
     WHERE w.k <= 3
$$;

CREATE FUNCTION hms.masked(i hms.visit_info) RETURNS hms.visit_info
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    i.patient_id := 0;
    i.patient_name := hms.initials(i.patient_name);
    i.mrn := '';
    i.cancel_reason := NULL;
    RETURN i;
END $$;

-- Today's active visits of every doctor, masked, by doctor and then in queue order. Columns
-- are exactly those of hms.visit_info, so a row reads like one of hms.queue. The view is
-- what the display role may read; the function behind it reads the tables as their owner.
CREATE FUNCTION hms.display_rows() RETURNS SETOF hms.visit_info
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    bd   date := hms.business_date();
    d    hms.doctors;
    line hms.visits[];
    per  numeric;
BEGIN
    -- One doctor at a time, with the queue and pace in variables: as arguments of the
    -- inlined hms.ranked_infos, calls would run again for every row.
    FOR d IN SELECT * FROM hms.doctors ORDER BY code LOOP
        line := hms.day_visits(d.id, bd, false);
        CONTINUE WHEN cardinality(line) = 0;
        per := hms.consult_minutes(d.id, bd);
        RETURN QUERY SELECT m.* FROM hms.ranked_infos(line, per) x, LATERAL hms.masked(x.info) m
                      ORDER BY x.ord;
    END LOOP;
END $$;

CREATE VIEW hms.display_queue WITH (security_barrier) AS SELECT * FROM hms.display_rows();

CREATE FUNCTION hms.live_display(p_doctors text[], p_since bigint[])
RETURNS TABLE (doctor text, head_version bigint, ord integer, visit_id bigint,
               "position" integer, wait_minutes integer, eta_from timestamptz,
               eta_to timestamptz, info hms.visit_info)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.live_rows(p_doctors, p_since, true)
$$;
