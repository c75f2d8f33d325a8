"""Raw access to a store outside cti (what someone with the database's own credentials can do), on
either engine: for tests that tamper with the audit trail. ``target`` is a SQLite path or a
postgresql:// URL (tests/pg_support.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


class RawSql(Protocol):
    def __call__(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]: ...


@contextmanager
def raw_store(target: Path | str, *, unguard_audit: bool = True) -> Iterator[RawSql]:
    """A committed session; with `unguard_audit` the append-only triggers are off (dropped on SQLite)."""
    if str(target).startswith("postgresql://"):
        import psycopg
        from psycopg.rows import dict_row

        from cti.pg_dialect import translate_query

        with psycopg.connect(str(target), row_factory=dict_row) as pg:
            if unguard_audit:
                pg.execute("ALTER TABLE audit DISABLE TRIGGER USER")

            def run_pg(sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
                cur = pg.execute(translate_query(sql, bool(params)).encode() if not params
                                 else translate_query(sql, True), params or None)
                return [dict(r) for r in cur.fetchall()] if cur.description else []

            yield run_pg
            if unguard_audit:
                pg.execute("ALTER TABLE audit ENABLE TRIGGER USER")
        return
    raw = sqlite3.connect(target)
    raw.row_factory = sqlite3.Row
    try:
        if unguard_audit:
            raw.execute("DROP TRIGGER audit_no_update")
            raw.execute("DROP TRIGGER audit_no_delete")

        def run_sqlite(sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
            return [dict(r) for r in raw.execute(sql, params).fetchall()]

        yield run_sqlite
        raw.commit()
    finally:
        raw.close()
