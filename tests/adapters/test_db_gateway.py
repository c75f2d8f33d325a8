"""The database gateway: units of work, group commit, isolation of a failing unit, private files.

The unit-of-work tests run on both engines (``store_target``: a SQLite file, a PostgreSQL schema)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from cti.gateway import Database, exposed_files
from cti.store_backend import open_store

SCHEMA = {"t": ["CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"]}


def _insert(name: str):  # type: ignore[no-untyped-def]
    def unit(conn: sqlite3.Connection) -> int:
        cur = conn.execute("INSERT INTO items(name) VALUES (?)", (name,))
        return int(cur.lastrowid or 0)

    return unit


def _names(conn: sqlite3.Connection) -> list[str]:
    return [r["name"] for r in conn.execute("SELECT name FROM items ORDER BY id")]


async def test_a_failing_unit_changes_nothing_and_others_in_its_batch_commit(store_target: str) -> None:
    db = await open_store(store_target, SCHEMA)
    try:
        def half_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO items(name) VALUES ('half')")
            raise ValueError("refused")

        results = await asyncio.gather(
            db.write(_insert("a")), db.write(half_then_fail), db.write(_insert("b")), return_exceptions=True
        )
        assert isinstance(results[1], ValueError)
        assert await db.read(_names) == ["a", "b"]
    finally:
        await db.close()


async def test_units_written_at_once_are_all_durable_after_close(store_target: str) -> None:
    db = await open_store(store_target, SCHEMA)
    ids = await asyncio.gather(*(db.write(_insert(f"n{i}")) for i in range(300)))
    assert sorted(ids) == list(range(1, 301))
    await db.close()
    again = await open_store(store_target, SCHEMA)  # a new connection sees all 300
    try:
        assert await again.read(lambda c: c.execute("SELECT count(*) FROM items").fetchone()[0]) == 300
    finally:
        await again.close()


async def test_a_closed_store_refuses_work_on_either_engine(store_target: str) -> None:
    db = await open_store(store_target, SCHEMA)
    await db.close()
    with pytest.raises(RuntimeError):
        await db.write(_insert("late"))


async def test_integrity_errors_are_sqlite3_integrity_errors_on_either_engine(store_target: str) -> None:
    """Stores catch sqlite3.IntegrityError: a duplicate fails its unit with that class on PostgreSQL too."""
    db = await open_store(store_target, SCHEMA)
    try:
        await db.write(_insert("same"))
        with pytest.raises(sqlite3.IntegrityError):
            await db.write(_insert("same"))
        assert await db.write(_insert("other")) > 1  # and the connection goes on after the failed unit
        assert await db.read(_names) == ["same", "other"]
    finally:
        await db.close()


async def test_a_unit_never_shares_a_transaction_with_an_open_await(tmp_path: Path) -> None:
    """The old bug: a write landing while another component's unit was open was rolled back with it."""
    db = await Database.open(tmp_path / "g.sqlite3", SCHEMA)
    try:
        started = asyncio.Event()

        def failing_slowly(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO items(name) VALUES ('doomed')")
            raise RuntimeError("unit failed")

        async def other_component() -> None:
            started.set()
            await db.write(_insert("logout-done"))

        failing = asyncio.ensure_future(db.write(failing_slowly))
        await asyncio.gather(other_component(), return_exceptions=True)
        with pytest.raises(RuntimeError):
            await failing
        assert await db.read(_names) == ["logout-done"]
    finally:
        await db.close()


async def test_a_caller_cancelled_before_its_batch_writes_nothing(store_target: str) -> None:
    db = await open_store(store_target, SCHEMA)
    try:
        first = asyncio.ensure_future(db.write(_insert("first")))
        second = asyncio.ensure_future(db.write(_insert("second")))
        await asyncio.sleep(0)  # both queued; the first batch is already on the thread
        second.cancel()
        await first
        assert await db.read(_names) in (["first"], ["first", "second"])
        third = asyncio.ensure_future(db.write(_insert("third")))
        third.cancel()
        await asyncio.sleep(0.05)
        assert "third" not in await db.read(_names)
    finally:
        await db.close()


async def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "p.sqlite3"
        db = await Database.open(path, SCHEMA)
        await db.write(_insert("x"))
        for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        assert exposed_files(path) == []
        await db.close()
        os.chmod(path, 0o644)
        assert exposed_files(path) == [path]
    finally:
        os.umask(old)


async def test_a_closed_database_refuses_work(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "c.sqlite3", SCHEMA)
    await db.close()
    with pytest.raises(RuntimeError):
        await db.write(_insert("late"))


def test_serve_refuses_a_database_others_can_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cti.config import load_settings
    from cti.serve import run

    path = tmp_path / "cti.sqlite3"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    settings = load_settings(None, {"CTI_STORE__PATH": str(path), "CTI_AMI__ENABLED": "false",
                                    "CTI_AGI__ENABLED": "false", "CTI_HTTP__PORT": "1"})
    assert run(settings) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "chmod 600" in err
