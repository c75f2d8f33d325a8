"""Which engine holds the store: SQLite (the default, one file) or PostgreSQL (``store.url``).

``open_store(target, migrations)`` opens the gateway on either: a ``postgresql://`` (or ``postgres://``)
URL selects cti.pg_gateway.PostgresDatabase, anything else is a SQLite file path (cti.gateway.Database).
Both run the same migrations and the same units.
"""

from __future__ import annotations

from pathlib import Path

from cti.gateway import Database, Migrations

PG_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(target: Path | str | None) -> bool:
    return target is not None and str(target).startswith(PG_SCHEMES)


async def open_store(target: Path | str, migrations: Migrations) -> Database:
    """The gateway on the engine `target` names, migrated."""
    if is_postgres(target):
        from cti.pg_gateway import PostgresDatabase  # psycopg only loaded when PostgreSQL is configured

        return await PostgresDatabase.open(str(target), migrations)
    return await Database.open(target, migrations)
