-- 0005: appointments that fill the day.
--
-- * hms.sessions: when a doctor sees booked patients -- weekly (ISO weekdays) or one extra
--   date -- cut into slots of slot_minutes, each for up to capacity patients. Removed sessions
--   are kept (removed_at), so past bookings still name theirs.
-- * hms.leaves: dates a doctor holds no session.
-- * visits: the session a booking is in, why it was booked past capacity, and the estimate
--   quoted when the patient joined the line (to report its accuracy).
-- * settings: the window around a slot in which an arriving booked patient keeps their slot
--   time in the queue, and the rule itself ('fair', or 'arrival': everyone by arrival).

CREATE TABLE hms.sessions (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doctor_id    integer NOT NULL REFERENCES hms.doctors,
    weekdays     integer[] CHECK (weekdays <@ '{1,2,3,4,5,6,7}' AND cardinality(weekdays) >= 1),
    on_date      date,
    starts       time    NOT NULL,
    ends         time    NOT NULL,
    slot_minutes integer NOT NULL CHECK (slot_minutes BETWEEN 5 AND 240),
    capacity     integer NOT NULL CHECK (capacity BETWEEN 1 AND 50),
    room         text    CHECK (hms.is_clean_text(room, 20)),
    created_at   timestamptz NOT NULL DEFAULT now(),
    removed_at   timestamptz,
    CONSTRAINT sessions_weekly_or_dated CHECK ((weekdays IS NULL) <> (on_date IS NULL)),
    CONSTRAINT sessions_holds_a_slot CHECK (ends >= starts + make_interval(mins => slot_minutes))
);
CREATE INDEX sessions_doctor ON hms.sessions (doctor_id) WHERE removed_at IS NULL;

CREATE TABLE hms.leaves (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doctor_id  integer NOT NULL REFERENCES hms.doctors,
    from_date  date    NOT NULL,
    to_date    date    NOT NULL CHECK (to_date >= from_date),
    reason     text    CHECK (hms.is_clean_text(reason, 200)),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leaves_doctor ON hms.leaves (doctor_id, from_date);

ALTER TABLE hms.visits
    ADD COLUMN session_id  integer REFERENCES hms.sessions,
    ADD COLUMN overbooked  text CHECK (hms.is_clean_text(overbooked, 200)),
    ADD COLUMN quoted_from timestamptz,
    ADD COLUMN quoted_to   timestamptz;
CREATE INDEX visits_appointments ON hms.visits (doctor_id, business_date, appointment_at)
    WHERE appointment_at IS NOT NULL;

ALTER TABLE hms.settings
    ADD COLUMN booking_early_minutes integer NOT NULL DEFAULT 30
        CHECK (booking_early_minutes BETWEEN 0 AND 240),
    ADD COLUMN booking_late_minutes integer NOT NULL DEFAULT 15
        CHECK (booking_late_minutes BETWEEN 0 AND 240),
    ADD COLUMN queue_rule text NOT NULL DEFAULT 'fair' CHECK (queue_rule IN ('fair', 'arrival'));

REVOKE ALL ON hms.sessions, hms.leaves FROM PUBLIC;

-- When a queue last changed: its estimates are reckoned from then (routines/40_queue.sql).
ALTER TABLE hms.counters ADD COLUMN changed_at timestamptz;
