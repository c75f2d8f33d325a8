"""The database gateway: every read and every write of cti's store goes through one `Database`.

A write is a *unit of work*: one synchronous function ``fn(conn) -> T`` that runs, whole, in one
hop on the database's own thread. Units queued while the thread is busy are committed together
(group commit):

    BEGIN IMMEDIATE
      SAVEPOINT unit; fn1(conn); RELEASE unit        (or ROLLBACK TO unit: fn1's caller gets its error)
      SAVEPOINT unit; fn2(conn); RELEASE unit
    COMMIT                                             (fails: every caller of the batch gets the error)

So no transaction ever spans an await, nobody's statement can land inside somebody else's unit, a
failing unit changes nothing of anyone else's, and a caller is answered only after the COMMIT that
holds its rows (with ``synchronous=FULL`` that is durable). Callers change in-memory state only after
``await db.write(...)`` returned. Reads run on the same thread between batches, so they never see half
a batch.

Why not aiosqlite for this: its public API hops to its thread once per statement, so a unit of
several statements spans awaits and other coroutines' statements interleave into its transaction
(a logout landing inside a records unit was rolled back with it). It has no public way to run a
function in its thread. A single-worker executor owning one ``sqlite3`` connection is all we need.

Files at rest are private: the database, ``-wal`` and ``-shm`` are created and kept 0600 whatever the
umask (they hold personal data, password hashes and session tokens); `ensure_private` lets
`cti serve` refuse a database that others can read.

The interface (``read``, ``write``, ``maintenance``, ``close``) is what a second backend implements.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

T = TypeVar("T")
Migrations = Mapping[str, Sequence[str]]
Unit = Callable[[sqlite3.Connection], T]
MAX_BATCH = 256
PRIVATE_MODE = 0o600


class Gateway(Protocol):
    """What every store needs from the database (SQLite today; another backend behind the same calls)."""

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...


@dataclass
class _Queued(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]


class Database:
    """One SQLite connection on one thread; units of work committed in groups (see the module)."""

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor, path: Path | None) -> None:
        self._conn = conn
        self._executor = executor
        self.path = path
        self._queue: list[_Queued[Any]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: Path | str, migrations: Migrations) -> Database:
        """Open (creating it 0600 if needed) and migrate the database; cti's durability settings."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cti-db")
        file = None if str(path) == ":memory:" else Path(path)
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _connect, file, migrations)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(conn, executor, file)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a synchronous read ``fn(conn)`` on the database thread (outside any transaction)."""
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self._conn)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` as one unit of work; return its result once the COMMIT holding it is done.

        A caller cancelled before its batch starts is dropped (nothing of it is written); once the
        batch runs, it commits whatever happens to the caller.
        """
        self._check_open()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(fn, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._drain(), name="cti-db-writer")
        return await future

    async def maintenance(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` outside any transaction after the writes queued before it (VACUUM, checkpoint)."""
        await self._idle()
        return await self.read(fn)

    async def close(self) -> None:
        """Finish the queued writes, then close the connection and its thread."""
        if self._closed:
            return
        await self._idle()
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)

    async def _idle(self) -> None:
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the database is closed")

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = [q for q in self._queue[:MAX_BATCH] if not q.future.cancelled()]
            del self._queue[:MAX_BATCH]
            if not batch:
                continue
            outcomes = await asyncio.shield(
                loop.run_in_executor(self._executor, _run_batch, self._conn, [q.fn for q in batch])
            )
            for queued, (ok, value) in zip(batch, outcomes, strict=True):
                if queued.future.cancelled():
                    continue
                if ok:
                    queued.future.set_result(value)
                else:
                    queued.future.set_exception(value)


def _run_batch(conn: sqlite3.Connection, units: list[Callable[[sqlite3.Connection], Any]]) -> list[tuple[bool, Any]]:
    """(database thread) One transaction: each unit in its own savepoint; then COMMIT."""
    outcomes: list[tuple[bool, Any]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        return [(False, exc)] * len(units)
    for fn in units:
        conn.execute("SAVEPOINT unit")
        try:
            result = fn(conn)
        except BaseException as exc:  # the caller gets it; nothing of its unit stays
            conn.execute("ROLLBACK TO unit")
            conn.execute("RELEASE unit")
            outcomes.append((False, exc))
            continue
        conn.execute("RELEASE unit")
        outcomes.append((True, result))
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        return [(False, exc)] * len(units)
    return outcomes


def _connect(path: Path | None, migrations: Migrations) -> sqlite3.Connection:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        create_private(path)
    conn = sqlite3.connect(
        str(path) if path else ":memory:", isolation_level=None, check_same_thread=False
    )
    try:
        conn.row_factory = sqlite3.Row
        # WAL + synchronous=FULL: an acknowledged commit survives power loss.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # secure_delete overwrites freed content, so purged personal data leaves the file.
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        migrate_sync(conn, migrations)
        if path is not None:
            make_private(path)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate_sync(conn: sqlite3.Connection, migrations: Migrations) -> dict[str, int]:
    """Apply every not-yet-applied script, each in its own transaction with its version bump."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    applied: dict[str, int] = {}
    for component, scripts in migrations.items():
        row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
        for version in pending_versions(component, int(row[0]) if row else 0, scripts):
            # executescript keeps trigger bodies (with their inner semicolons) intact.
            try:
                conn.executescript(
                    "BEGIN IMMEDIATE;\n" + scripts[version - 1] + ";\n"
                    + version_bump(component, version) + ";\nCOMMIT;"
                )
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        applied[component] = len(scripts)
    return applied


def pending_versions(component: str, current: int, scripts: Sequence[str]) -> range:
    """The versions of `component` still to apply over `current` (both engines' migrations)."""
    if current > len(scripts):
        raise RuntimeError(
            f"database schema for {component!r} is version {current}, newer than this cti ({len(scripts)})"
        )
    return range(current + 1, len(scripts) + 1)


def version_bump(component: str, version: int) -> str:
    """The statement recording `version` of `component`, run in the migration's own transaction."""
    if not component.replace("_", "").isalnum():
        raise ValueError(f"component name must be alphanumeric: {component!r}")
    return (f"INSERT INTO schema_versions(component, version) VALUES ('{component}', {version})"
            " ON CONFLICT(component) DO UPDATE SET version = excluded.version")


def sidecars(path: Path) -> list[Path]:
    """The database file and SQLite's files beside it."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def create_private(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist (so it is never readable by others, even briefly)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))


def make_private(path: Path) -> None:
    """chmod 0600 the database and its -wal/-shm, whatever the umask."""
    for file in sidecars(path):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(file, PRIVATE_MODE)


def exposed_files(path: Path) -> list[Path]:
    """Those of the database's files that the group or others may read or write."""
    found = []
    for file in sidecars(path):
        try:
            mode = file.stat().st_mode
        except FileNotFoundError:
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            found.append(file)
    return found


# The gateway in the aiohttp app (set by the composition root's database context).
DATABASE: web.AppKey[Database] = web.AppKey("database", Database)
