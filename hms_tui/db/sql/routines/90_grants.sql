-- Who may run what. Group roles hold no privilege on any table (INSERT, UPDATE, DELETE,
-- TRUNCATE are never granted, see the baseline migration); every change is a SECURITY
-- DEFINER function owned by the schema owner, with a pinned search_path and EXECUTE granted
-- here to the groups that need it, never to PUBLIC.
--
--   hms_reception  patients, search, check-in, booking, arrival, cancel, priority, transfer,
--                  skip, requeue, bills; queue, board and timeline reads
--   hms_doctor     call-next, call, recall, start, complete, no-show, skip, requeue; reads;
--                  only on visits of the doctors linked to the login (hms.assert_may_act)
--   hms_display    the waiting-room view hms.display_queue (initials, no MRN or phone),
--                  the board, the business date and the clinic's rules
--   hms_admin      everything above, plus doctors, clinic settings, staff logins and the
--                  audit trail
--
-- The audit trail records session_user, which a SECURITY DEFINER function cannot change and
-- a client cannot forge: with one login per person, the trail names the person.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA hms FROM PUBLIC;

-- Every terminal checks at start that the schema matches its code.
GRANT SELECT ON hms.schema_routines TO hms_reception, hms_doctor, hms_display, hms_admin;

-- Every terminal: its calls' session limits, the board and the rules.
GRANT EXECUTE ON FUNCTION
    hms.clinic_timezone(), hms.business_date(), hms.get_rules(), hms.doctor_list(),
    hms.doctor_board(), hms.whoami(), hms.session_limits(), hms.clinic_instant(timestamp)
    TO hms_reception, hms_doctor, hms_display, hms_admin;

-- The waiting-room display reads the masked rows, never hms.queue.
GRANT SELECT ON hms.display_queue TO hms_display, hms_admin;
GRANT EXECUTE ON FUNCTION hms.display_rows(), hms.live_display(text[], bigint[])
    TO hms_display, hms_admin;

-- Reception and doctors: queues, visits and their timelines; moving a patient back.
GRANT EXECUTE ON FUNCTION
    hms.get_doctor(text), hms.queue(text, boolean), hms.live_queues(text[], bigint[]),
    hms.visit_info(bigint, boolean),
    hms.visit_timeline(bigint), hms.skip(bigint, integer), hms.requeue(bigint)
    TO hms_reception, hms_doctor, hms_admin;

-- Reception: patients, check-in, booking, arrival, cancel, priority, transfer, bills.
GRANT EXECUTE ON FUNCTION
    hms.add_patient(text, text, date, boolean), hms.import_patients(text[], text[], date[], boolean),
    hms.get_patient(bigint), hms.search_patients(text, integer),
    hms.checkin(text, bigint, text, text), hms.arrive(bigint),
    hms.book(text, bigint, timestamp, date, text), hms.reschedule(bigint, timestamp, date, text),
    hms.cancel(bigint, text), hms.set_priority(bigint, text), hms.transfer(bigint, text),
    hms.create_bill(bigint, jsonb), hms.void_bill(text, text), hms.bill_info(bigint),
    hms.find_bill(text), hms.visit_bills(bigint)
    TO hms_reception, hms_admin;
-- Reception: a patient registered twice is found, and a mistyped name corrected.
GRANT EXECUTE ON FUNCTION
    hms.patient_duplicates(text, text, date, bigint),
    hms.update_patient(bigint, text, text, date, boolean)
    TO hms_reception, hms_admin;

-- Appointments: slots, sessions and who is expected, for the desk and the doctors.
GRANT EXECUTE ON FUNCTION
    hms.slots(text, date), hms.session_list(text), hms.expected(date, text),
    hms.day_bookings(text, date)
    TO hms_reception, hms_doctor, hms_admin;

-- Doctors: the consultation (on their own visits: hms.assert_may_act).
GRANT EXECUTE ON FUNCTION
    hms.call_next(text, boolean), hms.call(bigint, boolean), hms.recall(bigint), hms.start(bigint),
    hms.complete(bigint), hms.no_show(bigint)
    TO hms_doctor, hms_admin;

-- Admin: doctors, clinic settings, staff, the audit trail.
GRANT EXECUTE ON FUNCTION
    hms.add_doctor(text, text, text, text), hms.update_doctor(text, text, text, text, boolean),
    hms.configure(jsonb),
    hms.audit_tail(integer, text, text, bigint),
    hms.staff_add(text, text, text[], text), hms.staff_list(), hms.staff_disable(text),
    hms.staff_enable(text), hms.staff_link(text, text, boolean), hms.audit_seal(integer),
    hms.session_add(text, text, date, time, time, integer, integer, text),
    hms.session_remove(integer), hms.leave_add(text, date, date, text)
    TO hms_admin;
-- Statistics and the past: reports, the live over-target board, the replay, the trail checked
-- against the tables, a visit restored from it, and the day close.
GRANT EXECUTE ON FUNCTION
    hms.report_day(date, text), hms.report_range(date, date, text), hms.over_target(),
    hms.replay(timestamptz, text), hms.audit_check(date), hms.audit_restore(bigint, boolean),
    hms.day_close(date)
    TO hms_admin;
-- The trail, sealed and not yet sealed (audit verify reads the rows and the head itself).
GRANT SELECT ON hms.audit_log, hms.audit_pending TO hms_admin;
