"""A throwaway PostgreSQL (Debian's postgresql-15) for the tests: one cluster per pytest session.

`PgCluster.start()` runs ``initdb`` and ``pg_ctl start`` from /usr/lib/postgresql/15/bin in a temporary
directory, listening on 127.0.0.1 only, on a free port, trust authentication for loopback, no system
service. PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user
(``runuser``). Each test gets its own schema (`new_url`), so tests never see each other's rows and the
cluster is started once. `stop()` stops it and deletes the directory.

``durable=False`` (the tests) turns fsync off: crash durability is PostgreSQL's, not what the store
tests check, and the machine is shared. The benches and failover runs start a durable cluster.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "cti"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self._schemas = itertools.count(1)

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def _as_owner(cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    @classmethod
    def start(cls, *, durable: bool = False, max_connections: int = 100) -> PgCluster:
        root = Path(tempfile.mkdtemp(prefix="cti-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o700)
        cluster = cls(root, _free_port())
        env = {**os.environ, "LC_ALL": "C.UTF-8", "TZ": "Asia/Tokyo"}
        subprocess.run(
            cls._as_owner([str(PG_BIN / "initdb"), "-D", str(cluster.data), "-U", SUPERUSER, "--auth=trust",
                           "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
            check=True, capture_output=True, env=env, cwd=root,
        )
        options = [f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c unix_socket_directories={root}",
                   f"-c max_connections={max_connections}"]
        if not durable:
            options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        subprocess.run(
            cls._as_owner([str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-l", str(root / "server.log"),
                           "-w", "-t", "60", "-o", " ".join(options), "start"]),
            check=True, capture_output=True, env=env, cwd=root,
        )
        return cluster

    def stop(self) -> None:
        subprocess.run(self._as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                                       "stop"]), capture_output=True, cwd=self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def new_url(self) -> str:
        """A URL whose connections work in a new, empty schema of the ``postgres`` database."""
        schema = f"t{os.getpid()}_{next(self._schemas)}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        return f"{self.admin_url}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The store's engine; tests that need SQLite's files say ``parametrize("backend", ["sqlite"], indirect=True)``."""
    return str(request.param)


@pytest.fixture
def store_target(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What `cti.store_backend.open_store` opens: a SQLite file in tmp_path or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        return str(tmp_path / "cti.sqlite3")
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_url()
