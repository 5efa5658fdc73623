-- 0004: no login can stall, cross or fool the clinic.
--
-- * hms.staff: the logins of THIS clinic's database. Group roles are cluster-wide; this
--   registry is what keeps an admin of another clinic on the same server from seeing or
--   changing this clinic's logins, and a login of another clinic from acting here.
-- * hms.audit_pending: audited changes wait here (no lock) until they are sealed into the
--   hash chain at commit (routines/10_audit.sql), so the chain's ordering lock is never held
--   across time a client controls.
-- * visits.queue_sub: a place within equal queue keys, so moving a patient never needs a
--   midpoint between two keys (which runs out of digits after enough moves).
-- * settings: the longest statement and idle-in-transaction timeouts a desk session may run
--   with.
-- * is_clean_text also refuses text made only of invisible characters.

CREATE TABLE hms.staff (
    login      text PRIMARY KEY CHECK (login ~ '^[a-z_][a-z0-9_.-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Logins release 0.1 made for this database: in an hms group and granted CONNECT here by
-- `staff add`, or linked to one of its doctors.
INSERT INTO hms.staff (login)
SELECT r.rolname
  FROM pg_roles r
 WHERE r.rolname ~ '^[a-z_][a-z0-9_.-]{0,62}$'
   AND EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                WHERE m.member = r.oid
                  AND g.rolname IN ('hms_reception', 'hms_doctor', 'hms_display', 'hms_admin'))
   AND (EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a
                 WHERE d.datname = current_database() AND a.grantee = r.oid
                   AND a.privilege_type = 'CONNECT')
        OR EXISTS (SELECT 1 FROM hms.staff_doctors s WHERE s.login = r.rolname))
ON CONFLICT DO NOTHING;

CREATE SEQUENCE hms.audit_ticket;
CREATE TABLE hms.audit_pending (
    ticket    bigint PRIMARY KEY,          -- the order changes were made in (gaps allowed)
    at        timestamptz NOT NULL,
    actor     text NOT NULL,
    terminal  text,
    action    text NOT NULL,
    entity    text NOT NULL,
    entity_id bigint,
    visit_id  bigint,
    op        text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    txid      bigint NOT NULL,
    before    jsonb,
    after     jsonb
);
CREATE INDEX audit_pending_visit ON hms.audit_pending (visit_id) WHERE visit_id IS NOT NULL;
SELECT setval('hms.audit_ticket', (SELECT coalesce(max(seq), 0) + 1 FROM hms.audit_events), false);

ALTER TABLE hms.visits ADD COLUMN queue_sub integer NOT NULL DEFAULT 0;

ALTER TABLE hms.settings
    ADD COLUMN statement_limit_s integer NOT NULL DEFAULT 30
        CHECK (statement_limit_s BETWEEN 1 AND 600),
    ADD COLUMN idle_limit_s integer NOT NULL DEFAULT 60 CHECK (idle_limit_s BETWEEN 1 AND 3600);

-- Text rules (mirrored by hms_tui/domain/validation.py): 1..max_len characters, no
-- surrounding spaces, no control or direction-changing character, and at least one visible
-- character (not only spaces, zero-width or other format characters).
CREATE OR REPLACE FUNCTION hms.is_clean_text(t text, max_len integer) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t IS NULL OR (
        length(t) BETWEEN 1 AND max_len
        AND t = btrim(t, E' \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000')
        AND t !~ '[\x01-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]'
        AND t ~ '[^ \u00a0\u00ad\u034f\u115f\u1160\u1680\u180e\u2000-\u200f\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0]'
    )
$$;

-- Nobody reaches this clinic's database unless granted (`staff add` grants CONNECT); the
-- owner may not own the database itself, in which case the DBA decides.
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END $$;

REVOKE ALL ON hms.staff, hms.audit_pending FROM PUBLIC;
REVOKE ALL ON SEQUENCE hms.audit_ticket FROM PUBLIC;
