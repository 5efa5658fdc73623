"""The progress bar on stderr (stdout stays for --json). Parts see only ``Steps``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class Step(Protocol):
    def advance(self, n: float = 1) -> None: ...


class Steps(Protocol):
    def step(self, description: str, total: float | None = None) -> Step: ...

    def note(self, text: str) -> None: ...


class _RichStep:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task

    def advance(self, n: float = 1) -> None:
        self.progress.advance(self.task, n)


class RichSteps:
    """One bar per step; the finished ones stay on screen as a log of the run."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._current: TaskID | None = None

    def step(self, description: str, total: float | None = None) -> Step:
        self._finish()
        self._current = self.progress.add_task(description, total=total)
        return _RichStep(self.progress, self._current)

    def note(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def _finish(self) -> None:
        if self._current is not None:
            task = self.progress.tasks[self._current] if self._current < len(
                self.progress.tasks) else None
            if task is not None and task.total is None:  # a step without a count: done
                self.progress.update(self._current, total=max(task.completed, 1),
                                     completed=max(task.completed, 1))
            if task is not None:  # (a step cut short by its time cap shows how far it got)
                self.progress.stop_task(self._current)


class _Quiet:
    def advance(self, n: float = 1) -> None:
        pass


class QuietSteps:
    """No output (the smoke test)."""

    def step(self, description: str, total: float | None = None) -> Step:
        return _Quiet()

    def note(self, text: str) -> None:
        pass


@contextmanager
def stderr_progress() -> Iterator[RichSteps]:
    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=False)
    with progress:
        steps = RichSteps(progress)
        try:
            yield steps
        finally:
            steps._finish()
