"""The embedded SQLite store: one long-lived aiosqlite connection, versioned migrations per component.

Each package contributes an ordered list of SQL scripts under its component name (``records``,
``accounts``, ``faq`` ...). ``schema_versions`` remembers how many of each were applied, so an old
database upgrades in place and a new script is applied exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aiosqlite

Migrations = Mapping[str, Sequence[str]]


async def open_database(path: Path | str, migrations: Migrations) -> aiosqlite.Connection:
    """Open (creating if needed) the database with cti's durability settings, then migrate it."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    conn.row_factory = aiosqlite.Row
    # WAL + synchronous=FULL: an acknowledged commit survives power loss.
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=FULL")
    await conn.execute("PRAGMA foreign_keys=ON")
    # secure_delete overwrites freed content, so purged personal data leaves the file.
    await conn.execute("PRAGMA secure_delete=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    try:
        await migrate(conn, migrations)
    except BaseException:
        await conn.close()  # aiosqlite's thread would otherwise keep the process alive
        raise
    return conn


async def migrate(conn: aiosqlite.Connection, migrations: Migrations) -> dict[str, int]:
    """Apply every not-yet-applied script, each component in its own transaction."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    applied: dict[str, int] = {}
    for component, scripts in migrations.items():
        async with conn.execute(
            "SELECT version FROM schema_versions WHERE component = ?", (component,)
        ) as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        if current > len(scripts):
            raise RuntimeError(
                f"database schema for {component!r} is version {current}, newer than this cti ({len(scripts)})"
            )
        for version in range(current + 1, len(scripts) + 1):
            # One script = one transaction, including its version bump; executescript keeps
            # trigger bodies (with their inner semicolons) intact.
            try:
                await conn.executescript(
                    "BEGIN IMMEDIATE;\n"
                    + scripts[version - 1]
                    + f";\nINSERT INTO schema_versions(component, version) VALUES ('{_quote(component)}', {version})"
                    " ON CONFLICT(component) DO UPDATE SET version = excluded.version;\nCOMMIT;"
                )
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
        applied[component] = len(scripts)
    return applied


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"component name must be alphanumeric: {name!r}")
    return name
