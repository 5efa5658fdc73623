"""The waiting-room display under change: doctors added, deactivated and edited while it runs,
settings changed, calls after a requeue, a failure it must survive, and every screen size.

Each test here reproduces a defect seen on the demo clinic (a DuplicateIds traceback when a
doctor was added, a requeued patient never announced, a lonely panel, a lost "Next" line,
raw emoji on a Linux console) and checks the fix on the real database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from hms_tui.app import Role
from hms_tui.screens.display import DisplayScreen, DoctorPanel, grid_shape
from hms_tui.services.desk import Desk
from hms_tui.widgets.bigtext import BigText
from tests.tui_helpers import (
    make_app,
    run,
    screen_text,
    settings_with,
    static_text,
    wait_live,
    wait_until,
)


def display(app: Any) -> DisplayScreen:
    screen = app.screen
    assert isinstance(screen, DisplayScreen)
    return screen


def panels(app: Any) -> list[DoctorPanel]:
    return list(display(app).query(DoctorPanel))


def panel(app: Any, code: str) -> DoctorPanel:
    return display(app).query_one(f"#panel-{code}", DoctorPanel)


def part(app: Any, code: str, name: str) -> str:
    return static_text(panel(app, code).query_one(f".{name}", Static))


def announce(app: Any) -> str:
    return static_text(display(app).query_one("#announce", Static))


def test_doctors_added_deactivated_and_edited_while_the_display_runs(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    desk.checkin("D1", clinic["patients"][0])

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings_with())
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: [p.code for p in panels(app)] == ["D1", "D2"])
            # Admin adds a doctor: a third panel appears, in code order, with nothing stale.
            desk.add_doctor("D0", "Dr Bose", "Room 1")
            await wait_until(pilot, lambda: [p.code for p in panels(app)] == ["D0", "D1", "D2"],
                             message="the new doctor's panel")
            await wait_until(pilot, lambda: part(app, "D0", "where") == "Dr Bose, Room 1")
            assert part(app, "D1", "next") == "Next: D1-001"
            # Deactivated, reactivated and deactivated again in quick succession.
            desk.update_doctor("D2", active=False)
            desk.update_doctor("D2", active=True)
            desk.update_doctor("D2", active=False)
            await wait_until(pilot, lambda: [p.code for p in panels(app)] == ["D0", "D1"],
                             message="D2's panel gone")
            desk.update_doctor("D2", active=True)
            await wait_until(pilot, lambda: [p.code for p in panels(app)] == ["D0", "D1", "D2"])
            # A room moves: the panel follows without a restart.
            desk.update_doctor("D1", room="Room 9")
            await wait_until(pilot, lambda: part(app, "D1", "where") == "Dr Rao, Room 9")
            # The clinic is renamed: every running display shows the new name.
            desk.configure(clinic_name="City Clinic")
            await wait_until(pilot, lambda: static_text(display(app).query_one("#clinic", Static))
                             == "City Clinic", message="the new clinic name")
            assert len({p.id for p in panels(app)}) == len(panels(app))
            assert app.is_running

    run(go())


def test_a_requeued_no_show_called_again_is_announced(desk: Desk, clinic: dict[str, Any]) -> None:
    desk.configure(recall_limit=0, requeue_after=0)
    desk.checkin("D1", clinic["patients"][0])

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings_with(announce_seconds=1))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: part(app, "D1", "next") == "Next: D1-001")
            visit = desk.call_next("D1")
            await wait_until(pilot, lambda: "D1-001" in announce(app))
            await wait_until(pilot, lambda: announce(app) == "", timeout=5)
            desk.no_show(visit.visit_id)
            desk.requeue(visit.visit_id)
            await wait_until(pilot, lambda: part(app, "D1", "next") == "Next: D1-001")
            desk.call_next("D1")  # the same visit, its call count back at 1
            await wait_until(pilot, lambda: "D1-001" in announce(app), timeout=5,
                             message="the second call announced")

    run(go())


def test_calls_are_announced_in_call_order_and_each_stays_until_done(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    desk.configure(calls_ahead=2)
    p = clinic["patients"]
    for i in range(3):
        desk.checkin("D1", p[i])

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings_with(announce_seconds=1))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: part(app, "D1", "next").startswith("Next: D1-001"))
            seen: list[str] = []
            for _ in range(3):
                desk.call_next("D1")
            for _ in range(60):
                text = announce(app)
                if text and (not seen or seen[-1] != text):
                    seen.append(text)
                if len(seen) == 3:
                    break
                await pilot.pause(0.1)
            assert [s.split()[3] for s in seen] == ["D1-001", "D1-002", "D1-003"]

    run(go())


@pytest.mark.parametrize(("n", "size", "expected"), [
    (4, (120, 40), (2, 2)),   # not three columns and a lonely panel
    (2, (80, 24), (1, 2)),
    (3, (200, 50), (1, 3)),   # stacked: twice the token size
    (6, (200, 50), (2, 3)),
    (1, (80, 24), (1, 1)),
])
def test_panels_tile_evenly(n: int, size: tuple[int, int], expected: tuple[int, int]) -> None:
    cols, rows = grid_shape(n, size[0], size[1] - 3, token_width=35)
    assert (cols, rows) == expected


def test_sizes_token_scales_next_survives_idle_is_small(desk: Desk, clinic: dict[str, Any]) -> None:
    desk.add_doctor("D3", "Dr Sen", "Room 7")
    desk.add_doctor("D4", "Dr Farouk", "Room 2")
    p = clinic["patients"]
    for i in range(4):
        desk.checkin("D1", p[i])
    desk.call_next("D1")

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings_with())
        async with app.run_test(size=(200, 50)) as pilot:
            await wait_live(pilot, board=4)
            await wait_until(pilot, lambda: panel(app, "D1").query_one(BigText).text == "D1-001")
            await pilot.pause()
            big = panel(app, "D1").query_one(BigText)
            assert big.scale >= 2  # a big screen, a big token
            idle = panel(app, "D2").query_one(BigText)
            assert idle.text == "-" and idle.scale == 0  # plain text, not a block
            shown = screen_text(app)
            assert "█" * 12 not in "\n".join(line for line in shown.splitlines()
                                            if "D2" in line)  # sanity: rows exist
            # Four panels at 120x40: two by two, all the same size.
            await pilot.resize_terminal(120, 40)
            await pilot.pause(0.2)
            regions = [p.region for p in panels(app)]
            # the same size, to the cell (an odd cell of the screen goes to one of them)
            assert max(r.width for r in regions) - min(r.width for r in regions) <= 1
            assert max(r.height for r in regions) - min(r.height for r in regions) <= 1
            assert len({r.x for r in regions}) == 2
            # 60x20: every panel still says what is next.
            await pilot.resize_terminal(60, 20)
            await pilot.pause(0.2)
            shown = screen_text(app)
            for code in ("D1", "D2", "D3", "D4"):
                assert part(app, code, "next").startswith("Next: ")
                assert panel(app, code).query_one(".next").region.height == 1
            assert shown.count("Next:") == 4
            # 40x12 with four doctors: still the token and Next for each.
            await pilot.resize_terminal(40, 14)
            await pilot.pause(0.2)
            shown = screen_text(app)
            assert shown.count("Next:") == 4 and "D1-001" in shown

    run(go())


def test_emergencies_stand_out_in_next(desk: Desk, clinic: dict[str, Any]) -> None:
    p = clinic["patients"]
    desk.checkin("D1", p[0])
    desk.checkin("D1", p[1], "EMERGENCY")

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings_with())
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: part(app, "D1", "next").startswith("Next: D1-002"))
            content = panel(app, "D1").query_one(".next", Static).content
            spans = [s for s in content.spans if "D1-002" in content.plain[s.start:s.end]]
            assert spans and any("bold" in str(s.style) for s in spans)
            assert "!D1-002" in part(app, "D1", "next") or spans

    run(go())


def test_ascii_console_shows_only_ascii(desk: Desk, clinic: dict[str, Any]) -> None:
    desk.configure(clinic_name="Clínica São José 😀 王")
    desk.update_doctor("D1", name="Dr Zoë Ó Briain")
    desk.checkin("D1", clinic["patients"][0])
    desk.call_next("D1")

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, ascii_only=True,
                       settings=settings_with(names="initials", announce_seconds=5))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: "Clinica Sao Jose" in static_text(
                display(app).query_one("#clinic", Static)))
            await wait_until(pilot, lambda: part(app, "D1", "where").startswith("Dr Zoe O Briain"))
            await pilot.pause()
            shown = screen_text(app)
            assert [c for c in shown if ord(c) > 127] == []

    run(go())


def test_initials_are_letters_only(desk: Desk, clinic: dict[str, Any]) -> None:
    patient = desk.add_patient("😀 Sam [x] ) 9")
    desk.checkin("D1", patient.id)
    desk.call_next("D1")

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings_with(names="initials"))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: part(app, "D1", "who") == "S. X.")

    run(go())


def test_an_unexpected_failure_restarts_the_display_calmly(
    desk: Desk, clinic: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    desk.checkin("D1", clinic["patients"][0])
    failures = {"left": 1}
    show = DoctorPanel.show

    def flaky(self: DoctorPanel, *args: Any, **kwargs: Any) -> None:
        if self.code == "D1" and "D1-001" in str(args) and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("an unexpected failure")
        show(self, *args, **kwargs)

    monkeypatch.setattr(DoctorPanel, "show", flaky)  # fault injection: a bug we do not know yet

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings_with(), recover=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            desk.call_next("D1")
            await wait_until(pilot, lambda: "Display restarting" in screen_text(app),
                             message="the calm banner")
            shown = screen_text(app)
            assert "Traceback" not in shown and "RuntimeError" not in shown
            await wait_until(pilot, lambda: isinstance(app.screen, DisplayScreen)
                             and panel(app, "D1").query_one(BigText).text == "D1-001",
                             message="recovered by itself")
            assert app.is_running and app.return_code in (None, 0)
        logs = list((tmp_path / "state" / "hms-tui").glob("*.log"))
        assert logs and "RuntimeError: an unexpected failure" in logs[0].read_text()

    run(go())


def test_with_a_voice_each_call_stays_up_until_it_has_been_said(
    desk: Desk, clinic: dict[str, Any], tmp_path: Path
) -> None:
    import time

    from hms_tui.config import DisplaySettings, Settings, VoiceSettings

    said = tmp_path / "said.txt"
    engine = VoiceSettings(enabled=True, command=(
        "sh", "-c", f'sleep 1.5; echo "$0" >> "{said}"', "{text}"))
    settings = Settings(display=DisplaySettings(bell=False, announce_seconds=1), voice=engine)
    p = clinic["patients"]
    desk.checkin("D1", p[0])
    desk.checkin("D2", p[1])

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: part(app, "D2", "next") == "Next: D2-001")
            desk.call_next("D1")
            desk.call_next("D2")
            await wait_until(pilot, lambda: "D1-001" in announce(app))
            first = time.monotonic()
            await wait_until(pilot, lambda: "D2-001" in announce(app), 10)
            assert time.monotonic() - first >= 1.3  # the voice's 1.5 s, not announce_seconds
            await wait_until(pilot, lambda: said.exists() and len(
                said.read_text().splitlines()) == 2, 10)
        assert said.read_text().splitlines() == [
            "Token D 1 0 0 1, please go to Room 3", "Token D 2 0 0 1, please go to Room 5"]

    run(go())


def test_a_rename_reaches_the_display_during_a_steady_stream_of_changes(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    """Settings are re-read after read rounds at a steady pace: a debounce would be put off
    for as long as changes keep coming, and a busy morning never stops."""
    import asyncio

    visit = desk.checkin("D1", clinic["patients"][0])

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings_with())
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            clinic_name = display(app).query_one("#clinic", Static)
            await wait_until(pilot, lambda: static_text(clinic_name) == "Outpatient Clinic")
            renamed = False
            for i in range(60):  # a change every 50 ms for 3 s
                level = "URGENT" if i % 2 else "NORMAL"
                await asyncio.to_thread(desk.set_priority, visit.visit_id, level)
                if i == 10:
                    await asyncio.to_thread(desk.configure, clinic_name="Busy Clinic")
                if i > 10 and static_text(clinic_name) == "Busy Clinic":
                    renamed = True
                    break
                await pilot.pause(0.05)
            assert renamed, "the rename waited for the changes to stop"

    run(go())
