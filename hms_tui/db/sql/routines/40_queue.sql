-- Queues: the counters that number them and lock them, their versions, and THE queue order.
--
-- * The counters row of (doctor, business date) numbers the day's tokens and doubles as that
--   queue's lock: every action that changes a visit takes it first, so changes to one queue
--   are serialised and call-next can never hand the same patient to two terminals.
-- * Positions are not stored: hms.ranked derives them at read time. Every read of a queue
--   goes through it -- the desk (hms.queue, hms.visit_info), the live screens
--   (hms.live_queues), the waiting room (hms.display_queue) and the moves (call-next, skip,
--   requeue) -- so there is one definition of the order.
-- * Lock order, always: queue rows (ascending doctor id) -> visit row -> bill counter ->
--   audit head (taken by the audit trigger at the first audited write, held to commit).

-- Lock a doctor's queue for a day (creating its counter row on first use); returns the
-- last serial issued. Held until the transaction ends.
CREATE FUNCTION hms.lock_queue(p_doctor integer, p_date date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE v integer;
BEGIN
    SELECT value INTO v FROM hms.counters
     WHERE kind = 'serial' AND scope_id = p_doctor AND period = p_date FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO hms.counters (kind, scope_id, period) VALUES ('serial', p_doctor, p_date)
            ON CONFLICT DO NOTHING;
        SELECT value INTO v FROM hms.counters
         WHERE kind = 'serial' AND scope_id = p_doctor AND period = p_date FOR UPDATE;
    END IF;
    RETURN v;
END $$;

CREATE FUNCTION hms.next_serial(p_doctor integer, p_date date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE v integer;
BEGIN
    PERFORM hms.lock_queue(p_doctor, p_date);
    PERFORM hms.numbering_guard();  -- no number while one may be reissued (45_failover.sql)
    UPDATE hms.counters SET value = value + 1
     WHERE kind = 'serial' AND scope_id = p_doctor AND period = p_date
    RETURNING value INTO v;
    RETURN v;
END $$;

-- Per-queue versions, so a live screen fetches only what changed. Every change to a visit
-- stamps it with the next version of its queue, taken from the queue's counters row. That
-- row is locked by every visit change until commit, so versions are handed out in commit
-- order within a queue: a snapshot holds exactly the versions 1..head.
CREATE FUNCTION hms.stamp_queue_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;  -- nothing changed: no new version, no audit row
    END IF;
    UPDATE hms.counters SET version = version + 1, changed_at = now()
     WHERE kind = 'serial' AND scope_id = NEW.doctor_id AND period = NEW.business_date
    RETURNING version INTO NEW.queue_version;
    IF NOT FOUND THEN  -- a write that did not go through the desk functions
        INSERT INTO hms.counters (kind, scope_id, period, version, changed_at)
        VALUES ('serial', NEW.doctor_id, NEW.business_date, 1, now())
        ON CONFLICT (kind, scope_id, period)
            DO UPDATE SET version = hms.counters.version + 1, changed_at = now()
        RETURNING version INTO NEW.queue_version;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER visits_queue_version BEFORE INSERT OR UPDATE ON hms.visits
    FOR EACH ROW EXECUTE FUNCTION hms.stamp_queue_version();

-- Minutes per patient for wait estimates: the doctor's own pace -- the average of their
-- last 10 consultations of at least a minute (shorter ones are keying slips) -- today once
-- there are three; else over the 7 days before (at least three); else the clinic's setting.
CREATE FUNCTION hms.consult_minutes(p_doctor integer, p_date date) RETURNS numeric
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE pace numeric;
BEGIN
    -- Only the latest ten of each range reach hms.pace; visits_completed serves each day's in
    -- that order, so neither a busy day nor a long history is read whole. (plpgsql: its
    -- plans are cached, where an SQL function's are made again on every call.)
    pace := hms.pace(ARRAY(SELECT v FROM hms.visits v
                            WHERE v.doctor_id = p_doctor AND v.business_date = p_date
                              AND v.status = 'COMPLETED'
                              AND v.ended_at - v.started_at >= interval '1 minute'
                            ORDER BY v.ended_at DESC LIMIT 10));
    IF pace IS NULL THEN
        -- The seven days as integers: the planner knows that series has 7 rows (a timestamp
        -- series is guessed at 1,000, which on a long history priced this above jit_above_cost
        -- and made PostgreSQL 15 JIT-compile a 0.3 ms query for 8 ms on every call).
        pace := hms.pace(ARRAY(SELECT x.v FROM generate_series(1, 7) back,
                                    LATERAL (SELECT v FROM hms.visits v
                                              WHERE v.doctor_id = p_doctor AND v.business_date = p_date - back
                                                AND v.status = 'COMPLETED'
                                                AND v.ended_at - v.started_at >= interval '1 minute'
                                              ORDER BY v.ended_at DESC LIMIT 10) x
                                ORDER BY (x.v).ended_at DESC LIMIT 10));
    END IF;
    RETURN coalesce(pace, (SELECT consult_minutes FROM hms.settings));
END $$;

-- A doctor's pace over these visits: the average of the last 10 consultations of at least a
-- minute, once there are three (else NULL). Pure: the replay computes it from the trail.
CREATE FUNCTION hms.pace(p_visits hms.visits[]) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN  -- plpgsql: its plan is cached (an SQL function's is made again on every call)
    RETURN (SELECT CASE WHEN count(*) >= 3 THEN avg(recent.minutes) END
              FROM (SELECT extract(epoch FROM v.ended_at - v.started_at) / 60 AS minutes
                      FROM unnest(p_visits) v
                     WHERE v.status = 'COMPLETED' AND v.started_at IS NOT NULL
                       AND v.ended_at - v.started_at >= interval '1 minute'
                     ORDER BY v.ended_at DESC LIMIT 10) recent);
END $$;

-- Minutes until the patient at waiting position `pos` is called, given how many are being
-- served now: everyone ahead of them and whoever is with the doctor.
CREATE FUNCTION hms.wait_estimate(per_patient numeric, serving bigint, pos integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN pos IS NULL THEN NULL ELSE round(per_patient * (pos - 1 + serving))::integer END
$$;

-- THE queue order, the one definition every read uses. Given one doctor's visits of a day:
--   1. those being served (called or in consultation), latest call first: the first row is
--      "now serving" on the board, the display and the doctor's console;
--   2. the waiting line: priority (EMERGENCY > URGENT > NORMAL), then queue key (arrival)
--      and place within equal keys (moved by skip and requeue), then id; positions 1..N and
--      wait estimates;
--   3. everything else (finished, booked) by latest call, then serial.
-- With p_now, each waiting patient's estimated call time as a range: from 0.8 to 1.2 times the
-- estimate (optimistic and pessimistic), plus 5 minutes on the late side.
-- Pure (it reads no table): the audit replay ranks rebuilt rows with it too.
CREATE FUNCTION hms.ranked(p_visits hms.visits[], p_per_patient numeric,
                           p_now timestamptz DEFAULT NULL)
RETURNS TABLE (ord integer, visit hms.visits, "position" integer, wait_minutes integer,
               eta_from timestamptz, eta_to timestamptz)
LANGUAGE sql IMMUTABLE AS $$
    WITH r AS (
        SELECT v AS visit,
               v.status = 'WAITING' AS waiting,
               row_number() OVER (ORDER BY
                   CASE v.status WHEN 'IN_CONSULTATION' THEN 0 WHEN 'CALLED' THEN 0
                                 WHEN 'WAITING' THEN 1 ELSE 2 END,
                   CASE WHEN v.status = 'WAITING' THEN v.priority END DESC,
                   CASE WHEN v.status = 'WAITING' THEN v.queue_key END,
                   CASE WHEN v.status = 'WAITING' THEN v.queue_sub END,
                   CASE WHEN v.status = 'WAITING' THEN v.id END,
                   v.called_at DESC, v.serial, v.id)::integer AS ord,
               count(*) FILTER (WHERE v.status IN ('CALLED', 'IN_CONSULTATION')) OVER () AS serving
          FROM unnest(p_visits) AS v
    )
    SELECT r.ord, r.visit, w.pos, w.minutes,
           p_now + make_interval(mins => floor(w.minutes * 0.8)::integer),
           p_now + make_interval(mins => ceil(w.minutes * 1.2)::integer + 5)
      FROM r,
           LATERAL (SELECT CASE WHEN r.waiting THEN r.ord - r.serving::integer END AS pos) p,
           LATERAL (SELECT hms.wait_estimate(p_per_patient, r.serving, p.pos) AS minutes,
                           p.pos) w
     ORDER BY r.ord
$$;

-- The queue key of a patient joining the waiting line now -- where the clinic's rule puts
-- them. 'fair' (the default): a booked patient who arrives within the window around their
-- slot (booking_early_minutes before it to booking_late_minutes after) takes their place by
-- slot time, so walk-ins who came after the slot began queue behind them and those who came
-- before stay ahead; anyone else, and everyone under 'arrival', by arrival. hms.ranked then
-- orders by priority first, then this key.
CREATE FUNCTION hms.arrival_key(p_appointment timestamptz DEFAULT NULL) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT hms.epoch_us(CASE
                WHEN s.queue_rule = 'fair' AND p_appointment IS NOT NULL
                     AND now() BETWEEN p_appointment - make_interval(mins => s.booking_early_minutes)
                                   AND p_appointment + make_interval(mins => s.booking_late_minutes)
                THEN p_appointment ELSE now() END)::numeric / 1000000
              FROM hms.settings s);
END $$;

-- The estimate a patient is given as they join the line: v (as it is about to be written)
-- ranked among the day's others, as every read will rank it.
CREATE FUNCTION hms.quote(v hms.visits, OUT eta_from timestamptz, OUT eta_to timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    others hms.visits[] := ARRAY(SELECT o FROM unnest(hms.day_visits(v.doctor_id, v.business_date, false)) o
                                  WHERE o.id IS DISTINCT FROM v.id);
    per    numeric := hms.consult_minutes(v.doctor_id, v.business_date);
BEGIN
    -- Variables, not calls, as hms.ranked's arguments: inlined, it would evaluate a call for
    -- every row.
    SELECT r.eta_from, r.eta_to INTO eta_from, eta_to
      FROM hms.ranked(others || v, per, now()) r
     WHERE (r.visit).id IS NOT DISTINCT FROM v.id;
END $$;

-- A doctor's visits of a day: the active ones (waiting or being served), or all of them.
CREATE FUNCTION hms.day_visits(p_doctor integer, p_date date, p_all boolean) RETURNS hms.visits[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_all THEN
        RETURN (SELECT coalesce(array_agg(v), '{}') FROM hms.visits v
                 WHERE v.doctor_id = p_doctor AND v.business_date = p_date);
    END IF;
    RETURN (SELECT coalesce(array_agg(v), '{}') FROM hms.visits v
             WHERE v.doctor_id = p_doctor AND v.business_date = p_date
               AND v.status IN ('WAITING', 'CALLED', 'IN_CONSULTATION'));
END $$;

-- ---------------------------------------------------------------------------------------
-- What the desk reads: visits with names, rooms, positions and estimates
-- ---------------------------------------------------------------------------------------
CREATE TYPE hms.visit_info AS (
    visit_id         bigint,
    token            text,
    serial           integer,
    "position"       integer,
    status           text,
    priority         text,
    patient_id       bigint,
    patient_name     text,
    mrn              text,
    doctor           text,
    doctor_name      text,
    room             text,
    business_date    date,
    appointment_at   timestamptz,
    checked_in_at    timestamptz,
    called_at        timestamptz,
    call_count       integer,
    started_at       timestamptz,
    ended_at         timestamptz,
    cancel_reason    text,
    transferred_from bigint,
    transferred_to   bigint,
    wait_minutes     integer,
    replayed         boolean,
    eta_from         timestamptz,
    eta_to           timestamptz
);

-- The moment a queue's estimates are reckoned from: its last change (so every read of one
-- version gives the same estimates, and a screen holding that version holds them too), or
-- now for a queue that has not changed today.
CREATE FUNCTION hms.queue_clock(p_doctor integer, p_date date) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((SELECT changed_at FROM hms.counters
                      WHERE kind = 'serial' AND scope_id = p_doctor AND period = p_date), now());
END $$;

-- hms.ranked's rows with what the desk shows of each, joined once (set-based: every live
-- screen reads this on every change). Estimates as of p_now (default: the queue's clock).
-- The pace and the clock are reckoned once (the OFFSET 0 keeps them so): the planner
-- inlines hms.ranked and would otherwise copy their expressions (the caller's
-- hms.consult_minutes, hms.day_visits) into every row's estimate.
CREATE FUNCTION hms.ranked_infos(p_visits hms.visits[], p_per_patient numeric,
                                 p_replayed boolean DEFAULT false, p_now timestamptz DEFAULT NULL)
RETURNS TABLE (ord integer, queue_version bigint, info hms.visit_info)
LANGUAGE sql STABLE AS $$
    SELECT r.ord, (r.visit).queue_version, ROW(
        (r.visit).id, (r.visit).token, (r.visit).serial, r.position, (r.visit).status::text,
        (r.visit).priority::text, p.id, p.name, p.mrn, d.code, d.name, d.room,
        (r.visit).business_date, (r.visit).appointment_at, (r.visit).checked_in_at,
        (r.visit).called_at, (r.visit).call_count, (r.visit).started_at, (r.visit).ended_at,
        (r.visit).cancel_reason, (r.visit).transferred_from,
        (SELECT t.id FROM hms.visits t WHERE t.transferred_from = (r.visit).id),
        r.wait_minutes, p_replayed, r.eta_from, r.eta_to)::hms.visit_info
      FROM (SELECT p_per_patient AS pace,
                   coalesce(p_now, hms.queue_clock((p_visits[1]).doctor_id,
                                                   (p_visits[1]).business_date)) AS at
             OFFSET 0) once
     CROSS JOIN LATERAL hms.ranked(p_visits, once.pace, once.at) r
      JOIN hms.patients p ON p.id = (r.visit).patient_id
      JOIN hms.doctors d ON d.id = (r.visit).doctor_id
     ORDER BY r.ord
$$;

CREATE FUNCTION hms.visit_info(p_visit bigint, p_replayed boolean DEFAULT false) RETURNS hms.visit_info
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    v      hms.visits;
    active boolean;
    line   hms.visits[];
    per    numeric;
    found_ hms.visit_info;
BEGIN
    SELECT * INTO v FROM hms.visits WHERE id = p_visit;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no visit with id %s', p_visit));
    END IF;
    -- An active visit's position and estimate depend on its whole queue; any other stands alone.
    active := v.status IN ('WAITING', 'CALLED', 'IN_CONSULTATION');
    IF active THEN  -- variables as arguments: inlined, a call would run for every row
        line := hms.day_visits(v.doctor_id, v.business_date, false);
        per := hms.consult_minutes(v.doctor_id, v.business_date);
    ELSE
        line := ARRAY[v];
    END IF;
    SELECT (x.info).* INTO found_
      FROM hms.ranked_infos(line, per, p_replayed) x
     WHERE (x.info).visit_id = p_visit;
    RETURN found_;
END $$;

-- A doctor's queue for today: visits being served first (no position), then the waiting
-- line with positions 1..N; with p_all, also the day's finished and booked visits.
CREATE FUNCTION hms.queue(p_doctor text, p_all boolean DEFAULT false) RETURNS SETOF hms.visit_info
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    d    hms.doctors := hms.doctor_by_code(p_doctor);
    bd   date := hms.business_date();
    line hms.visits[] := hms.day_visits(d.id, bd, p_all);
    per  numeric := hms.consult_minutes(d.id, bd);
BEGIN
    RETURN QUERY
    SELECT (x.info).* FROM hms.ranked_infos(line, per) x ORDER BY x.ord;
END $$;

-- The waiting visit called next: position 1 (under the queue lock it stays so to commit).
CREATE FUNCTION hms.queue_head(p_doctor integer, p_date date) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (r.visit).id FROM hms.ranked(hms.day_visits(p_doctor, p_date, false), 0) r
     WHERE r.position = 1
$$;

-- Where a waiting visit goes so that `ahead` waiting visits are in front of it, as near as its
-- priority allows (higher priorities always stay ahead, lower ones behind): the queue key and
-- place of the visit it then follows (one place further), or one place before the first of
-- its priority. Visits after it with the same key move one place on (bumped here). Places are
-- integers within equal keys, so any number of moves never runs out of room. The caller holds
-- the queue's lock and updates the visit itself.
CREATE FUNCTION hms.place(v hms.visits, ahead integer, OUT key numeric, OUT sub integer)
LANGUAGE plpgsql AS $$
DECLARE
    line   hms.visits[];  -- the waiting visits of v's priority, v excluded, in queue order
    higher integer;
    j      integer;
    n      integer;
    x      hms.visits;
BEGIN
    SELECT count(*) FILTER (WHERE (r.visit).priority > v.priority),
           coalesce(array_agg(r.visit ORDER BY r.ord)
                    FILTER (WHERE (r.visit).priority = v.priority), '{}')
      INTO higher, line
      FROM hms.ranked(hms.day_visits(v.doctor_id, v.business_date, false), 0) r
     WHERE r.position IS NOT NULL AND (r.visit).id <> v.id;
    n := coalesce(array_length(line, 1), 0);
    j := least(greatest(ahead - higher, 0), n);  -- how many of its own priority go first
    IF n = 0 THEN
        key := hms.arrival_key();
        sub := 0;
    ELSIF j = 0 THEN
        x := line[1];
        key := x.queue_key;
        sub := x.queue_sub - 1;
    ELSE
        x := line[j];
        key := x.queue_key;
        sub := x.queue_sub + 1;
        -- Room right behind x: those after it with its key (ties on place go by id) move on.
        UPDATE hms.visits SET queue_sub = queue_sub + 2
         WHERE doctor_id = v.doctor_id AND business_date = v.business_date
           AND status = 'WAITING' AND priority = v.priority AND id <> v.id
           AND queue_key = x.queue_key
           AND (queue_sub > x.queue_sub OR (queue_sub = x.queue_sub AND id > x.id));
    END IF;
END $$;

-- ---------------------------------------------------------------------------------------
-- What live screens read after a change signal (hms_tui/services/live.py)
-- ---------------------------------------------------------------------------------------
-- For each doctor whose queue version is newer than the one the screen holds (p_since, in
-- the same order as p_doctors; 0 = nothing held): the whole active queue in hms.ranked's
-- order, each row with its position and estimate, and the full row (info) only where the
-- visit changed after that version: the screen keeps the rest. A doctor with nothing new
-- gives one row of just its version. Visits missing from the answer have left the queue.
CREATE FUNCTION hms.live_rows(p_doctors text[], p_since bigint[], p_masked boolean)
RETURNS TABLE (doctor text, head_version bigint, ord integer, visit_id bigint,
               "position" integer, wait_minutes integer, eta_from timestamptz,
               eta_to timestamptz, info hms.visit_info)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bd    date := hms.business_date();
    d     hms.doctors;
    head  bigint;
    since bigint;
    line  hms.visits[];
    per   numeric;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_doctors, 1), 0) LOOP
        SELECT * INTO d FROM hms.doctors WHERE code = p_doctors[i];
        CONTINUE WHEN NOT FOUND;
        since := coalesce(p_since[i], 0);
        SELECT c.version INTO head FROM hms.counters c
         WHERE c.kind = 'serial' AND c.scope_id = d.id AND c.period = bd;
        head := coalesce(head, 0);
        IF since > 0 AND head = since THEN
            RETURN QUERY SELECT d.code, head, NULL::integer, NULL::bigint, NULL::integer,
                                NULL::integer, NULL::timestamptz, NULL::timestamptz,
                                NULL::hms.visit_info;
            CONTINUE;
        END IF;
        line := hms.day_visits(d.id, bd, false);  -- variables: a call would run for every row
        per := hms.consult_minutes(d.id, bd);
        RETURN QUERY
        SELECT d.code, head, x.ord, (x.info).visit_id, (x.info).position, (x.info).wait_minutes,
               (x.info).eta_from, (x.info).eta_to,
               CASE WHEN x.queue_version <= since THEN NULL
                    WHEN p_masked THEN hms.masked(x.info) ELSE x.info END
          FROM hms.ranked_infos(line, per) x
         ORDER BY x.ord;
        IF NOT FOUND THEN  -- an empty queue: just its version
            RETURN QUERY SELECT d.code, head, NULL::integer, NULL::bigint, NULL::integer,
                                NULL::integer, NULL::timestamptz, NULL::timestamptz,
                                NULL::hms.visit_info;
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION hms.live_queues(p_doctors text[], p_since bigint[])
RETURNS TABLE (doctor text, head_version bigint, ord integer, visit_id bigint,
               "position" integer, wait_minutes integer, eta_from timestamptz,
               eta_to timestamptz, info hms.visit_info)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.live_rows(p_doctors, p_since, false)
$$;
