-- The audit trail: every change, sealed into a hash chain at commit, never changed.
--
-- Every insert, update or delete of an audited table records the full before and after
-- images. A change is first written to hms.audit_pending, with no lock, under a ticket taken
-- as it is made. At commit it is sealed: hms.audit_seal takes the chain's head (never waiting
-- for it: if another transaction is sealing, that one or the next seals these rows too),
-- gives every committed pending row the next gap-free seq in ticket order, chains its hash
-- to the previous row's and moves it to hms.audit_events. So the head lock is held only
-- while sealing, just before a commit, never across time a client controls, and no writer
-- ever waits for another clinic queue's writer.
--
-- Order: a row written by one transaction and then by another is sealed in that order (the
-- second waited for the first's commit before its ticket), so replaying the trail in seq order
-- rebuilds every row; unrelated changes sealed together are in ticket order.
-- hms_tui/services/audit.py rebuilds the canonical text independently; tests compare the two.

-- Canonical text of a row for hashing: each field '<length, or - for NULL>:<text>', joined by
-- '|'.
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

-- Record one change (pending until sealed). Audited writes run at READ COMMITTED, as every
-- desk action does.
CREATE FUNCTION hms.audit_append(
    p_entity text, p_entity_id bigint, p_visit_id bigint, p_op text, p_before jsonb, p_after jsonb
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    label text := nullif(current_setting('hms.terminal', true), '');
BEGIN
    INSERT INTO hms.audit_pending (ticket, at, actor, terminal, action, entity, entity_id,
                                   visit_id, op, txid, before, after)
    VALUES (nextval('hms.audit_ticket'), now(), session_user,
            CASE WHEN hms.is_clean_text(label, 40) THEN label ELSE '(invalid label)' END,
            coalesce(nullif(current_setting('hms.action', true), ''), lower(p_op) || '_' || p_entity),
            p_entity, p_entity_id, p_visit_id, p_op, pg_current_xact_id()::text::bigint,
            p_before, p_after);
END $$;

-- Seal committed pending rows (and this transaction's own) into the chain, at most p_limit
-- of them; returns how many. Never waits: 0 when another transaction holds the head.
CREATE FUNCTION hms.audit_seal(p_limit integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    head   hms.audit_head;
    p      hms.audit_pending;
    r      hms.audit_events;
    sealed bigint[];
BEGIN
    SELECT * INTO head FROM hms.audit_head FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    -- The tickets first, in one array (appending one by one would cost the square of a big
    -- import's rows); only sealers delete pending rows, and this one holds the head.
    sealed := ARRAY(SELECT ticket FROM hms.audit_pending ORDER BY ticket LIMIT greatest(p_limit, 1));
    FOR p IN SELECT * FROM hms.audit_pending WHERE ticket = ANY (sealed) ORDER BY ticket LOOP
        r.seq       := head.last_seq + 1;
        r.at        := p.at;
        r.actor     := p.actor;
        r.terminal  := p.terminal;
        r.action    := p.action;
        r.entity    := p.entity;
        r.entity_id := p.entity_id;
        r.visit_id  := p.visit_id;
        r.op        := p.op;
        r.txid      := p.txid;
        r.before    := p.before;
        r.after     := p.after;
        r.prev_hash := head.last_hash;
        r.hash      := sha256(r.prev_hash || convert_to(hms.audit_canon(r), 'UTF8'));
        INSERT INTO hms.audit_events VALUES (r.*);
        head.last_seq := r.seq;
        head.last_hash := r.hash;
    END LOOP;
    IF cardinality(sealed) > 0 THEN
        PERFORM set_config('hms.sealing', 'on', true);
        -- Exactly the rows sealed: a row committed meanwhile waits for the next seal.
        DELETE FROM hms.audit_pending WHERE ticket = ANY (sealed);
        PERFORM set_config('hms.sealing', '', true);
        UPDATE hms.audit_head SET last_seq = head.last_seq, last_hash = head.last_hash;
    END IF;
    RETURN cardinality(sealed);
END $$;

-- At commit (a deferred trigger), once per transaction: seal everything pending, however
-- many rows a bulk import wrote, in batches (the head, once taken, stays this transaction's).
CREATE FUNCTION hms.audit_seal_at_commit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp AS $$
BEGIN
    IF current_setting('hms.sealed', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('hms.sealed', 'yes', true);
        LOOP
            EXIT WHEN hms.audit_seal(10000) < 10000;
        END LOOP;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER audit_pending_seal AFTER INSERT ON hms.audit_pending
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hms.audit_seal_at_commit();

CREATE FUNCTION hms.audit_pending_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('hms.sealing', true) = 'on' THEN
        RETURN OLD;  -- moved into the chain by hms.audit_seal
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'HM423', MESSAGE = 'the audit trail is append-only';
END $$;
CREATE TRIGGER audit_pending_append_only BEFORE UPDATE OR DELETE ON hms.audit_pending
    FOR EACH ROW EXECUTE FUNCTION hms.audit_pending_guard();
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON hms.audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION hms.reject_change('the audit trail is append-only');

-- The whole trail, sealed rows first (in seq order) and then those not sealed yet (seq NULL,
-- in ticket order): what reads of the trail use.
CREATE VIEW hms.audit_log AS
SELECT e.seq, NULL::bigint AS ticket, e.at, e.actor, e.terminal, e.action, e.entity,
       e.entity_id, e.visit_id, e.op, e.txid, e.before, e.after
  FROM hms.audit_events e
UNION ALL
SELECT NULL::bigint, p.ticket, p.at, p.actor, p.terminal, p.action, p.entity, p.entity_id,
       p.visit_id, p.op, p.txid, p.before, p.after
  FROM hms.audit_pending p;

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
        CASE WHEN TG_TABLE_NAME IN ('settings', 'staff_doctors') THEN NULL ELSE (img ->> 'id')::bigint END,
        vid, TG_OP, b, a);
    RETURN NULL;
END $$;


CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON hms.audit_events
    FOR EACH ROW EXECUTE FUNCTION hms.reject_change('the audit trail is append-only');
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON hms.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION hms.reject_change('the audit trail is append-only');

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['settings', 'doctors', 'patients', 'visits', 'bills', 'bill_items',
                             'staff_doctors', 'sessions', 'leaves', 'day_closes'] LOOP
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

-- A visit's history from the trail, with the time since the previous event.
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
           e.at - lag(e.at) OVER (ORDER BY e.seq NULLS LAST, e.ticket),
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
      FROM hms.audit_log e
     WHERE e.visit_id = p_visit
     ORDER BY e.seq NULLS LAST, e.ticket;
END $$;

CREATE FUNCTION hms.audit_tail(p_limit integer DEFAULT 20, p_actor text DEFAULT NULL,
                               p_action text DEFAULT NULL, p_visit bigint DEFAULT NULL)
RETURNS TABLE (seq bigint, ticket bigint, at timestamptz, actor text, terminal text,
               action text, entity text, entity_id bigint, visit_id bigint, status_before text,
               status_after text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT e.seq, e.ticket, e.at, e.actor, e.terminal, e.action, e.entity, e.entity_id,
           e.visit_id, e.before ->> 'status', e.after ->> 'status'
      FROM hms.audit_log e
     WHERE (p_actor IS NULL OR e.actor = p_actor)
       AND (p_action IS NULL OR e.action = p_action)
       AND (p_visit IS NULL OR e.visit_id = p_visit)
     ORDER BY e.seq DESC NULLS FIRST, e.ticket DESC
     LIMIT least(greatest(p_limit, 1), 10000)
$$;
