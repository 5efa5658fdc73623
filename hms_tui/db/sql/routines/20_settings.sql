-- Clinic-wide settings (one row) and the business date every terminal agrees on.

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

-- now() in the clinic's zone: a terminal's clock or session time zone never matters.
CREATE FUNCTION hms.business_date() RETURNS date
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT (now() AT TIME ZONE s.timezone)::date FROM hms.settings s
$$;

CREATE FUNCTION hms.clinic_timezone() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT timezone FROM hms.settings
$$;

CREATE FUNCTION hms.get_rules() RETURNS hms.settings
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.settings
$$;

-- NULL leaves a setting as it is. p_calls_ahead: how many more patients a doctor may call
-- while one is with them (0: one at a time).
CREATE FUNCTION hms.configure(
    p_clinic_name text, p_timezone text, p_recall_limit integer, p_requeue_after integer,
    p_skip_places integer, p_consult_minutes integer, p_calls_ahead integer DEFAULT NULL
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
        consult_minutes = coalesce(p_consult_minutes, consult_minutes),
        calls_ahead = coalesce(p_calls_ahead, calls_ahead)
    RETURNING * INTO s;
    RETURN s;
END $$;
