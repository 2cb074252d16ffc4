"""Real database and cache servers for the integration tests: PostgreSQL (Debian's ``postgresql``)
and Redis (Debian's ``redis-server``), started on free 127.0.0.1 ports in a temporary directory
and stopped by the caller.

A missing binary skips the test with the reason on a developer's machine; in CI (``CI=true``,
where ``.ci/run`` installs both) it fails the test instead, so a broken install step cannot hide.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from chainotel.cli.demo import free_port

POSTGRES_BIN = Path("/usr/lib/postgresql")


def require(binary: str | None, what: str) -> str:
    """``binary`` if found; else fail in CI, skip elsewhere, naming the Debian package."""
    if binary and Path(binary).exists():
        return binary
    message = f"{what} is not installed (Debian package: apt-get install -y {what})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; .ci/run installs it")
    pytest.skip(message)


def _postgres_bin(name: str) -> str | None:
    found = sorted(POSTGRES_BIN.glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


def _as_postgres_user() -> list[str]:
    """Prefix that runs a command as the ``postgres`` system user (PostgreSQL refuses root)."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@contextmanager
def postgres(tmp: Path) -> Iterator[str]:
    """A PostgreSQL server with database ``chainotel`` (trust auth on 127.0.0.1); yields its
    SQLAlchemy URL (psycopg 3). Its files live in a new directory under the system temp dir
    (pytest's are private to root, and PostgreSQL refuses to run as root), removed afterwards."""
    initdb = require(_postgres_bin("initdb"), "postgresql")
    pg_ctl = require(_postgres_bin("pg_ctl"), "postgresql")
    with tempfile.TemporaryDirectory(prefix="chainotel-pg-") as own:
        yield from _postgres(Path(own), initdb, pg_ctl)


def _postgres(tmp: Path, initdb: str, pg_ctl: str) -> Iterator[str]:
    data = tmp / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    run = _as_postgres_user()
    subprocess.run(run + [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    log = tmp / "postgres.log"
    subprocess.run(run + [pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                          f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True, timeout=90)
    try:
        createdb = _postgres_bin("createdb")
        subprocess.run(run + [createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "chainotel"],
                       check=True, capture_output=True, timeout=30)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/chainotel"
    finally:
        subprocess.run(run + [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)


@contextmanager
def redis(tmp: Path) -> Iterator[str]:
    """A Redis server (no persistence); yields its ``redis://`` URL."""
    binary = require(shutil.which("redis-server"), "redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        import redis as redis_client  # noqa: PLC0415

        client = redis_client.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis_client.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
