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
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
BEGIN  -- plpgsql: its plan is cached (an SQL function's is made again on every call)
    RETURN (SELECT (now() AT TIME ZONE s.timezone)::date FROM hms.settings s);
END $$;

CREATE FUNCTION hms.clinic_timezone() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT timezone FROM hms.settings
$$;

-- A wall-clock time in the clinic's zone as an instant; a time the clocks skip is refused.
-- (A time the clocks pass twice is the later one, as PostgreSQL reads it.)
CREATE FUNCTION hms.clinic_instant(p_local timestamp) RETURNS timestamptz
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
DECLARE tz text := (SELECT timezone FROM hms.settings);
BEGIN
    IF ((p_local AT TIME ZONE tz) AT TIME ZONE tz) <> p_local THEN
        PERFORM hms.fail('HM422', format('%s does not exist in %s (the clocks change that night)',
                                         to_char(p_local, 'YYYY-MM-DD HH24:MI'), tz));
    END IF;
    RETURN p_local AT TIME ZONE tz;
END $$;

CREATE FUNCTION hms.get_rules() RETURNS hms.settings
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = hms, pg_temp AS $$
    SELECT * FROM hms.settings
$$;

-- Change clinic settings: p_changes holds the ones to change, by column name (a key this
-- clinic does not have is refused, not ignored).
CREATE FUNCTION hms.configure(p_changes jsonb) RETURNS hms.settings
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    s   hms.settings;
    key text;
BEGIN
    PERFORM hms.begin_action('configure');
    IF jsonb_typeof(p_changes) <> 'object' THEN
        PERFORM hms.fail('HM422', 'clinic settings are a JSON object of the settings to change');
    END IF;
    FOR key IN SELECT jsonb_object_keys(p_changes) LOOP
        IF key = 'id' OR NOT EXISTS (SELECT 1 FROM pg_attribute
                                      WHERE attrelid = 'hms.settings'::regclass AND attnum > 0
                                        AND NOT attisdropped AND attname = key) THEN
            PERFORM hms.fail('HM422', format('%s is not a clinic setting', key));
        END IF;
    END LOOP;
    SELECT * INTO s FROM hms.settings FOR UPDATE;
    s := jsonb_populate_record(s, p_changes);
    s.clinic_name := hms.trim_text(s.clinic_name);
    -- Every column from the merged row (the list follows the table as migrations grow it).
    EXECUTE (SELECT 'UPDATE hms.settings SET '
                    || string_agg(format('%1$I = ($1).%1$I', attname), ', ' ORDER BY attnum)
                    || ' RETURNING *'
               FROM pg_attribute
              WHERE attrelid = 'hms.settings'::regclass AND attnum > 0 AND NOT attisdropped
                AND attname <> 'id')
       INTO s USING s;
    RETURN s;
END $$;
