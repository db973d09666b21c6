"""Atomic file output: a result is either written whole or not at all.

The result is written to a temporary file beside the target (the same file system, so that the
final ``os.replace`` is atomic) and moved into place only when complete. The temporary file is
removed when the write fails, on Ctrl-C, and on SIGTERM or SIGHUP (a handler is installed for
the duration of the write; the process then exits with status 128 + the signal's number).
SIGKILL and a power cut cannot be caught: they may leave the temporary file, named
``.TARGET.PID.XXXX.archdsl-tmp``, which the next write to the same target removes once its
process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

SUFFIX = ".archdsl-tmp"
_CAUGHT = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
                if s is not None)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    with _exit_on_termination():
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=SUFFIX,
                                   dir=target.parent)
        os.close(fd)
        try:
            # mkstemp makes the file private (0600); give the result the mode open() would.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            yield Path(tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def remove_stale(target: Path) -> list[Path]:
    """Remove temporary files of earlier writes to ``target`` whose process has gone."""
    pattern = re.compile(re.escape(f".{target.name}.") + r"(\d+)\.[^/]*" + re.escape(SUFFIX))
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            m = pattern.fullmatch(entry.name)
            if m and not _alive(int(m.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or cannot tell: leave its file alone
    return True


@contextlib.contextmanager
def _exit_on_termination() -> Iterator[None]:
    """While writing, turn SIGTERM and SIGHUP into SystemExit, so that the cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be installed from the main thread
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, stop) for s in _CAUGHT}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def write_atomic(target: str | Path, writer: Callable[[Path], None]) -> None:
    with atomic_path(target) as tmp:
        writer(tmp)


def write_text_atomic(target: str | Path, text: str) -> None:
    write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))
