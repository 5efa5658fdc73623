from hms_tui.core.desk import Desk


def test_checkin_issues_first_token(desk: Desk, clinic: dict) -> None:
    visit = desk.checkin("D1", clinic["patients"][0])
    assert (visit.token, visit.serial, visit.position) == ("D1-001", 1, 1)
