"""A status line on stderr for work that may take more than a second.

``with progress("porting weights") as p: ...`` (``p.advance(label)`` per item when the number of
items is known) shows ``archdsl: porting weights 3/15 resnet50 (4 s)`` on one line, redrawn in
place, from the first second on, and erases it when the work ends. It says nothing when stderr
is not a terminal (a pipe, a file, a test), so logs and machine output stay clean; nothing is
drawn for work that ends within :data:`DELAY` seconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

DELAY = 1.0  # seconds of silence before the line appears
EVERY = 0.25  # seconds between redraws


class Progress:
    """The state of one status line; drawn by a background thread while the work runs."""

    def __init__(self, what: str, total: int | None, stream: TextIO) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.label = ""
        self.stream = stream
        self.start = time.monotonic()
        self.shown = 0  # characters of the line on screen
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def advance(self, label: str = "") -> None:
        """One more item is being worked on (``label`` names it)."""
        with self._lock:
            self.done += 1
            self.label = label

    def line(self) -> str:
        count = f" {min(self.done, self.total)}/{self.total}" if self.total else ""
        label = f" {self.label}" if self.label else ""
        text = f"archdsl: {self.what}{count}{label} ({time.monotonic() - self.start:.0f} s)"
        columns = _columns(self.stream)
        return text if len(text) < columns else text[:columns - 4] + "..."

    def _draw(self) -> None:
        with self._lock:
            text = self.line()
        self.stream.write("\r" + text.ljust(self.shown))
        self.stream.flush()
        self.shown = len(text)

    def run(self) -> None:
        if self._stop.wait(DELAY):
            return
        while not self._stop.is_set():
            self._draw()
            self._stop.wait(EVERY)

    def stop(self) -> None:
        self._stop.set()
        if self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()


class _Silent(Progress):
    def run(self) -> None:  # never draws
        return


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 100


@contextmanager
def progress(what: str, total: int | None = None,
             stream: TextIO | None = None) -> Iterator[Progress]:
    """A status line for the work inside the ``with`` (silent unless ``stream`` is a terminal)."""
    out = stream if stream is not None else sys.stderr
    if not is_terminal(out):
        yield _Silent(what, total, out)
        return
    p = Progress(what, total, out)
    thread = threading.Thread(target=p.run, name="archdsl-progress", daemon=True)
    thread.start()
    try:
        yield p
    finally:
        p._stop.set()
        thread.join()
        p.stop()
