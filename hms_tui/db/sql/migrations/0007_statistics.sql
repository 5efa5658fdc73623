-- 0007: statistics and a day that closes.
--
-- * settings: the wait the clinic aims for (reports show the share of patients who waited
--   longer) and what the day close makes of visits still open (NO_SHOW or CANCELLED).
-- * a booking that never arrived may be a no-show without a token (the day close marks them).
-- * hms.day_closes: one row per business date closed, with the day's report as it stood.
-- * the trail records the clinic's settings row once if it never has: the schema wrote it
--   before the trail began, and audit check holds every live row to an image.

ALTER TABLE hms.settings
    ADD COLUMN wait_target_minutes integer NOT NULL DEFAULT 30
        CHECK (wait_target_minutes BETWEEN 1 AND 600),
    ADD COLUMN close_as text NOT NULL DEFAULT 'NO_SHOW' CHECK (close_as IN ('NO_SHOW', 'CANCELLED'));

INSERT INTO hms.audit_pending (ticket, at, actor, action, entity, op, txid, after)
SELECT nextval('hms.audit_ticket'), now(), session_user, 'baseline', 'settings', 'INSERT',
       pg_current_xact_id()::text::bigint, to_jsonb(s)
  FROM hms.settings s
 WHERE NOT EXISTS (SELECT 1 FROM hms.audit_events e WHERE e.entity = 'settings')
   AND NOT EXISTS (SELECT 1 FROM hms.audit_pending p WHERE p.entity = 'settings');

ALTER TABLE hms.visits
    DROP CONSTRAINT visits_checked_in_has_serial,
    ADD CONSTRAINT visits_checked_in_has_serial
        CHECK (status IN ('BOOKED', 'CANCELLED') OR serial IS NOT NULL
               OR (status = 'NO_SHOW' AND checked_in_at IS NULL));

CREATE TABLE hms.day_closes (
    business_date date PRIMARY KEY,
    closed_at     timestamptz NOT NULL DEFAULT now(),
    closed_by     text NOT NULL DEFAULT session_user,
    closed_visits integer NOT NULL DEFAULT 0,
    summary       jsonb NOT NULL
);
REVOKE ALL ON hms.day_closes FROM PUBLIC;

-- A day's visits for its report, and the trail's images of the few patients, doctors and the
-- settings a replay needs (without these, each would scan the whole trail).
CREATE INDEX visits_day ON hms.visits (business_date);
CREATE INDEX audit_events_entity ON hms.audit_events (entity, entity_id, seq)
    WHERE entity IN ('patients', 'doctors', 'settings');

-- A doctor's latest consultations, for the pace behind every estimate.
CREATE INDEX visits_completed ON hms.visits (doctor_id, business_date, ended_at DESC)
    WHERE status = 'COMPLETED';
