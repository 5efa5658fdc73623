-- 0001: tables, rules and desk actions.
--
-- Design (see README "How numbers and queues stay right"):
-- * Every desk action is one SECURITY DEFINER function, one transaction, one round trip.
-- * Numbers come from hms.counters under a row lock, in the transaction that uses them:
--   a rollback undoes the increment, so there are no gaps; unique constraints back them.
-- * The counters row of (doctor, business date) doubles as that queue's lock. Every action
--   that changes a visit takes it first, so changes to one queue are serialised and
--   call-next can never hand the same patient to two terminals.
-- * Queue positions are not stored: they are derived at read time from
--   (priority DESC, queue_key, id), so they are always 1..N, dense and unique.
-- * Lock order, always: queue rows (ascending doctor id) -> visit row -> bill counter ->
--   audit head (taken by the audit trigger at the first audited write, held to commit).
-- * Every change to an audited table writes a hash-chained audit row in the same
--   transaction, complete enough (before and after images) to replay the queue.

-- ---------------------------------------------------------------------------------------
-- Text rules (mirrored by hms_tui/core/validation.py)
-- ---------------------------------------------------------------------------------------
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

CREATE FUNCTION hms.epoch_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint
$$;

-- ---------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------------------
-- Audit: chained rows, written by triggers, never changed
-- ---------------------------------------------------------------------------------------
-- Canonical text of a row for hashing: each field '<length, or - for NULL>:<text>', joined by
-- '|'. Plain concatenation: it runs while the global audit head lock is held.
-- hms_tui/core/audit.py rebuilds it independently; tests compare the two.
CREATE FUNCTION hms.canon_field(f text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN f IS NULL THEN '-:' ELSE length(f)::text || ':' || f END
$$;

CREATE FUNCTION hms.audit_canon(r hms.audit_events) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT hms.canon_field(r.seq::text)
        || '|' || hms.canon_field(hms.epoch_us(r.at)::text)
        || '|' || hms.canon_field(r.actor)
        || '|' || hms.canon_field(r.terminal)
        || '|' || hms.canon_field(r.action)
        || '|' || hms.canon_field(r.entity)
        || '|' || hms.canon_field(r.entity_id::text)
        || '|' || hms.canon_field(r.visit_id::text)
        || '|' || hms.canon_field(r.op)
        || '|' || hms.canon_field(r.txid::text)
        || '|' || hms.canon_field(r.before::text)
        || '|' || hms.canon_field(r.after::text)
        || '|' || hms.canon_field(encode(r.prev_hash, 'hex'))
$$;

-- lock_timeout: a direct write (not through a desk action) never waits forever for the head.
CREATE FUNCTION hms.audit_append(
    p_entity text, p_entity_id bigint, p_visit_id bigint, p_op text, p_before jsonb, p_after jsonb
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    head  hms.audit_head;
    r     hms.audit_events;
    label text := nullif(current_setting('hms.terminal', true), '');
BEGIN
    SELECT * INTO head FROM hms.audit_head FOR UPDATE;
    r.seq       := head.last_seq + 1;
    r.at        := now();
    r.actor     := session_user;
    r.terminal  := CASE WHEN hms.is_clean_text(label, 40) THEN label ELSE '(invalid label)' END;
    r.action    := coalesce(nullif(current_setting('hms.action', true), ''),
                            lower(p_op) || '_' || p_entity);
    r.entity    := p_entity;
    r.entity_id := p_entity_id;
    r.visit_id  := p_visit_id;
    r.op        := p_op;
    r.txid      := pg_current_xact_id()::text::bigint;
    r.before    := p_before;
    r.after     := p_after;
    r.prev_hash := head.last_hash;
    r.hash      := sha256(r.prev_hash || convert_to(hms.audit_canon(r), 'UTF8'));
    INSERT INTO hms.audit_events VALUES (r.*);
    UPDATE hms.audit_head SET last_seq = r.seq, last_hash = r.hash;
END $$;

CREATE FUNCTION hms.audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    b   jsonb;
    a   jsonb;
    img jsonb;
    vid bigint;
BEGIN
    IF TG_OP <> 'INSERT' THEN b := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN a := to_jsonb(NEW); END IF;
    IF b = a THEN
        RETURN NULL;  -- nothing changed, nothing to record
    END IF;
    img := coalesce(a, b);
    vid := CASE TG_TABLE_NAME
        WHEN 'visits' THEN (img ->> 'id')::bigint
        WHEN 'bills' THEN (img ->> 'visit_id')::bigint
        WHEN 'bill_items' THEN (SELECT visit_id FROM hms.bills WHERE id = (img ->> 'bill_id')::bigint)
    END;
    PERFORM hms.audit_append(
        TG_TABLE_NAME,
        CASE WHEN TG_TABLE_NAME = 'settings' THEN NULL ELSE (img ->> 'id')::bigint END,
        vid, TG_OP, b, a);
    RETURN NULL;
END $$;

CREATE FUNCTION hms.reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'HM423', MESSAGE = TG_ARGV[0];
END $$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON hms.audit_events
    FOR EACH ROW EXECUTE FUNCTION hms.reject_change('the audit trail is append-only');
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON hms.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION hms.reject_change('the audit trail is append-only');

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['settings', 'doctors', 'patients', 'visits', 'bills', 'bill_items'] LOOP
        EXECUTE format(
            'CREATE TRIGGER %1$s_audit AFTER INSERT OR UPDATE OR DELETE ON hms.%1$I
                 FOR EACH ROW EXECUTE FUNCTION hms.audit_row()', t);
        EXECUTE format(
            'CREATE TRIGGER %1$s_no_truncate BEFORE TRUNCATE ON hms.%1$I
                 FOR EACH STATEMENT EXECUTE FUNCTION hms.reject_change(%2$L)',
            t, t || ' cannot be truncated: it is part of the audited record');
    END LOOP;
END $$;

CREATE TRIGGER visits_no_delete BEFORE DELETE ON hms.visits
    FOR EACH ROW EXECUTE FUNCTION hms.reject_change('visits are never deleted; cancel the visit instead');
CREATE TRIGGER bills_no_delete BEFORE DELETE ON hms.bills
    FOR EACH ROW EXECUTE FUNCTION hms.reject_change('bills are never deleted; void the bill instead');
CREATE TRIGGER bill_items_immutable BEFORE UPDATE OR DELETE ON hms.bill_items
    FOR EACH ROW EXECUTE FUNCTION hms.reject_change('bill items cannot be changed; void the bill and issue a new one');

-- ---------------------------------------------------------------------------------------
-- Rules enforced on every write, whoever makes it
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION hms.check_settings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = NEW.timezone) THEN
        RAISE EXCEPTION USING ERRCODE = 'HM422',
            MESSAGE = format('time zone %L is unknown; use an IANA name such as Asia/Kolkata', NEW.timezone);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER settings_check BEFORE INSERT OR UPDATE ON hms.settings
    FOR EACH ROW EXECUTE FUNCTION hms.check_settings();

-- The visit state machine. Functions give friendlier messages first; this is the backstop.
CREATE FUNCTION hms.transition_allowed(f hms.visit_status, t hms.visit_status) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (f, t) IN (
        ('BOOKED', 'BOOKED'), ('BOOKED', 'WAITING'), ('BOOKED', 'CANCELLED'),
        ('WAITING', 'WAITING'), ('WAITING', 'CALLED'), ('WAITING', 'CANCELLED'), ('WAITING', 'TRANSFERRED'),
        ('CALLED', 'CALLED'), ('CALLED', 'IN_CONSULTATION'), ('CALLED', 'CANCELLED'),
        ('CALLED', 'NO_SHOW'), ('CALLED', 'TRANSFERRED'),
        ('IN_CONSULTATION', 'COMPLETED'),
        ('NO_SHOW', 'WAITING')
    )
$$;

CREATE FUNCTION hms.check_visit_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT hms.transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION USING ERRCODE = 'HM423',
            MESSAGE = format('visit %s (%s) is %s; it cannot become %s',
                             OLD.id, coalesce(OLD.token, 'booked'), OLD.status, NEW.status);
    END IF;
    IF NEW.doctor_id <> OLD.doctor_id OR NEW.patient_id <> OLD.patient_id
       OR NEW.business_date <> OLD.business_date
       OR (OLD.serial IS NOT NULL AND NEW.serial IS DISTINCT FROM OLD.serial)
       OR (OLD.token IS NOT NULL AND NEW.token IS DISTINCT FROM OLD.token)
       OR NEW.transferred_from IS DISTINCT FROM OLD.transferred_from
       OR (OLD.idempotency_key IS NOT NULL
           AND NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'HM423',
            MESSAGE = format('visit %s: doctor, patient, date, token and origin never change; transfer instead', OLD.id);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER visits_state_machine BEFORE UPDATE ON hms.visits
    FOR EACH ROW EXECUTE FUNCTION hms.check_visit_update();

-- Per-queue versions, so a live screen fetches only what changed. Every change to a visit
-- stamps it with the next version of its queue, taken from the queue's counters row. That
-- row is locked by every visit change until commit, so versions are handed out in commit
-- order within a queue: a snapshot holds exactly the versions 1..head, and "everything after
-- the version I have" is complete (hms.queue_changes, hms_tui/db/queue_sync.py).
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

CREATE FUNCTION hms.check_bill_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'ISSUED' OR NEW.status <> 'VOID'
       OR (NEW.bill_number, NEW.bill_year, NEW.bill_seq, NEW.visit_id, NEW.total, NEW.created_at)
          IS DISTINCT FROM (OLD.bill_number, OLD.bill_year, OLD.bill_seq, OLD.visit_id, OLD.total, OLD.created_at) THEN
        RAISE EXCEPTION USING ERRCODE = 'HM423',
            MESSAGE = format('bill %s is %s; a bill can only be voided, once', OLD.bill_number, OLD.status);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER bills_void_only BEFORE UPDATE ON hms.bills
    FOR EACH ROW EXECUTE FUNCTION hms.check_bill_update();

-- ---------------------------------------------------------------------------------------
-- Helpers used by the actions
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION hms.business_date() RETURNS date
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT (now() AT TIME ZONE s.timezone)::date FROM hms.settings s
$$;

CREATE FUNCTION hms.begin_action(p_action text) RETURNS void
LANGUAGE sql AS $$
    SELECT set_config('hms.action', p_action, true)
$$;

CREATE FUNCTION hms.fail(p_code text, p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message;
END $$;

CREATE FUNCTION hms.doctor_by_code(p_code text) RETURNS hms.doctors
LANGUAGE plpgsql STABLE AS $$
DECLARE d hms.doctors;
BEGIN
    SELECT * INTO d FROM hms.doctors WHERE code = upper(btrim(p_code));
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no doctor with code %s', p_code));
    END IF;
    RETURN d;
END $$;

CREATE FUNCTION hms.active_doctor(p_code text) RETURNS hms.doctors
LANGUAGE plpgsql STABLE AS $$
DECLARE d hms.doctors := hms.doctor_by_code(p_code);
BEGIN
    IF NOT d.active THEN
        PERFORM hms.fail('HM409', format('%s (%s) is not taking patients (inactive)', d.name, d.code));
    END IF;
    RETURN d;
END $$;

CREATE FUNCTION hms.patient_by_id(p_id bigint) RETURNS hms.patients
LANGUAGE plpgsql STABLE AS $$
DECLARE p hms.patients;
BEGIN
    SELECT * INTO p FROM hms.patients WHERE id = p_id;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no patient with id %s', p_id));
    END IF;
    RETURN p;
END $$;

CREATE FUNCTION hms.parse_priority(p text) RETURNS hms.priority
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF upper(btrim(coalesce(p, ''))) NOT IN ('NORMAL', 'URGENT', 'EMERGENCY') THEN
        PERFORM hms.fail('HM422', format('priority %L is invalid; use normal, urgent or emergency', p));
    END IF;
    RETURN upper(btrim(p))::hms.priority;
END $$;

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
    UPDATE hms.counters SET value = value + 1
     WHERE kind = 'serial' AND scope_id = p_doctor AND period = p_date
    RETURNING value INTO v;
    RETURN v;
END $$;

CREATE FUNCTION hms.next_bill_seq(p_year integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v integer;
    p date := make_date(p_year, 1, 1);
BEGIN
    INSERT INTO hms.counters (kind, scope_id, period) VALUES ('bill', 0, p) ON CONFLICT DO NOTHING;
    SELECT value INTO v FROM hms.counters WHERE kind = 'bill' AND scope_id = 0 AND period = p FOR UPDATE;
    UPDATE hms.counters SET value = v + 1 WHERE kind = 'bill' AND scope_id = 0 AND period = p;
    RETURN v + 1;
END $$;

-- May this login act on this doctor's visits? Everyone may, until 0003_security defines
-- who may (a doctor login only on the doctors it is linked to).
CREATE FUNCTION hms.assert_may_act(p_doctor integer) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
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

CREATE FUNCTION hms.make_token(p_prefix text, p_serial integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_prefix || '-' || hms.pad_number(p_serial, 3)
$$;

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
    SELECT count(*) FILTER (WHERE priority > p),
           coalesce(array_agg(queue_key ORDER BY queue_key, id) FILTER (WHERE priority = p), '{}')
      INTO higher, keys
      FROM hms.visits
     WHERE doctor_id = p_doctor AND business_date = p_date AND status = 'WAITING' AND id <> p_exclude;
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
-- What the actions return
-- ---------------------------------------------------------------------------------------
CREATE TYPE hms.visit_info AS (
    visit_id         bigint,
    token            text,
    serial           integer,
    position         integer,
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

CREATE FUNCTION hms.position_of(v hms.visits) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN v.status <> 'WAITING' THEN NULL ELSE (
        SELECT count(*)::integer + 1 FROM hms.visits w
         WHERE w.doctor_id = v.doctor_id AND w.business_date = v.business_date
           AND w.status = 'WAITING' AND w.id <> v.id
           AND (w.priority > v.priority
                OR (w.priority = v.priority AND (w.queue_key, w.id) < (v.queue_key, v.id))))
    END
$$;

-- Minutes per patient for wait estimates: the doctor's own pace today -- the average of their
-- last 10 consultations of at least a minute (shorter ones are keying slips) -- once there are
-- three of them; until then the clinic's setting. SECURITY DEFINER: the display view uses it.
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

CREATE FUNCTION hms.serving_count(p_doctor integer, p_date date) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM hms.visits
     WHERE doctor_id = p_doctor AND business_date = p_date AND status IN ('CALLED', 'IN_CONSULTATION')
$$;

CREATE FUNCTION hms.to_info(v hms.visits, pos integer, wait integer, p_replayed boolean)
RETURNS hms.visit_info
LANGUAGE sql STABLE AS $$
    SELECT ROW(
        v.id, v.token, v.serial, pos, v.status::text, v.priority::text,
        p.id, p.name, p.mrn, d.code, d.name, d.room,
        v.business_date, v.appointment_at, v.checked_in_at, v.called_at, v.call_count,
        v.started_at, v.ended_at, v.cancel_reason, v.transferred_from,
        (SELECT t.id FROM hms.visits t WHERE t.transferred_from = v.id),
        wait, p_replayed
    )::hms.visit_info
    FROM hms.doctors d, hms.patients p
    WHERE d.id = v.doctor_id AND p.id = v.patient_id
$$;

CREATE FUNCTION hms.visit_info(p_visit bigint, p_replayed boolean DEFAULT false) RETURNS hms.visit_info
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    v   hms.visits;
    pos integer;
BEGIN
    SELECT * INTO v FROM hms.visits WHERE id = p_visit;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('no visit with id %s', p_visit));
    END IF;
    pos := hms.position_of(v);
    RETURN hms.to_info(v, pos, CASE WHEN pos IS NULL THEN NULL ELSE hms.wait_estimate(
        hms.consult_minutes(v.doctor_id, v.business_date),
        hms.serving_count(v.doctor_id, v.business_date), pos) END, p_replayed);
END $$;

-- A doctor's queue for today: visits being served first (no position), then the waiting
-- line with positions 1..N; with p_all, also the day's finished and booked visits.
-- Set-based: the estimate inputs are computed once per queue, not once per row.
CREATE FUNCTION hms.queue(p_doctor text, p_all boolean DEFAULT false) RETURNS SETOF hms.visit_info
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE
    d           hms.doctors := hms.doctor_by_code(p_doctor);
    bd          date := hms.business_date();
    per_patient numeric := hms.consult_minutes(d.id, bd);
    serving     bigint := hms.serving_count(d.id, bd);
BEGIN
    -- One set-based query (every live screen runs this on every change): the same columns
    -- as hms.to_info, joined once rather than looked up row by row.
    RETURN QUERY
    WITH day AS (
        SELECT v.*,
               CASE WHEN v.status = 'WAITING'
                    THEN row_number() OVER (PARTITION BY v.status = 'WAITING'
                                            ORDER BY v.priority DESC, v.queue_key, v.id)::integer
               END AS pos
          FROM hms.visits v
         WHERE v.doctor_id = d.id AND v.business_date = bd
           AND (p_all OR v.status IN ('WAITING', 'CALLED', 'IN_CONSULTATION'))
    )
    SELECT day.id, day.token, day.serial, day.pos, day.status::text, day.priority::text,
           p.id, p.name, p.mrn, d.code, d.name, d.room,
           day.business_date, day.appointment_at, day.checked_in_at, day.called_at,
           day.call_count, day.started_at, day.ended_at, day.cancel_reason, day.transferred_from,
           t.id, hms.wait_estimate(per_patient, serving, day.pos), false
      FROM day
      JOIN hms.patients p ON p.id = day.patient_id
      LEFT JOIN hms.visits t ON t.transferred_from = day.id
     ORDER BY CASE day.status WHEN 'IN_CONSULTATION' THEN 0 WHEN 'CALLED' THEN 1
                              WHEN 'WAITING' THEN 2 ELSE 3 END,
              day.pos, day.called_at DESC, day.serial;
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

-- ---------------------------------------------------------------------------------------
-- Desk actions: one function each, one transaction each
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION hms.add_doctor(p_code text, p_name text, p_room text, p_prefix text) RETURNS hms.doctors
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE d hms.doctors;
BEGIN
    PERFORM hms.begin_action('doctor_add');
    IF EXISTS (SELECT 1 FROM hms.doctors WHERE code = upper(p_code)) THEN
        PERFORM hms.fail('HM409', format('a doctor with code %s already exists', upper(p_code)));
    END IF;
    IF EXISTS (SELECT 1 FROM hms.doctors WHERE token_prefix = upper(coalesce(p_prefix, p_code))) THEN
        PERFORM hms.fail('HM409', format('token prefix %s is already used by another doctor',
                                         upper(coalesce(p_prefix, p_code))));
    END IF;
    INSERT INTO hms.doctors (code, name, room, token_prefix)
    VALUES (upper(p_code), p_name, p_room, upper(coalesce(p_prefix, p_code)))
    RETURNING * INTO d;
    RETURN d;
END $$;

CREATE FUNCTION hms.update_doctor(p_code text, p_name text, p_room text, p_prefix text, p_active boolean)
RETURNS hms.doctors
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE d hms.doctors := hms.doctor_by_code(p_code);
BEGIN
    PERFORM hms.begin_action('doctor_update');
    IF p_prefix IS NOT NULL AND EXISTS (
        SELECT 1 FROM hms.doctors WHERE token_prefix = upper(p_prefix) AND id <> d.id) THEN
        PERFORM hms.fail('HM409', format('token prefix %s is already used by another doctor', upper(p_prefix)));
    END IF;
    UPDATE hms.doctors SET
        name = coalesce(p_name, name),
        room = CASE WHEN p_room = '' THEN NULL ELSE coalesce(p_room, room) END,
        token_prefix = coalesce(upper(p_prefix), token_prefix),
        active = coalesce(p_active, active)
     WHERE id = d.id
    RETURNING * INTO d;
    RETURN d;
END $$;

CREATE FUNCTION hms.configure(
    p_clinic_name text, p_timezone text, p_recall_limit integer, p_requeue_after integer,
    p_skip_places integer, p_consult_minutes integer
) RETURNS hms.settings
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE s hms.settings;
BEGIN
    PERFORM hms.begin_action('configure');
    UPDATE hms.settings SET
        clinic_name = coalesce(p_clinic_name, clinic_name),
        timezone = coalesce(p_timezone, timezone),
        recall_limit = coalesce(p_recall_limit, recall_limit),
        requeue_after = coalesce(p_requeue_after, requeue_after),
        skip_places = coalesce(p_skip_places, skip_places),
        consult_minutes = coalesce(p_consult_minutes, consult_minutes)
    RETURNING * INTO s;
    RETURN s;
END $$;

CREATE FUNCTION hms.add_patient(p_name text, p_phone text, p_birth_date date) RETURNS hms.patients
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE p hms.patients;
BEGIN
    PERFORM hms.begin_action('patient_add');
    IF p_birth_date > hms.business_date() THEN
        PERFORM hms.fail('HM422', format('date of birth %s is in the future', p_birth_date));
    END IF;
    INSERT INTO hms.patients (name, phone, birth_date) VALUES (p_name, p_phone, p_birth_date)
    RETURNING * INTO p;
    RETURN p;
END $$;

CREATE FUNCTION hms.checkin(p_doctor text, p_patient bigint, p_priority text DEFAULT 'NORMAL',
                            p_key text DEFAULT NULL) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    d      hms.doctors := hms.active_doctor(p_doctor);
    pat    hms.patients := hms.patient_by_id(p_patient);
    prio   hms.priority := hms.parse_priority(p_priority);
    bd     date := hms.business_date();
    seen   hms.visits;
    s      integer;
    new_id bigint;
BEGIN
    PERFORM hms.begin_action('checkin');
    PERFORM hms.lock_queue(d.id, bd);
    IF p_key IS NOT NULL THEN
        -- A retried check-in (the reply was lost) returns the visit it created.
        SELECT * INTO seen FROM hms.visits WHERE idempotency_key = p_key;
        IF FOUND THEN
            IF seen.patient_id <> pat.id OR seen.doctor_id <> d.id THEN
                PERFORM hms.fail('HM409', format('check-in key %L was already used for visit %s (another patient or doctor)',
                                                 p_key, seen.id));
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
        s := hms.next_serial(d.id, bd);
        UPDATE hms.visits SET status = 'WAITING', serial = s, token = hms.make_token(d.token_prefix, s),
                              priority = greatest(priority, prio), checked_in_at = now(),
                              queue_key = hms.epoch_us(now())::numeric / 1000000,
                              idempotency_key = p_key
         WHERE id = seen.id;
        RETURN hms.visit_info(seen.id);
    END IF;
    PERFORM hms.assert_no_active_visit(pat.id, d, bd);
    s := hms.next_serial(d.id, bd);
    INSERT INTO hms.visits (doctor_id, patient_id, business_date, serial, token, status, priority,
                            queue_key, checked_in_at, idempotency_key)
    VALUES (d.id, pat.id, bd, s, hms.make_token(d.token_prefix, s), 'WAITING', prio,
            hms.epoch_us(now())::numeric / 1000000, now(), p_key)
    RETURNING id INTO new_id;
    RETURN hms.visit_info(new_id);
END $$;

CREATE FUNCTION hms.book(p_doctor text, p_patient bigint, p_at timestamp) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    d      hms.doctors := hms.active_doctor(p_doctor);
    pat    hms.patients := hms.patient_by_id(p_patient);
    at_tz  timestamptz := p_at AT TIME ZONE (SELECT timezone FROM hms.settings);
    new_id bigint;
BEGIN
    PERFORM hms.begin_action('book');
    IF at_tz < now() THEN
        PERFORM hms.fail('HM422', format('appointment time %s is in the past', p_at));
    END IF;
    PERFORM hms.lock_queue(d.id, p_at::date);
    PERFORM hms.assert_no_active_visit(pat.id, d, p_at::date);
    INSERT INTO hms.visits (doctor_id, patient_id, business_date, status, appointment_at)
    VALUES (d.id, pat.id, p_at::date, 'BOOKED', at_tz)
    RETURNING id INTO new_id;
    RETURN hms.visit_info(new_id);
END $$;

CREATE FUNCTION hms.arrive(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v hms.visits := hms.lock_visit(p_visit);
    d hms.doctors;
    s integer;
BEGIN
    PERFORM hms.begin_action('arrive');
    IF v.status <> 'BOOKED' THEN
        PERFORM hms.refuse(v, 'mark it arrived');
    END IF;
    IF v.business_date <> hms.business_date() THEN
        PERFORM hms.refuse(v, 'mark it arrived',
            format('it is booked for %s, not today; check the patient in as a walk-in', v.business_date));
    END IF;
    SELECT * INTO d FROM hms.doctors WHERE id = v.doctor_id;
    s := hms.next_serial(v.doctor_id, v.business_date);
    UPDATE hms.visits SET status = 'WAITING', serial = s, token = hms.make_token(d.token_prefix, s),
                          checked_in_at = now(), queue_key = hms.epoch_us(now())::numeric / 1000000
     WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.call_visit(v hms.visits) RETURNS hms.visit_info
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE hms.visits SET status = 'CALLED', called_at = now(), call_count = 1 WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.call_next(p_doctor text) RETURNS hms.visit_info
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
    SELECT * INTO v FROM hms.visits
     WHERE doctor_id = d.id AND business_date = bd AND status = 'WAITING'
     ORDER BY priority DESC, queue_key, id
     LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM hms.fail('HM404', format('nobody is waiting for %s (%s)', d.name, d.code));
    END IF;
    RETURN hms.call_visit(v);
END $$;

-- Call a particular waiting patient out of turn.
CREATE FUNCTION hms.call(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE v hms.visits := hms.lock_visit(p_visit);
BEGIN
    PERFORM hms.begin_action('call');
    IF v.status <> 'WAITING' THEN
        PERFORM hms.refuse(v, 'call it');
    END IF;
    RETURN hms.call_visit(v);
END $$;

CREATE FUNCTION hms.recall(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v     hms.visits := hms.lock_visit(p_visit);
    limit_ integer := (SELECT recall_limit FROM hms.settings);
BEGIN
    PERFORM hms.begin_action('recall');
    IF v.status <> 'CALLED' THEN
        PERFORM hms.refuse(v, 'recall it');
    END IF;
    IF v.call_count - 1 >= limit_ THEN
        PERFORM hms.refuse(v, 'recall it',
            format('called %s times; the recall limit (%s) is used up, mark it no-show', v.call_count, limit_));
    END IF;
    UPDATE hms.visits SET called_at = now(), call_count = call_count + 1 WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.start(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE v hms.visits := hms.lock_visit(p_visit);
BEGIN
    PERFORM hms.begin_action('start');
    IF v.status <> 'CALLED' THEN
        PERFORM hms.refuse(v, 'start the consultation', 'call the patient first');
    END IF;
    UPDATE hms.visits SET status = 'IN_CONSULTATION', started_at = now() WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.complete(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE v hms.visits := hms.lock_visit(p_visit);
BEGIN
    PERFORM hms.begin_action('complete');
    IF v.status <> 'IN_CONSULTATION' THEN
        PERFORM hms.refuse(v, 'complete it', 'only a visit in consultation can be completed');
    END IF;
    UPDATE hms.visits SET status = 'COMPLETED', ended_at = now() WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.cancel(p_visit bigint, p_reason text DEFAULT NULL) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE v hms.visits := hms.lock_visit(p_visit);
BEGIN
    PERFORM hms.begin_action('cancel');
    IF v.status NOT IN ('BOOKED', 'WAITING', 'CALLED') THEN
        PERFORM hms.refuse(v, 'cancel it');
    END IF;
    UPDATE hms.visits SET status = 'CANCELLED', ended_at = now(), cancel_reason = p_reason WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.no_show(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v      hms.visits := hms.lock_visit(p_visit);
    limit_ integer := (SELECT recall_limit FROM hms.settings);
BEGIN
    PERFORM hms.begin_action('no_show');
    IF v.status <> 'CALLED' THEN
        PERFORM hms.refuse(v, 'mark it no-show', 'only a called patient can be a no-show');
    END IF;
    IF v.call_count - 1 < limit_ THEN
        PERFORM hms.refuse(v, 'mark it no-show',
            format('called %s time(s); recall it %s more time(s) first (recall limit %s)',
                   v.call_count, limit_ - (v.call_count - 1), limit_));
    END IF;
    UPDATE hms.visits SET status = 'NO_SHOW', ended_at = now() WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.requeue(p_visit bigint) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v hms.visits := hms.lock_visit(p_visit);
    d hms.doctors;
BEGIN
    PERFORM hms.begin_action('requeue');
    IF v.status <> 'NO_SHOW' THEN
        PERFORM hms.refuse(v, 'requeue it', 'only a no-show can be requeued');
    END IF;
    IF v.business_date <> hms.business_date() THEN
        PERFORM hms.refuse(v, 'requeue it', format('it is from %s; check the patient in again', v.business_date));
    END IF;
    SELECT * INTO d FROM hms.doctors WHERE id = v.doctor_id;
    PERFORM hms.assert_no_active_visit(v.patient_id, d, v.business_date);
    UPDATE hms.visits SET
        status = 'WAITING', call_count = 0, ended_at = NULL,
        queue_key = hms.place_key(v.doctor_id, v.business_date, v.priority, v.id,
                                  (SELECT requeue_after FROM hms.settings))
     WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.skip(p_visit bigint, p_places integer DEFAULT NULL) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v      hms.visits := hms.lock_visit(p_visit);
    places integer := coalesce(p_places, (SELECT skip_places FROM hms.settings));
BEGIN
    PERFORM hms.begin_action('skip');
    IF places NOT BETWEEN 1 AND 100 THEN
        PERFORM hms.fail('HM422', format('places must be from 1 to 100, not %s', places));
    END IF;
    IF v.status <> 'WAITING' THEN
        PERFORM hms.refuse(v, 'skip it', 'only a waiting patient can be moved back');
    END IF;
    UPDATE hms.visits SET queue_key = hms.place_key(v.doctor_id, v.business_date, v.priority, v.id,
                                                    hms.position_of(v) - 1 + places)
     WHERE id = v.id;
    RETURN hms.visit_info(v.id);
END $$;

CREATE FUNCTION hms.set_priority(p_visit bigint, p_priority text) RETURNS hms.visit_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    v    hms.visits := hms.lock_visit(p_visit);
    prio hms.priority := hms.parse_priority(p_priority);
BEGIN
    PERFORM hms.begin_action('set_priority');
    IF v.status NOT IN ('BOOKED', 'WAITING') THEN
        PERFORM hms.refuse(v, 'change its priority', 'only a waiting or booked visit can change priority');
    END IF;
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
    s      integer;
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
    IF target.id = v.doctor_id THEN
        PERFORM hms.refuse(v, 'transfer it', format('it is already with %s', target.name));
    END IF;
    IF bd <> hms.business_date() THEN
        PERFORM hms.refuse(v, 'transfer it', format('it is from %s; check the patient in again', bd));
    END IF;
    UPDATE hms.visits SET status = 'TRANSFERRED', ended_at = now() WHERE id = v.id;
    PERFORM hms.assert_no_active_visit(v.patient_id, target, bd);
    s := hms.next_serial(target.id, bd);
    INSERT INTO hms.visits (doctor_id, patient_id, business_date, serial, token, status, priority,
                            queue_key, checked_in_at, transferred_from)
    VALUES (target.id, v.patient_id, bd, s, hms.make_token(target.token_prefix, s), 'WAITING',
            v.priority, hms.epoch_us(now())::numeric / 1000000, now(), v.id)
    RETURNING id INTO new_id;
    RETURN hms.visit_info(new_id);
END $$;

-- ---------------------------------------------------------------------------------------
-- Bills
-- ---------------------------------------------------------------------------------------
CREATE TYPE hms.bill_info AS (
    id           bigint,
    bill_number  text,
    visit_id     bigint,
    token        text,
    patient_id   bigint,
    patient_name text,
    mrn          text,
    doctor       text,
    doctor_name  text,
    total        numeric(12, 2),
    status       text,
    created_at   timestamptz,
    voided_at    timestamptz,
    void_reason  text,
    items        jsonb
);

CREATE FUNCTION hms.bill_info(p_bill bigint) RETURNS hms.bill_info
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT b.id, b.bill_number, b.visit_id, v.token, p.id, p.name, p.mrn, d.code, d.name,
           b.total, b.status, b.created_at, b.voided_at, b.void_reason,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('line', i.line_no, 'description', i.description,
                                                         'amount', i.amount) ORDER BY i.line_no), '[]')
              FROM hms.bill_items i WHERE i.bill_id = b.id)
      FROM hms.bills b
      JOIN hms.visits v ON v.id = b.visit_id
      JOIN hms.patients p ON p.id = v.patient_id
      JOIN hms.doctors d ON d.id = v.doctor_id
     WHERE b.id = p_bill
$$;

CREATE FUNCTION hms.find_bill(p_bill text) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE found_id bigint;
BEGIN
    SELECT id INTO found_id FROM hms.bills
     WHERE bill_number = upper(btrim(p_bill))
        OR (btrim(p_bill) ~ '^[0-9]{1,18}$' AND id = btrim(p_bill)::bigint);
    IF found_id IS NULL THEN
        PERFORM hms.fail('HM404', format('no bill %s', p_bill));
    END IF;
    RETURN found_id;
END $$;

-- p_items: [{"description": "...", "amount": "500.00"}, ...]
CREATE FUNCTION hms.create_bill(p_visit bigint, p_items jsonb) RETURNS hms.bill_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    n      integer := jsonb_array_length(p_items);
    yr     integer := extract(year FROM hms.business_date())::integer;
    total_ numeric(12, 2);
    s      integer;
    b_id   bigint;
BEGIN
    PERFORM hms.begin_action('bill_create');
    IF NOT EXISTS (SELECT 1 FROM hms.visits WHERE id = p_visit) THEN
        PERFORM hms.fail('HM404', format('no visit with id %s', p_visit));
    END IF;
    IF n NOT BETWEEN 1 AND 50 THEN
        PERFORM hms.fail('HM422', format('a bill needs 1 to 50 items, not %s', n));
    END IF;
    SELECT sum((e ->> 'amount')::numeric(12, 2)) INTO total_ FROM jsonb_array_elements(p_items) e;
    s := hms.next_bill_seq(yr);
    INSERT INTO hms.bills (bill_number, bill_year, bill_seq, visit_id, total)
    VALUES (format('B-%s-%s', yr, hms.pad_number(s, 4)), yr, s, p_visit, total_)
    RETURNING id INTO b_id;
    INSERT INTO hms.bill_items (bill_id, line_no, description, amount)
    SELECT b_id, ord, e ->> 'description', (e ->> 'amount')::numeric(12, 2)
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(e, ord);
    RETURN hms.bill_info(b_id);
END $$;

CREATE FUNCTION hms.void_bill(p_bill text, p_reason text) RETURNS hms.bill_info
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    b_id bigint := hms.find_bill(p_bill);
    b    hms.bills;
BEGIN
    PERFORM hms.begin_action('bill_void');
    SELECT * INTO b FROM hms.bills WHERE id = b_id FOR UPDATE;
    IF b.status <> 'ISSUED' THEN
        PERFORM hms.fail('HM423', format('bill %s is already void', b.bill_number));
    END IF;
    IF p_reason IS NULL OR btrim(p_reason) = '' THEN
        PERFORM hms.fail('HM422', 'a reason is required to void a bill');
    END IF;
    UPDATE hms.bills SET status = 'VOID', voided_at = now(), void_reason = p_reason WHERE id = b.id;
    RETURN hms.bill_info(b.id);
END $$;

-- ---------------------------------------------------------------------------------------
-- Reads
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION hms.like_escape(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(replace(replace(t, '\', '\\'), '%', '\%'), '_', '\_')
$$;

-- Patients matching a name part, an MRN prefix or phone digits; % and _ match literally.
CREATE FUNCTION hms.search_patients(p_text text, p_limit integer DEFAULT 50)
RETURNS TABLE (id bigint, mrn text, name text, phone text, birth_date date, age integer, active_visits text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    WITH q AS (
        SELECT btrim(coalesce(p_text, '')) AS t,
               hms.like_escape(lower(btrim(coalesce(p_text, '')))) AS pat,
               regexp_replace(coalesce(p_text, ''), '[^0-9]', '', 'g') AS digits
    )
    SELECT p.id, p.mrn, p.name, p.phone, p.birth_date,
           CASE WHEN p.birth_date IS NULL THEN NULL
                ELSE extract(year FROM age(hms.business_date(), p.birth_date))::integer END,
           (SELECT string_agg(coalesce(v.token, d.code || ' booked') || ' ' || v.status, ', ' ORDER BY v.id)
              FROM hms.visits v JOIN hms.doctors d ON d.id = v.doctor_id
             WHERE v.patient_id = p.id AND v.business_date = hms.business_date()
               AND v.status IN ('BOOKED', 'WAITING', 'CALLED', 'IN_CONSULTATION'))
      FROM hms.patients p, q
     WHERE q.t = ''
        OR lower(p.name) LIKE '%' || q.pat || '%'
        OR lower(p.mrn) LIKE q.pat || '%'
        OR (length(q.digits) >= 3 AND q.digits = regexp_replace(q.t, '[ +-]', '', 'g')
            AND regexp_replace(coalesce(p.phone, ''), '[^0-9]', '', 'g') LIKE '%' || q.digits || '%')
     ORDER BY (lower(p.mrn) = lower(q.t)) DESC, (lower(p.name) LIKE q.pat || '%') DESC,
              CASE WHEN q.t = '' THEN p.id END DESC, lower(p.name), p.id
     LIMIT least(greatest(p_limit, 1), 500)
$$;

CREATE FUNCTION hms.clinic_timezone() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT timezone FROM hms.settings
$$;

CREATE FUNCTION hms.get_rules() RETURNS hms.settings
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.settings
$$;

CREATE FUNCTION hms.doctor_list() RETURNS SETOF hms.doctors
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.doctors ORDER BY code
$$;

CREATE FUNCTION hms.get_doctor(p_code text) RETURNS hms.doctors
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.doctor_by_code(p_code)
$$;

CREATE FUNCTION hms.get_patient(p_id bigint) RETURNS hms.patients
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.patient_by_id(p_id)
$$;

-- Today's board: one row per doctor.
CREATE FUNCTION hms.doctor_board()
RETURNS TABLE (code text, name text, room text, token_prefix text, active boolean,
               serving text, waiting integer, seen integer, no_shows integer, issued integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT d.code, d.name, d.room, d.token_prefix, d.active,
           (SELECT v.token FROM hms.visits v
             WHERE v.doctor_id = d.id AND v.business_date = hms.business_date()
               AND v.status IN ('CALLED', 'IN_CONSULTATION')
             ORDER BY v.called_at DESC LIMIT 1),
           count(*) FILTER (WHERE v.status = 'WAITING')::integer,
           count(*) FILTER (WHERE v.status = 'COMPLETED')::integer,
           count(*) FILTER (WHERE v.status = 'NO_SHOW')::integer,
           count(v.serial)::integer
      FROM hms.doctors d
      LEFT JOIN hms.visits v ON v.doctor_id = d.id AND v.business_date = hms.business_date()
     GROUP BY d.id
     ORDER BY d.code
$$;

-- A visit's history from the audit trail, with the time since the previous event.
CREATE FUNCTION hms.visit_timeline(p_visit bigint)
RETURNS TABLE (seq bigint, at timestamptz, actor text, terminal text, action text, entity text,
               status_before text, status_after text, since_previous interval, detail jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM hms.visits WHERE id = p_visit) THEN
        PERFORM hms.fail('HM404', format('no visit with id %s', p_visit));
    END IF;
    RETURN QUERY
    SELECT e.seq, e.at, e.actor, e.terminal, e.action, e.entity,
           e.before ->> 'status', e.after ->> 'status',
           e.at - lag(e.at) OVER (ORDER BY e.seq),
           CASE e.entity
               WHEN 'bills' THEN jsonb_build_object('bill_number', e.after ->> 'bill_number',
                                                    'total', e.after -> 'total', 'status', e.after ->> 'status')
               WHEN 'bill_items' THEN jsonb_build_object('description', e.after ->> 'description',
                                                         'amount', e.after -> 'amount')
               ELSE jsonb_strip_nulls(jsonb_build_object(
                   'token', e.after ->> 'token', 'priority', e.after ->> 'priority',
                   'call_count', e.after -> 'call_count', 'reason', e.after ->> 'cancel_reason',
                   'transferred_from', e.after -> 'transferred_from'))
           END
      FROM hms.audit_events e
     WHERE e.visit_id = p_visit
     ORDER BY e.seq;
END $$;

CREATE FUNCTION hms.audit_tail(p_limit integer DEFAULT 20, p_actor text DEFAULT NULL,
                               p_action text DEFAULT NULL, p_visit bigint DEFAULT NULL)
RETURNS TABLE (seq bigint, at timestamptz, actor text, terminal text, action text, entity text,
               entity_id bigint, visit_id bigint, status_before text, status_after text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT e.seq, e.at, e.actor, e.terminal, e.action, e.entity, e.entity_id, e.visit_id,
           e.before ->> 'status', e.after ->> 'status'
      FROM hms.audit_events e
     WHERE (p_actor IS NULL OR e.actor = p_actor)
       AND (p_action IS NULL OR e.action = p_action)
       AND (p_visit IS NULL OR e.visit_id = p_visit)
     ORDER BY e.seq DESC
     LIMIT least(greatest(p_limit, 1), 10000)
$$;

INSERT INTO hms.settings DEFAULT VALUES;

-- Nothing here is callable by PUBLIC; roles get EXECUTE explicitly (a later migration).
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA hms FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA hms FROM PUBLIC;
