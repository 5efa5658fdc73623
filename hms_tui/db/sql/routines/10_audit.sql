-- The audit trail: chained rows, written by triggers, never changed.
--
-- Every insert, update or delete of an audited table writes a row with the full before and
-- after images. seq is gap-free and in commit order: it is allocated under the audit_head row
-- lock, held until the writing transaction ends. Each row's hash covers the previous hash.
-- hms_tui/services/audit.py rebuilds the canonical text independently; tests compare the two.

-- Canonical text of a row for hashing: each field '<length, or - for NULL>:<text>', joined by
-- '|'. Plain concatenation: it runs while the head lock is held.
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
        CASE WHEN TG_TABLE_NAME IN ('settings', 'staff_doctors') THEN NULL ELSE (img ->> 'id')::bigint END,
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
    FOREACH t IN ARRAY ARRAY['settings', 'doctors', 'patients', 'visits', 'bills', 'bill_items',
                             'staff_doctors'] LOOP
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
