"""Progress lines on stderr for long computations (docs: the README's "Speed").

Long loops of the package (sums over long spectra, exact verdicts on long eigenvalue lists,
the largest-stable-lr and critical-batch-size searches, sweeps) call :func:`update` with how
much is done. Nothing is printed unless a caller switched reporting on with
:func:`reporting` (the CLI does, when stderr is a terminal or ``--progress`` is given), and even
then only for tasks that have run for more than a second: one line, rewritten at most twice a
second, with the share done, the time spent and an estimate of the time left. A plain stderr
line rather than a progress-bar library: the package needs one line and no dependency.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Iterator
from typing import TextIO

__all__ = ["done", "estimate", "reporting", "update"]


class _Reporter:
    """One line on the stream for all the tasks running at once (a search and the verdicts
    inside it share it: ``outer: 40% | inner: 10%``), rewritten in place."""

    def __init__(self, stream: TextIO, after: float, every: float) -> None:
        self.stream, self.after, self.every = stream, after, every
        self.started: dict[str, float] = {}
        self.state: dict[str, str] = {}  # the running tasks, in the order they started
        self.last = 0.0
        self.width = 0
        self.shown = False

    def update(self, task: str, done: float, total: float) -> None:
        now = time.perf_counter()
        start = self.started.setdefault(task, now)
        spent = now - start
        finished = done >= total
        frac = done / total if total else 1.0
        left = f"~{spent * (1 - frac) / frac:.0f} s left" if frac > 0 else "time left unknown"
        self.state[task] = f"{task}: {100 * frac:.1f}% done, {spent:.0f} s spent, {left}"
        if finished:
            self.state.pop(task, None)
            self.started.pop(task, None)
        if spent < self.after or (now - self.last < self.every and not finished):
            return
        self.last = now
        line = " | ".join(self.state.values())
        if finished:
            line = " | ".join(filter(None, [line, f"{task}: 100.0% done in {spent:.0f} s"]))
        self._write(line)
        if finished and not self.state:
            self.stream.write("\n")
            self.shown, self.width = False, 0
        self.stream.flush()

    def _write(self, line: str) -> None:
        self.stream.write("\r" + line + " " * max(0, self.width - len(line)))
        self.width = len(line)
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


_current: contextvars.ContextVar[_Reporter | None] = contextvars.ContextVar(
    "stability_progress", default=None
)


@contextlib.contextmanager
def reporting(
    enabled: bool = True, stream: TextIO | None = None, after: float = 1.0, every: float = 0.5
) -> Iterator[None]:
    """Show progress lines for the long loops run inside the block (on ``stream``, default
    stderr; tasks shorter than ``after`` seconds print nothing).

    >>> import io
    >>> out = io.StringIO()
    >>> with reporting(stream=out, after=0.0, every=0.0):
    ...     update("noise sum", 1, 2)
    ...     update("noise sum", 2, 2)
    >>> "noise sum: 100.0% done" in out.getvalue()
    True
    """
    reporter = _Reporter(stream or sys.stderr, after, every) if enabled else None
    token = _current.set(reporter)
    try:
        yield
    finally:
        if reporter is not None:
            reporter.close()
        _current.reset(token)


def update(task: str, done: float, total: float) -> None:
    """Report that ``done`` of ``total`` units of ``task`` are finished (no-op unless a
    :func:`reporting` block is active in this context)."""
    reporter = _current.get()
    if reporter is not None:
        reporter.update(task, done, total)


def estimate(task: str, seconds: float) -> None:
    """Announce the estimated run time of ``task`` before (or at the start of) a long run."""
    reporter = _current.get()
    if reporter is not None and seconds >= reporter.after:
        reporter.stream.write(f"{task}: estimated run time ~{seconds:.0f} s\n")
        reporter.stream.flush()


def done(task: str) -> None:
    """Report that ``task`` has finished (its line is closed)."""
    update(task, 1.0, 1.0)
