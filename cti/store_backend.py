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


def shown(target: Path | str) -> str:
    """The store as it may be printed: a PostgreSQL URL without its password."""
    if not is_postgres(target):
        return str(target)
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(str(target))
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def open_store(target: Path | str, migrations: Migrations) -> Database:
    """The gateway on the engine `target` names, migrated."""
    if is_postgres(target):
        from cti.pg_gateway import PostgresDatabase  # psycopg only loaded when PostgreSQL is configured

        return await PostgresDatabase.open(str(target), migrations)
    return await Database.open(target, migrations)
