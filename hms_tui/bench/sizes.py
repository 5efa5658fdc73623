"""How much each part does: the full run (the issue's sizes), --quick (under a minute) and
the smoke test's tiny run. One table, so the doc and the JSON name the same sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

DEFAULT_CLIENTS = (1, 8, 32, 64)
LISTENERS = (1, 10, 50)
PARTS = ("checkin", "pattern", "live", "history", "screens", "import")


@dataclass(frozen=True)
class Sizes:
    clients: tuple[int, ...] = DEFAULT_CLIENTS
    seconds: float = 3.0  # each throughput cell (a, b) runs this long
    listeners: tuple[int, ...] = LISTENERS
    live_rate: float = 100.0  # changes per second the writer sends (c)
    live_seconds: float = 10.0
    patients: int = 1_000_000  # history (d)
    past_visits: int = 2_000_000
    history_days: int = 730
    samples: int = 200  # latency samples per read kind (d)
    read_seconds: float = 6.0  # ... or fewer, when a kind has taken this long (at least 5)
    display_doctors: int = 30  # screens (e)
    waiting: int = 40
    changes: int = 10_000
    screen_seconds: float = 120.0  # ... or fewer, when a screen has taken this long
    frame_samples: int = 200  # Textual's one-widget frame, the screens' baseline
    import_batches: tuple[int, ...] = (1_000, 4_000, 16_000, 64_000, 256_000, 1_000_000)
    import_cap: float = 120.0  # seconds: a batch slower than this ends the series (f)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes()
QUICK = Sizes(seconds=0.2, live_seconds=0.5, patients=20_000, past_visits=40_000,
              samples=10, read_seconds=2.0, changes=16, screen_seconds=8.0, frame_samples=30,
              import_batches=(500, 1_000, 2_000), import_cap=5.0)
TINY = Sizes(clients=(1, 4), seconds=0.2, listeners=(1, 2), live_rate=50.0, live_seconds=0.4,
             patients=1_000, past_visits=2_000, history_days=30, samples=5, read_seconds=2.0,
             display_doctors=3, waiting=4, changes=4, screen_seconds=10.0, frame_samples=5,
             import_batches=(50, 100), import_cap=5.0)


def pick(quick: bool, clients: tuple[int, ...] | None = None) -> Sizes:
    sizes = QUICK if quick else FULL
    return replace(sizes, clients=clients) if clients else sizes
