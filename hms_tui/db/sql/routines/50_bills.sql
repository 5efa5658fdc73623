-- Bills: gap-free yearly numbers from the (bill, year) counter row; voided, never deleted.

-- Issued bills never change except to be voided, once.
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

CREATE FUNCTION hms.next_bill_seq(p_year integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v integer;
    p date := make_date(p_year, 1, 1);
BEGIN
    INSERT INTO hms.counters (kind, scope_id, period) VALUES ('bill', 0, p) ON CONFLICT DO NOTHING;
    SELECT value INTO v FROM hms.counters WHERE kind = 'bill' AND scope_id = 0 AND period = p FOR UPDATE;
    PERFORM hms.numbering_guard();  -- no number while one may be reissued (45_failover.sql)
    UPDATE hms.counters SET value = v + 1 WHERE kind = 'bill' AND scope_id = 0 AND period = p;
    RETURN v + 1;
END $$;

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
    SELECT sum(hms.parse_amount(e ->> 'amount', 'bill item amount')) INTO total_
      FROM jsonb_array_elements(p_items) e;
    s := hms.next_bill_seq(yr);
    INSERT INTO hms.bills (bill_number, bill_year, bill_seq, visit_id, total)
    VALUES (format('B-%s-%s', yr, hms.pad_number(s, 4)), yr, s, p_visit, total_)
    RETURNING id INTO b_id;
    INSERT INTO hms.bill_items (bill_id, line_no, description, amount)
    SELECT b_id, ord, hms.trim_text(e ->> 'description'), hms.parse_amount(e ->> 'amount')
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
    IF p_reason IS NULL OR hms.trim_text(p_reason) = '' THEN
        PERFORM hms.fail('HM422', 'a reason is required to void a bill');
    END IF;
    UPDATE hms.bills SET status = 'VOID', voided_at = now(), void_reason = hms.trim_text(p_reason)
     WHERE id = b.id;
    RETURN hms.bill_info(b.id);
END $$;

-- Bills of a visit.
CREATE FUNCTION hms.visit_bills(p_visit bigint) RETURNS SETOF hms.bill_info
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT i.* FROM hms.bills b, LATERAL hms.bill_info(b.id) i
     WHERE b.visit_id = p_visit ORDER BY b.id
$$;
