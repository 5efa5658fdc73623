"""Reception as a new user met it on the demo clinic: a scanner's MRN and Enter within
milliseconds, Enter on an empty search, keys typed during an outage, a patient registered
twice, a mistyped name, recent patients from another desk, 80x24, ticking clocks, the badge's
time, and the first action after the database was pulled away."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from textual import events
from textual.widgets import Input, OptionList, Static

from hms_tui.app import Role
from hms_tui.domain.events import ConnectionState
from hms_tui.screens.forms import BillDialog
from hms_tui.screens.patients import DuplicateDialog, RegisterDialog
from hms_tui.screens.pickers import CheckinDialog
from hms_tui.screens.reception import PATIENT_COL, ReceptionScreen
from hms_tui.services.desk import Desk
from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import DiffTable
from hms_tui.widgets.status import ConnectionBadge
from tests.tui_helpers import (
    column,
    error_notifications,
    make_app,
    notifications,
    run,
    screen_text,
    static_text,
    tui_listener,
    type_text,
    until_db,
    wait_live,
    wait_screen,
    wait_until,
)


def reception(app: Any) -> ReceptionScreen:
    screen = next(s for s in app.screen_stack if isinstance(s, ReceptionScreen))
    assert isinstance(screen, ReceptionScreen)
    return screen


def results(app: Any) -> DiffTable:
    return reception(app).query_one("#results", DiffTable)


def title(app: Any) -> str:
    return static_text(app.screen.query_one(".title", Static))


async def burst(pilot: Any, text: str) -> None:
    """Characters and Enter in one go, as a barcode scanner types them."""
    for ch in text:
        pilot.app.post_message(events.Key(ch if ch.isalnum() else {" ": "space", ",": "comma"}
                                          .get(ch, ch), ch))
    pilot.app.post_message(events.Key("enter", "\r"))
    await pilot.pause()


def visit_count(sql: psycopg.Connection[Any]) -> int:
    return int(sql.execute("SELECT count(*) FROM hms.visits").fetchone()[0])  # type: ignore[index]


def test_a_scanned_mrn_and_enter_open_that_patient_not_the_previous_top_row(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    kumar = desk.add_patient("Kumar, Anil", "98450 12345", "1972-03-14")
    age = desk.search_patients(kumar.mrn)[0].age  # by the database's date
    desk.add_patient("Zed Last")  # the newest: top of the list before any search

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: column(results(app), 1)[:1] == ["Zed Last"])
            await burst(pilot, kumar.mrn)  # MRN and Enter within milliseconds
            await wait_screen(pilot, CheckinDialog)
            assert title(app) == f"Check in Kumar, Anil ({kumar.mrn}, {age} y)"
            await pilot.press("escape")
            # A name typed and Enter at once: the search of that text, its best match.
            search = reception(app).query_one("#search", Input)
            search.value = ""
            await wait_until(pilot, lambda: column(results(app), 1)[:1] == ["Zed Last"])
            await burst(pilot, "kumar")
            await wait_screen(pilot, CheckinDialog)
            assert title(app).startswith("Check in Kumar, Anil")
            await pilot.press("escape")
            # A phone number scanned from a card.
            search.value = ""
            await wait_until(pilot, lambda: column(results(app), 1)[:1] == ["Zed Last"])
            await burst(pilot, "9845012345")
            await wait_screen(pilot, CheckinDialog)
            assert title(app).startswith("Check in Kumar, Anil")

    run(go())


def test_enter_on_an_empty_search_does_nothing(desk: Desk, clinic: dict[str, Any]) -> None:
    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: results(app).row_count == 10)
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert isinstance(app.screen, ReceptionScreen)
            # Picking a recent patient with the arrows, then Enter, is a choice: it opens.
            await pilot.press("down", "enter")
            await wait_screen(pilot, CheckinDialog)
            assert title(app).startswith("Check in Patient 08")

    run(go())


def test_keys_typed_during_an_outage_never_fire_later(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any], server_dsn: str
) -> None:
    dbname = sql.info.dbname

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: results(app).row_count == 10)
            with psycopg.connect(server_dsn, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
                try:
                    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                  " WHERE datname = %s AND pid <> %s",
                                  (dbname, sql.info.backend_pid))
                    await burst(pilot, "Patient 05")
                    await wait_until(pilot, lambda: any("Search failed" in n
                                                        for n in error_notifications(app)))
                    assert "Enter was not acted on" in error_notifications(app)[-1]
                    assert results(app).row_count == 0  # no rows of another text
                finally:
                    admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
            # Back: the list is read again, and nothing typed meanwhile fires.
            await wait_until(pilot, lambda: app.live.state == ConnectionState.LIVE, 20)
            await wait_until(pilot, lambda: column(results(app), 1) == ["Patient 05"], 20)
            await pilot.pause(0.5)
            assert isinstance(app.screen, ReceptionScreen)
            assert visit_count(sql) == 0
            # And the first action after the outage works (a fresh connection, no error).
            before = len(error_notifications(app))
            await pilot.press("enter")
            await wait_screen(pilot, CheckinDialog)
            await pilot.press("enter")
            await until_db(pilot, lambda: visit_count(sql), lambda n: n == 1)
            assert len(error_notifications(app)) == before

    run(go())


def test_a_patient_registered_twice_is_asked_about(desk: Desk, clinic: dict[str, Any],
                                                   sql: psycopg.Connection[Any]) -> None:
    kumar = desk.add_patient("Kumar, Anil", "98450 12345", "1972-03-14")
    age = desk.search_patients(kumar.mrn)[0].age

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            count = sql.execute("SELECT count(*) FROM hms.patients").fetchone()
            await pilot.press("f3")
            form = await wait_screen(pilot, RegisterDialog)
            await type_text(pilot, "KUMAR, anil")
            form.query_one("#dob", Input).value = "1972-03-14"
            await pilot.press("ctrl+s")
            asked = await wait_screen(pilot, DuplicateDialog)
            options = asked.query_one(OptionList)
            assert [str(options.get_option_at_index(i).prompt)
                    for i in range(options.option_count)] == [
                f"Use Kumar, Anil ({kumar.mrn}, {age} y) · born 1972-03-14 · 98450 12345",
                "Someone else: register a new patient"]
            assert sql.execute("SELECT count(*) FROM hms.patients").fetchone() == count
            await pilot.press("enter")  # the first match is highlighted: that record
            await wait_screen(pilot, CheckinDialog)
            assert title(app) == f"Check in Kumar, Anil ({kumar.mrn}, {age} y)"
            await pilot.press("escape")
            assert sql.execute("SELECT count(*) FROM hms.patients").fetchone() == count
            # Someone else with the same name and birthday: registered on request.
            await pilot.press("f3")
            form = await wait_screen(pilot, RegisterDialog)
            await type_text(pilot, "Kumar, Anil")
            form.query_one("#dob", Input).value = "1972-03-14"
            await pilot.press("ctrl+s")
            asked = await wait_screen(pilot, DuplicateDialog)
            assert asked is app.screen
            await pilot.press("down", "enter")  # "Someone else: register a new patient"
            await wait_screen(pilot, CheckinDialog)
            assert sql.execute("SELECT count(*) FROM hms.patients").fetchone()[0] == \
                count[0] + 1  # type: ignore[index]

    run(go())


def test_correcting_a_name_reaches_the_queue_and_the_search(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    mistyped = desk.add_patient("Kumr, Anil")
    desk.checkin("D1", mistyped.id)

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            queue = reception(app).query_one("#queue", DiffTable)
            await wait_until(pilot, lambda: column(queue, PATIENT_COL) == ["Kumr, Anil"])
            await type_text(pilot, "kumr")
            await wait_until(pilot, lambda: column(results(app), 1) == ["Kumr, Anil"])
            await pilot.press("f9")
            form = await wait_screen(pilot, RegisterDialog)
            assert title(app).startswith("Correct Kumr, Anil (M")
            name = form.query_one("#name", Input)
            assert name.value == "Kumr, Anil"
            name.value = "Kumar, Anil"
            await pilot.press("ctrl+s")
            await wait_screen(pilot, ReceptionScreen)
            await wait_until(pilot, lambda: column(queue, PATIENT_COL) == ["Kumar, Anil"],
                             message="the queue shows the corrected name")
            assert sql.execute("SELECT action FROM hms.audit_events WHERE entity = 'patients'"
                               " ORDER BY seq DESC LIMIT 1").fetchone() == ("patient_update",)

    run(go())


def test_recent_patients_follow_other_desks(desk: Desk, clinic: dict[str, Any]) -> None:
    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: column(results(app), 1)[:1] == ["Patient 09"])
            desk.add_patient("Newly Registered")  # at another desk
            await wait_until(pilot, lambda: column(results(app), 1)[:1] == ["Newly Registered"],
                             message="the new patient at the top of the recent list")

    run(go())


def test_80x24_shows_the_main_keys_and_readable_priorities(desk: Desk,
                                                          clinic: dict[str, Any]) -> None:
    desk.add_patient("Chandrasekhar Venkataraman Subramaniam Iyer")
    desk.checkin("D1", clinic["patients"][0], "EMERGENCY")
    desk.checkin("D1", desk.search_patients("Chandra")[0].id, "URGENT")

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            queue = reception(app).query_one("#queue", DiffTable)
            await wait_until(pilot, lambda: queue.row_count == 2)
            await pilot.pause(0.2)
            shown = screen_text(app)
            bar = "\n".join(shown.splitlines()[-2:])
            for key in ("F1 Help", "F3 New", "F4 Check in", "F5 Bill", "F6 Void bill",
                        "F7/F8 Doctor", "F9 Edit", "F10 Book", "F12 Expected", "c Cancel",
                        "t Transfer", "p Priority", "^r Reprint", "^q Quit"):
                assert key in bar, (key, bar)
            assert "EMERGENCY" in shown and "URGENT" in shown
            assert reception(app).query_one(KeyBar).region.height == 2

    run(go())


def test_waiting_minutes_and_the_badge_move_without_a_change(desk: Desk,
                                                             clinic: dict[str, Any]) -> None:
    visit = desk.checkin("D1", clinic["patients"][0])
    assert visit.checked_in_at is not None
    now = {"t": visit.checked_in_at}
    listener = tui_listener(desk, poll_interval=0.5)  # the backup poll, sped up

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk, clock=lambda: now["t"], listener=listener)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            queue = reception(app).query_one("#queue", DiffTable)
            badge = reception(app).query_one(ConnectionBadge)
            await wait_until(pilot, lambda: column(queue, 4) == ["0m"])
            stamp = static_text(badge)
            now["t"] = visit.checked_in_at + timedelta(minutes=7, seconds=3)
            # Nothing changes in the database: the minutes tick, and the badge moves with the
            # poll's re-read (the time of the last successful read).
            await wait_until(pilot, lambda: column(queue, 4) == ["7m"], 5)
            await wait_until(pilot, lambda: static_text(badge) != stamp, 5)
            assert static_text(badge).startswith("● live ")

    run(go())


def test_a_half_typed_bill_line_is_an_error(desk: Desk, clinic: dict[str, Any],
                                           sql: psycopg.Connection[Any]) -> None:
    desk.checkin("D1", clinic["patients"][0])

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            queue = reception(app).query_one("#queue", DiffTable)
            await wait_until(pilot, lambda: queue.row_count == 1)
            queue.focus()
            await pilot.press("f5")
            form = await wait_screen(pilot, BillDialog)
            await type_text(pilot, "Consultation")
            await pilot.press("enter")
            await type_text(pilot, "500")
            await pilot.press("enter")
            await type_text(pilot, "ECG")  # typed, never added
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: "Finish the line" in
                             static_text(form.query_one(".error", Static)))
            assert app.screen is form
            assert form.query_one("#amount", Input).has_focus
            assert sql.execute("SELECT count(*) FROM hms.bills").fetchone() == (0,)

    run(go())


def test_at_most_three_toasts(desk: Desk, clinic: dict[str, Any]) -> None:
    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await wait_live(pilot, board=2)
            for i in range(6):
                app.notify(f"note {i}")
            await pilot.pause(0.2)
            assert [n.message for n in app._notifications] == ["note 3", "note 4", "note 5"]
            assert len(notifications(app)) >= 6

    run(go())


def test_two_quick_enters_in_a_form_do_not_skip_a_field(desk: Desk, clinic: dict[str, Any]
                                                        ) -> None:
    """Both Enters are dispatched to the name field before the first is handled: the second
    must not move the focus past the phone."""

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await pilot.press("f3")
            form = await wait_screen(pilot, RegisterDialog)
            await type_text(pilot, "Asha Menon")
            assert form.query_one("#name", Input).has_focus
            for _ in range(2):
                app.post_message(events.Key("enter", "\r"))
            await pilot.pause(0.2)
            assert form.query_one("#phone", Input).has_focus

    run(go())
