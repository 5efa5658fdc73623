-- Visits: the state machine and the desk actions on them, one function and one transaction
-- each. Every action on an existing visit starts with hms.open_visit (lock, name, guard).

-- The state machine. The actions give friendlier messages first; this is the backstop.
CREATE FUNCTION hms.transition_allowed(f hms.visit_status, t hms.visit_status) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (f, t) IN (
        ('BOOKED', 'BOOKED'), ('BOOKED', 'WAITING'), ('BOOKED', 'CANCELLED'), ('BOOKED', 'NO_SHOW'),
        ('WAITING', 'WAITING'), ('WAITING', 'CALLED'), ('WAITING', 'CANCELLED'), ('WAITING', 'TRANSFERRED'),
        ('WAITING', 'NO_SHOW'),  -- the day close only
        ('CALLED', 'CALLED'), ('CALLED', 'IN_CONSULTATION'), ('CALLED', 'CANCELLED'),
        ('CALLED', 'NO_SHOW'), ('CALLED', 'TRANSFERRED'),
        ('IN_CONSULTATION', 'COMPLETED'),
        ('NO_SHOW', 'WAITING')
    )
$$;

CREATE FUNCTION hms.check_visit_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- hms.audit_restore puts a row back to its image in the trail, whatever was done to it
    -- behind the trail's back (every action sets hms.action first, so no other can pass here).
    IF current_setting('hms.action', true) = 'restore' THEN
        RETURN NEW;
    END IF;
    IF NOT hms.transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION USING ERRCODE = 'HM423',
            MESSAGE = format('visit %s (%s) is %s; it cannot become %s',
                             OLD.id, coalesce(OLD.token, 'booked'), OLD.status, NEW.status);
    END IF;
    IF NEW.doctor_id <> OLD.doctor_id OR NEW.patient_id <> OLD.patient_id
       OR (NEW.business_date <> OLD.business_date AND NOT (OLD.status = 'BOOKED' AND NEW.status = 'BOOKED'))
       OR (OLD.serial IS NOT NULL AND NEW.serial IS DISTINCT FROM OLD.serial)
       OR (OLD.token IS NOT NULL AND NEW.token IS DISTINCT FROM OLD.token)
       OR NEW.transferred_from IS DISTINCT FROM OLD.transferred_from
       OR (OLD.idempotency_key IS NOT NULL
           AND NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'HM423',
            MESSAGE = format('visit %s: doctor, patient, date (once arrived), token and origin never change; transfer instead', OLD.id);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER visits_state_machine BEFORE UPDATE ON hms.visits
    FOR EACH ROW EXECUTE FUNCTION hms.check_visit_update();

-- Is the session's login a doctor-only login (restricted to its linked doctors)? Superusers,
-- members of the schema owner, and doctors who are also reception or admin are not.
-- session_user, not current_user: inside a SECURITY DEFINER function current_user is the owner.
CREATE FUNCTION hms.session_is_doctor_only() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT hms.session_is_owner()
       AND pg_has_role(session_user, 'hms_doctor', 'MEMBER')
       AND NOT pg_has_role(session_user, 'hms_reception', 'MEMBER')
       AND NOT pg_has_role(session_user, 'hms_admin', 'MEMBER')
$$;

-- May this login act on this doctor's visits? A doctor login only on its linked doctors.
-- The one check every visit-changing action goes through (hms.lock_visit, hms.call_next).
CREATE FUNCTION hms.assert_may_act(p_doctor integer) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE d hms.doctors;
BEGIN
    IF coalesce(hms.session_is_doctor_only(), false)
       AND NOT EXISTS (SELECT 1 FROM hms.staff_doctors
                        WHERE login = session_user AND doctor_id = p_doctor) THEN
        SELECT * INTO d FROM hms.doctors WHERE id = p_doctor;
        PERFORM hms.fail('HM403', format(
            'login %s may act only on visits of its own doctors (%s), not of %s (%s)',
            session_user,
            coalesce((SELECT string_agg(x.code, ', ' ORDER BY x.code)
                        FROM hms.staff_doctors s JOIN hms.doctors x ON x.id = s.doctor_id
                       WHERE s.login = session_user), 'none linked'),
            d.name, d.code));
    END IF;
END $$;

-- Lock a visit's queue, then the visit itself (the fixed lock order) -- after checking that
-- the login may act on that doctor's visits, before taking any lock.
CREATE FUNCTION hms.lock_visit(p_visit bigint) RETURNS hms.visits
LANGUAGE plpgsql AS $$
DECLARE
    v hms.visits;
    d integer;
    bd date;
BEGIN
    SELECT doctor_id, business_date INTO d, bd FROM hms.visits WHERE id = p_visit;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no visit with id %s', p_visit));
    END IF;
    PERFORM hms.assert_may_act(d);
    PERFORM hms.lock_queue(d, bd);
    SELECT * INTO v FROM hms.visits WHERE id = p_visit FOR UPDATE;
    RETURN v;
END $$;

CREATE FUNCTION hms.refuse(v hms.visits, p_action text, p_why text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hms.fail('HM423', format('visit %s (%s) is %s; cannot %s%s',
        v.id, coalesce(v.token, 'booked'), v.status, p_action,
        CASE WHEN p_why IS NULL THEN '' ELSE ': ' || p_why END));
END $$;

-- The first step of every action on a visit: name the action for the audit trail, lock the
-- visit (its queue first), and refuse unless it is in one of the states p_from, saying
-- "visit 42 (D1-007) is COMPLETED; cannot <p_verb>[: <p_why>]".
CREATE FUNCTION hms.open_visit(p_visit bigint, p_action text, p_from hms.visit_status[],
                               p_verb text, p_why text DEFAULT NULL) RETURNS hms.visits
LANGUAGE plpgsql AS $$
DECLARE v hms.visits;
BEGIN
    PERFORM hms.begin_action(p_action);
    v := hms.lock_visit(p_visit);
    IF NOT v.status = ANY (p_from) THEN
        PERFORM hms.refuse(v, p_verb, p_why);
    END IF;
    RETURN v;
END $$;

-- Refuse an action on a visit of another day (a day's queue is closed by its date).
CREATE FUNCTION hms.assert_today(v hms.visits, p_verb text, p_why text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF v.business_date <> hms.business_date() THEN
        PERFORM hms.refuse(v, p_verb, p_why);
    END IF;
END $$;

-- Refuse a second active visit for the same patient, doctor and day (the unique index
-- backs this; the check gives the message).
CREATE FUNCTION hms.assert_no_active_visit(p_patient bigint, p_doctor hms.doctors, p_date date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE other hms.visits;
BEGIN
    SELECT * INTO other FROM hms.visits
     WHERE patient_id = p_patient AND doctor_id = p_doctor.id AND business_date = p_date
       AND status IN ('BOOKED', 'WAITING', 'CALLED', 'IN_CONSULTATION');
    IF FOUND THEN
        PERFORM hms.fail('HM409', format('%s already has an active visit with %s on %s: %s, %s (visit %s)',
            (SELECT name FROM hms.patients WHERE id = p_patient), p_doctor.name, p_date,
            coalesce(other.token, 'booked'), other.status, other.id));
    END IF;
END $$;


-- ---------------------------------------------------------------------------------------
-- Joining the queue
-- ---------------------------------------------------------------------------------------
-- A patient joins the waiting line: row w (a new visit, or a booking arriving) gets its token,
-- its place (hms.arrival_key) and the estimate quoted to the patient, then is written. The
-- caller holds the queue's lock.
CREATE FUNCTION hms.join_line(w hms.visits, p_prefix text) RETURNS hms.visits
LANGUAGE plpgsql AS $$
DECLARE q record;
BEGIN
    w.serial := hms.next_serial(w.doctor_id, w.business_date);
    w.token := hms.make_token(p_prefix, w.serial);
    w.status := 'WAITING';
    w.checked_in_at := now();
    w.queue_key := hms.arrival_key(w.appointment_at);
    w.queue_sub := 0;
    SELECT * INTO q FROM hms.quote(w);
    w.quoted_from := q.eta_from;
    w.quoted_to := q.eta_to;
    RETURN w;
END $$;

CREATE FUNCTION hms.checkin(p_doctor text, p_patient bigint, p_priority text DEFAULT 'NORMAL',
                            p_key text DEFAULT NULL) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    d      hms.doctors := hms.active_doctor(p_doctor);
    pat    hms.patients := hms.patient_by_id(p_patient);
    prio   hms.priority := hms.parse_priority(p_priority);
    bd     date := hms.business_date();
    v_key  text := hms.trim_text(p_key);
    seen   hms.visits;
    w      hms.visits;
    new_id bigint;
BEGIN
    PERFORM hms.begin_action('checkin');
    PERFORM hms.lock_queue(d.id, bd);
    IF v_key IS NOT NULL THEN
        -- A retried check-in (the reply was lost) returns the visit it created.
        SELECT * INTO seen FROM hms.visits WHERE idempotency_key = v_key;
        IF FOUND THEN
            IF seen.patient_id <> pat.id OR seen.doctor_id <> d.id THEN
                PERFORM hms.fail('HM409', format('check-in key %L was already used for visit %s (another patient or doctor)',
                                                 v_key, seen.id));
            END IF;
            RETURN hms.visit_info(seen.id, true);
        END IF;
    END IF;
    -- A patient booked with this doctor today arrives: the booking becomes the waiting visit.
    SELECT * INTO seen FROM hms.visits
     WHERE patient_id = pat.id AND doctor_id = d.id AND business_date = bd AND status = 'BOOKED'
       FOR UPDATE;
    IF FOUND THEN
        PERFORM hms.begin_action('arrive');
        seen.priority := greatest(seen.priority, prio);
        seen.idempotency_key := v_key;
        w := hms.join_line(seen, d.token_prefix);
        UPDATE hms.visits SET status = w.status, serial = w.serial, token = w.token,
                              priority = w.priority, checked_in_at = w.checked_in_at,
                              queue_key = w.queue_key, queue_sub = w.queue_sub,
                              idempotency_key = w.idempotency_key, quoted_from = w.quoted_from,
                              quoted_to = w.quoted_to
         WHERE id = seen.id;
        RETURN hms.visit_info(seen.id);
    END IF;
    PERFORM hms.assert_no_active_visit(pat.id, d, bd);
    w.doctor_id := d.id;
    w.patient_id := pat.id;
    w.business_date := bd;
    w.priority := prio;
    w.idempotency_key := v_key;
    w.call_count := 0;
    w := hms.join_line(w, d.token_prefix);
    INSERT INTO hms.visits (doctor_id, patient_id, business_date, serial, token, status, priority,
                            queue_key, queue_sub, checked_in_at, idempotency_key, quoted_from,
                            quoted_to)
    VALUES (w.doctor_id, w.patient_id, w.business_date, w.serial, w.token, w.status, w.priority,
            w.queue_key, w.queue_sub, w.checked_in_at, w.idempotency_key, w.quoted_from,
            w.quoted_to)
    RETURNING id INTO new_id;
    RETURN hms.visit_info(new_id);
END $$;

CREATE FUNCTION hms.arrive(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v hms.visits := hms.open_visit(p_visit, 'arrive', '{BOOKED}', 'mark it arrived');
    w hms.visits;
BEGIN
    PERFORM hms.assert_today(v, 'mark it arrived',
        format('it is booked for %s, not today; check the patient in as a walk-in', v.business_date));
    w := hms.join_line(v, (SELECT token_prefix FROM hms.doctors WHERE id = v.doctor_id));
    UPDATE hms.visits SET status = w.status, serial = w.serial, token = w.token,
                          checked_in_at = w.checked_in_at, queue_key = w.queue_key,
                          queue_sub = w.queue_sub, quoted_from = w.quoted_from,
                          quoted_to = w.quoted_to
     WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

-- ---------------------------------------------------------------------------------------
-- Calling and consulting
-- ---------------------------------------------------------------------------------------
-- One patient at a time: a doctor calls the next patient only when nobody else of theirs is
-- called or in consultation -- or up to the clinic's calls_ahead more -- unless the caller
-- insists (p_force, recorded as the action "<action>_forced"). Under the queue lock, so two
-- terminals calling at once cannot both pass. The refusal names who is with the doctor.
CREATE FUNCTION hms.assert_doctor_free(p_doctor integer, p_date date, p_except bigint,
                                       p_force boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ahead integer := (SELECT calls_ahead FROM hms.settings);
    d     hms.doctors;
    n     integer;
    who   text;
BEGIN
    SELECT count(*)::integer,
           string_agg(format('%s %s (%s, %s)', v.token, p.name, p.mrn,
                             CASE v.status WHEN 'CALLED' THEN 'called'
                                           ELSE 'in consultation' END),
                      ', ' ORDER BY v.called_at)
      INTO n, who
      FROM hms.visits v JOIN hms.patients p ON p.id = v.patient_id
     WHERE v.doctor_id = p_doctor AND v.business_date = p_date
       AND v.status IN ('CALLED', 'IN_CONSULTATION') AND v.id <> p_except;
    IF n <= ahead THEN
        RETURN;
    END IF;
    IF p_force THEN
        PERFORM hms.begin_action(left(current_setting('hms.action', true), 17) || '_forced');
        RETURN;
    END IF;
    SELECT * INTO d FROM hms.doctors WHERE id = p_doctor;
    PERFORM hms.fail('HM424', format(
        '%s (%s) is still serving %s; complete, mark no-show or transfer first, '
        'or call anyway (--force)', d.name, d.code, who));
END $$;

CREATE FUNCTION hms.call_visit(v hms.visits, p_force boolean) RETURNS hms.visit_info
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hms.assert_doctor_free(v.doctor_id, v.business_date, v.id, p_force);
    UPDATE hms.visits SET status = 'CALLED', called_at = now(), call_count = 1 WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.call_next(p_doctor text, p_force boolean DEFAULT false) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    d  hms.doctors := hms.doctor_by_code(p_doctor);
    bd date := hms.business_date();
    v  hms.visits;
BEGIN
    PERFORM hms.begin_action('call_next');
    PERFORM hms.assert_may_act(d.id);
    -- Under the queue lock no other transaction can change this queue's waiting line,
    -- so the head read here is the head when we commit.
    PERFORM hms.lock_queue(d.id, bd);
    SELECT * INTO v FROM hms.visits WHERE id = hms.queue_head(d.id, bd) FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('nobody is waiting for %s (%s)', d.name, d.code));
    END IF;
    RETURN hms.call_visit(v, coalesce(p_force, false));
END $$;

-- Call a particular waiting patient out of turn.
CREATE FUNCTION hms.call(p_visit bigint, p_force boolean DEFAULT false) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE v hms.visits := hms.open_visit(p_visit, 'call', '{WAITING}', 'call it');
BEGIN
    RETURN hms.call_visit(v, coalesce(p_force, false));
END $$;

CREATE FUNCTION hms.recall(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v      hms.visits := hms.open_visit(p_visit, 'recall', '{CALLED}', 'recall it');
    limit_ integer := (SELECT recall_limit FROM hms.settings);
BEGIN
    IF v.call_count - 1 >= limit_ THEN
        PERFORM hms.refuse(v, 'recall it',
            format('called %s times; the recall limit (%s) is used up, mark it no-show', v.call_count, limit_));
    END IF;
    UPDATE hms.visits SET called_at = now(), call_count = call_count + 1 WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.start(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE v hms.visits := hms.open_visit(p_visit, 'start', '{CALLED}', 'start the consultation',
                                       'call the patient first');
BEGIN
    UPDATE hms.visits SET status = 'IN_CONSULTATION', started_at = now() WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.complete(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE v hms.visits := hms.open_visit(p_visit, 'complete', '{IN_CONSULTATION}', 'complete it',
                                       'only a visit in consultation can be completed');
BEGIN
    UPDATE hms.visits SET status = 'COMPLETED', ended_at = now() WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.no_show(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v      hms.visits := hms.open_visit(p_visit, 'no_show', '{CALLED}', 'mark it no-show',
                                        'only a called patient can be a no-show');
    limit_ integer := (SELECT recall_limit FROM hms.settings);
BEGIN
    IF v.call_count - 1 < limit_ THEN
        PERFORM hms.refuse(v, 'mark it no-show',
            format('called %s time(s); recall it %s more time(s) first (recall limit %s)',
                   v.call_count, limit_ - (v.call_count - 1), limit_));
    END IF;
    UPDATE hms.visits SET status = 'NO_SHOW', ended_at = now() WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

-- ---------------------------------------------------------------------------------------
-- Leaving and moving in the queue
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION hms.cancel(p_visit bigint, p_reason text DEFAULT NULL) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE v hms.visits := hms.open_visit(p_visit, 'cancel', '{BOOKED,WAITING,CALLED}', 'cancel it');
BEGIN
    UPDATE hms.visits SET status = 'CANCELLED', ended_at = now(),
                          cancel_reason = nullif(hms.trim_text(p_reason), '')
     WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.requeue(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v  hms.visits := hms.open_visit(p_visit, 'requeue', '{NO_SHOW}', 'requeue it',
                                    'only a no-show can be requeued');
    d  hms.doctors;
    at record;
BEGIN
    PERFORM hms.assert_today(v, 'requeue it',
        format('it is from %s; check the patient in again', v.business_date));
    IF v.serial IS NULL THEN
        PERFORM hms.refuse(v, 'requeue it', 'the booking never arrived; check the patient in instead');
    END IF;
    SELECT * INTO d FROM hms.doctors WHERE id = v.doctor_id;
    PERFORM hms.assert_no_active_visit(v.patient_id, d, v.business_date);
    SELECT * INTO at FROM hms.place(v, (SELECT requeue_after FROM hms.settings));
    UPDATE hms.visits SET status = 'WAITING', call_count = 0, ended_at = NULL,
                          queue_key = at.key, queue_sub = at.sub
     WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.skip(p_visit bigint, p_places integer DEFAULT NULL) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v      hms.visits := hms.open_visit(p_visit, 'skip', '{WAITING}', 'skip it',
                                        'only a waiting patient can be moved back');
    places integer := coalesce(p_places, (SELECT skip_places FROM hms.settings));
    at     record;
BEGIN
    IF places NOT BETWEEN 1 AND 100 THEN
        PERFORM hms.fail('HM422', format('places must be from 1 to 100, not %s', places));
    END IF;
    SELECT * INTO at FROM hms.place(v, (hms.visit_info(v.id)).position - 1 + places);
    UPDATE hms.visits SET queue_key = at.key, queue_sub = at.sub WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.set_priority(p_visit bigint, p_priority text) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v    hms.visits := hms.open_visit(p_visit, 'set_priority', '{BOOKED,WAITING}', 'change its priority',
                                      'only a waiting or booked visit can change priority');
    prio hms.priority := hms.parse_priority(p_priority);
BEGIN
    UPDATE hms.visits SET priority = prio WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.transfer(p_visit bigint, p_to text) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    target hms.doctors := hms.active_doctor(p_to);
    from_d integer;
    bd     date;
    v      hms.visits;
    w      hms.visits;
    new_id bigint;
BEGIN
    PERFORM hms.begin_action('transfer');
    SELECT doctor_id, business_date INTO from_d, bd FROM hms.visits WHERE id = p_visit;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no visit with id %s', p_visit));
    END IF;
    -- Both queues change: lock them in ascending doctor id, then the visit.
    PERFORM hms.lock_queue(least(from_d, target.id), bd);
    PERFORM hms.lock_queue(greatest(from_d, target.id), bd);
    v := hms.lock_visit(p_visit);
    IF v.status NOT IN ('WAITING', 'CALLED') THEN
        PERFORM hms.refuse(v, 'transfer it', 'only a waiting or called visit can be transferred');
    END IF;
    IF target.id = v.doctor_id THEN  -- bad input, not a state: choose another doctor
        PERFORM hms.fail('HM422', format('visit %s (%s) is already with %s (%s); transfer it to another doctor',
                                         v.id, coalesce(v.token, 'booked'), target.name, target.code));
    END IF;
    PERFORM hms.assert_today(v, 'transfer it', format('it is from %s; check the patient in again', bd));
    UPDATE hms.visits SET status = 'TRANSFERRED', ended_at = now() WHERE id = v.id;
    PERFORM hms.assert_no_active_visit(v.patient_id, target, bd);
    w.doctor_id := target.id;
    w.patient_id := v.patient_id;
    w.business_date := bd;
    w.priority := v.priority;
    w.transferred_from := v.id;
    w.call_count := 0;
    w := hms.join_line(w, target.token_prefix);
    INSERT INTO hms.visits (doctor_id, patient_id, business_date, serial, token, status, priority,
                            queue_key, queue_sub, checked_in_at, transferred_from, quoted_from,
                            quoted_to)
    VALUES (w.doctor_id, w.patient_id, w.business_date, w.serial, w.token, w.status, w.priority,
            w.queue_key, w.queue_sub, w.checked_in_at, w.transferred_from, w.quoted_from,
            w.quoted_to)
    RETURNING id INTO new_id;
    RETURN hms.visit_info(new_id);
END $$;
