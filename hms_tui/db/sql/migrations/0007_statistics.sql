-- 0007: statistics and a day that closes.
--
-- * settings: the wait the clinic aims for (reports show the share of patients who waited
--   longer) and what the day close makes of visits still open (NO_SHOW or CANCELLED).
-- * hms.day_closes: one row per business date closed, with the day's report as it stood.

ALTER TABLE hms.settings
    ADD COLUMN wait_target_minutes integer NOT NULL DEFAULT 30
        CHECK (wait_target_minutes BETWEEN 1 AND 600),
    ADD COLUMN close_as text NOT NULL DEFAULT 'NO_SHOW' CHECK (close_as IN ('NO_SHOW', 'CANCELLED'));

CREATE TABLE hms.day_closes (
    business_date date PRIMARY KEY,
    closed_at     timestamptz NOT NULL DEFAULT now(),
    closed_by     text NOT NULL DEFAULT session_user,
    closed_visits integer NOT NULL DEFAULT 0,
    summary       jsonb NOT NULL
);
REVOKE ALL ON hms.day_closes FROM PUBLIC;

-- A doctor's latest consultations, for the pace behind every estimate.
CREATE INDEX visits_completed ON hms.visits (doctor_id, business_date, ended_at DESC)
    WHERE status = 'COMPLETED';
