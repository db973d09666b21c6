"""Where a study lives: Optuna's storages, chosen from one ``--storage`` string.

- none (``archdsl search run`` without ``--storage``): in memory, one process;
- ``postgresql://user@host:port/db`` (or ``mysql://...``): Optuna's RDB storage for many workers
  on many hosts, with heartbeats (a worker that dies leaves its trial RUNNING only until the
  grace period ends, then any worker marks it FAIL) and at most two connections per worker
  (``pool_size=1, max_overflow=1``), so that a hundred workers do not exhaust the server's
  ``max_connections``. Not one: Optuna 5.0's RDBStorage holds two sessions at once while it
  creates its tables (``max_overflow=0`` waits 30 s for the pool and fails), and the heartbeat
  thread writes while the trial's thread reads;
- ``journal:PATH`` or a plain file path: Optuna's journal file storage, for several processes
  on one host without a server (no heartbeats: a killed worker's trial stays RUNNING);
- ``sqlite:///PATH``: one process only. SQLite locks the whole file on every write; with
  several workers they time out and leave trials stuck, so ``create`` and ``worker`` refuse it.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages import BaseStorage, InMemoryStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial

from ..usage import UsageError

HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 30  # seconds without a heartbeat before the trial is marked FAIL
ENGINE_KWARGS: dict[str, Any] = {"pool_size": 1, "max_overflow": 1, "pool_pre_ping": True,
                                 "pool_recycle": 3600}
SQLITE_REFUSED = ("SQLite locks the whole database on every write: with more than one worker "
                  "they time out and leave trials stuck. Use PostgreSQL (--storage "
                  "postgresql://user@host/db) for several hosts, or a journal file (--storage "
                  "journal:PATH) for several processes on one host")


def kind_of(url: str | None) -> str:
    """'memory', 'rdb', 'sqlite' or 'journal'."""
    if not url:
        return "memory"
    if url.startswith("sqlite:"):
        return "sqlite"
    if url.startswith("journal:"):
        return "journal"
    if "://" in url:
        return "rdb"
    return "journal"  # a plain path: a journal file


def open_storage(url: str | None, *, several_workers: bool,
                 heartbeat_interval: int = HEARTBEAT_INTERVAL,
                 grace_period: int = GRACE_PERIOD) -> BaseStorage:
    """The storage a ``--storage`` string names; ``several_workers`` refuses SQLite."""
    kind = kind_of(url)
    if kind == "memory":
        return InMemoryStorage()
    assert url is not None
    if kind == "sqlite":
        if several_workers:
            raise UsageError(f"--storage {url}: {SQLITE_REFUSED}")
        return RDBStorage(url)
    if kind == "journal":
        path = url.removeprefix("journal:")
        if not path:
            raise UsageError("--storage journal:PATH: give the journal file's path")
        try:
            return JournalStorage(JournalFileBackend(path))
        except OSError as exc:
            raise UsageError(f"--storage {url}: {exc.strerror or exc}") from None
    url = with_driver(url)
    try:
        return RDBStorage(url, engine_kwargs=dict(ENGINE_KWARGS),
                          heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                          heartbeat_stale_trial_callback=record_stale_trial)
    except ImportError as exc:
        raise UsageError(f"--storage {redact(url)}: {exc} (pip install 'archdsl[search]' "
                         "brings psycopg2-binary)") from None
    except Exception as exc:  # sqlalchemy's OperationalError & co: a server we cannot reach
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--storage {redact(url)}: cannot open the database: {first}") from None


def record_stale_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Called once for a trial whose worker stopped beating, after it was marked FAIL: say why.
    A finished trial takes no more attributes, so the reason goes to the study's, under
    :func:`stale_key`."""
    study.set_user_attr(stale_key(trial.number), STALE_REASON)


STALE_REASON = "no heartbeat within the grace period: its worker was killed or lost the database"


def stale_key(number: int) -> str:
    return f"trial {number} failed"


def with_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.1 means psycopg 3 by
    it, archdsl's ``search`` extra brings psycopg2 (``postgresql+psycopg2://``)."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return f"postgresql+psycopg2://{rest}"
    return f"postgresql://{rest}"


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, rest = url.partition("://")
    if sep and "@" in rest:
        cred, at, host = rest.rpartition("@")
        user = cred.split(":", 1)[0]
        return f"{head}://{user}{':***' if ':' in cred else ''}@{host}"
    return url
