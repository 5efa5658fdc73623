-- 0009 scale: patient search that stays fast at a million patients, on any server.
--
-- The embedded PostgreSQL has no pg_trgm, so search builds its own: hms.search_grams lists
-- every piece of one to three characters of a text, and core GIN indexes over those arrays
-- find the patients whose name (lower case) or phone digits hold every piece of the text
-- searched for. Those are candidates; hms.search_patients (31_patients.sql) keeps only the
-- true matches, so the result is the plain definition's on every server. Being expression
-- indexes, they stay right whatever writes the rows (COPY and disabled triggers included).
-- A name-order index serves names that start with the text, in order (it replaces the old
-- text_pattern_ops one).

SET LOCAL maintenance_work_mem = '256MB';  -- the GIN builds below, at a million patients

-- Every substring of t of length shortest..3, in order, repeats included (GIN keeps each once).
CREATE FUNCTION hms.search_grams(t text, shortest integer) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    g   text[] := '{}';
    len integer := length(t);
BEGIN
    FOR n IN greatest(shortest, 1) .. 3 LOOP
        FOR i IN 1 .. len - n + 1 LOOP
            g := g || substr(t, i, n);
        END LOOP;
    END LOOP;
    RETURN g;
END $$;

CREATE INDEX patients_name_grams ON hms.patients USING gin (hms.search_grams(lower(name), 1));
CREATE INDEX patients_phone_grams ON hms.patients
    USING gin (hms.search_grams(regexp_replace(phone, '[^0-9]', '', 'g'), 3))
    WHERE phone IS NOT NULL;
CREATE INDEX patients_name_order ON hms.patients ((lower(name) COLLATE "C"), id);
CREATE INDEX patients_lower_mrn ON hms.patients ((lower(mrn) COLLATE "C"));
DROP INDEX hms.patients_lower_name;
