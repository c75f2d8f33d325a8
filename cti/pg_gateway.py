"""The database gateway on PostgreSQL: the same `Database` (read, write, maintenance, close), another engine.

Chosen by configuration (``store.url = "postgresql://..."``, see cti/store_backend.py); SQLite stays
the default. Everything above the connection is cti.gateway's, unchanged: one thread owns one
connection, units ``fn(conn)`` run whole on it, queued units are group-committed as
``BEGIN; SAVEPOINT unit; fn; RELEASE unit; ...; COMMIT``.

What this module adds is `PgConnection`, the surface of ``sqlite3.Connection`` the stores' units use,
on a psycopg 3 connection:

- statements are translated by cti.pg_dialect (``?`` -> ``%s``, null-safe ``IS``, ``rowid``);
- rows are `Row`: a tuple indexable by position and by (case-insensitive) name, ``keys()``, ``dict(row)``,
  like ``sqlite3.Row``;
- ``cursor.lastrowid`` is the integer primary key of the row an INSERT wrote (the statement gets a
  ``RETURNING`` of that column), like SQLite's;
- errors are raised as subclasses of sqlite3's (`PgIntegrityError` is a ``sqlite3.IntegrityError``), so
  the stores' ``except sqlite3.IntegrityError`` and the gateway's ``except sqlite3.Error`` keep working;
- ``BEGIN IMMEDIATE`` is ``BEGIN`` + ``pg_advisory_xact_lock(WRITER_LOCK)``: like SQLite's write lock,
  one write transaction at a time across every cti node sharing the database. The stores' read-then-write
  units (the audit chain's last hash, version checks) were written for that and stay correct with two
  nodes; group commit keeps the cost per COMMIT, not per unit.

- the savepoint commands (``SAVEPOINT``/``RELEASE``) travel with the next statement in one pipeline:
  a round trip per statement is what a unit costs on PostgreSQL, and they need no answer;
- a connection found lost between batches is opened again (PostgreSQL restarted, standby promoted);
  each session carries keepalives so a dead node's machine frees the writer lock (cti.pg_leases).

Numbers come back as SQLite returns them (``sum`` of integers is an int, not a Decimal) and a Python
bool is sent as 0/1, because the stores keep booleans in INTEGER columns.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper, Loader
from psycopg.pq import TransactionStatus

from cti.gateway import Database, Migrations, pending_versions, version_bump
from cti.pg_dialect import BASE_SCHEMA, translate_query, translate_script
from cti.pg_leases import SESSION_GUARDS

WRITER_LOCK = 0x637469_0001  # "cti" 1: the one-writer-at-a-time transaction lock
MIGRATION_LOCK = 0x637469_0002  # two nodes starting together migrate once


class PgIntegrityError(sqlite3.IntegrityError):
    """A PostgreSQL integrity violation (unique, foreign key, check, append-only trigger)."""


class PgOperationalError(sqlite3.OperationalError):
    """Any other PostgreSQL error (connection lost, syntax, missing table: "no such table: ...")."""


def _mapped(exc: psycopg.Error) -> sqlite3.Error:
    text = str(exc).strip()
    if isinstance(exc, pg_errors.IntegrityError):
        return PgIntegrityError(text)
    if isinstance(exc, pg_errors.UndefinedTable):
        return PgOperationalError(f"no such table: {text}")
    return PgOperationalError(text)


class Row(tuple[Any, ...]):
    """A result row: by position, by name (case-insensitive), ``keys()`` - what the stores use of sqlite3.Row."""

    _names: tuple[str, ...] = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key.lower()])
            except KeyError:
                raise IndexError(f"No item with that key: {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


_ROW_CLASSES: dict[tuple[str, ...], type[Row]] = {}


def _row_class(names: tuple[str, ...]) -> type[Row]:
    cls = _ROW_CLASSES.get(names)
    if cls is None:
        index = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
        cls = type("Row", (Row,), {"_names": names, "_index": index})
        _ROW_CLASSES[names] = cls
    return cls


def _row_factory(cursor: Any) -> Any:
    if cursor.description is None:
        return tuple
    return _row_class(tuple(c.name for c in cursor.description))


class _NumericAsSqlite(Loader):
    """numeric (sum/avg of integers) as int when integral, else float: what SQLite gives."""

    def load(self, data: Any) -> Any:
        text = bytes(data).decode()
        if text.lstrip("-").isdigit():
            return int(text)
        return float(text)


class _BoolAsInt(Dumper):
    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class PgCursor:
    """The results of one statement, as a sqlite3.Cursor shows them (no rows: fetchone() is None)."""

    def __init__(self, cur: psycopg.Cursor[Any] | None, lastrowid: int | None = None, hide_rows: bool = False) -> None:
        self._cur: Any = cur
        self.lastrowid = lastrowid
        self._hide = hide_rows or cur is None or cur.description is None
        self.rowcount = -1 if cur is None else cur.rowcount

    @property
    def description(self) -> Any:
        return None if self._hide else self._cur.description

    def fetchone(self) -> Any:
        return None if self._hide else self._wrap(self._cur.fetchone)

    def fetchall(self) -> list[Any]:
        return [] if self._hide else self._wrap(self._cur.fetchall)

    def fetchmany(self, size: int = 1) -> list[Any]:
        return [] if self._hide else self._wrap(lambda: self._cur.fetchmany(size))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    @staticmethod
    def _wrap(fetch: Any) -> Any:
        try:
            return fetch()
        except psycopg.Error as exc:
            raise _mapped(exc) from exc


class PgStatements:
    """What a sqlite3 cursor object offers the units: ``execute``; ``row_factory = None`` (plain tuples)
    changes nothing here, since PostgreSQL rows (`Row`) are tuples already."""

    def __init__(self, conn: PgConnection) -> None:
        self._conn = conn
        self.row_factory: Any = None

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> PgCursor:
        return self._conn.execute(sql, params)


_DEFERRED = ("SAVEPOINT ", "RELEASE ")
_CONTROL = ("COMMIT", "ROLLBACK")


class PgConnection:
    """The part of sqlite3.Connection the units use, on one psycopg connection (database thread only)."""

    def __init__(self, conn: psycopg.Connection[Any], url: str = "") -> None:
        self._conn = conn
        self._url = url
        self._deferred: list[str] = []
        self._in_batch = False  # between the gateway's BEGIN IMMEDIATE and its COMMIT/ROLLBACK
        self._id_columns: dict[str, str] = {}
        self.refresh_id_columns()

    @classmethod
    def connect(cls, url: str) -> PgConnection:
        try:
            conn = psycopg.connect(url, autocommit=True, row_factory=_row_factory)
        except psycopg.Error as exc:
            raise _mapped(exc) from exc
        conn.adapters.register_loader("numeric", _NumericAsSqlite)
        conn.adapters.register_dumper(bool, _BoolAsInt)
        try:
            conn.execute(SESSION_GUARDS.encode())
        except psycopg.Error as exc:
            conn.close()
            raise _mapped(exc) from exc
        return cls(conn, url)

    def _reconnect_if_lost(self) -> None:
        """Between transactions only: a connection lost (PostgreSQL restarted, a standby promoted)
        is opened again, so the next batch works; the batch that met the loss failed whole."""
        if not (self._conn.closed or self._conn.broken) or not self._url:
            return
        fresh = PgConnection.connect(self._url)
        self._conn, self._deferred = fresh._conn, []
        self.refresh_id_columns()

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != TransactionStatus.IDLE

    def refresh_id_columns(self) -> None:
        """Which tables have a single integer primary key (what an INSERT's lastrowid reports)."""
        rows = self._conn.execute(
            "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]"
            " WHERE i.indisprimary AND i.indnatts = 1 AND a.atttypid = 'bigint'::regtype"
            " AND c.relnamespace = current_schema()::regnamespace"
        ).fetchall()
        self._id_columns = {str(r[0]): str(r[1]) for r in rows}

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> PgCursor:
        head = sql.lstrip()[:16].upper()
        if not params and head.startswith(_DEFERRED) and ";" not in sql:
            # SAVEPOINT / RELEASE answer nothing anyone reads: they travel with the next statement
            # (one round trip instead of two; see _send). A savepoint command cannot fail on its own;
            # a lost connection fails the statement it travels with.
            self._deferred.append(sql)
            return PgCursor(None)
        if head.startswith("BEGIN IMMEDIATE"):
            return self._begin()
        if not self._in_batch:
            self._reconnect_if_lost()
        if head.startswith("PRAGMA"):
            return self._pragma(sql)
        if head.startswith(_CONTROL) and not params:  # COMMIT, ROLLBACK [TO]: nothing to read either
            if not head.startswith("ROLLBACK TO"):
                self._in_batch = False
            return self._raw("; ".join([*self._take_deferred(), sql]))
        with_params = bool(params)
        query = translate_query(sql, with_params)
        lastrowid_of = self._insert_table(query) if head.startswith("INSERT") else None
        if lastrowid_of is not None:
            query = f"{query} RETURNING {lastrowid_of}"
        cur = self._send(query, tuple(params) if with_params and params is not None else None)
        if lastrowid_of is None:
            return PgCursor(cur)
        ids = cur.fetchall()
        return PgCursor(cur, int(ids[-1][0]) if ids else None, hide_rows=True)

    def _begin(self) -> PgCursor:
        """BEGIN + the writer lock; on a connection found lost here (nothing of the batch sent yet),
        connect again and begin once more."""
        self._reconnect_if_lost()
        try:
            cursor = self._raw(f"BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK})")
        except PgOperationalError:
            if not (self._conn.closed or self._conn.broken):
                raise
            self._reconnect_if_lost()
            cursor = self._raw(f"BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK})")
        self._in_batch = True
        return cursor

    def _take_deferred(self) -> list[str]:
        deferred, self._deferred = self._deferred, []
        return deferred

    def _send(self, query: str, params: tuple[Any, ...] | None) -> psycopg.Cursor[Any]:
        """One statement, with the deferred savepoint commands ahead of it in the same pipeline."""
        deferred = self._take_deferred()
        try:
            cur = self._conn.cursor()
            if not deferred:
                cur.execute(query, params)
                return cur
            with self._conn.pipeline():
                for command in deferred:
                    self._conn.execute(command.encode())
                cur.execute(query, params)
            return cur
        except psycopg.Error as exc:
            raise _mapped(exc) from exc

    def cursor(self) -> PgStatements:
        """``conn.cursor()`` as sqlite3 has it (reports read plain tuples through one)."""
        return PgStatements(self)

    def executemany(self, sql: str, seq: Any) -> PgCursor:
        query = translate_query(sql, True)
        try:
            cur = self._conn.cursor()
            cur.executemany(query, [tuple(p) for p in seq])
        except psycopg.Error as exc:
            raise _mapped(exc) from exc
        return PgCursor(cur)

    def executescript(self, script: str) -> PgCursor:
        return self._raw(script)

    def close(self) -> None:
        self._conn.close()

    def _raw(self, sql: str) -> PgCursor:
        if self._deferred:
            sql = "; ".join([*self._take_deferred(), sql])
        try:
            return PgCursor(self._conn.execute(sql.encode()))  # bytes: psycopg passes it as is
        except psycopg.Error as exc:
            raise _mapped(exc) from exc

    def _insert_table(self, query: str) -> str | None:
        words = query.split(None, 3)
        if len(words) < 3 or words[1].upper() != "INTO" or " RETURNING " in query.upper():
            return None
        return self._id_columns.get(words[2].split("(", 1)[0].strip('"'))

    def _pragma(self, sql: str) -> PgCursor:
        name = sql.strip()[6:].strip().split("(")[0].strip().lower()
        if name == "wal_checkpoint":
            # PostgreSQL has no per-database WAL file to truncate: a CHECKPOINT flushes and lets the
            # server recycle old segments. Reported as SQLite's (busy, log, checkpointed) = nothing busy.
            self._raw("CHECKPOINT")
            return self._raw("SELECT 0, 0, 0")
        raise PgOperationalError(f"PRAGMA {name} has no PostgreSQL meaning here")


def migrate_pg(conn: PgConnection, migrations: Migrations) -> dict[str, int]:
    """The same migrations as cti.gateway.migrate_sync, translated; once even when nodes start together."""
    conn.execute(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
    try:
        conn.executescript(BASE_SCHEMA)
        applied: dict[str, int] = {}
        for component, scripts in migrations.items():
            row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
            for version in pending_versions(component, int(row[0]) if row else 0, scripts):
                try:
                    conn.executescript(
                        "BEGIN;\n" + translate_script(scripts[version - 1]) + ";\n"
                        + version_bump(component, version) + ";\nCOMMIT;"
                    )
                except BaseException:
                    if conn.in_transaction:
                        conn.executescript("ROLLBACK")
                    raise
            applied[component] = len(scripts)
    finally:
        conn.execute(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
    conn.refresh_id_columns()
    return applied



def _connect(url: str, migrations: Migrations) -> PgConnection:
    conn = PgConnection.connect(url)
    try:
        migrate_pg(conn, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


class PostgresDatabase(Database):
    """cti.gateway.Database on a PostgreSQL connection (see the module)."""

    @classmethod
    async def open(cls, path: Path | str, migrations: Migrations) -> PostgresDatabase:
        """Connect to ``path`` (a postgresql:// URL) and migrate."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cti-pg")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _connect, str(path), migrations)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        # The units are typed against sqlite3.Connection; PgConnection is that surface (module doc).
        return cls(cast(sqlite3.Connection, conn), executor, None)
