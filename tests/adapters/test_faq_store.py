"""The FAQ in a real temporary SQLite database: import, re-import, rollback, reload."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiosqlite
import pytest

from cti.core.clock import TOKYO, fixed_clock
from cti.db import open_database
from faq.index import KOSODATE_CREDIT, FaqEntry, ParsedFaq, parse_faq
from faq.store import COMPONENT, MIGRATIONS, FaqService, import_faq, latest_import, load_entries

FIXTURE = Path(__file__).parent.parent / "fixtures" / "faq" / "kosodate_opendata_faq_corpus.json"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=TOKYO)


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    db = await open_database(tmp_path / "faq.sqlite3", {COMPONENT: MIGRATIONS})
    try:
        yield db
    finally:
        await db.close()


def generic(entries: list[FaqEntry]) -> ParsedFaq:
    return ParsedFaq(entries, "json", "テスト市FAQ", "出典：テスト市")


def e(id: str, question: str, answer: str = "回答", category: str = "ごみ・リサイクル") -> FaqEntry:
    return FaqEntry(id, question, answer, category)


async def test_real_faq_imports_and_searches_with_credit(conn: aiosqlite.Connection) -> None:
    service = FaqService(conn, fixed_clock(NOW))
    await service.load()
    assert service.size == 0
    progress: list[tuple[int, int]] = []
    counts = await service.import_parsed(
        parse_faq(FIXTURE.read_bytes(), FIXTURE.name), lambda d, t: progress.append((d, t))
    )
    assert counts.as_dict() == {"added": 661, "updated": 0, "removed": 0, "unchanged": 0, "total": 661}
    assert progress[-1] == (661, 661) and len(progress) > 1
    assert service.size == 661 and service.credit == KOSODATE_CREDIT
    assert service.search("印鑑", 1)[0].entry.id in {"1100", "884"}
    assert service.get("1100") is not None and service.get("nope") is None


async def test_reimport_upserts_removes_and_counts(conn: aiosqlite.Connection) -> None:
    first = await import_faq(conn, generic([e("1", "ごみの日"), e("2", "粗大ごみ"), e("3", "資源ごみ")]), NOW)
    assert (first.added, first.updated, first.removed, first.unchanged) == (3, 0, 0, 0)
    later = NOW.replace(hour=10)
    second = await import_faq(conn, generic([e("1", "ごみの日"), e("2", "粗大ごみの申込"), e("4", "古紙回収")]), later)
    assert (second.added, second.updated, second.removed, second.unchanged) == (1, 1, 1, 1)
    stored = {x.id: x for x in await load_entries(conn)}
    assert set(stored) == {"1", "2", "4"} and stored["2"].question == "粗大ごみの申込"
    async with conn.execute("SELECT source_id, updated_at FROM faq_entries ORDER BY source_id") as cur:
        stamps = {r[0]: r[1] for r in await cur.fetchall()}
    assert stamps["1"] == NOW.isoformat()  # unchanged entries keep their stamp
    assert stamps["2"] == later.isoformat()
    info = await latest_import(conn)
    assert info is not None and info.credit == "出典：テスト市" and info.source == "テスト市FAQ"


async def test_failed_import_changes_nothing(conn: aiosqlite.Connection) -> None:
    await import_faq(conn, generic([e("1", "ごみの日"), e("2", "粗大ごみ")]), NOW)
    entries = [e(str(i), f"質問{i}") for i in range(10, 500)]
    # A NULL question (impossible through parse_faq) makes the database refuse the last batch.
    entries.append(dataclasses.replace(e("999", "x"), question=None))  # type: ignore[arg-type]
    with pytest.raises(aiosqlite.IntegrityError):
        await import_faq(conn, generic(entries), NOW)
    assert not conn.in_transaction
    assert sorted(x.id for x in await load_entries(conn)) == ["1", "2"]
    async with conn.execute("SELECT count(*) FROM faq_imports") as cur:
        assert (await cur.fetchone())[0] == 1  # type: ignore[index]


async def test_naive_import_time_is_refused(conn: aiosqlite.Connection) -> None:
    with pytest.raises(ValueError, match="now"):
        await import_faq(conn, generic([e("1", "q")]), datetime(2026, 11, 27, 9, 0))


async def test_entries_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "faq.sqlite3"
    db = await open_database(path, {COMPONENT: MIGRATIONS})
    try:
        await import_faq(conn=db, parsed=generic([e("a", "税金の納付", category="税金")]), now=NOW)
    finally:
        await db.close()
    db = await open_database(path, {COMPONENT: MIGRATIONS})
    try:
        service = FaqService(db, fixed_clock(NOW))
        await service.load()
        assert [h.entry.id for h in service.search("税金", 5)] == ["a"]
        assert service.credit == "出典：テスト市"
        assert service.suggest("zei", [], 3)[0].id == "a"
    finally:
        await db.close()
