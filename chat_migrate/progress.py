"""Progress: a bar with rows, rate and time left on a terminal; plain log lines everywhere else.

Both go to standard error, so ``--json`` output on standard output stays clean.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

LOG_EVERY = 5.0  # seconds between plain progress lines


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "–/s", style="progress.data.speed")


class Reporter:
    """Says what is happening: ``log`` lines always, ``track`` as a bar on a TTY or as periodic lines."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet
        self.console = Console(file=self.stream, force_terminal=self.tty, highlight=False)

    def log(self, message: str) -> None:
        if not self.quiet:
            print(f"chat-migrate: {message}", file=self.stream, flush=True)

    def track(self, label: str, total: int, unit: str) -> Tracker:
        return Tracker(self, label, total, unit)


class Tracker:
    """A context manager counting ``done`` out of ``total`` ``unit``."""

    def __init__(self, reporter: Reporter, label: str, total: int, unit: str) -> None:
        self.reporter = reporter
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._bar: Progress | None = None
        self._task: object = None

    def __enter__(self) -> Tracker:
        if self.reporter.tty and not self.reporter.quiet:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TaskProgressColumn(),
                _Rate(),
                TimeRemainingColumn(),
                console=self.reporter.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)  # type: ignore[arg-type]
            return
        now = time.monotonic()
        if now - self._last_line >= LOG_EVERY:
            self._last_line = now
            self.reporter.log(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.started, 1e-9)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        left = f", about {(self.total - self.done) / rate:.0f} s left" if rate and self.total > self.done else ""
        return f"{self.label}: {self.done:,}/{self.total:,} {self.unit}{share}, {rate:,.0f}/s{left}"

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif kind is None and self.total:
            self.reporter.log(self.line())
