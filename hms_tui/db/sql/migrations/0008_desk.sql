-- 0008 desk: one patient at a time per doctor unless the clinic allows calling ahead.
--
-- calls_ahead: how many more patients a doctor may call while one is already called or in
-- consultation (0: one at a time; call-next and call refuse, naming who is with the doctor,
-- unless forced). The duplicate check on registration and the patient update need no new
-- column: they are routines (31_patients.sql).
ALTER TABLE hms.settings
    ADD COLUMN calls_ahead integer NOT NULL DEFAULT 0 CHECK (calls_ahead BETWEEN 0 AND 10);

-- Finding a patient registered twice: the same name (case and spacing aside) and birth date,
-- or the same phone digits.
CREATE INDEX patients_name_key ON hms.patients (lower(regexp_replace(name, '[\s,]+', ' ', 'g')));
CREATE INDEX patients_phone_digits ON hms.patients (regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g'))
    WHERE phone IS NOT NULL;
