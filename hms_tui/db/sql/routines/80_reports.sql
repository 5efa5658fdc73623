-- Clinic statistics, from database timestamps and the audit trail only (never a terminal's
-- clock). Waits run from arrival (checked_in_at) to the FIRST call (from the trail: a recall
-- moves called_at on); consultations from start to end.

-- The instants a business date spans in the clinic's zone (with a day either side, which an
-- index on the trail's time can serve; the business date itself is checked on each row).
CREATE FUNCTION hms.day_span(p_date date, OUT from_at timestamptz, OUT to_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT (p_date - 1)::timestamp AT TIME ZONE s.timezone, (p_date + 2)::timestamp AT TIME ZONE s.timezone
      FROM hms.settings s
$$;

CREATE FUNCTION hms.first_calls(p_date date) RETURNS TABLE (visit_id bigint, first_call timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT e.visit_id, min(e.at)
      FROM hms.audit_log e, hms.day_span(p_date) span
     WHERE e.entity = 'visits' AND e.at >= span.from_at AND e.at < span.to_at
       AND e.after ->> 'status' = 'CALLED' AND e.before ->> 'status' IS DISTINCT FROM 'CALLED'
       AND (e.after ->> 'business_date')::date = p_date
     GROUP BY e.visit_id
$$;

CREATE FUNCTION hms.minutes(i interval) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT round((extract(epoch FROM i) / 60)::numeric, 1)
$$;

-- One day's report as a JSON document (hms_tui/services/reports.py reads it):
--   {"date", "target_minutes", "clinic": {figures}, "doctors": [{"doctor", figures}],
--    "hours": [{"hour", "arrivals", "calls", "over_target"}],
--    "staff": [{"login", "checkins", "calls", "consultations"}]}
-- figures: arrivals, transfers_in, booked, walk_in, seen, no_shows, no_show_rate,
-- cancellations, transfers, called, wait_p50, wait_p90, wait_max, consult_p50, consult_p90,
-- over_target, over_target_share, estimates, estimate_abs_error_p50, estimate_within_share.
CREATE FUNCTION hms.report_day(p_date date DEFAULT NULL, p_doctor text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    day    date := coalesce(p_date, hms.business_date());
    s      hms.settings := (SELECT st FROM hms.settings st);
    v_only text := CASE WHEN p_doctor IS NULL THEN NULL ELSE (hms.doctor_by_code(p_doctor)).code END;
    result jsonb;
BEGIN
    WITH v AS (
        SELECT v.*, d.code, fc.first_call,
               hms.minutes(fc.first_call - v.checked_in_at) AS wait,
               CASE WHEN v.status = 'COMPLETED' THEN hms.minutes(v.ended_at - v.started_at) END AS consult,
               -- from the middle of the quoted range, in exact epoch arithmetic
               round(abs(extract(epoch FROM fc.first_call) * 2 - extract(epoch FROM v.quoted_from)
                         - extract(epoch FROM v.quoted_to)) / 120, 1) AS est_error,
               fc.first_call BETWEEN v.quoted_from AND v.quoted_to AS est_within
          FROM hms.visits v JOIN hms.doctors d ON d.id = v.doctor_id
          LEFT JOIN hms.first_calls(day) fc ON fc.visit_id = v.id
         WHERE v.business_date = day AND (v_only IS NULL OR d.code = v_only)
    ), figures AS (
        SELECT code, GROUPING(code) AS whole,
               count(*) FILTER (WHERE checked_in_at IS NOT NULL AND transferred_from IS NULL) AS arrivals,
               count(*) FILTER (WHERE transferred_from IS NOT NULL) AS transfers_in,
               count(*) FILTER (WHERE checked_in_at IS NOT NULL AND transferred_from IS NULL
                                  AND appointment_at IS NOT NULL) AS booked,
               count(*) FILTER (WHERE checked_in_at IS NOT NULL AND transferred_from IS NULL
                                  AND appointment_at IS NULL) AS walk_in,
               count(*) FILTER (WHERE status = 'COMPLETED') AS seen,
               count(*) FILTER (WHERE status = 'NO_SHOW') AS no_shows,
               count(*) FILTER (WHERE status = 'CANCELLED') AS cancellations,
               count(*) FILTER (WHERE status = 'TRANSFERRED') AS transfers,
               count(first_call) AS called,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY wait) AS wait_p50,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY wait) AS wait_p90,
               max(wait) AS wait_max,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY consult) AS consult_p50,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY consult) AS consult_p90,
               count(*) FILTER (WHERE wait > s.wait_target_minutes) AS over_target,
               count(est_error) AS estimates,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY est_error) AS estimate_abs_error_p50,
               count(*) FILTER (WHERE est_within) AS estimates_within
          FROM v GROUP BY GROUPING SETS ((code), ())
    ), docs AS (
        SELECT f.code, f.whole, jsonb_build_object(
                   'arrivals', f.arrivals, 'transfers_in', f.transfers_in, 'booked', f.booked,
                   'walk_in', f.walk_in, 'seen', f.seen, 'no_shows', f.no_shows,
                   'no_show_rate', round(f.no_shows::numeric / nullif(f.seen + f.no_shows, 0), 3),
                   'cancellations', f.cancellations, 'transfers', f.transfers, 'called', f.called,
                   'wait_p50', round(f.wait_p50::numeric, 1), 'wait_p90', round(f.wait_p90::numeric, 1),
                   'wait_max', f.wait_max, 'consult_p50', round(f.consult_p50::numeric, 1),
                   'consult_p90', round(f.consult_p90::numeric, 1), 'over_target', f.over_target,
                   'over_target_share', round(f.over_target::numeric / nullif(f.called, 0), 3),
                   'estimates', f.estimates,
                   'estimate_abs_error_p50', round(f.estimate_abs_error_p50::numeric, 1),
                   'estimate_within_share', round(f.estimates_within::numeric / nullif(f.estimates, 0), 3)
               ) AS doc
          FROM figures f
    ), hours AS (
        SELECT h.hour,
               (SELECT count(*) FROM v WHERE checked_in_at IS NOT NULL AND transferred_from IS NULL
                   AND extract(hour FROM checked_in_at AT TIME ZONE s.timezone) = h.hour) AS arrivals,
               (SELECT count(*) FROM v WHERE first_call IS NOT NULL
                   AND extract(hour FROM first_call AT TIME ZONE s.timezone) = h.hour) AS calls,
               (SELECT count(*) FROM v WHERE wait > s.wait_target_minutes
                   AND extract(hour FROM checked_in_at AT TIME ZONE s.timezone) = h.hour) AS over_target
          FROM generate_series(0, 23) h(hour)
    ), staff AS (
        SELECT e.actor,
               count(*) FILTER (WHERE e.action IN ('checkin', 'arrive') AND e.after ->> 'status' = 'WAITING'
                                  AND e.before ->> 'status' IS DISTINCT FROM 'WAITING') AS checkins,
               count(*) FILTER (WHERE e.action IN ('call_next', 'call')) AS calls,
               count(*) FILTER (WHERE e.action = 'complete') AS consultations
          FROM hms.audit_log e, hms.day_span(day) span
         WHERE e.entity = 'visits' AND e.at >= span.from_at AND e.at < span.to_at
           AND (e.after ->> 'business_date')::date = day
           AND (v_only IS NULL OR e.visit_id IN (SELECT id FROM v))
         GROUP BY e.actor
    )
    SELECT jsonb_build_object(
               'date', day, 'target_minutes', s.wait_target_minutes, 'doctor', v_only,
               'clinic', (SELECT doc FROM docs WHERE whole = 1),
               'doctors', coalesce((SELECT jsonb_agg(jsonb_build_object('doctor', code) || doc ORDER BY code)
                                      FROM docs WHERE whole = 0), '[]'),
               'hours', (SELECT jsonb_agg(jsonb_build_object('hour', hour, 'arrivals', arrivals,
                                                             'calls', calls, 'over_target', over_target)
                                          ORDER BY hour) FROM hours),
               'staff', coalesce((SELECT jsonb_agg(jsonb_build_object('login', actor, 'checkins', checkins,
                                                                       'calls', calls, 'consultations', consultations)
                                                   ORDER BY actor)
                                    FROM staff WHERE checkins + calls + consultations > 0), '[]'))
      INTO result;
    RETURN result;
END $$;

-- One row per day for trends: the clinic's main figures.
CREATE FUNCTION hms.report_range(p_from date, p_to date, p_doctor text DEFAULT NULL)
RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
BEGIN
    IF p_to < p_from OR p_to - p_from > 366 THEN
        PERFORM hms.fail('HM422', format('a range is up to a year, from its first day to its last (%s to %s)', p_from, p_to));
    END IF;
    RETURN QUERY
    SELECT jsonb_build_object('date', g.day::date) || coalesce(r -> 'clinic', '{}')
      FROM generate_series(p_from, p_to, interval '1 day') g(day),
           LATERAL hms.report_day(g.day::date, p_doctor) r
     ORDER BY g.day;
END $$;

-- Patients waiting longer than the clinic's target right now (the admin's live board).
CREATE FUNCTION hms.over_target() RETURNS TABLE (doctor text, token text, patient_name text,
                                                 waited_minutes numeric, priority text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT d.code, v.token, p.name, hms.minutes(now() - v.checked_in_at), v.priority::text
      FROM hms.visits v JOIN hms.doctors d ON d.id = v.doctor_id
      JOIN hms.patients p ON p.id = v.patient_id, hms.settings s
     WHERE v.business_date = hms.business_date() AND v.status = 'WAITING'
       AND now() - v.checked_in_at > make_interval(mins => s.wait_target_minutes)
     ORDER BY v.checked_in_at
$$;
