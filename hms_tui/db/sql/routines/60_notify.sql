-- Change signals for live screens.
--
-- One NOTIFY per affected queue per statement (statement-level triggers over transition
-- tables), never one per row, and never row data: a listener refetches what it shows.
-- Payload (JSON, well under 200 bytes):
--   {"k": kind, "d": doctor code, "bd": business date, "a": desk action,
--    "v": the queue's version (visits only)}
-- kind is "queue" (visits), "bill" (bills) or "doctors" (doctors, settings, patient names:
-- things every queue row shows, so screens re-read everything).
-- NOTIFY is delivered on commit only: a rolled-back change sends nothing.

CREATE FUNCTION hms.notify_change(p_kind text, p_doctor text, p_date date) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify('hms_changes', json_build_object(
        'k', p_kind, 'd', p_doctor, 'bd', p_date,
        'a', left(coalesce(nullif(current_setting('hms.action', true), ''), 'sql'), 24))::text)
$$;

CREATE FUNCTION hms.notify_visits() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp AS $$
BEGIN
    -- "v": the queue's version after this statement; a screen that has it skips the fetch.
    PERFORM pg_notify('hms_changes', json_build_object(
                'k', 'queue', 'd', d.code, 'bd', c.business_date,
                'a', left(coalesce(nullif(current_setting('hms.action', true), ''), 'sql'), 24),
                'v', c.version)::text)
       FROM (SELECT doctor_id, business_date, max(queue_version) AS version
               FROM changed_rows GROUP BY doctor_id, business_date) c
       JOIN hms.doctors d ON d.id = c.doctor_id;
    RETURN NULL;
END $$;

CREATE FUNCTION hms.notify_bills() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp AS $$
BEGIN
    PERFORM hms.notify_change('bill', d.code, v.business_date)
       FROM (SELECT DISTINCT visit_id FROM changed_rows) c
       JOIN hms.visits v ON v.id = c.visit_id
       JOIN hms.doctors d ON d.id = v.doctor_id;
    RETURN NULL;
END $$;

CREATE FUNCTION hms.notify_doctors() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp AS $$
BEGIN
    PERFORM hms.notify_change('doctors', NULL, NULL);
    RETURN NULL;
END $$;

CREATE TRIGGER visits_notify_insert AFTER INSERT ON hms.visits
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hms.notify_visits();
CREATE TRIGGER visits_notify_update AFTER UPDATE ON hms.visits
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hms.notify_visits();
CREATE TRIGGER bills_notify_insert AFTER INSERT ON hms.bills
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hms.notify_bills();
CREATE TRIGGER bills_notify_update AFTER UPDATE ON hms.bills
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hms.notify_bills();
CREATE TRIGGER doctors_notify AFTER INSERT OR UPDATE ON hms.doctors
    FOR EACH STATEMENT EXECUTE FUNCTION hms.notify_doctors();
CREATE TRIGGER settings_notify AFTER UPDATE ON hms.settings
    FOR EACH STATEMENT EXECUTE FUNCTION hms.notify_doctors();
-- Names shown in every queue row: a corrected name reaches every screen too; a new patient
-- reaches every reception's list of recent patients (registrations are rare next to queue
-- changes, so the re-read this costs every terminal is small).
CREATE TRIGGER patients_notify AFTER UPDATE ON hms.patients
    FOR EACH STATEMENT EXECUTE FUNCTION hms.notify_doctors();
CREATE TRIGGER patients_notify_insert AFTER INSERT ON hms.patients
    FOR EACH STATEMENT EXECUTE FUNCTION hms.notify_doctors();
