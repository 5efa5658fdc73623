-- 0004: per-queue versions, so a live screen fetches only what changed.
--
-- Every change to a visit stamps it with the next version of its queue, taken from the
-- queue's counters row. That row is locked by every visit change until commit (see 0001), so
-- versions are handed out in commit order within a queue: a snapshot always holds exactly the
-- versions 1..head, and "everything after the version I have" is complete. A screen keeps
-- the active rows it has and asks only for rows with a higher version (usually one).

ALTER TABLE hms.counters ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE hms.visits ADD COLUMN queue_version bigint NOT NULL DEFAULT 0;
CREATE INDEX visits_queue_version ON hms.visits (doctor_id, business_date, queue_version);

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

-- The change signal now carries the queue version ("v"): a screen that already has it skips
-- the fetch.
CREATE OR REPLACE FUNCTION hms.notify_visits() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp AS $$
BEGIN
    PERFORM pg_notify('hms_changes', json_build_object(
                'k', 'queue', 'd', d.code, 'bd', c.business_date,
                'a', left(coalesce(nullif(current_setting('hms.action', true), ''), 'sql'), 24),
                'v', c.version)::text)
       FROM (SELECT doctor_id, business_date, max(queue_version) AS version
               FROM changed_rows GROUP BY doctor_id, business_date) c
       JOIN hms.doctors d ON d.id = c.doctor_id;
    RETURN NULL;
END $$;

-- What changed in a doctor's queue today since version p_since: every visit stamped after it
-- (any status, so a screen learns of visits that left the queue), or with p_since = 0 the
-- active visits only. Every row also carries the queue's head version and the minutes per
-- patient for wait estimates; with nothing new, one row of just those two.
-- The screen rebuilds exactly what hms.queue(p_doctor) returns (hms_tui/db/queue_sync.py).
CREATE FUNCTION hms.queue_changes(p_doctor text, p_since bigint)
RETURNS TABLE (head_version bigint, per_patient numeric, visit_id bigint, token text,
               serial integer, status text, priority text, patient_id bigint,
               patient_name text, mrn text, doctor text, doctor_name text, room text,
               business_date date, appointment_at timestamptz, checked_in_at timestamptz,
               called_at timestamptz, call_count integer, started_at timestamptz,
               ended_at timestamptz, cancel_reason text, transferred_from bigint,
               queue_key numeric, queue_version bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    d    hms.doctors := hms.doctor_by_code(p_doctor);
    bd   date := hms.business_date();
    head bigint;
    pp   numeric := hms.consult_minutes(d.id, bd);
BEGIN
    -- A STABLE function reads one snapshot: the head and the rows agree.
    SELECT c.version INTO head FROM hms.counters c
     WHERE c.kind = 'serial' AND c.scope_id = d.id AND c.period = bd;
    RETURN QUERY
    SELECT coalesce(head, 0), pp, v.id, v.token, v.serial, v.status::text, v.priority::text,
           p.id, p.name, p.mrn, d.code, d.name, d.room, v.business_date, v.appointment_at,
           v.checked_in_at, v.called_at, v.call_count, v.started_at, v.ended_at,
           v.cancel_reason, v.transferred_from, v.queue_key, v.queue_version
      FROM (SELECT 1) AS one
      LEFT JOIN (hms.visits v JOIN hms.patients p ON p.id = v.patient_id)
        ON v.doctor_id = d.id AND v.business_date = bd AND v.queue_version > p_since
       AND (p_since > 0 OR v.status IN ('WAITING', 'CALLED', 'IN_CONSULTATION'))
     ORDER BY v.queue_version;
END $$;

REVOKE ALL ON FUNCTION hms.stamp_queue_version() FROM PUBLIC;
REVOKE ALL ON FUNCTION hms.queue_changes(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hms.queue_changes(text, bigint) TO hms_reception, hms_doctor, hms_admin;
