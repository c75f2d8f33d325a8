"""Authoring the FAQ in the browser: versions, drafts, publishing, retiring, synonyms, gaps answered.

Synchronous units of work for the database gateway (each runs whole in one transaction), plus the
pure checks they apply. Every change is a new row of ``faq_versions`` with its author and time; a
draft becomes live when published (copied into ``faq_entries``, which the search index is built
from); retiring removes the entry from ``faq_entries`` and records a ``retired`` version.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cti.core.clock import require_aware
from faq.entries import MAX_FIELD_CHARS, MAX_KEYWORDS, FaqEntry, keyword_problem
from faq.store import EDITOR_IMPORT_SOURCE, KEYWORD_SEPARATOR
from faq.synonyms import parse_rule

MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 5000
MAX_GAP_QUERY_CHARS = 200
EDITOR_ID_PREFIX = "ed-"
GAP_KINDS = ("call", "callback", "search")


class AuthoringError(ValueError):
    """A change the editor asked for cannot be made; ``message`` is Japanese, for the screen."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Draft:
    question: str
    answer: str
    category: str
    subcategory: str | None = None
    keywords: tuple[str, ...] = ()


# Personal data that must never reach the FAQ (the FAQ is public reference text): e-mail addresses,
# mobile numbers, 12-digit numbers (マイナンバー). The ward's own office numbers (03-...) are allowed.
_PERSONAL = [
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "メールアドレス"),
    (re.compile(r"(?<!\d)0[789]0[-‐ー－ ]?\d{4}[-‐ー－ ]?\d{4}(?!\d)"), "携帯電話番号"),
    (re.compile(r"(?<!\d)\d{4}[- ]?\d{4}[- ]?\d{4}(?!\d)"), "12桁の番号（マイナンバーの可能性）"),
]


def personal_data_findings(text: str) -> list[str]:
    """What in `text` looks like personal data (names of kinds, Japanese), empty when nothing does."""
    import unicodedata

    folded = unicodedata.normalize("NFKC", text)
    return [label for pattern, label in _PERSONAL if pattern.search(folded)]


def check_draft(draft: Draft) -> Draft:
    """The draft trimmed and validated; raise AuthoringError naming the field."""
    fields = {
        "question": (draft.question.strip(), MAX_QUESTION_CHARS, "質問"),
        "answer": (draft.answer.strip(), MAX_ANSWER_CHARS, "回答"),
        "category": (draft.category.strip(), MAX_FIELD_CHARS, "カテゴリ"),
    }
    for name, (value, limit, label) in fields.items():
        if not value:
            raise AuthoringError(422, "empty", f"{label}を入力してください", name)
        if len(value) > limit:
            raise AuthoringError(422, "too_long", f"{label}は{limit}文字以内にしてください", name)
    sub = (draft.subcategory or "").strip() or None
    keywords = tuple(k.strip() for k in draft.keywords if k.strip())
    if sub is not None and len(sub) > MAX_FIELD_CHARS:
        raise AuthoringError(422, "too_long", f"サブカテゴリは{MAX_FIELD_CHARS}文字以内にしてください", "subcategory")
    if len(keywords) > MAX_KEYWORDS or any(len(k) > MAX_FIELD_CHARS for k in keywords):
        raise AuthoringError(422, "too_long", "キーワードが多すぎるか長すぎます", "keywords")
    if any(keyword_problem(k) for k in keywords):
        raise AuthoringError(422, "bad_keyword", "キーワードに改行・セミコロン・制御文字は使えません", "keywords")
    found = personal_data_findings(" ".join([fields["question"][0], fields["answer"][0], *keywords]))
    if found:
        raise AuthoringError(
            422, "personal_data", f"個人情報の可能性があるため保存できません（{'、'.join(found)}）", "answer"
        )
    return Draft(fields["question"][0], fields["answer"][0], fields["category"][0], sub, keywords)


def _version_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["source_id"],
        "version": row["version"],
        "question": row["question"],
        "answer": row["answer"],
        "category": row["category"],
        "subcategory": row["subcategory"],
        "keywords": [k for k in str(row["keywords"]).split(KEYWORD_SEPARATOR) if k],
        "status": row["status"],
        "author": row["author"],
        "created_at": row["created_at"],
        "published_by": row["published_by"],
        "published_at": row["published_at"],
        "gap": {"kind": row["gap_kind"], "id": row["gap_id"]} if row["gap_kind"] else None,
    }


def _next_editor_id(conn: sqlite3.Connection) -> str:
    rows = conn.execute(
        "SELECT source_id FROM faq_versions WHERE source_id LIKE ? UNION SELECT source_id FROM faq_entries"
        " WHERE source_id LIKE ?",
        (EDITOR_ID_PREFIX + "%", EDITOR_ID_PREFIX + "%"),
    ).fetchall()
    numbers = [int(r[0][len(EDITOR_ID_PREFIX) :]) for r in rows if r[0][len(EDITOR_ID_PREFIX) :].isdigit()]
    return f"{EDITOR_ID_PREFIX}{max(numbers, default=0) + 1:04d}"


def save_draft(
    conn: sqlite3.Connection,
    source_id: str | None,
    draft: Draft,
    author: str,
    now: datetime,
    gap: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """(unit of work) A new draft version: of a new entry (source_id None) or of an existing one."""
    require_aware(now, "now")
    draft = check_draft(draft)
    if gap is not None and gap[0] not in GAP_KINDS:
        raise AuthoringError(422, "unknown_gap", "不明な種類のFAQ不足です", "gap")
    if source_id is None:
        source_id = _next_editor_id(conn)
    elif not _exists(conn, source_id):
        raise AuthoringError(404, "not_found", "このFAQはありません")
    row = conn.execute("SELECT MAX(version) FROM faq_versions WHERE source_id = ?", (source_id,)).fetchone()
    version = int(row[0] or 0) + 1
    conn.execute(
        "INSERT INTO faq_versions(source_id, version, question, answer, category, subcategory, keywords, status,"
        " author, created_at, gap_kind, gap_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?, ?)",
        (
            source_id,
            version,
            draft.question,
            draft.answer,
            draft.category,
            draft.subcategory,
            KEYWORD_SEPARATOR.join(draft.keywords),
            author,
            now.isoformat(),
            gap[0] if gap else None,
            gap[1] if gap else None,
        ),
    )
    return version_of(conn, source_id, version)


def _exists(conn: sqlite3.Connection, source_id: str) -> bool:
    return bool(
        conn.execute("SELECT 1 FROM faq_entries WHERE source_id = ?", (source_id,)).fetchone()
        or conn.execute("SELECT 1 FROM faq_versions WHERE source_id = ?", (source_id,)).fetchone()
    )


def version_of(conn: sqlite3.Connection, source_id: str, version: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT * FROM faq_versions WHERE source_id = ? AND version = ?", (source_id, version)
    ).fetchone()
    if row is None:
        raise AuthoringError(404, "not_found", "この版はありません")
    return _version_dict(row)


def history(conn: sqlite3.Connection, source_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM faq_versions WHERE source_id = ? ORDER BY version DESC", (source_id,))
    return [_version_dict(r) for r in rows]


def pending_drafts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The latest version of each entry whose latest version is still a draft, newest first."""
    rows = conn.execute(
        "SELECT v.* FROM faq_versions v JOIN (SELECT source_id, MAX(version) AS version FROM faq_versions"
        " GROUP BY source_id) last ON last.source_id = v.source_id AND last.version = v.version"
        " WHERE v.status = 'draft' ORDER BY v.created_at DESC, v.id DESC"
    )
    return [_version_dict(r) for r in rows]


def _editor_import_id(conn: sqlite3.Connection, stamp: str) -> int:
    row = conn.execute("SELECT id FROM faq_imports WHERE source = ? ORDER BY id LIMIT 1", (EDITOR_IMPORT_SOURCE,))
    found = row.fetchone()
    if found is not None:
        return int(found[0])
    cur = conn.execute(
        "INSERT INTO faq_imports(source, credit, format, imported_at, added, updated, removed, unchanged)"
        " VALUES (?, '', 'editor', ?, 0, 0, 0, 0)",
        (EDITOR_IMPORT_SOURCE, stamp),
    )
    return int(cur.lastrowid or 0)


def publish(conn: sqlite3.Connection, source_id: str, version: int, by: str, now: datetime) -> FaqEntry:
    """(unit of work) Make a draft live: it must be the entry's latest version and still a draft."""
    require_aware(now, "now")
    row = conn.execute(
        "SELECT * FROM faq_versions WHERE source_id = ? AND version = ?", (source_id, version)
    ).fetchone()
    if row is None:
        raise AuthoringError(404, "not_found", "この版はありません")
    latest = conn.execute("SELECT MAX(version) FROM faq_versions WHERE source_id = ?", (source_id,)).fetchone()
    if row["status"] != "draft" or int(latest[0]) != version:
        raise AuthoringError(409, "not_latest_draft", "新しい版があるか、すでに公開済みです。画面を更新してください")
    stamp = now.isoformat()
    conn.execute(
        "UPDATE faq_versions SET status = 'published', published_by = ?, published_at = ? WHERE id = ?",
        (by, stamp, row["id"]),
    )
    conn.execute(
        "INSERT INTO faq_entries(source_id, question, answer, category, subcategory, keywords, import_id, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(source_id) DO UPDATE SET question = excluded.question,"
        " answer = excluded.answer, category = excluded.category, subcategory = excluded.subcategory,"
        " keywords = excluded.keywords, updated_at = excluded.updated_at",
        (
            source_id,
            row["question"],
            row["answer"],
            row["category"],
            row["subcategory"],
            row["keywords"],
            _editor_import_id(conn, stamp),
            stamp,
        ),
    )
    if row["gap_kind"]:
        conn.execute(
            "INSERT INTO faq_gap_answers(gap_kind, gap_id, source_id, answered_by, answered_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(gap_kind, gap_id) DO UPDATE SET source_id = excluded.source_id,"
            " answered_by = excluded.answered_by, answered_at = excluded.answered_at",
            (row["gap_kind"], row["gap_id"], source_id, by, stamp),
        )
    keywords = tuple(k for k in str(row["keywords"]).split(KEYWORD_SEPARATOR) if k)
    return FaqEntry(source_id, row["question"], row["answer"], row["category"], row["subcategory"], keywords)


def retire(conn: sqlite3.Connection, source_id: str, by: str, now: datetime) -> dict[str, Any]:
    """(unit of work) Take a live entry out of the search; its last text is kept as a retired version."""
    require_aware(now, "now")
    live = conn.execute(
        "SELECT question, answer, category, subcategory, keywords FROM faq_entries WHERE source_id = ?", (source_id,)
    ).fetchone()
    if live is None:
        raise AuthoringError(404, "not_found", "公開中のFAQではありません")
    row = conn.execute("SELECT MAX(version) FROM faq_versions WHERE source_id = ?", (source_id,)).fetchone()
    version = int(row[0] or 0) + 1
    stamp = now.isoformat()
    conn.execute(
        "INSERT INTO faq_versions(source_id, version, question, answer, category, subcategory, keywords, status,"
        " author, created_at, published_by, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'retired', ?, ?, ?, ?)",
        (source_id, version, *tuple(live), by, stamp, by, stamp),
    )
    conn.execute("DELETE FROM faq_entries WHERE source_id = ?", (source_id,))
    return version_of(conn, source_id, version)


# --- synonyms ----------------------------------------------------------------------------------


def list_synonyms(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, rule, author, created_at FROM faq_synonyms ORDER BY id")
    return [{"id": r["id"], "rule": r["rule"], "author": r["author"], "created_at": r["created_at"]} for r in rows]


def add_synonym(conn: sqlite3.Connection, text: str, author: str, now: datetime) -> dict[str, Any]:
    """(unit of work) Store one rule in its canonical spelling (refused if it does not parse)."""
    try:
        rule = parse_rule(text, "同義語")
    except ValueError as exc:
        raise AuthoringError(422, "bad_rule", f"{exc}（例: 学童 = 放課後クラブ / ソファ → 粗大ごみ）", "rule") from None
    canonical = rule.text()
    if conn.execute("SELECT 1 FROM faq_synonyms WHERE rule = ?", (canonical,)).fetchone():
        raise AuthoringError(409, "duplicate", "同じ同義語はすでに登録されています", "rule")
    cur = conn.execute(
        "INSERT INTO faq_synonyms(rule, author, created_at) VALUES (?, ?, ?)", (canonical, author, now.isoformat())
    )
    return {"id": cur.lastrowid, "rule": canonical, "author": author, "created_at": now.isoformat()}


def delete_synonym(conn: sqlite3.Connection, synonym_id: int) -> str:
    row = conn.execute("SELECT rule FROM faq_synonyms WHERE id = ?", (synonym_id,)).fetchone()
    if row is None:
        raise AuthoringError(404, "not_found", "この同義語はありません")
    conn.execute("DELETE FROM faq_synonyms WHERE id = ?", (synonym_id,))
    return str(row[0])


# --- gaps --------------------------------------------------------------------------------------


def log_search_gap(
    conn: sqlite3.Connection, query: str, ivr_category: str | None, reporter: str, now: datetime
) -> dict[str, Any]:
    """(unit of work) An operator's search that found nothing close, kept for the FAQ editors."""
    query = query.strip()
    if not query:
        raise AuthoringError(422, "empty", "検索語がありません", "query")
    query = query[:MAX_GAP_QUERY_CHARS]
    cur = conn.execute(
        "INSERT INTO faq_search_gaps(query, ivr_category, reporter, created_at) VALUES (?, ?, ?, ?)",
        (query, ivr_category, reporter, now.isoformat()),
    )
    return {"kind": "search", "id": cur.lastrowid, "query": query, "category": ivr_category,
            "created_at": now.isoformat()}


def search_gaps(conn: sqlite3.Connection, limit: int = 500) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, query, ivr_category, created_at FROM faq_search_gaps ORDER BY created_at DESC, id DESC LIMIT ?",
        (limit,),
    )
    return [
        {"kind": "search", "id": r["id"], "text": r["query"], "category": r["ivr_category"],
         "created_at": r["created_at"]}
        for r in rows
    ]


def purge_search_gaps(conn: sqlite3.Connection, before: datetime) -> int:
    """(unit of work) Drop logged searches older than `before` (they may hold what a caller said)."""
    cur = conn.execute("DELETE FROM faq_search_gaps WHERE created_at < ?", (before.isoformat(),))
    return cur.rowcount


def gap_answers(conn: sqlite3.Connection) -> dict[tuple[str, int], dict[str, str]]:
    rows = conn.execute("SELECT gap_kind, gap_id, source_id, answered_by, answered_at FROM faq_gap_answers")
    return {
        (str(r[0]), int(r[1])): {"entry": str(r[2]), "by": str(r[3]), "at": str(r[4])} for r in rows
    }
