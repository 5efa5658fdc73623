"""Token slips at reception: the preview after a check-in or an arrival, printing in the
background, and the reprint of any of today's visits.

After a check-in the slip is shown as it will print (``SlipPreview``): Enter or p prints it,
Esc skips it. Printing runs off the UI loop (``app.db_call``'s thread) and gives up after
``printer.timeout``; the preview closes at once, so the desk carries on while the printer
works, and the outcome comes back as one notification (a printer that is missing, off or out
of paper says so, with what to do). ``printer.preview = false`` prints without the preview;
``printer.kind = "none"`` offers no slip after a check-in (a reprint still says why none
prints). ``ReprintPicker`` finds any of today's visits by token or name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from hms_tui.domain.models import Visit
from hms_tui.domain.textsafe import printable
from hms_tui.screens.dialog import Dialog
from hms_tui.services.slip_delivery import (
    SlipOutcome,
    deliver,
    preview_text,
    todays_visits,
    visit_slip,
)
from hms_tui.services.slips import Slip
from hms_tui.widgets.text_input import TextInput

if TYPE_CHECKING:
    from hms_tui.app import HmsApp

PRINT_GROUP = "slip"  # the workers printing slips (tests wait for them)
REPRINT_KEY = "ctrl+r"


def offer_slip(app: HmsApp, visit: Visit, *, reprint: bool = False) -> None:
    """After ``visit`` got its token (or on a reprint): preview the slip, or print it at
    once, as the config says."""
    settings = app.settings
    if settings.printer.kind == "none" and not reprint:
        return
    try:
        slip = visit_slip(visit, settings, clinic_name=app.clinic_name, zone=app.clinic_zone,
                          reprint=reprint, now=app.now())
    except ValueError as exc:  # a booking not arrived yet has no token, so no slip
        app.notify(printable(f"No slip: {exc}."), severity="warning", markup=False)
        return
    if settings.printer.preview or reprint:
        def chosen(do_print: bool | None) -> None:
            if do_print:
                print_in_background(app, slip)

        app.push_screen(SlipPreview(slip, preview_text(slip, settings), reprint=reprint), chosen)
    else:
        print_in_background(app, slip)


def print_in_background(app: HmsApp, slip: Slip) -> None:
    """Print ``slip`` in a worker thread; the outcome is one notification."""
    app.notify(printable(f"Printing the slip of {slip.token}..."), timeout=3, markup=False)

    def finished(outcome: SlipOutcome) -> None:
        if outcome.printed:
            app.notify(printable(f"{slip.token}: {outcome.message}"), markup=False)
        else:
            app.notify(printable(f"Slip {slip.token} not printed: {outcome.message}"
                                 f" ({REPRINT_KEY} reprints)"),
                       severity="error", timeout=12, markup=False)

    app.db_call(deliver, slip, app.settings, done=finished, group=PRINT_GROUP)


class SlipPreview(Dialog):
    """The slip as it will print: Enter or p prints it, Esc skips it; arrows scroll."""

    BINDINGS = [
        Binding("enter,p", "print_slip", "Print"),
        Binding("escape", "close", "Skip"),
    ]
    DEFAULT_CSS = """
    SlipPreview > Vertical { width: 52; }
    SlipPreview #slip-text { height: auto; max-height: 16; border: solid $primary-darken-2;
                             scrollbar-size-vertical: 1; }
    SlipPreview #slip-text > Static { width: auto; }
    """

    def __init__(self, slip: Slip, text: str, *, reprint: bool = False) -> None:
        super().__init__()
        self.slip = slip
        self.text = text
        self.reprint = reprint

    def compose(self) -> ComposeResult:
        what = "Reprint the slip of" if self.reprint else "Slip for"
        with Vertical():
            yield Static(Text(printable(f"{what} {self.slip.token}")), classes="title")
            with VerticalScroll(id="slip-text"):
                yield Static(Text(self.text, no_wrap=True))
            yield Static("", classes="error")
            yield Static(Text("Enter/p print · Esc skip · arrows scroll", style="dim"))
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#slip-text").focus()

    def action_print_slip(self) -> None:
        self.dismiss(True)

    def action_close(self) -> None:
        self.dismiss(False)


def visit_option(visit: Visit, app: HmsApp) -> Option:
    when = (visit.checked_in_at.astimezone(app.clinic_zone).strftime("%H:%M")
            if visit.checked_in_at else "")
    label = printable(f"{visit.token}  {when}  {visit.patient_name}  ·  {visit.doctor_name}"
                      f"  ·  {visit.status.value}")
    return Option(Text(label), id=str(visit.visit_id))


class ReprintPicker(Dialog):
    """Any of today's visits, newest first, filtered by what is typed (token or name);
    Enter picks the highlighted one. Returns the Visit."""

    DEFAULT_CSS = """
    ReprintPicker > Vertical { width: 76; }
    """

    def __init__(self, doctors: tuple[str, ...], preselect: int | None = None) -> None:
        super().__init__()
        self.doctors = doctors
        self.preselect = preselect
        self.visits: list[Visit] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Reprint the slip of"), classes="title")
            yield TextInput(placeholder="token or name", id="filter", max_length=100,
                            label="the filter")
            yield OptionList(id="visits")
            yield Static("Reading today's visits...", classes="error")
            yield Static(Text("type to filter · arrows pick · Enter reprint · Esc cancel",
                              style="dim"))
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).focus()
        self.hms.db_call(todays_visits, self.hms.desk, self.doctors, done=self._loaded,
                         failed=self.fail)

    def _loaded(self, visits: list[Visit]) -> None:
        self.visits = visits
        self.show_error("" if visits else "No visit has a token today.")
        self._fill()
        if self.preselect is not None:
            options = self.query_one(OptionList)
            ids = [o.id for o in options.options]
            if str(self.preselect) in ids:
                options.highlighted = ids.index(str(self.preselect))

    def _fill(self) -> None:
        wanted = self.query_one("#filter", Input).value.strip().casefold()
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([visit_option(v, self.hms) for v in self.visits
                             if not wanted or wanted in (v.token or "").casefold()
                             or wanted in v.patient_name.casefold()])
        if options.option_count:
            options.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill()

    def on_key(self, event: object) -> None:
        """Arrows move through the list while the filter has the focus."""
        key = getattr(event, "key", "")
        options = self.query_one(OptionList)
        if key in ("down", "up") and self.query_one("#filter", Input).has_focus:
            options.action_cursor_down() if key == "down" else options.action_cursor_up()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self._pick(options.get_option_at_index(options.highlighted).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._pick(event.option.id)

    def _pick(self, option_id: str | None) -> None:
        visit = next((v for v in self.visits if str(v.visit_id) == option_id), None)
        if visit is not None:
            self.dismiss(visit)
