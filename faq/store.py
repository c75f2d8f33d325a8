"""SQLite storage of the FAQ (thin adapter over aiosqlite) and the search service built on it.

The database is the record; the search index (faq/index.py) is rebuilt from it in memory at
start and after each import. An import is the complete FAQ: entries are upserted by their source
id and entries missing from the new file are deleted, all in one transaction (a failed import
changes nothing). The import's ``source`` and ``credit`` line are kept in ``faq_imports``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from cti.core.clock import Clock, require_aware
from cti.core.logs import log_event
from faq.index import FaqEntry, FaqIndex, ParsedFaq, SearchHit, suggest

logger = logging.getLogger("cti.faq")

COMPONENT = "faq"
MIGRATIONS: list[str] = [
    """
    CREATE TABLE faq_imports (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        credit TEXT NOT NULL,
        format TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        added INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        removed INTEGER NOT NULL,
        unchanged INTEGER NOT NULL
    );
    CREATE TABLE faq_entries (
        source_id TEXT PRIMARY KEY,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        category TEXT NOT NULL,
        subcategory TEXT,
        keywords TEXT NOT NULL DEFAULT '',
        import_id INTEGER NOT NULL REFERENCES faq_imports(id),
        updated_at TEXT NOT NULL
    );
    CREATE INDEX faq_entries_category ON faq_entries(category)
    """,
]

BATCH = 200
KEYWORD_SEPARATOR = "\n"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportCounts:
    added: int
    updated: int
    removed: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged

    def as_dict(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "total": self.total,
        }


@dataclass(frozen=True)
class ImportInfo:
    source: str
    credit: str
    imported_at: str


def _row_tuple(entry: FaqEntry) -> tuple[str, str, str, str | None, str]:
    return (entry.question, entry.answer, entry.category, entry.subcategory, KEYWORD_SEPARATOR.join(entry.keywords))


async def load_entries(conn: aiosqlite.Connection) -> list[FaqEntry]:
    async with conn.execute(
        "SELECT source_id, question, answer, category, subcategory, keywords FROM faq_entries ORDER BY rowid"
    ) as cur:
        rows = await cur.fetchall()
    return [
        FaqEntry(
            id=str(row[0]),
            question=row[1],
            answer=row[2],
            category=row[3],
            subcategory=row[4],
            keywords=tuple(k for k in str(row[5]).split(KEYWORD_SEPARATOR) if k),
        )
        for row in rows
    ]


async def latest_import(conn: aiosqlite.Connection) -> ImportInfo | None:
    async with conn.execute("SELECT source, credit, imported_at FROM faq_imports ORDER BY id DESC LIMIT 1") as cur:
        row = await cur.fetchone()
    return None if row is None else ImportInfo(str(row[0]), str(row[1]), str(row[2]))


async def import_faq(
    conn: aiosqlite.Connection,
    parsed: ParsedFaq,
    now: datetime,
    progress: Progress | None = None,
) -> ImportCounts:
    """Make the stored FAQ equal to `parsed` (upsert by id, delete the rest) in one transaction."""
    require_aware(now, "now")
    stamp = now.isoformat()
    async with conn.execute(
        "SELECT source_id, question, answer, category, subcategory, keywords FROM faq_entries"
    ) as cur:
        existing = {str(r[0]): (r[1], r[2], r[3], r[4], r[5]) for r in await cur.fetchall()}
    new_ids = {e.id for e in parsed.entries}
    added = [e for e in parsed.entries if e.id not in existing]
    changed = [e for e in parsed.entries if e.id in existing and existing[e.id] != _row_tuple(e)]
    removed = [i for i in existing if i not in new_ids]
    counts = ImportCounts(len(added), len(changed), len(removed), len(parsed.entries) - len(added) - len(changed))
    total = len(parsed.entries)
    await conn.execute("BEGIN IMMEDIATE")
    try:
        cur = await conn.execute(
            "INSERT INTO faq_imports(source, credit, format, imported_at, added, updated, removed, unchanged)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                parsed.source,
                parsed.credit,
                parsed.format,
                stamp,
                counts.added,
                counts.updated,
                counts.removed,
                counts.unchanged,
            ),
        )
        import_id = cur.lastrowid
        done = 0
        for start in range(0, total, BATCH):
            batch = parsed.entries[start : start + BATCH]
            await conn.executemany(
                "INSERT INTO faq_entries(source_id, question, answer, category, subcategory, keywords,"
                " import_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(source_id) DO UPDATE SET question = excluded.question, answer = excluded.answer,"
                " category = excluded.category, subcategory = excluded.subcategory,"
                " keywords = excluded.keywords, import_id = excluded.import_id,"
                " updated_at = CASE WHEN faq_entries.question IS excluded.question"
                " AND faq_entries.answer IS excluded.answer AND faq_entries.category IS excluded.category"
                " AND faq_entries.subcategory IS excluded.subcategory AND faq_entries.keywords IS excluded.keywords"
                " THEN faq_entries.updated_at ELSE excluded.updated_at END",
                [(e.id, *_row_tuple(e), import_id, stamp) for e in batch],
            )
            done += len(batch)
            if progress is not None:
                progress(done, total)
        for start in range(0, len(removed), BATCH):
            ids = removed[start : start + BATCH]
            await conn.execute(f"DELETE FROM faq_entries WHERE source_id IN ({','.join('?' * len(ids))})", ids)
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    log_event(logger, "faq_imported", import_id=import_id, **counts.as_dict())
    return counts


class FaqService:
    """The FAQ as the rest of the server sees it: search, get, suggest, import (rebuilds the index)."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        clock: Clock,
        category_map: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._conn = conn
        self._clock = clock
        self._category_map = category_map
        self._index = FaqIndex([])
        self._info: ImportInfo | None = None

    async def load(self) -> None:
        entries = await load_entries(self._conn)
        # Building the index is CPU work (about 0.3 s per 1,000 entries): keep the loop responsive.
        # The old index keeps serving searches until the new one replaces it in one assignment.
        self._index = await asyncio.to_thread(FaqIndex, entries)
        self._info = await latest_import(self._conn)
        log_event(logger, "faq_loaded", entries=len(entries))

    async def import_parsed(self, parsed: ParsedFaq, progress: Progress | None = None) -> ImportCounts:
        counts = await import_faq(self._conn, parsed, self._clock(), progress)
        await self.load()
        return counts

    @property
    def size(self) -> int:
        return len(self._index)

    @property
    def credit(self) -> str:
        return self._info.credit if self._info else ""

    @property
    def source(self) -> str:
        return self._info.source if self._info else ""

    def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        return self._index.search(query, limit)

    def get(self, faq_id: str) -> FaqEntry | None:
        return self._index.get(faq_id)

    def suggest(self, category_code: str | None, recent_topics: Sequence[str], limit: int) -> list[FaqEntry]:
        return suggest(self._index, category_code, recent_topics, limit, self._category_map)
