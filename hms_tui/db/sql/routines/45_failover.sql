-- Failover safety: never a reissued number silently (docs/deploying.md, "Numbering after a
-- failover").
--
-- A token or bill number is acknowledged the moment its transaction commits. If the server
-- that acknowledged it dies and a standby that never received the commit is promoted, the
-- number is free again there and would go to the next patient. A standby cannot know what it
-- never received, so:
--
-- * hms.server_lineage remembers the server numbers were issued on (system identifier and
--   timeline) and whether its commits waited for synchronous standbys, and which.
--   hms.numbering_guard makes every numbering commit wait for the synchronous standbys
--   (synchronous_commit at least 'on'), so "synchronous" means every number, whatever a
--   session or a login set.
-- * hms.numbering_guard, run by every allocation under the queue (or bill) lock, refuses to
--   issue a number while a hold is open, or when this is not the remembered server and the
--   change could have lost numbers (hms.change_is_lossless says when it could not).
-- * Terminals that saw more than this server has -- a queue's version or the day's tokens
--   went backwards after a reconnect -- report it (hms.report_lost_numbers): a hold.
-- * hms.observe_server (every listener at connect and on its backup poll, db status, db
--   upgrade) keeps the lineage current; a change of server is recorded as a hold, lifted at
--   once when the change was lossless.
-- * hms.confirm_failover (admin) lifts the holds after a person has checked, optionally moving
--   every doctor's token numbers of the day forward so that no lost token is issued again.
--
-- Lock order: queue rows -> server_lineage -> audit head (the hold rows are audited). The
-- guard takes no lock of its own.

-- The server we are on. The timeline of a primary is read from the WAL insert position,
-- which is on the new timeline from the moment of promotion (pg_control_checkpoint() lags
-- until the first checkpoint).
CREATE FUNCTION hms.server_identity(OUT system_identifier bigint, OUT timeline integer,
                                    OUT in_recovery boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
BEGIN
    SELECT s.system_identifier INTO system_identifier FROM pg_control_system() s;
    in_recovery := pg_is_in_recovery();
    IF in_recovery THEN
        SELECT c.timeline_id INTO timeline FROM pg_control_checkpoint() c;
    ELSE
        timeline := ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer;
    END IF;
END $$;

-- The standbys whose confirmation a commit waits for, from synchronous_standby_names
-- (lower case; '*' means any). 'FIRST n (a, b, c)' and the plain list 'a, b' (FIRST 1) count
-- only the first n: a lower-priority standby may not have had everything. 'ANY n (a, b)'
-- counts every name.
CREATE FUNCTION hms.sync_names(p text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m      text[];
    list   text := btrim(coalesce(p, ''));
    method text := 'first';
    k      integer := 1;
    names  text[];
BEGIN
    IF list = '' THEN
        RETURN '{}';
    END IF;
    m := regexp_match(list, '^(?:(first|any)\s+)?(\d+)\s*\((.*)\)$', 'i');
    IF m IS NOT NULL THEN
        method := lower(coalesce(m[1], 'first'));
        k := m[2]::integer;
        list := m[3];
    END IF;
    names := ARRAY(SELECT lower(btrim(btrim(x), '"')) FROM unnest(string_to_array(list, ',')) x
                    WHERE btrim(x) <> '');
    IF method = 'first' THEN
        names := names[1:k];
    END IF;
    RETURN names;
END $$;

-- The name this server had as a standby: application_name in primary_conninfo (readable by
-- superusers and pg_read_all_settings), else cluster_name (the default a walreceiver uses).
-- This and the helpers below run inside the SECURITY DEFINER functions that call them.
CREATE FUNCTION hms.standby_name() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    conninfo text;
    found_   text;
BEGIN
    BEGIN
        conninfo := current_setting('primary_conninfo', true);
    EXCEPTION WHEN insufficient_privilege THEN
        conninfo := NULL;
    END;
    found_ := (regexp_match(coalesce(conninfo, ''), 'application_name\s*=\s*''?([^''\s&]+)'))[1];
    RETURN lower(coalesce(nullif(found_, ''), nullif(current_setting('cluster_name'), '')));
END $$;

-- Could moving from the remembered server to this one have lost acknowledged numbers? Not
-- when this is the same system on a later timeline and was one of the synchronous standbys
-- of the remembered server: it had confirmed every commit. Anything else -- a promoted
-- asynchronous standby, a restored backup (point in time), a restored dump (another
-- system), an older timeline -- may have.
CREATE FUNCTION hms.change_is_lossless(known hms.server_lineage, p_system bigint,
                                       p_timeline integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE me text;
BEGIN
    IF known.system_identifier <> p_system OR p_timeline <= known.timeline
       OR NOT known.synchronous THEN
        RETURN false;
    END IF;
    me := hms.standby_name();
    RETURN '*' = ANY(known.sync_names) OR (me IS NOT NULL AND me = ANY(known.sync_names));
END $$;

CREATE FUNCTION hms.hold_message(h hms.numbering_holds) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('numbering is on hold since %s: %s; an admin must check and run: '
                  'hms-tui db confirm-failover',
                  to_char(h.placed_at AT TIME ZONE hms.clinic_timezone(), 'YYYY-MM-DD HH24:MI'),
                  h.detail)
$$;

CREATE FUNCTION hms.change_detail(known hms.server_lineage, p_system bigint,
                                  p_timeline integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN known.system_identifier <> p_system THEN format(
            'the database now runs on another PostgreSQL system (%s, was %s: restored from a '
            'dump?), so tokens acknowledged before may be missing and would be issued again',
            p_system, known.system_identifier)
        WHEN p_timeline < known.timeline THEN format(
            'this server is on timeline %s but numbers were issued on timeline %s: an old '
            'primary came back; fence it', p_timeline, known.timeline)
        ELSE format(
            'the server changed (timeline %s, was %s: a failover or a restore) and the old one '
            'was not known to replicate synchronously to this one, so tokens acknowledged '
            'before may be missing and would be issued again', p_timeline, known.timeline)
    END
$$;

-- Run by every allocation of a token or bill number (hms.next_serial, hms.next_bill_seq),
-- under the queue or bill lock: refuse while numbering is held, and make the commit durable
-- on the synchronous standbys (a session's synchronous_commit = off or local must not
-- acknowledge a number only the primary has). It runs as the desk function that called it,
-- and has no SET clause of its own: the synchronous_commit it sets lasts to the commit.
CREATE FUNCTION hms.numbering_guard() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    held  hms.numbering_holds;
    known hms.server_lineage;
    cur   record;
BEGIN
    IF current_setting('synchronous_commit') IN ('off', 'local') THEN
        PERFORM set_config('synchronous_commit', 'on', true);  -- to the end of the transaction
    END IF;
    SELECT * INTO held FROM hms.numbering_holds WHERE lifted_at IS NULL;
    IF FOUND THEN
        PERFORM hms.fail('HM503', hms.hold_message(held));
    END IF;
    SELECT * INTO known FROM hms.server_lineage;
    IF NOT FOUND THEN
        RETURN;  -- no history (the row was removed by hand): nothing to compare with
    END IF;
    SELECT * INTO cur FROM hms.server_identity();
    IF (cur.system_identifier, cur.timeline) IS DISTINCT FROM (known.system_identifier, known.timeline)
       AND NOT hms.change_is_lossless(known, cur.system_identifier, cur.timeline) THEN
        PERFORM hms.fail('HM503', 'numbering is on hold: '
                         || hms.change_detail(known, cur.system_identifier, cur.timeline)
                         || '; an admin must check and run: hms-tui db confirm-failover');
    END IF;
END $$;

-- What a listener, db status and db upgrade see, keeping the lineage current on a primary:
-- the synchronous standbys as now configured; a change of server recorded as a hold (lifted
-- at once when lossless, then the lineage moves to this server).
CREATE FUNCTION hms.observe_server()
RETURNS TABLE (system_identifier bigint, timeline integer, in_recovery boolean,
               synchronous boolean, hold_id bigint, hold_message text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    cur   record;
    known hms.server_lineage;
    held  hms.numbering_holds;
    names text[] := hms.sync_names(current_setting('synchronous_standby_names'));
BEGIN
    SELECT * INTO cur FROM hms.server_identity();
    system_identifier := cur.system_identifier;
    timeline := cur.timeline;
    in_recovery := cur.in_recovery;
    synchronous := cardinality(names) > 0;
    IF NOT cur.in_recovery THEN
        SELECT * INTO known FROM hms.server_lineage;
        IF NOT FOUND OR (known.system_identifier, known.timeline, known.synchronous, known.sync_names)
                        IS DISTINCT FROM (cur.system_identifier, cur.timeline, synchronous, names) THEN
            PERFORM hms.observe_change(cur.system_identifier, cur.timeline, names);
        END IF;
    END IF;
    SELECT * INTO held FROM hms.numbering_holds h WHERE h.lifted_at IS NULL;
    IF FOUND THEN
        hold_id := held.id;
        hold_message := hms.hold_message(held);
    ELSIF NOT cur.in_recovery THEN
        SELECT * INTO known FROM hms.server_lineage;
        IF FOUND AND (known.system_identifier, known.timeline)
                     IS DISTINCT FROM (cur.system_identifier, cur.timeline) THEN
            hold_message := 'numbering is on hold: '
                            || hms.change_detail(known, cur.system_identifier, cur.timeline);
        END IF;
    END IF;
    RETURN NEXT;
END $$;

CREATE FUNCTION hms.observe_change(p_system bigint, p_timeline integer, p_names text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    known hms.server_lineage;
    same  boolean;
BEGIN
    SELECT * INTO known FROM hms.server_lineage FOR UPDATE;  -- concurrent observers: one works
    IF NOT FOUND THEN
        INSERT INTO hms.server_lineage (system_identifier, timeline, synchronous, sync_names)
        VALUES (p_system, p_timeline, cardinality(p_names) > 0, p_names);
        RETURN;
    END IF;
    same := (known.system_identifier, known.timeline) = (p_system, p_timeline);
    IF same THEN  -- the synchronous standbys were reconfigured
        UPDATE hms.server_lineage SET synchronous = cardinality(p_names) > 0, sync_names = p_names,
                                      observed_at = now();
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM hms.numbering_holds
                WHERE to_system = p_system AND to_timeline = p_timeline
                  AND from_system = known.system_identifier AND from_timeline = known.timeline) THEN
        RETURN;  -- this change is on record already (and held until an admin confirms)
    END IF;
    PERFORM hms.begin_action('server_changed');
    IF hms.change_is_lossless(known, p_system, p_timeline) THEN
        INSERT INTO hms.numbering_holds (reason, detail, from_system, from_timeline, to_system,
                                         to_timeline, lifted_at, lifted_by, lift_note, automatic)
        VALUES ('server_changed',
                format('the server changed (timeline %s, was %s): a synchronous standby (%s) '
                       'was promoted', p_timeline, known.timeline, hms.standby_name()),
                known.system_identifier, known.timeline, p_system, p_timeline, now(),
                session_user, 'automatic: the promoted standby had confirmed every commit', true);
        UPDATE hms.server_lineage SET system_identifier = p_system, timeline = p_timeline,
                                      synchronous = cardinality(p_names) > 0,
                                      sync_names = p_names, observed_at = now();
    ELSIF NOT EXISTS (SELECT 1 FROM hms.numbering_holds WHERE lifted_at IS NULL) THEN
        INSERT INTO hms.numbering_holds (reason, detail, from_system, from_timeline, to_system,
                                         to_timeline)
        VALUES ('server_changed', hms.change_detail(known, p_system, p_timeline),
                known.system_identifier, known.timeline, p_system, p_timeline);
    END IF;
END $$;

-- A terminal saw more than this server has: after a reconnect, a queue of today had a
-- higher version, or more tokens, than the server now says. p_report:
--   {"terminal": "...", "system_identifier": N, "timeline": N,      (the server it saw them on)
--    "queues": [{"doctor": "D1", "tokens": 5, "version": 9}, ...]}  (today's, as it last saw)
-- Anyone may call this, so nothing in it is trusted beyond its shape: the server compares
-- with its own counters and holds numbering only where it has fewer. A report about a server
-- whose change an admin already confirmed is ignored (a terminal that was away meanwhile).
CREATE FUNCTION hms.report_lost_numbers(p_report jsonb) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    bd       date := hms.business_date();
    q        jsonb;
    d        hms.doctors;
    c        hms.counters;
    lost     jsonb := '[]';
    p_system bigint;
    p_tli    integer;
    label    text;
    summary  text;
    open_    hms.numbering_holds;
BEGIN
    IF jsonb_typeof(p_report) IS DISTINCT FROM 'object'
       OR jsonb_typeof(p_report -> 'queues') IS DISTINCT FROM 'array'
       OR jsonb_array_length(p_report -> 'queues') > 500 THEN
        PERFORM hms.fail('HM422', 'a lost-numbers report must be an object with a list of queues');
    END IF;
    BEGIN
        p_system := (p_report ->> 'system_identifier')::bigint;
        p_tli := (p_report ->> 'timeline')::integer;
    EXCEPTION WHEN others THEN
        PERFORM hms.fail('HM422', 'a lost-numbers report names its server by number');
    END;
    label := coalesce(nullif(left(p_report ->> 'terminal', 40), ''), '(unnamed)');
    IF NOT hms.is_clean_text(label, 40) THEN
        label := '(invalid label)';
    END IF;
    IF EXISTS (SELECT 1 FROM hms.numbering_holds
                WHERE from_system = p_system AND from_timeline = p_tli
                  AND lifted_at IS NOT NULL AND NOT automatic) THEN
        RETURN 'confirmed already';
    END IF;
    FOR q IN SELECT * FROM jsonb_array_elements(p_report -> 'queues') LOOP
        CONTINUE WHEN jsonb_typeof(q) <> 'object' OR jsonb_typeof(q -> 'doctor') <> 'string'
                      OR jsonb_typeof(q -> 'tokens') <> 'number'
                      OR jsonb_typeof(q -> 'version') <> 'number';
        SELECT * INTO d FROM hms.doctors WHERE code = q ->> 'doctor';
        CONTINUE WHEN NOT FOUND;
        SELECT * INTO c FROM hms.counters WHERE kind = 'serial' AND scope_id = d.id AND period = bd;
        -- Numbers are what matters here: a lost call or completion is not a reissued token.
        IF (q ->> 'tokens')::numeric > coalesce(c.value, 0) THEN
            lost := lost || jsonb_build_object(
                'doctor', d.code, 'business_date', bd,
                'seen_tokens', (q ->> 'tokens')::numeric, 'seen_version', (q ->> 'version')::numeric,
                'tokens', coalesce(c.value, 0), 'version', coalesce(c.version, 0));
        END IF;
    END LOOP;
    IF jsonb_array_length(lost) = 0 THEN
        RETURN 'nothing lost';
    END IF;
    summary := (SELECT string_agg(format('%s saw %s tokens, here %s', x ->> 'doctor',
                                         x ->> 'seen_tokens', x ->> 'tokens'), ', ')
                  FROM jsonb_array_elements(lost) x);
    lost := jsonb_build_array(jsonb_build_object(
        'terminal', label, 'reported_by', session_user, 'at', now(),
        'system_identifier', p_system, 'timeline', p_tli, 'queues', lost));
    PERFORM hms.begin_action('report_lost_numbers');
    PERFORM 1 FROM hms.server_lineage FOR UPDATE;  -- one report at a time (lock order)
    SELECT * INTO open_ FROM hms.numbering_holds WHERE lifted_at IS NULL;
    IF FOUND THEN
        UPDATE hms.numbering_holds SET evidence = evidence || lost WHERE id = open_.id;
    ELSE
        INSERT INTO hms.numbering_holds (reason, detail, from_system, from_timeline, to_system,
                                         to_timeline, evidence)
        SELECT 'lost_numbers',
               left(format('terminal %s saw numbers this server does not have (%s)',
                           label, summary), 500),
               p_system, p_tli, i.system_identifier, i.timeline, lost
          FROM hms.server_identity() i;
    END IF;
    RETURN 'held';
END $$;

-- An admin stops numbering by hand (e.g. before letting terminals onto a standby promoted
-- while it was not synchronous).
CREATE FUNCTION hms.hold_numbering(p_note text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    id_ bigint;
BEGIN
    IF NOT hms.is_clean_text(p_note, 200) OR p_note IS NULL THEN
        PERFORM hms.fail('HM422', 'a hold needs a note of 1-200 characters saying why');
    END IF;
    PERFORM hms.begin_action('hold_numbering');
    PERFORM 1 FROM hms.server_lineage FOR UPDATE;
    SELECT h.id INTO id_ FROM hms.numbering_holds h WHERE h.lifted_at IS NULL;
    IF FOUND THEN
        RETURN id_;
    END IF;
    INSERT INTO hms.numbering_holds (reason, detail, to_system, to_timeline)
    SELECT 'manual', format('%s placed a hold: %s', session_user, p_note),
           i.system_identifier, i.timeline
      FROM hms.server_identity() i
    RETURNING numbering_holds.id INTO id_;
    RETURN id_;
END $$;

-- An admin has checked (the lost check-ins recovered, or the patients told): numbering may
-- resume. The lineage moves to this server; with p_skip, every doctor's token numbers of
-- the day move forward by p_skip, so that up to p_skip lost tokens per doctor are never
-- issued again (bill numbers stay gap-free: re-enter lost bills by hand).
CREATE FUNCTION hms.confirm_failover(p_note text, p_skip integer DEFAULT 0)
RETURNS TABLE (lifted integer, skipped integer, doctors integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    bd    date := hms.business_date();
    cur   record;
    d     record;
    n     integer := 0;
    known hms.server_lineage;
    moved boolean;
BEGIN
    IF NOT hms.is_clean_text(p_note, 200) OR p_note IS NULL THEN
        PERFORM hms.fail('HM422', 'a confirmation needs a note of 1-200 characters saying what '
                                  'was checked');
    END IF;
    IF p_skip IS NULL OR p_skip NOT BETWEEN 0 AND 1000 THEN
        PERFORM hms.fail('HM422', format('skip must be 0-1000, not %s', p_skip));
    END IF;
    SELECT * INTO cur FROM hms.server_identity();
    IF cur.in_recovery THEN
        PERFORM hms.fail('HM409', 'this server is a read-only standby; confirm on the primary');
    END IF;
    SELECT * INTO known FROM hms.server_lineage;
    moved := FOUND AND (known.system_identifier, known.timeline)
                       IS DISTINCT FROM (cur.system_identifier, cur.timeline);
    IF NOT moved AND NOT EXISTS (SELECT 1 FROM hms.numbering_holds WHERE lifted_at IS NULL) THEN
        PERFORM hms.fail('HM409', 'numbering is not on hold: nothing to confirm');
    END IF;
    PERFORM hms.begin_action('confirm_failover');
    IF p_skip > 0 THEN  -- queue locks first (ascending doctor id), as every action takes them
        FOR d IN SELECT id FROM hms.doctors ORDER BY id LOOP
            PERFORM hms.lock_queue(d.id, bd);
            UPDATE hms.counters SET value = value + p_skip
             WHERE kind = 'serial' AND scope_id = d.id AND period = bd;
            n := n + 1;
        END LOOP;
    END IF;
    PERFORM 1 FROM hms.server_lineage FOR UPDATE;
    DELETE FROM hms.server_lineage;
    INSERT INTO hms.server_lineage (system_identifier, timeline, synchronous, sync_names)
    VALUES (cur.system_identifier, cur.timeline,
            cardinality(hms.sync_names(current_setting('synchronous_standby_names'))) > 0,
            hms.sync_names(current_setting('synchronous_standby_names')));
    IF moved AND NOT EXISTS (SELECT 1 FROM hms.numbering_holds WHERE lifted_at IS NULL) THEN
        -- the change had not been observed yet: put it on record, confirmed
        INSERT INTO hms.numbering_holds (reason, detail, from_system, from_timeline, to_system,
                                         to_timeline)
        VALUES ('server_changed', hms.change_detail(known, cur.system_identifier, cur.timeline),
                known.system_identifier, known.timeline, cur.system_identifier, cur.timeline);
    END IF;
    UPDATE hms.numbering_holds SET lifted_at = now(), lifted_by = session_user,
                                   lift_note = p_note, skipped = p_skip
     WHERE lifted_at IS NULL;
    GET DIAGNOSTICS lifted = ROW_COUNT;
    skipped := p_skip;
    doctors := n;
    RETURN NEXT;
END $$;

-- The standbys as the primary sees them, for db status. Their state is visible to
-- superusers and members of pg_read_all_stats (pg_monitor): otherwise "visible" is false.
CREATE FUNCTION hms.replication_status()
RETURNS TABLE (name text, state text, sync_state text, replay_lag interval, visible boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT r.application_name, r.state, r.sync_state, r.replay_lag, r.state IS NOT NULL
      FROM pg_stat_replication r
     ORDER BY r.application_name
$$;

CREATE FUNCTION hms.durability_settings()
RETURNS TABLE (synchronous_commit text, synchronous_standby_names text, in_recovery boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT current_setting('synchronous_commit'), current_setting('synchronous_standby_names'),
           pg_is_in_recovery()
$$;

-- The holds, newest first (db status, the admin screen).
CREATE FUNCTION hms.numbering_holds(p_limit integer DEFAULT 5)
RETURNS SETOF hms.numbering_holds
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.numbering_holds ORDER BY id DESC LIMIT least(greatest(p_limit, 1), 100)
$$;

-- Holds are part of the audited record: every insert and update is in the trail; a hold is
-- never deleted.
CREATE TRIGGER numbering_holds_audit AFTER INSERT OR UPDATE OR DELETE ON hms.numbering_holds
    FOR EACH ROW EXECUTE FUNCTION hms.audit_row();
CREATE TRIGGER numbering_holds_no_delete BEFORE DELETE ON hms.numbering_holds
    FOR EACH ROW EXECUTE FUNCTION hms.reject_change('numbering holds are never deleted; confirm instead');
CREATE TRIGGER numbering_holds_no_truncate BEFORE TRUNCATE ON hms.numbering_holds
    FOR EACH STATEMENT EXECUTE FUNCTION hms.reject_change('numbering holds cannot be truncated: they are part of the audited record');

-- Grants (kept with the functions; 90_grants.sql revokes PUBLIC afterwards). Every terminal
-- observes and reports (its listener does, whatever the login's group); admins hold, confirm
-- and read the replication state.
GRANT EXECUTE ON FUNCTION hms.server_identity(), hms.observe_server(),
    hms.report_lost_numbers(jsonb), hms.durability_settings()
    TO hms_reception, hms_doctor, hms_display, hms_admin;
GRANT EXECUTE ON FUNCTION hms.hold_numbering(text), hms.confirm_failover(text, integer),
    hms.replication_status(), hms.numbering_holds(integer)
    TO hms_admin;
