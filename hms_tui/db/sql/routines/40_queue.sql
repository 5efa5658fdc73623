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
    UPDATE hms.counters SET version = version + 1
     WHERE kind = 'serial' AND scope_id = NEW.doctor_id AND period = NEW.business_date
    RETURNING version INTO NEW.queue_version;
    IF NOT FOUND THEN  -- a write that did not go through the desk functions
        INSERT INTO hms.counters (kind, scope_id, period, version)
        VALUES ('serial', NEW.doctor_id, NEW.business_date, 1)
        ON CONFLICT (kind, scope_id, period) DO UPDATE SET version = hms.counters.version + 1
        RETURNING version INTO NEW.queue_version;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER visits_queue_version BEFORE INSERT OR UPDATE ON hms.visits
    FOR EACH ROW EXECUTE FUNCTION hms.stamp_queue_version();

-- Minutes per patient for wait estimates: the doctor's own pace today -- the average of their
-- last 10 consultations of at least a minute (shorter ones are keying slips) -- once there are
-- three of them; until then the clinic's setting.
CREATE FUNCTION hms.consult_minutes(p_doctor integer, p_date date) RETURNS numeric
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT CASE WHEN count(*) >= 3 THEN avg(recent.minutes)
                ELSE (SELECT consult_minutes FROM hms.settings) END
      FROM (SELECT extract(epoch FROM ended_at - started_at) / 60 AS minutes
              FROM hms.visits
             WHERE doctor_id = p_doctor AND business_date = p_date AND status = 'COMPLETED'
               AND started_at IS NOT NULL AND ended_at - started_at >= interval '1 minute'
             ORDER BY ended_at DESC LIMIT 10) recent
$$;

-- Minutes until the patient at waiting position `pos` is called, given how many are being
-- served now: everyone ahead of them and whoever is with the doctor.
CREATE FUNCTION hms.wait_estimate(per_patient numeric, serving bigint, pos integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN pos IS NULL THEN NULL ELSE round(per_patient * (pos - 1 + serving))::integer END
$$;

-- THE queue order, the one definition every read uses. Given one doctor's visits of a day:
--   1. those being served (called or in consultation), latest call first: the first row is
--      "now serving" on the board, the display and the doctor's console;
--   2. the waiting line: priority (EMERGENCY > URGENT > NORMAL), then queue key (arrival,
--      moved by skip and requeue), then id; positions 1..N and wait estimates;
--   3. everything else (finished, booked) by latest call, then serial.
-- Pure (it reads no table): the audit replay ranks rebuilt rows with it too.
CREATE FUNCTION hms.ranked(p_visits hms.visits[], p_per_patient numeric)
RETURNS TABLE (ord integer, visit hms.visits, "position" integer, wait_minutes integer)
LANGUAGE sql IMMUTABLE AS $$
    WITH r AS (
        SELECT v AS visit,
               v.status = 'WAITING' AS waiting,
               row_number() OVER (ORDER BY
                   CASE v.status WHEN 'IN_CONSULTATION' THEN 0 WHEN 'CALLED' THEN 0
                                 WHEN 'WAITING' THEN 1 ELSE 2 END,
                   CASE WHEN v.status = 'WAITING' THEN v.priority END DESC,
                   CASE WHEN v.status = 'WAITING' THEN v.queue_key END,
                   CASE WHEN v.status = 'WAITING' THEN v.id END,
                   v.called_at DESC, v.serial, v.id)::integer AS ord,
               count(*) FILTER (WHERE v.status IN ('CALLED', 'IN_CONSULTATION')) OVER () AS serving
          FROM unnest(p_visits) AS v
    )
    SELECT r.ord, r.visit,
           CASE WHEN r.waiting THEN r.ord - r.serving::integer END,
           CASE WHEN r.waiting THEN hms.wait_estimate(p_per_patient, r.serving,
                                                      r.ord - r.serving::integer) END
      FROM r
     ORDER BY r.ord
$$;

-- A doctor's visits of a day: the active ones (waiting or being served), or all of them.
CREATE FUNCTION hms.day_visits(p_doctor integer, p_date date, p_all boolean) RETURNS hms.visits[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(v), '{}') FROM hms.visits v
     WHERE v.doctor_id = p_doctor AND v.business_date = p_date
       AND (p_all OR v.status IN ('WAITING', 'CALLED', 'IN_CONSULTATION'))
$$;

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
    replayed         boolean
);

-- hms.ranked's rows with what the desk shows of each, joined once (set-based: every live
-- screen reads this on every change).
CREATE FUNCTION hms.ranked_infos(p_visits hms.visits[], p_per_patient numeric,
                                 p_replayed boolean DEFAULT false)
RETURNS TABLE (ord integer, queue_version bigint, info hms.visit_info)
LANGUAGE sql STABLE AS $$
    SELECT r.ord, (r.visit).queue_version, ROW(
        (r.visit).id, (r.visit).token, (r.visit).serial, r.position, (r.visit).status::text,
        (r.visit).priority::text, p.id, p.name, p.mrn, d.code, d.name, d.room,
        (r.visit).business_date, (r.visit).appointment_at, (r.visit).checked_in_at,
        (r.visit).called_at, (r.visit).call_count, (r.visit).started_at, (r.visit).ended_at,
        (r.visit).cancel_reason, (r.visit).transferred_from,
        (SELECT t.id FROM hms.visits t WHERE t.transferred_from = (r.visit).id),
        r.wait_minutes, p_replayed)::hms.visit_info
      FROM hms.ranked(p_visits, p_per_patient) r
      JOIN hms.patients p ON p.id = (r.visit).patient_id
      JOIN hms.doctors d ON d.id = (r.visit).doctor_id
     ORDER BY r.ord
$$;

CREATE FUNCTION hms.visit_info(p_visit bigint, p_replayed boolean DEFAULT false) RETURNS hms.visit_info
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    v      hms.visits;
    active boolean;
    found_ hms.visit_info;
BEGIN
    SELECT * INTO v FROM hms.visits WHERE id = p_visit;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no visit with id %s', p_visit));
    END IF;
    -- An active visit's position and estimate depend on its whole queue; any other stands alone.
    active := v.status IN ('WAITING', 'CALLED', 'IN_CONSULTATION');
    SELECT (x.info).* INTO found_
      FROM hms.ranked_infos(
               CASE WHEN active THEN hms.day_visits(v.doctor_id, v.business_date, false) ELSE ARRAY[v] END,
               CASE WHEN active THEN hms.consult_minutes(v.doctor_id, v.business_date) END,
               p_replayed) x
     WHERE (x.info).visit_id = p_visit;
    RETURN found_;
END $$;

-- A doctor's queue for today: visits being served first (no position), then the waiting
-- line with positions 1..N; with p_all, also the day's finished and booked visits.
CREATE FUNCTION hms.queue(p_doctor text, p_all boolean DEFAULT false) RETURNS SETOF hms.visit_info
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    d  hms.doctors := hms.doctor_by_code(p_doctor);
    bd date := hms.business_date();
BEGIN
    RETURN QUERY
    SELECT (x.info).* FROM hms.ranked_infos(hms.day_visits(d.id, bd, p_all),
                                           hms.consult_minutes(d.id, bd)) x
     ORDER BY x.ord;
END $$;

-- The waiting visit called next: position 1 (under the queue lock it stays so to commit).
CREATE FUNCTION hms.queue_head(p_doctor integer, p_date date) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (r.visit).id FROM hms.ranked(hms.day_visits(p_doctor, p_date, false), 0) r
     WHERE r.position = 1
$$;

-- The queue_key that puts a visit of priority p with `ahead` waiting visits in front of it,
-- as near as its priority allows (higher priorities always stay ahead, lower ones behind).
CREATE FUNCTION hms.place_key(p_doctor integer, p_date date, p hms.priority, p_exclude bigint, ahead integer)
RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
DECLARE
    keys     numeric[];
    higher   integer;
    j        integer;
    n        integer;
BEGIN
    SELECT count(*) FILTER (WHERE (r.visit).priority > p),
           coalesce(array_agg((r.visit).queue_key ORDER BY r.ord) FILTER (WHERE (r.visit).priority = p), '{}')
      INTO higher, keys
      FROM hms.ranked(hms.day_visits(p_doctor, p_date, false), 0) r
     WHERE r.position IS NOT NULL AND (r.visit).id <> p_exclude;
    n := coalesce(array_length(keys, 1), 0);
    j := least(greatest(ahead - higher, 0), n);  -- how many of its own priority go first
    IF n = 0 THEN
        RETURN hms.epoch_us(now())::numeric / 1000000;
    ELSIF j = 0 THEN
        RETURN keys[1] - 1;
    ELSIF j = n THEN
        RETURN keys[n] + 1;
    ELSE
        RETURN (keys[j] + keys[j + 1]) / 2;
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
               "position" integer, wait_minutes integer, info hms.visit_info)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bd    date := hms.business_date();
    d     hms.doctors;
    head  bigint;
    since bigint;
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
                                NULL::integer, NULL::hms.visit_info;
            CONTINUE;
        END IF;
        RETURN QUERY
        SELECT d.code, head, x.ord, (x.info).visit_id, (x.info).position, (x.info).wait_minutes,
               CASE WHEN x.queue_version <= since THEN NULL
                    WHEN p_masked THEN hms.masked(x.info) ELSE x.info END
          FROM hms.ranked_infos(hms.day_visits(d.id, bd, false), hms.consult_minutes(d.id, bd)) x
         ORDER BY x.ord;
        IF NOT FOUND THEN  -- an empty queue: just its version
            RETURN QUERY SELECT d.code, head, NULL::integer, NULL::bigint, NULL::integer,
                                NULL::integer, NULL::hms.visit_info;
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION hms.live_queues(p_doctors text[], p_since bigint[])
RETURNS TABLE (doctor text, head_version bigint, ord integer, visit_id bigint,
               "position" integer, wait_minutes integer, info hms.visit_info)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.live_rows(p_doctors, p_since, false)
$$;
