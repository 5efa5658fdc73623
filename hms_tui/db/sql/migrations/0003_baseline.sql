-- 0003 baseline: the tables of release 0.1 (migrations 0001-0003 squashed to their DDL).
--
-- A fresh database applies this file and is recorded at version 3; a database made by release
-- 0.1 already has versions 1-3 (hms_tui/db/migrate.py knows their checksums). Tables, types
-- used by tables, indexes, the roles and privileges on the schema and tables live in numbered
-- migrations like this one; functions, views and triggers live in ../routines/, one file per
-- area, re-applied whenever one of them changes.

-- Text rules used by CHECK constraints and defaults (mirrored by hms_tui/domain/validation.py).
CREATE FUNCTION hms.is_clean_text(t text, max_len integer) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t IS NULL OR (
        length(t) BETWEEN 1 AND max_len
        AND t = btrim(t)
        AND t !~ '[\x01-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]'
    )
$$;

CREATE FUNCTION hms.pad_number(n bigint, width integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lpad(n::text, greatest(width, length(n::text)), '0')
$$;

CREATE TABLE hms.settings (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    clinic_name     text    NOT NULL DEFAULT 'Outpatient Clinic' CHECK (hms.is_clean_text(clinic_name, 80)),
    timezone        text    NOT NULL DEFAULT 'UTC',
    recall_limit    integer NOT NULL DEFAULT 2  CHECK (recall_limit BETWEEN 0 AND 10),
    requeue_after   integer NOT NULL DEFAULT 3  CHECK (requeue_after BETWEEN 0 AND 100),
    skip_places     integer NOT NULL DEFAULT 1  CHECK (skip_places BETWEEN 1 AND 100),
    consult_minutes integer NOT NULL DEFAULT 10 CHECK (consult_minutes BETWEEN 1 AND 240)
);

CREATE TABLE hms.doctors (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code         text    NOT NULL UNIQUE CHECK (code ~ '^[A-Z][A-Z0-9]{0,7}$'),
    name         text    NOT NULL CHECK (hms.is_clean_text(name, 100)),
    room         text    CHECK (hms.is_clean_text(room, 20)),
    token_prefix text    NOT NULL UNIQUE CHECK (token_prefix ~ '^[A-Z0-9]{1,6}$'),
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE hms.mrn_seq;  -- MRNs need to be unique, not gap-free

CREATE TABLE hms.patients (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mrn         text   NOT NULL UNIQUE DEFAULT ('M' || hms.pad_number(nextval('hms.mrn_seq'), 6)),
    name        text   NOT NULL CHECK (hms.is_clean_text(name, 100)),
    phone       text   CHECK (phone ~ '^\+?[0-9][0-9 -]{2,19}$'),
    birth_date  date   CHECK (birth_date >= DATE '1880-01-01'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_lower_name ON hms.patients (lower(name) text_pattern_ops);

-- kind 'serial': scope_id = doctor id, period = business date (the daily reset is the key).
-- kind 'bill':   scope_id = 0, period = 1 January of the billing year.
CREATE TABLE hms.counters (
    kind     text    NOT NULL CHECK (kind IN ('serial', 'bill')),
    scope_id integer NOT NULL,
    period   date    NOT NULL,
    value    integer NOT NULL DEFAULT 0 CHECK (value >= 0),
    version  bigint  NOT NULL DEFAULT 0,  -- serial rows: the queue's version (see visits)
    PRIMARY KEY (kind, scope_id, period)
);

CREATE TYPE hms.visit_status AS ENUM (
    'BOOKED', 'WAITING', 'CALLED', 'IN_CONSULTATION',
    'COMPLETED', 'CANCELLED', 'NO_SHOW', 'TRANSFERRED'
);
-- Enum order is the priority order: NORMAL < URGENT < EMERGENCY.
CREATE TYPE hms.priority AS ENUM ('NORMAL', 'URGENT', 'EMERGENCY');

CREATE TABLE hms.visits (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doctor_id        integer NOT NULL REFERENCES hms.doctors,
    patient_id       bigint  NOT NULL REFERENCES hms.patients,
    business_date    date    NOT NULL,
    serial           integer CHECK (serial > 0),
    token            text,
    status           hms.visit_status NOT NULL,
    priority         hms.priority NOT NULL DEFAULT 'NORMAL',
    queue_key        numeric,            -- order within a priority (arrival time, moved by skip/requeue)
    appointment_at   timestamptz,
    checked_in_at    timestamptz,
    called_at        timestamptz,        -- the latest call
    call_count       integer NOT NULL DEFAULT 0 CHECK (call_count >= 0),
    started_at       timestamptz,
    ended_at         timestamptz,
    cancel_reason    text CHECK (hms.is_clean_text(cancel_reason, 200)),
    transferred_from bigint UNIQUE REFERENCES hms.visits,
    idempotency_key  text UNIQUE CHECK (hms.is_clean_text(idempotency_key, 100)),
    queue_version    bigint NOT NULL DEFAULT 0,  -- the queue's version when this row last changed
    CONSTRAINT visits_serial_unique UNIQUE (doctor_id, business_date, serial),
    CONSTRAINT visits_token_with_serial CHECK ((serial IS NULL) = (token IS NULL)),
    CONSTRAINT visits_checked_in_has_serial CHECK (status IN ('BOOKED', 'CANCELLED') OR serial IS NOT NULL),
    CONSTRAINT visits_waiting_has_key CHECK (status <> 'WAITING' OR queue_key IS NOT NULL)
);
-- One active visit per patient, doctor and day, even under concurrent check-ins.
CREATE UNIQUE INDEX visits_one_active ON hms.visits (patient_id, doctor_id, business_date)
    WHERE status IN ('BOOKED', 'WAITING', 'CALLED', 'IN_CONSULTATION');
CREATE INDEX visits_queue ON hms.visits (doctor_id, business_date, status);
CREATE INDEX visits_queue_version ON hms.visits (doctor_id, business_date, queue_version);

CREATE TABLE hms.bills (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bill_number text    NOT NULL UNIQUE,
    bill_year   integer NOT NULL,
    bill_seq    integer NOT NULL CHECK (bill_seq > 0),
    visit_id    bigint  NOT NULL REFERENCES hms.visits,
    total       numeric(12, 2) NOT NULL CHECK (total >= 0),
    status      text    NOT NULL DEFAULT 'ISSUED' CHECK (status IN ('ISSUED', 'VOID')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    voided_at   timestamptz,
    void_reason text CHECK (hms.is_clean_text(void_reason, 200)),
    UNIQUE (bill_year, bill_seq),
    CHECK ((status = 'VOID') = (void_reason IS NOT NULL AND voided_at IS NOT NULL))
);
CREATE INDEX bills_visit ON hms.bills (visit_id);

CREATE TABLE hms.bill_items (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bill_id     bigint  NOT NULL REFERENCES hms.bills,
    line_no     integer NOT NULL CHECK (line_no BETWEEN 1 AND 50),
    description text    NOT NULL CHECK (hms.is_clean_text(description, 80)),
    amount      numeric(12, 2) NOT NULL CHECK (amount BETWEEN 0 AND 10000000),
    UNIQUE (bill_id, line_no)
);

-- The audit trail. seq is gap-free and in commit order: it is allocated under the
-- audit_head row lock, which is held until the writing transaction ends.
CREATE TABLE hms.audit_events (
    seq       bigint PRIMARY KEY,
    at        timestamptz NOT NULL,      -- database clock, transaction start
    actor     text NOT NULL,             -- session_user: the PostgreSQL login
    terminal  text,                      -- label the app sets (hms.terminal)
    action    text NOT NULL,             -- desk action (hms.action) or e.g. 'update_visits'
    entity    text NOT NULL,             -- table name
    entity_id bigint,
    visit_id  bigint,
    op        text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    txid      bigint NOT NULL,
    before    jsonb,
    after     jsonb,
    prev_hash bytea NOT NULL,
    hash      bytea NOT NULL
);
CREATE INDEX audit_events_visit ON hms.audit_events (visit_id, seq) WHERE visit_id IS NOT NULL;
CREATE INDEX audit_events_at ON hms.audit_events (at);

CREATE TABLE hms.audit_head (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq  bigint NOT NULL,
    last_hash bytea  NOT NULL
);
INSERT INTO hms.audit_head VALUES (true, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE hms.staff_doctors (
    login     text    NOT NULL CHECK (login ~ '^[a-z_][a-z0-9_.-]{0,62}$'),
    doctor_id integer NOT NULL REFERENCES hms.doctors,
    PRIMARY KEY (login, doctor_id)
);

INSERT INTO hms.settings DEFAULT VALUES;

-- Group roles: cluster-global, shared by every database of the cluster (many test
-- databases, or several clinics), so created idempotently; a concurrent creation of the
-- same name (two databases migrating at once) is not an error.
DO $$
DECLARE
    g text;
    r pg_roles;
BEGIN
    FOREACH g IN ARRAY ARRAY['hms_reception', 'hms_doctor', 'hms_display', 'hms_admin'] LOOP
        SELECT * INTO r FROM pg_roles WHERE rolname = g;
        IF NOT FOUND THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                               'NOREPLICATION NOBYPASSRLS', g);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created by a concurrent migration of another database
            END;
        ELSIF r.rolsuper OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls OR r.rolcanlogin THEN
            -- Every member inherits a group's attributes' reach: refuse a dangerous group.
            RAISE EXCEPTION USING ERRCODE = 'HM409', MESSAGE = format(
                'role %s exists but is a login, superuser, CREATEROLE, REPLICATION or BYPASSRLS role; '
                'hms-tui uses it as a plain group role: fix or rename it first', g);
        END IF;
    END LOOP;
END $$;

-- Nothing in the schema for anyone but these groups.
REVOKE ALL ON SCHEMA hms FROM PUBLIC;
GRANT USAGE ON SCHEMA hms TO hms_reception, hms_doctor, hms_display, hms_admin;

-- Functions created later by the owner are not executable by PUBLIC until granted. (Only the
-- database-wide form can revoke the built-in PUBLIC default; `IN SCHEMA` can only add.)
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

REVOKE ALL ON ALL TABLES IN SCHEMA hms FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA hms FROM PUBLIC;
-- Every terminal checks the schema version at start; `hms-tui audit verify` reads the trail
-- and its head itself, to recompute every hash independently of the functions that wrote them.
GRANT SELECT ON hms.schema_migrations TO hms_reception, hms_doctor, hms_display, hms_admin;
GRANT SELECT ON hms.audit_events, hms.audit_head TO hms_admin;
