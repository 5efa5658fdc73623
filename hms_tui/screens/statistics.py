"""The admin's Statistics tab: today's figures, arrivals by hour, the last 7 days, and who is
waiting beyond the clinic's target right now. Every figure is the database's
(``hms.report_day``); this only lays them out to fit 80x24."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from hms_tui.domain.errors import HmsError
from hms_tui.domain.textsafe import printable
from hms_tui.services.reports import Dashboard, Figures, Reports
from hms_tui.widgets.bars import chart
from hms_tui.widgets.queue_table import DiffTable, cell, short_cell

if TYPE_CHECKING:
    from hms_tui.app import HmsApp

REFRESH_EVERY = 10.0  # seconds between re-reads while the tab is shown (waits grow on their own)


def minutes(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def summary(board: Dashboard, now: datetime) -> Text:
    report, f = board.today, board.today.clinic
    text = Text()
    text.append(f"Today {report.date} · wait target {report.target_minutes} min · "
                f"as of {now:%H:%M:%S}\n", style="bold")
    text.append(f"Arrived {f.arrivals} ({f.booked} booked) · seen {f.seen} · no-show "
                f"{f.no_shows} ({percent(f.no_show_rate)}) · cancelled {f.cancellations} · "
                f"moved {f.transfers}\n")
    text.append(f"Wait p50 {minutes(f.wait_p50)} · p90 {minutes(f.wait_p90)} · max "
                f"{minutes(f.wait_max)} min · over target {f.over_target} "
                f"({percent(f.over_target_share)}) · consult p50 {minutes(f.consult_p50)} min · "
                f"estimates kept {percent(f.estimate_within_share)}")
    return text


def hours_chart(board: Dashboard, ascii_only: bool) -> Text:
    arrivals = [h.arrivals for h in board.today.hours]
    labels = "".join(str(h).ljust(6) for h in (0, 6, 12, 18))[:24]
    return chart("Arrivals by hour", arrivals, labels, ascii_only=ascii_only)


def week_chart(board: Dashboard, ascii_only: bool) -> Text:
    seen = [d.figures.seen for d in board.week]
    labels = "".join(f"{d.date:%a}"[:2].ljust(3) for d in board.week)
    return chart("Seen, last 7 days", seen, labels, ascii_only=ascii_only, width=3,
                 style="green")


def doctor_row(code: str, f: Figures) -> list[Text | str]:
    return [cell(code, "bold"), str(f.arrivals), str(f.seen), str(f.no_shows),
            minutes(f.wait_p50), minutes(f.wait_p90), str(f.over_target)]


class StatisticsPane(Vertical):
    DEFAULT_CSS = """
    StatisticsPane { height: 1fr; }
    StatisticsPane #stats-summary { height: auto; }
    StatisticsPane #stats-charts { height: 6; }
    StatisticsPane #stats-hours { width: 27; }
    StatisticsPane #stats-week { width: 24; }
    StatisticsPane #stats-trend { width: 1fr; }
    StatisticsPane #stats-tables { height: 1fr; }
    StatisticsPane #stats-tables Vertical { width: 1fr; }
    StatisticsPane .caption { height: 1; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Static("Loading today's figures…", id="stats-summary")
        with Horizontal(id="stats-charts"):
            yield Static("", id="stats-hours")
            yield Static("", id="stats-week")
            yield Static("", id="stats-trend")
        with Horizontal(id="stats-tables"):
            with Vertical():
                yield Static("By doctor", classes="caption")
                yield DiffTable(["Dr", "Arr", "Seen", "NoSh", "W50", "W90", "Over"],
                                id="stats-doctors")
            with Vertical():
                yield Static("Waiting beyond the target now", id="stats-over-title",
                             classes="caption")
                yield DiffTable(["Token", "Dr", "Patient", "Waited"], id="stats-over")

    @property
    def hms(self) -> HmsApp:
        return self.app  # type: ignore[return-value]

    def load(self) -> None:
        self.hms.db_call(Reports(self.hms.desk.db).dashboard, done=self.show,
                         failed=self.failed, group="stats", exclusive=True)

    def failed(self, exc: HmsError) -> None:
        self.query_one("#stats-summary", Static).update(
            Text(printable(f"The figures could not be read: {exc}"), style="red"))

    def show(self, board: Dashboard) -> None:
        ascii_only = self.hms.ascii_only
        self.query_one("#stats-summary", Static).update(summary(board, self.hms.now()))
        self.query_one("#stats-hours", Static).update(hours_chart(board, ascii_only))
        self.query_one("#stats-week", Static).update(week_chart(board, ascii_only))
        self.query_one("#stats-trend", Static).update(trend(board))
        self.query_one("#stats-doctors", DiffTable).sync(
            [(d.doctor, doctor_row(d.doctor, d.figures)) for d in board.today.doctors])
        target = board.today.target_minutes
        self.query_one("#stats-over-title", Static).update(
            f"Waiting beyond {target} min now: {len(board.waiting)}")
        self.query_one("#stats-over", DiffTable).sync([
            (f"{w.doctor}/{w.token}",
             [cell(w.token, "bold red" if w.priority != "NORMAL" else "bold"), cell(w.doctor),
              short_cell(w.patient_name, 18), f"{w.waited_minutes:.0f} min"])
            for w in board.waiting])


def trend(board: Dashboard) -> Text:
    """The week's waits, as numbers (a chart of minutes next to one of counts misleads)."""
    text = Text("Wait p90 by day\n", style="bold")
    for day in board.week[-4:]:
        text.append(f"{day.date:%a %d} {minutes(day.figures.wait_p90):>5} min\n")
    return text
