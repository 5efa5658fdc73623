-- Failover safety: the server numbers were last issued on, and numbering holds.
-- (The functions are in sql/routines/45_failover.sql; the scheme is in docs/deploying.md,
-- "Numbering after a failover".)

-- One row: the server (system identifier and timeline) numbers were issued on as far as this
-- database knows, and whether that server's commits waited for synchronous standbys (and
-- which ones: a promoted standby named here had every acknowledged number).
CREATE TABLE hms.server_lineage (
    id                boolean PRIMARY KEY DEFAULT true CHECK (id),
    system_identifier bigint  NOT NULL,
    timeline          integer NOT NULL CHECK (timeline > 0),
    synchronous       boolean NOT NULL DEFAULT false,
    sync_names        text[]  NOT NULL DEFAULT '{}',
    observed_at       timestamptz NOT NULL DEFAULT now()
);

-- Numbering holds: while one is open (lifted_at IS NULL) no token or bill number is issued.
-- Placed when the server changed in a way that may have lost acknowledged numbers, when a
-- terminal saw more numbers than the server has, or by an admin; lifted by an admin
-- (hms-tui db confirm-failover), or at once ("automatic") when the change was a promotion
-- of a synchronous standby, so that every change of server stays on record.
CREATE TABLE hms.numbering_holds (
    id            bigserial PRIMARY KEY,
    reason        text NOT NULL CHECK (reason IN ('server_changed', 'lost_numbers', 'manual')),
    detail        text NOT NULL CHECK (length(detail) BETWEEN 1 AND 500),
    from_system   bigint,
    from_timeline integer,
    to_system     bigint,
    to_timeline   integer,
    evidence      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(evidence) = 'array'),
    placed_at     timestamptz NOT NULL DEFAULT now(),
    placed_by     text NOT NULL DEFAULT session_user,
    lifted_at     timestamptz,
    lifted_by     text,
    lift_note     text CHECK (length(lift_note) <= 200),
    skipped       integer CHECK (skipped BETWEEN 0 AND 1000),
    automatic     boolean NOT NULL DEFAULT false,
    CHECK ((lifted_at IS NULL) = (lifted_by IS NULL))
);
-- At most one open hold: later evidence is added to it.
CREATE UNIQUE INDEX numbering_holds_one_open ON hms.numbering_holds ((true))
    WHERE lifted_at IS NULL;

-- The server this migration runs on (always a primary) is where numbers were issued so far.
INSERT INTO hms.server_lineage (system_identifier, timeline)
SELECT s.system_identifier,
       ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer
  FROM pg_control_system() s;

REVOKE ALL ON hms.server_lineage, hms.numbering_holds FROM PUBLIC;
REVOKE ALL ON SEQUENCE hms.numbering_holds_id_seq FROM PUBLIC;
