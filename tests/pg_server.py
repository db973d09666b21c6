"""A throw-away PostgreSQL server for tests: initdb + pg_ctl in a temporary folder, on
127.0.0.1 and a free port, trusted local connections, stopped and removed at the end.

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user (Debian's
package creates it) through ``runuser``. The programs are found on PATH or in Debian's
/usr/lib/postgresql/<version>/bin (``make postgres`` installs the package when missing).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for path in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a fresh server's ``postgres`` database (user ``postgres``)."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.fail("PostgreSQL is not installed: `make postgres` installs it (make test does)")
    folder = Path(tempfile.mkdtemp(prefix="archdsl-pg-"))
    data, log = folder / "data", folder / "server.log"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    env = {**os.environ, "LC_ALL": "C"}
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, env=env)
        options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=50"
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(log), "-o", options,
                        "-w", "-t", "30", "start"], check=True, capture_output=True, env=env)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, env=env)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace")
        if log.exists():
            detail += log.read_text(errors="replace")
        raise RuntimeError(f"could not start PostgreSQL: {detail[-2000:]}") from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url
