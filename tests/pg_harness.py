"""Start a throw-away PostgreSQL server from Debian's package on loopback for the test session."""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class PgServer:
    url: str
    datadir: str
    bindir: str
    as_user: str | None

    def stop(self) -> None:
        if not os.path.isdir(self.datadir):
            return  # already stopped
        _run(self.as_user, [f"{self.bindir}/pg_ctl", "-D", self.datadir, "-m", "immediate", "stop"], check=False)
        shutil.rmtree(os.path.dirname(self.datadir), ignore_errors=True)


def _run(user: str | None, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bindir() -> str | None:
    hits = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(hits[-1]) if hits else None


def start(*, durable: bool = False) -> PgServer:
    """A throw-away server on loopback; tests run without fsync, benchmarks ask for a `durable` one."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    as_user = None
    root = tempfile.mkdtemp(prefix="sc-pg-")
    if os.geteuid() == 0:
        as_user = "postgres"
        pw = pwd.getpwnam(as_user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    datadir = os.path.join(root, "data")
    _run(as_user, [f"{bindir}/initdb", "-D", datadir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
    port = _free_port()
    sync = "" if durable else " -c fsync=off"
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root}{sync} -c max_connections=200"
    _run(as_user, [f"{bindir}/pg_ctl", "-D", datadir, "-o", opts, "-l", os.path.join(root, "log"), "-w", "start"])
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    server = PgServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", datadir, bindir, as_user)
    owner = os.getpid()
    # a run that fails part-way still stops the server and frees its disk (not from a forked child)
    atexit.register(lambda: os.getpid() == owner and server.stop())
    return server


def create_database(server_url: str, name: str) -> str:
    """Create an empty database on the server and return its URL."""
    import psycopg

    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    """Drop a test's database when it is done (sessions still open are ended): a run creates about a hundred,
    and keeping them all grew the server's folder to 0.4-0.8 GB by the end of a run (171 MB at most now)."""
    import psycopg

    server, name = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
