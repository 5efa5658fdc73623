-- Appointments: doctors' sessions cut into slots with a capacity, leave, and booking into them.
--
-- Every booking of a doctor's day takes that day's queue lock (hms.lock_queue) before it
-- counts a slot's places, so the last place in a slot is taken once however many desks try.

CREATE FUNCTION hms.weekday_names(p_days integer[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg((ARRAY['mon','tue','wed','thu','fri','sat','sun'])[d], ',' ORDER BY d)
      FROM unnest(p_days) d
$$;

CREATE FUNCTION hms.parse_weekdays(p_text text) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    names text[] := ARRAY['mon','tue','wed','thu','fri','sat','sun'];
    part  text;
    out   integer[] := '{}';
BEGIN
    FOREACH part IN ARRAY string_to_array(lower(coalesce(p_text, '')), ',') LOOP
        part := btrim(part);
        IF NOT (left(part, 3) = ANY (names)) OR length(part) < 3 THEN
            PERFORM hms.fail('HM422', format('%L is not a weekday; use mon,tue,wed,thu,fri,sat,sun', part));
        END IF;
        out := out || array_position(names, left(part, 3));
    END LOOP;
    IF cardinality(out) = 0 THEN
        PERFORM hms.fail('HM422', 'give the days of the session, e.g. mon,wed,fri');
    END IF;
    RETURN ARRAY(SELECT DISTINCT unnest(out) ORDER BY 1);
END $$;

CREATE TYPE hms.session_info AS (
    id           integer,
    doctor       text,
    days         text,      -- 'mon,wed' for a weekly session
    on_date      date,      -- the date of an extra session
    starts       time,
    ends         time,
    slot_minutes integer,
    capacity     integer,
    room         text
);

CREATE FUNCTION hms.session_info(s hms.sessions) RETURNS hms.session_info
LANGUAGE sql STABLE AS $$
    SELECT ROW(s.id, d.code, hms.weekday_names(s.weekdays), s.on_date, s.starts, s.ends,
               s.slot_minutes, s.capacity, coalesce(s.room, d.room))::hms.session_info
      FROM hms.doctors d WHERE d.id = s.doctor_id
$$;

-- The sessions a doctor holds on a date (weekly ones on its weekday, extra ones on it), none
-- while on leave.
CREATE FUNCTION hms.day_sessions(p_doctor integer, p_date date) RETURNS SETOF hms.sessions
LANGUAGE sql STABLE AS $$
    SELECT s.* FROM hms.sessions s
     WHERE s.doctor_id = p_doctor AND s.removed_at IS NULL
       AND (s.on_date = p_date
            OR (s.on_date IS NULL AND extract(isodow FROM p_date)::integer = ANY (s.weekdays)))
       AND NOT EXISTS (SELECT 1 FROM hms.leaves l
                        WHERE l.doctor_id = p_doctor AND p_date BETWEEN l.from_date AND l.to_date)
$$;

-- A doctor's slots on a date: the start of each (clinic local time, as an instant; a local
-- time that does not exist on a daylight-saving day has no slot), its capacity, the bookings in
-- it (every one but cancelled: a booking that arrived still used its place) and what is free.
CREATE FUNCTION hms.day_slots(p_doctor integer, p_date date)
RETURNS TABLE (session_id integer, starts timestamptz, capacity integer, booked integer,
               free integer, room text)
LANGUAGE sql STABLE AS $$
    WITH tz AS (SELECT timezone AS name FROM hms.settings)
    SELECT s.id, t.at, s.capacity, b.n, greatest(s.capacity - b.n, 0),
           coalesce(s.room, (SELECT room FROM hms.doctors WHERE id = p_doctor))
      FROM hms.day_sessions(p_doctor, p_date) s, tz,
           LATERAL generate_series(p_date + s.starts,
                                   p_date + s.ends - make_interval(mins => s.slot_minutes),
                                   make_interval(mins => s.slot_minutes)) AS g(local),
           LATERAL (SELECT g.local AT TIME ZONE tz.name AS at) t,
           LATERAL (SELECT count(*)::integer AS n FROM hms.visits v
                     WHERE v.doctor_id = p_doctor AND v.business_date = p_date
                       AND v.appointment_at = t.at AND v.status <> 'CANCELLED') b
     WHERE (t.at AT TIME ZONE tz.name) = g.local
     ORDER BY t.at
$$;

CREATE FUNCTION hms.slots(p_doctor text, p_date date DEFAULT NULL)
RETURNS TABLE (doctor text, starts timestamptz, capacity integer, booked integer, free integer,
               room text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT d.code, x.starts, x.capacity, x.booked, x.free, x.room
      FROM hms.doctor_by_code(p_doctor) d,
           LATERAL hms.day_slots(d.id, coalesce(p_date, hms.business_date())) x
$$;

-- The next free slots from a moment on (this date and the following 14 days), for messages.
CREATE FUNCTION hms.next_free(p_doctor integer, p_from timestamptz, p_limit integer DEFAULT 3)
RETURNS timestamptz[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(x.starts ORDER BY x.starts), '{}') FROM (
        SELECT s.starts
          FROM generate_series(0, 14) g(n),
               LATERAL hms.day_slots(p_doctor, (p_from AT TIME ZONE (SELECT timezone FROM hms.settings))::date + g.n) s
         WHERE s.free > 0 AND s.starts > p_from
         ORDER BY s.starts LIMIT p_limit) x
$$;

CREATE FUNCTION hms.local_hm(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE (SELECT timezone FROM hms.settings), 'YYYY-MM-DD HH24:MI')
$$;

-- The slot a booking takes: at p_at (clinic local time), or with only p_date the first free
-- one that day (from now on). Refused when there is no such slot, or it is full unless
-- p_overbook gives a reason (then the booking is audited with it). Caller holds the lock.
CREATE FUNCTION hms.take_slot(d hms.doctors, p_at timestamp, p_date date, p_overbook text,
                              p_exclude bigint DEFAULT NULL)
RETURNS TABLE (starts timestamptz, session_id integer)
LANGUAGE plpgsql AS $$
DECLARE
    tz    text := (SELECT timezone FROM hms.settings);
    day   date := coalesce(p_at::date, p_date);
    slot  record;
    taken integer;
    nexts timestamptz[];
BEGIN
    IF EXISTS (SELECT 1 FROM hms.leaves l WHERE l.doctor_id = d.id AND day BETWEEN l.from_date AND l.to_date) THEN
        PERFORM hms.fail('HM422', format('%s (%s) is on leave on %s; choose another day', d.name, d.code, day));
    END IF;
    IF p_at IS NULL THEN
        SELECT * INTO slot FROM hms.day_slots(d.id, day) s
         WHERE s.free > 0 AND s.starts >= now() ORDER BY s.starts LIMIT 1;
        IF NOT FOUND THEN
            nexts := hms.next_free(d.id, greatest(now(), (day + 1)::timestamp AT TIME ZONE tz));
            PERFORM hms.fail_full(d, format('no free slot with %s on %s', d.name, day), nexts);
        END IF;
        RETURN QUERY SELECT slot.starts, slot.session_id;
        RETURN;
    END IF;
    IF hms.clinic_instant(p_at) < now() THEN
        PERFORM hms.fail('HM422', format('appointment time %s is in the past', to_char(p_at, 'YYYY-MM-DD HH24:MI')));
    END IF;
    SELECT * INTO slot FROM hms.day_slots(d.id, day) s WHERE s.starts = (p_at AT TIME ZONE tz);
    IF NOT FOUND THEN
        PERFORM hms.fail('HM422', format('%s (%s) has no slot at %s%s', d.name, d.code,
            to_char(p_at, 'YYYY-MM-DD HH24:MI'),
            coalesce('; that day''s slots start at ' || (SELECT string_agg(to_char(x.starts AT TIME ZONE tz, 'HH24:MI'), ', ')
                                                         FROM (SELECT * FROM hms.day_slots(d.id, day) LIMIT 8) x),
                     '; no session that day')));
    END IF;
    taken := slot.booked - CASE WHEN p_exclude IS NOT NULL AND EXISTS (
                 SELECT 1 FROM hms.visits WHERE id = p_exclude AND appointment_at = slot.starts
                    AND status <> 'CANCELLED') THEN 1 ELSE 0 END;
    IF taken >= slot.capacity AND hms.trim_text(p_overbook) IS NULL THEN
        nexts := hms.next_free(d.id, slot.starts);
        PERFORM hms.fail_full(d, format('the %s slot with %s is full (%s of %s booked)',
                                        to_char(p_at, 'HH24:MI'), d.name, taken, slot.capacity), nexts);
    END IF;
    RETURN QUERY SELECT slot.starts, slot.session_id;
END $$;

-- A full slot: a conflict naming the next free slots, which the client also gets as JSON
-- in the error's detail ({"next_free": [...]}).
CREATE FUNCTION hms.fail_full(d hms.doctors, p_what text, p_next timestamptz[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'HM409',
        MESSAGE = p_what || CASE WHEN cardinality(p_next) = 0 THEN '; no free slot in the next two weeks'
                  ELSE '; next free: ' || (SELECT string_agg(hms.local_hm(t), ', ') FROM unnest(p_next) t) END,
        DETAIL = json_build_object('next_free', (SELECT coalesce(json_agg(hms.local_hm(t)), '[]') FROM unnest(p_next) t))::text;
END $$;

CREATE FUNCTION hms.book(p_doctor text, p_patient bigint, p_at timestamp, p_date date DEFAULT NULL,
                         p_overbook text DEFAULT NULL) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    d      hms.doctors := hms.active_doctor(p_doctor);
    pat    hms.patients := hms.patient_by_id(p_patient);
    day    date := coalesce(p_at::date, p_date);
    slot   record;
    new_id bigint;
BEGIN
    PERFORM hms.begin_action('book');
    IF day IS NULL THEN
        PERFORM hms.fail('HM422', 'give a time (--at "YYYY-MM-DD HH:MM") or a date (--date)');
    END IF;
    PERFORM hms.lock_queue(d.id, day);
    PERFORM hms.assert_no_active_visit(pat.id, d, day);
    SELECT * INTO slot FROM hms.take_slot(d, p_at, day, p_overbook);
    INSERT INTO hms.visits (doctor_id, patient_id, business_date, status, appointment_at,
                            session_id, overbooked)
    VALUES (d.id, pat.id, day, 'BOOKED', slot.starts, slot.session_id,
            nullif(hms.trim_text(p_overbook), ''))
    RETURNING id INTO new_id;
    RETURN hms.visit_info(new_id);
END $$;

CREATE FUNCTION hms.reschedule(p_visit bigint, p_at timestamp, p_date date DEFAULT NULL,
                               p_overbook text DEFAULT NULL) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v    hms.visits := hms.open_visit(p_visit, 'reschedule', '{BOOKED}', 'reschedule it',
                                      'only a booking that has not arrived can move');
    d    hms.doctors;
    day  date := coalesce(p_at::date, p_date);
    slot record;
BEGIN
    IF day IS NULL THEN
        PERFORM hms.fail('HM422', 'give a time (--at "YYYY-MM-DD HH:MM") or a date (--date)');
    END IF;
    SELECT * INTO d FROM hms.doctors WHERE id = v.doctor_id;
    IF day <> v.business_date THEN  -- the new day's queue too (the old one is held)
        PERFORM hms.lock_queue(d.id, day);
        IF EXISTS (SELECT 1 FROM hms.visits WHERE patient_id = v.patient_id AND doctor_id = d.id
                      AND business_date = day AND id <> v.id
                      AND status IN ('BOOKED', 'WAITING', 'CALLED', 'IN_CONSULTATION')) THEN
            PERFORM hms.assert_no_active_visit(v.patient_id, d, day);
        END IF;
    END IF;
    SELECT * INTO slot FROM hms.take_slot(d, p_at, day, p_overbook, v.id);
    UPDATE hms.visits SET business_date = day, appointment_at = slot.starts,
                          session_id = slot.session_id,
                          overbooked = nullif(hms.trim_text(p_overbook), '')
     WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

-- ---------------------------------------------------------------------------------------
-- Sessions and leave (admin)
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION hms.session_add(p_doctor text, p_days text, p_on date, p_starts time, p_ends time,
                                p_slot integer, p_capacity integer, p_room text DEFAULT NULL)
RETURNS hms.session_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    d     hms.doctors := hms.doctor_by_code(p_doctor);
    days  integer[] := CASE WHEN p_on IS NULL THEN hms.parse_weekdays(p_days) END;
    other hms.sessions;
    s     hms.sessions;
BEGIN
    PERFORM hms.begin_action('session_add');
    IF p_ends <= p_starts THEN
        PERFORM hms.fail('HM422', format('a session ends after it starts (%s to %s)',
                                         to_char(p_starts, 'HH24:MI'), to_char(p_ends, 'HH24:MI')));
    END IF;
    IF p_slot NOT BETWEEN 5 AND 240 OR p_ends < p_starts + make_interval(mins => p_slot) THEN
        PERFORM hms.fail('HM422', format('slots are 5-240 minutes and fit in the session, not %s', p_slot));
    END IF;
    IF p_capacity NOT BETWEEN 1 AND 50 THEN
        PERFORM hms.fail('HM422', format('a slot holds 1-50 patients, not %s', p_capacity));
    END IF;
    SELECT * INTO other FROM hms.sessions o
     WHERE o.doctor_id = d.id AND o.removed_at IS NULL
       AND (o.on_date = p_on OR (o.on_date IS NULL AND p_on IS NULL AND o.weekdays && days)
            OR (o.on_date IS NULL AND p_on IS NOT NULL AND extract(isodow FROM p_on)::integer = ANY (o.weekdays))
            OR (o.on_date IS NOT NULL AND p_on IS NULL AND extract(isodow FROM o.on_date)::integer = ANY (days)))
       AND o.starts < p_ends AND p_starts < o.ends
     LIMIT 1;
    IF FOUND THEN
        PERFORM hms.fail('HM409', format('it overlaps session %s of %s (%s %s-%s)', other.id, d.code,
            coalesce(hms.weekday_names(other.weekdays), other.on_date::text),
            to_char(other.starts, 'HH24:MI'), to_char(other.ends, 'HH24:MI')));
    END IF;
    INSERT INTO hms.sessions (doctor_id, weekdays, on_date, starts, ends, slot_minutes, capacity, room)
    VALUES (d.id, days, p_on, p_starts, p_ends, p_slot, p_capacity, nullif(hms.trim_text(p_room), ''))
    RETURNING * INTO s;
    RETURN hms.session_info(s);
END $$;

CREATE FUNCTION hms.session_list(p_doctor text DEFAULT NULL) RETURNS SETOF hms.session_info
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT (hms.session_info(s)).* FROM hms.sessions s JOIN hms.doctors d ON d.id = s.doctor_id
     WHERE s.removed_at IS NULL AND (p_doctor IS NULL OR d.code = hms.parse_code(p_doctor))
     ORDER BY d.code, s.on_date NULLS FIRST, s.weekdays, s.starts
$$;

-- Remove a session (kept, marked removed: past bookings still name it). Bookings already made
-- in its future slots stay; the caller lists them to move them.
CREATE FUNCTION hms.session_remove(p_id integer) RETURNS hms.session_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE s hms.sessions;
BEGIN
    PERFORM hms.begin_action('session_remove');
    UPDATE hms.sessions SET removed_at = now() WHERE id = p_id AND removed_at IS NULL RETURNING * INTO s;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no session %s', p_id));
    END IF;
    RETURN hms.session_info(s);
END $$;

-- Leave from p_from to p_to: no session then, no new booking. Returns the bookings it
-- affects, which reception must move or cancel.
CREATE FUNCTION hms.leave_add(p_doctor text, p_from date, p_to date, p_reason text DEFAULT NULL)
RETURNS SETOF hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE d hms.doctors := hms.doctor_by_code(p_doctor);
BEGIN
    PERFORM hms.begin_action('leave_add');
    IF coalesce(p_to, p_from) < p_from THEN
        PERFORM hms.fail('HM422', format('leave ends (%s) before it starts (%s)', p_to, p_from));
    END IF;
    INSERT INTO hms.leaves (doctor_id, from_date, to_date, reason)
    VALUES (d.id, p_from, coalesce(p_to, p_from), nullif(hms.trim_text(p_reason), ''));
    RETURN QUERY
    SELECT i.* FROM hms.visits v, LATERAL hms.visit_info(v.id) i
     WHERE v.doctor_id = d.id AND v.status = 'BOOKED'
       AND v.business_date BETWEEN p_from AND coalesce(p_to, p_from)
     ORDER BY v.appointment_at;
END $$;

-- How a booking that has not arrived stands: 'due' before its slot begins, 'late' once it
-- has, 'not arrived' after the late window (the day close marks those no-show).
CREATE FUNCTION hms.booking_state(p_appointment timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN now() > p_appointment + make_interval(mins => s.booking_late_minutes)
                     THEN 'not arrived'
                WHEN now() >= p_appointment THEN 'late'
                ELSE 'due' END
      FROM hms.settings s
$$;

-- Today's (or a date's) bookings that have not arrived, with their hms.booking_state.
CREATE FUNCTION hms.expected(p_date date DEFAULT NULL, p_doctor text DEFAULT NULL)
RETURNS TABLE (visit_id bigint, doctor text, patient_id bigint, patient_name text, mrn text,
               appointment_at timestamptz, state text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT v.id, d.code, p.id, p.name, p.mrn, v.appointment_at, hms.booking_state(v.appointment_at)
      FROM hms.visits v JOIN hms.doctors d ON d.id = v.doctor_id
      JOIN hms.patients p ON p.id = v.patient_id
     WHERE v.status = 'BOOKED' AND v.business_date = coalesce(p_date, hms.business_date())
       AND (p_doctor IS NULL OR d.code = hms.parse_code(p_doctor))
     ORDER BY v.appointment_at, d.code
$$;

-- A doctor's day of bookings, in slot order: who holds each place in hms.day_slots (every
-- booking but cancelled ones) and how it stands -- hms.booking_state while it has not
-- arrived, else the visit's state (WAITING, COMPLETED, ...).
CREATE FUNCTION hms.day_bookings(p_doctor text, p_date date DEFAULT NULL)
RETURNS TABLE (visit_id bigint, doctor text, appointment_at timestamptz, patient_id bigint,
               patient_name text, mrn text, token text, status text, state text,
               overbooked text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT v.id, d.code, v.appointment_at, p.id, p.name, p.mrn, v.token, v.status::text,
           CASE WHEN v.status = 'BOOKED' THEN hms.booking_state(v.appointment_at)
                ELSE v.status::text END,
           v.overbooked
      FROM hms.doctor_by_code(p_doctor) d
      JOIN hms.visits v ON v.doctor_id = d.id
      JOIN hms.patients p ON p.id = v.patient_id
     WHERE v.business_date = coalesce(p_date, hms.business_date())
       AND v.appointment_at IS NOT NULL AND v.status <> 'CANCELLED'
     ORDER BY v.appointment_at, v.id
$$;
