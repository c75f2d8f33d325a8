"""SQLite storage of the FAQ: synchronous units of work for the database gateway (cti/gateway.py).

Every function here takes a ``sqlite3.Connection`` and runs whole inside ``Database.write`` (one
BEGIN IMMEDIATE..COMMIT on the database thread) or ``Database.read``; none awaits. The async
service that keeps the search index in memory is faq/service.py.

Tables (component "faq"):

- ``faq_entries``: the live FAQ, what operators search (an import replaces it; publishing an
  editor's version upserts one row, retiring deletes it);
- ``faq_versions``: every editor change, numbered per entry, with who and when; ``draft`` until
  published; the published text is copied to ``faq_entries``;
- ``faq_synonyms``: the editors' synonym rules (faq/synonyms.py);
- ``faq_search_gaps``: questions an operator logged when the search found nothing close;
- ``faq_gap_answers``: which gap (records' FAQ gap, a closed callback, or a search gap) an entry answered;
- ``faq_doc_sources`` / ``faq_documents``: the ward's other sources, split at headings (faq/documents.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cti.core.clock import require_aware
from faq.documents import DocSection, SourceInfo
from faq.entries import FaqEntry
from faq.parsing import ParsedFaq

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
    # v2 (issue 17): authoring with versions, editor synonyms, gaps answered, the ward's documents.
    """
    CREATE TABLE faq_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        category TEXT NOT NULL,
        subcategory TEXT,
        keywords TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'retired')),
        author TEXT NOT NULL,
        created_at TEXT NOT NULL,
        published_by TEXT,
        published_at TEXT,
        gap_kind TEXT,
        gap_id INTEGER,
        UNIQUE (source_id, version)
    );
    CREATE TABLE faq_synonyms (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule TEXT NOT NULL UNIQUE,
        author TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE faq_search_gaps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        query TEXT NOT NULL,
        ivr_category TEXT,
        reporter TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX faq_search_gaps_created ON faq_search_gaps(created_at);
    CREATE TABLE faq_gap_answers (
        gap_kind TEXT NOT NULL CHECK (gap_kind IN ('call', 'callback', 'search')),
        gap_id INTEGER NOT NULL,
        source_id TEXT NOT NULL,
        answered_by TEXT NOT NULL,
        answered_at TEXT NOT NULL,
        PRIMARY KEY (gap_kind, gap_id)
    );
    CREATE TABLE faq_doc_sources (
        key TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        base_url TEXT NOT NULL,
        imported_at TEXT NOT NULL
    );
    CREATE TABLE faq_documents (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL REFERENCES faq_doc_sources(key),
        path TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        url TEXT NOT NULL,
        position INTEGER NOT NULL
    );
    CREATE INDEX faq_documents_source ON faq_documents(source)
    """,
]

BATCH = 200
KEYWORD_SEPARATOR = "\n"
EDITOR_IMPORT_SOURCE = "FAQ編集（ブラウザ）"

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


def _entry(row: Sequence[object]) -> FaqEntry:
    return FaqEntry(
        id=str(row[0]),
        question=str(row[1]),
        answer=str(row[2]),
        category=str(row[3]),
        subcategory=None if row[4] is None else str(row[4]),
        keywords=tuple(k for k in str(row[5]).split(KEYWORD_SEPARATOR) if k),
    )


# --- the live FAQ ------------------------------------------------------------------------------


def load_entries(conn: sqlite3.Connection) -> list[FaqEntry]:
    rows = conn.execute(
        "SELECT source_id, question, answer, category, subcategory, keywords FROM faq_entries ORDER BY rowid"
    ).fetchall()
    return [_entry(row) for row in rows]


def latest_import(conn: sqlite3.Connection) -> ImportInfo | None:
    row = conn.execute(
        "SELECT source, credit, imported_at FROM faq_imports WHERE source != ? ORDER BY id DESC LIMIT 1",
        (EDITOR_IMPORT_SOURCE,),
    ).fetchone()
    return None if row is None else ImportInfo(str(row[0]), str(row[1]), str(row[2]))


def import_faq(
    conn: sqlite3.Connection, parsed: ParsedFaq, now: datetime, progress: Progress | None = None
) -> ImportCounts:
    """(unit of work) Make the stored FAQ equal to `parsed`: upsert by id, delete the rest."""
    require_aware(now, "now")
    stamp = now.isoformat()
    existing = {
        str(r[0]): (r[1], r[2], r[3], r[4], r[5])
        for r in conn.execute("SELECT source_id, question, answer, category, subcategory, keywords FROM faq_entries")
    }
    new_ids = {e.id for e in parsed.entries}
    added = [e for e in parsed.entries if e.id not in existing]
    changed = [e for e in parsed.entries if e.id in existing and existing[e.id] != _row_tuple(e)]
    removed = [i for i in existing if i not in new_ids]
    counts = ImportCounts(len(added), len(changed), len(removed), len(parsed.entries) - len(added) - len(changed))
    cur = conn.execute(
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
    total = len(parsed.entries)
    for start in range(0, total, BATCH):
        batch = parsed.entries[start : start + BATCH]
        conn.executemany(
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
        if progress is not None:
            progress(min(start + BATCH, total), total)
    for start in range(0, len(removed), BATCH):
        ids = removed[start : start + BATCH]
        conn.execute(f"DELETE FROM faq_entries WHERE source_id IN ({','.join('?' * len(ids))})", ids)
    return counts


# --- the ward's documents ----------------------------------------------------------------------


def import_documents(
    conn: sqlite3.Connection, source: SourceInfo, sections: Sequence[DocSection], now: datetime
) -> ImportCounts:
    """(unit of work) Make one source's stored sections equal to `sections` (re-import is idempotent)."""
    require_aware(now, "now")
    conn.execute(
        "INSERT INTO faq_doc_sources(key, label, base_url, imported_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET label = excluded.label, base_url = excluded.base_url,"
        " imported_at = excluded.imported_at",
        (source.key, source.label, source.base_url, now.isoformat()),
    )
    existing = {
        str(r[0]): (r[1], r[2], r[3], r[4], r[5])
        for r in conn.execute(
            "SELECT id, path, title, body, url, position FROM faq_documents WHERE source = ?", (source.key,)
        )
    }
    wanted = {s.id: (s.path, s.title, s.body, s.url, n) for n, s in enumerate(sections)}
    added = [i for i in wanted if i not in existing]
    changed = [i for i in wanted if i in existing and existing[i] != wanted[i]]
    removed = [i for i in existing if i not in wanted]
    conn.executemany(
        "INSERT INTO faq_documents(id, source, path, title, body, url, position) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET path = excluded.path, title = excluded.title, body = excluded.body,"
        " url = excluded.url, position = excluded.position",
        [(i, source.key, *wanted[i]) for i in [*added, *changed]],
    )
    conn.executemany("DELETE FROM faq_documents WHERE id = ?", [(i,) for i in removed])
    return ImportCounts(len(added), len(changed), len(removed), len(wanted) - len(added) - len(changed))


def load_documents(conn: sqlite3.Connection) -> list[DocSection]:
    rows = conn.execute(
        "SELECT d.id, d.source, s.label, d.path, d.title, d.body, d.url FROM faq_documents d"
        " JOIN faq_doc_sources s ON s.key = d.source ORDER BY d.source, d.path, d.position"
    ).fetchall()
    return [DocSection(*(str(v) for v in row)) for row in rows]
