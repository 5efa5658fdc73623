-- The past from the trail: the queues as they stood at any moment, the trail checked against
-- the tables, a row restored from it, and the day close.

-- The latest image of each row of an audited table as of p_at (NULL: deleted by then), with
-- the row's key (its primary key columns, as JSON). p_since: only rows whose latest change
-- came after it (served by the trail's index on time); p_ids: only these entity ids (served
-- by its index for patients, doctors and settings).
CREATE FUNCTION hms.trail_images(p_entity text, p_at timestamptz DEFAULT 'infinity',
                                 p_since timestamptz DEFAULT '-infinity',
                                 p_ids bigint[] DEFAULT NULL)
RETURNS TABLE (key jsonb, image jsonb, at timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE cols text[];
BEGIN
    SELECT array_agg(a.attname::text ORDER BY k.n) INTO cols
      FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, n), pg_attribute a
     WHERE i.indrelid = format('hms.%I', p_entity)::regclass AND i.indisprimary
       AND a.attrelid = i.indrelid AND a.attnum = k.attnum;
    -- The entity as a literal, so the planner can use the partial index.
    RETURN QUERY EXECUTE format($q$
        SELECT DISTINCT ON (x.key) x.key, x.after, x.at
          FROM (SELECT (SELECT jsonb_object_agg(c, coalesce(e.after, e.before) -> c)
                          FROM unnest($1) c) AS key,
                       e.after, e.at, e.seq, e.ticket
                  FROM hms.audit_log e
                 WHERE e.entity = %L AND e.at <= $2 AND e.at >= $3
                   AND ($4 IS NULL OR e.entity_id = ANY ($4))) x
         ORDER BY x.key, x.seq DESC NULLS FIRST, x.ticket DESC
    $q$, p_entity) USING cols, p_at, p_since, p_ids;
END $$;

-- Every queue as it stood at p_at, rebuilt from the trail alone -- visits, names, rooms and
-- settings as they were then -- and ranked by the one queue definition (hms.ranked), with the
-- estimates as of each queue's last change before p_at: the same rows hms.queue gave then.
-- Only the trail of the last eight days is read for visits (a visit in a queue was checked in
-- that day; the pace looks back seven), and only the patients in the queues.
CREATE FUNCTION hms.replay(p_at timestamptz, p_doctor text DEFAULT NULL)
RETURNS TABLE (doctor text, ord integer, info hms.visit_info)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    s     hms.settings;
    bd    date;
    since timestamptz;
BEGIN
    IF p_at > now() THEN
        PERFORM hms.fail('HM422', format('%s is still to come; the trail replays the past',
                                         to_char(p_at, 'YYYY-MM-DD HH24:MI:SS TZ')));
    END IF;
    s := jsonb_populate_record((SELECT st FROM hms.settings st),
                               (SELECT t.image FROM hms.trail_images('settings', p_at) t LIMIT 1));
    bd := (p_at AT TIME ZONE s.timezone)::date;
    since := (bd - 8)::timestamp AT TIME ZONE s.timezone;
    RETURN QUERY
    WITH visits AS MATERIALIZED (
        SELECT jsonb_populate_record(NULL::hms.visits, t.image) AS v, t.at
          FROM hms.trail_images('visits', p_at, since) t
         WHERE t.image IS NOT NULL AND (t.image ->> 'business_date')::date BETWEEN bd - 7 AND bd
    ), doctors AS (
        SELECT jsonb_populate_record(NULL::hms.doctors, t.image) AS d
          FROM hms.trail_images('doctors', p_at) t WHERE t.image IS NOT NULL
    ), queues AS (
        SELECT dd.d,
               ARRAY(SELECT x.v FROM visits x WHERE (x.v).doctor_id = (dd.d).id
                        AND (x.v).business_date = bd
                        AND (x.v).status IN ('WAITING', 'CALLED', 'IN_CONSULTATION')) AS line,
               coalesce(hms.pace(ARRAY(SELECT x.v FROM visits x WHERE (x.v).doctor_id = (dd.d).id
                                          AND (x.v).business_date = bd)),
                        hms.pace(ARRAY(SELECT x.v FROM visits x WHERE (x.v).doctor_id = (dd.d).id
                                          AND (x.v).business_date < bd)),
                        s.consult_minutes) AS pace,
               -- the queue's clock: when its latest version was written (hms.queue_clock)
               (SELECT e.at FROM hms.audit_log e
                 WHERE e.entity = 'visits' AND e.at <= p_at AND e.at >= since
                   AND (e.after ->> 'doctor_id')::integer = (dd.d).id
                   AND (e.after ->> 'business_date')::date = bd
                 ORDER BY (e.after ->> 'queue_version')::bigint DESC LIMIT 1) AS clock
          FROM doctors dd
         WHERE p_doctor IS NULL OR (dd.d).code = hms.parse_code(p_doctor)
    ), patients AS (
        SELECT jsonb_populate_record(NULL::hms.patients, t.image) AS p
          FROM hms.trail_images('patients', p_at, '-infinity',
                                ARRAY(SELECT DISTINCT l.patient_id
                                        FROM queues q, unnest(q.line) l)) t
         WHERE t.image IS NOT NULL
    )
    SELECT (q.d).code, r.ord, ROW(
        (r.visit).id, (r.visit).token, (r.visit).serial, r.position, (r.visit).status::text,
        (r.visit).priority::text, (pp.p).id, (pp.p).name, (pp.p).mrn, (q.d).code, (q.d).name,
        (q.d).room, (r.visit).business_date, (r.visit).appointment_at, (r.visit).checked_in_at,
        (r.visit).called_at, (r.visit).call_count, (r.visit).started_at, (r.visit).ended_at,
        (r.visit).cancel_reason, (r.visit).transferred_from,
        (SELECT (x.v).id FROM visits x WHERE (x.v).transferred_from = (r.visit).id),
        r.wait_minutes, false, r.eta_from, r.eta_to)::hms.visit_info
      FROM queues q,
           LATERAL hms.ranked(q.line, q.pace, coalesce(q.clock, p_at)) r
      JOIN patients pp ON (pp.p).id = (r.visit).patient_id
     ORDER BY (q.d).code, r.ord;
END $$;

-- The trail against the tables: for every audited table, each live row against its latest
-- image in the trail -- a row the trail does not know, a row the trail says exists but is
-- gone, and every column that differs (both values). Columns added after an image was written
-- are not compared for it. p_date limits visits to one business date.
CREATE FUNCTION hms.audit_check(p_date date DEFAULT NULL)
RETURNS TABLE (entity text, key jsonb, "column" text, trail_value jsonb, table_value jsonb,
               problem text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    t    text;
    cols text[];
BEGIN
    FOREACH t IN ARRAY ARRAY['settings', 'doctors', 'patients', 'visits', 'bills', 'bill_items',
                             'staff_doctors', 'sessions', 'leaves', 'day_closes'] LOOP
        SELECT array_agg(a.attname::text ORDER BY k.n) INTO cols
          FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, n), pg_attribute a
         WHERE i.indrelid = format('hms.%I', t)::regclass AND i.indisprimary
           AND a.attrelid = i.indrelid AND a.attnum = k.attnum;
        RETURN QUERY EXECUTE format($q$
            WITH live AS (
                SELECT (SELECT jsonb_object_agg(c, to_jsonb(r) -> c) FROM unnest($1) c) AS key,
                       to_jsonb(r) AS row
                  FROM hms.%I r
            ), pairs AS (
                SELECT coalesce(i.key, l.key) AS key, i.image, l.row
                  FROM hms.trail_images(%L) i FULL JOIN live l ON l.key = i.key
                 WHERE (i.image IS NULL) IS DISTINCT FROM (l.row IS NULL) OR i.image <> l.row
            )
            SELECT %L, p.key, NULL::text, p.image, p.row,
                   CASE WHEN p.row IS NULL THEN 'the trail says it exists; the table has no such row'
                        ELSE 'the table has a row the trail never recorded' END
              FROM pairs p
             WHERE (p.image IS NULL) <> (p.row IS NULL)
               AND ($2::date IS NULL OR %L <> 'visits'
                    OR coalesce(p.row, p.image) ->> 'business_date' = $2::text)
            UNION ALL
            SELECT %L, p.key, c.col, p.image -> c.col, p.row -> c.col,
                   'changed behind the trail''s back'
              FROM pairs p, LATERAL jsonb_object_keys(p.image) c(col)
             WHERE p.image IS NOT NULL AND p.row IS NOT NULL
               AND (p.image -> c.col) IS DISTINCT FROM (p.row -> c.col)
               AND ($2::date IS NULL OR %L <> 'visits' OR p.row ->> 'business_date' = $2::text)
        $q$, t, t, t, t, t, t, t) USING cols, p_date;
    END LOOP;
END $$;

-- What the trail says visit p_visit should be, against what it is; with p_apply, the row is
-- put back to it through the normal, audited write path (action 'restore').
CREATE FUNCTION hms.audit_restore(p_visit bigint, p_apply boolean DEFAULT false)
RETURNS TABLE ("column" text, trail_value jsonb, table_value jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    -- its latest image (the trail's index by visit serves this)
    image jsonb := (SELECT e.after FROM hms.audit_log e
                     WHERE e.visit_id = p_visit AND e.entity = 'visits'
                     ORDER BY e.seq DESC NULLS FIRST, e.ticket DESC LIMIT 1);
    live  hms.visits;
BEGIN
    IF image IS NULL THEN
        PERFORM hms.fail('HM404', format('the trail has no visit %s', p_visit));
    END IF;
    IF p_apply THEN
        PERFORM hms.begin_action('restore');
        live := hms.lock_visit(p_visit);
    ELSE
        SELECT * INTO live FROM hms.visits WHERE id = p_visit;
    END IF;
    RETURN QUERY
    SELECT c.col, image -> c.col, to_jsonb(live) -> c.col
      FROM jsonb_object_keys(image) c(col)
     WHERE (image -> c.col) IS DISTINCT FROM (to_jsonb(live) -> c.col);
    IF p_apply AND FOUND THEN
        EXECUTE (SELECT 'UPDATE hms.visits SET '
                        || string_agg(format('%1$I = ($1).%1$I', c.col), ', ')
                        || ' WHERE id = $2'
                   FROM jsonb_object_keys(image) c(col)
                  WHERE c.col NOT IN ('id', 'queue_version')
                    AND (image -> c.col) IS DISTINCT FROM (to_jsonb(live) -> c.col))
          USING jsonb_populate_record(live, image), p_visit;
    END IF;
END $$;

-- Close a business day: visits still waiting or called become the clinic's close_as
-- (NO_SHOW, or CANCELLED with a reason), bookings that never arrived become NO_SHOW, and the
-- day's report is kept. Safe to run twice, or from two terminals at once (the second waits,
-- then finds nothing left to close).
CREATE FUNCTION hms.day_close(p_date date DEFAULT NULL)
RETURNS TABLE (business_date date, closed_at timestamptz, closed_by text, closed_now integer,
               closed_visits integer, summary jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
#variable_conflict use_column
DECLARE
    day    date := coalesce(p_date, hms.business_date());
    s      hms.settings := (SELECT st FROM hms.settings st);
    closed integer;
    booked integer;
    d      integer;
    result hms.day_closes;
BEGIN
    PERFORM hms.begin_action('day_close');
    IF day > hms.business_date() THEN
        PERFORM hms.fail('HM422', format('%s has not begun yet; a day is closed when it ends', day));
    END IF;
    -- Every queue of the day, in the fixed lock order.
    FOR d IN SELECT DISTINCT doctor_id FROM hms.visits WHERE business_date = day ORDER BY 1 LOOP
        PERFORM hms.lock_queue(d, day);
    END LOOP;
    PERFORM pg_advisory_xact_lock(hashtext('hms.day_close'), (day - date '2000-01-01'));
    UPDATE hms.visits SET status = s.close_as::hms.visit_status, ended_at = now(),
                          cancel_reason = CASE WHEN s.close_as = 'CANCELLED'
                                               THEN 'the day was closed' END
     WHERE business_date = day AND status IN ('WAITING', 'CALLED');
    GET DIAGNOSTICS closed = ROW_COUNT;
    UPDATE hms.visits SET status = 'NO_SHOW', ended_at = now()
     WHERE business_date = day AND status = 'BOOKED';
    GET DIAGNOSTICS booked = ROW_COUNT;
    INSERT INTO hms.day_closes (business_date, closed_visits, summary)
    VALUES (day, closed + booked, hms.report_day(day))
    ON CONFLICT (business_date) DO UPDATE
        SET closed_at = now(), closed_by = session_user,
            closed_visits = hms.day_closes.closed_visits + excluded.closed_visits,
            summary = excluded.summary
    RETURNING * INTO result;
    RETURN QUERY SELECT result.business_date, result.closed_at, result.closed_by, closed + booked,
                        result.closed_visits, result.summary;
END $$;
