"""The FAQ in a real store through the gateway, on both engines (SQLite file, PostgreSQL schema):
import, re-import, rollback, reload, the ward's documents, authoring (versions, publish live, retire),
synonyms and gaps."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cti.core.clock import TOKYO, fixed_clock
from cti.core.principal import Principal, Role
from cti.gateway import Database
from cti.store_backend import open_store
from faq import authoring, morph
from faq.authoring import AuthoringError, Draft
from faq.entries import FaqEntry
from faq.folder import read_folder
from faq.memory import resident_kb
from faq.parsing import KOSODATE_CREDIT, ParsedFaq, parse_faq
from faq.service import FaqService, is_weak
from faq.store import COMPONENT, MIGRATIONS, import_faq, latest_import, load_entries

FIXTURES = Path(__file__).parent.parent / "fixtures" / "faq"
FIXTURE = FIXTURES / "kosodate_opendata_faq_corpus.json"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=TOKYO)
EDITOR = Principal("kusei01", Role.DEPARTMENT, "kuseijoho", "127.0.0.1")


@pytest.fixture
async def db(store_target: str) -> AsyncIterator[Database]:
    gateway = await open_store(store_target, {COMPONENT: MIGRATIONS})
    try:
        yield gateway
    finally:
        await gateway.close()


def generic(entries: list[FaqEntry]) -> ParsedFaq:
    return ParsedFaq(entries, "json", "テスト市FAQ", "出典：テスト市")


def e(id: str, question: str, answer: str = "回答", category: str = "ごみ・リサイクル") -> FaqEntry:
    return FaqEntry(id, question, answer, category)


async def test_real_faq_imports_and_searches_with_credit(db: Database) -> None:
    service = FaqService(db, fixed_clock(NOW))
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


async def test_an_index_build_leaves_no_dictionary_pages_resident(db: Database) -> None:
    # The build analyses every entry in a worker thread and touches most of Sudachi's 193 MB
    # dictionary; only what a search reads may stay in the server's RSS (faq/memory.py).
    morph.reading("住民票の写しを取りたいのですが")  # pages resident before the build, too (not cached)
    assert resident_kb(morph.dictionary_file()) > 0
    service = FaqService(db, fixed_clock(NOW))
    await service.import_parsed(generic([e("1", "粗大ごみの申込み"), e("2", "引越しの届出", "転入届を出してください")]))
    assert service.size == 2
    assert resident_kb(morph.dictionary_file()) < 512
    assert service.search("申し込み", 1)[0].entry.id == "1"  # and the next analysis still works


async def test_reimport_upserts_removes_and_counts(db: Database) -> None:
    three = generic([e("1", "ごみの日"), e("2", "粗大ごみ"), e("3", "資源ごみ")])
    first = await db.write(lambda c: import_faq(c, three, NOW))
    assert (first.added, first.updated, first.removed, first.unchanged) == (3, 0, 0, 0)
    later = NOW.replace(hour=10)
    second = await db.write(
        lambda c: import_faq(c, generic([e("1", "ごみの日"), e("2", "粗大ごみの申込"), e("4", "古紙回収")]), later)
    )
    assert (second.added, second.updated, second.removed, second.unchanged) == (1, 1, 1, 1)
    stored = {x.id: x for x in await db.read(load_entries)}
    assert set(stored) == {"1", "2", "4"} and stored["2"].question == "粗大ごみの申込"
    stamps = dict(await db.read(lambda c: c.execute("SELECT source_id, updated_at FROM faq_entries").fetchall()))
    assert stamps["1"] == NOW.isoformat()  # unchanged entries keep their stamp
    assert stamps["2"] == later.isoformat()
    info = await db.read(latest_import)
    assert info is not None and info.credit == "出典：テスト市" and info.source == "テスト市FAQ"


async def test_failed_import_changes_nothing(db: Database) -> None:
    await db.write(lambda c: import_faq(c, generic([e("1", "ごみの日"), e("2", "粗大ごみ")]), NOW))
    entries = [e(str(i), f"質問{i}") for i in range(10, 500)]
    # A NULL question (impossible through parse_faq) makes the database refuse the last batch.
    entries.append(dataclasses.replace(e("999", "x"), question=None))  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        await db.write(lambda c: import_faq(c, generic(entries), NOW))
    assert sorted(x.id for x in await db.read(load_entries)) == ["1", "2"]
    assert await db.read(lambda c: c.execute("SELECT count(*) FROM faq_imports").fetchone()[0]) == 1


async def test_naive_import_time_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="now"):
        await db.write(lambda c: import_faq(c, generic([e("1", "q")]), datetime(2026, 11, 27, 9, 0)))


async def test_entries_survive_reopening(store_target: str) -> None:
    path = store_target
    gateway = await open_store(path, {COMPONENT: MIGRATIONS})
    try:
        await gateway.write(lambda c: import_faq(c, generic([e("a", "税金の納付", category="税金")]), NOW))
    finally:
        await gateway.close()
    gateway = await open_store(path, {COMPONENT: MIGRATIONS})
    try:
        service = FaqService(gateway, fixed_clock(NOW))
        await service.load()
        assert [h.entry.id for h in service.search("税金", 5)] == ["a"]
        assert service.credit == "出典：テスト市"
        assert service.suggest("zei", [], 3)[0].id == "a"
    finally:
        await gateway.close()


# --- the ward's documents ----------------------------------------------------------------------


async def test_documents_import_is_idempotent_and_searched_beside_the_faq(db: Database) -> None:
    service = FaqService(db, fixed_clock(NOW))
    await service.import_parsed(parse_faq(FIXTURE.read_bytes(), FIXTURE.name))
    sources = read_folder(FIXTURES / "ward-docs")
    assert {info.key for info, _s in sources} == {"website", "kouhou", "guide"}
    first = [await service.import_documents(info, sections) for info, sections in sources]
    assert sum(c.added for c in first) >= 12 and sum(c.updated + c.removed for c in first) == 0
    again = [await service.import_documents(info, sections) for info, sections in sources]
    assert all(c.added == c.updated == c.removed == 0 for c in again)
    assert service.documents == sum(c.unchanged for c in again)

    hits = service.search_documents("期日前投票", 3)
    assert hits and hits[0].section.title.endswith("期日前投票")
    assert hits[0].section.source_label == "さくら区 暮らしのガイド 2026" and hits[0].section.url.startswith("https://")
    pdf = service.search_documents("道路の穴", 3)[0]  # from the 広報 PDF
    assert pdf.section.source == "kouhou" and pdf.section.url.endswith("#page=1")
    assert service.search_documents("学童 申し込み", 1)[0].section.url.endswith("houkago.html#moushikomi")
    assert service.get_document(hits[0].section.id) == hits[0].section

    # A source whose file lost a section: re-import removes exactly that section.
    info, sections = next((i, s) for i, s in sources if i.key == "website")
    fewer = await service.import_documents(info, sections[:-1])
    assert (fewer.removed, fewer.added, fewer.updated) == (1, 0, 0)


# --- authoring ---------------------------------------------------------------------------------


async def test_draft_publish_is_live_and_versioned(db: Database) -> None:
    clock_at = [NOW]
    audit: list[tuple[Any, ...]] = []

    async def record(*args: Any) -> None:
        audit.append(args)

    service = FaqService(db, lambda: clock_at[0], audit=record)
    await service.import_parsed(parse_faq(FIXTURE.read_bytes(), FIXTURE.name))
    assert is_weak(service.search("家庭用プリンターの回収", 5))

    gap = await service.log_search_gap(EDITOR, "家庭用プリンターの回収", "gomi")
    answer = "小型家電の回収ボックスに出せます。入らない大きさは粗大ごみです。"
    draft = Draft("家庭用プリンターは何ごみですか？", answer, "ごみ・リサイクル", None, ("小型家電",))
    saved = await service.save_draft(EDITOR, None, draft, ("search", gap["id"]))
    assert saved["id"] == "ed-0001" and saved["version"] == 1 and saved["status"] == "draft"
    assert service.get("ed-0001") is None  # a draft is not live
    assert [d["id"] for d in await service.drafts()] == ["ed-0001"]

    clock_at[0] = NOW + timedelta(minutes=5)
    await service.publish(EDITOR, "ed-0001", 1)
    assert service.search("プリンター 捨てたい", 3)[0].entry.id == "ed-0001"  # live without a restart
    answered = await service.gap_answers()
    assert answered[("search", gap["id"])]["entry"] == "ed-0001"
    with pytest.raises(AuthoringError, match="公開済み"):
        await service.publish(EDITOR, "ed-0001", 1)

    second = await service.save_draft(EDITOR, "ed-0001", dataclasses.replace(draft, answer="回収ボックスへ。"))
    assert second["version"] == 2
    assert service.get("ed-0001").answer.startswith("小型家電")  # type: ignore[union-attr]
    await service.publish(EDITOR, "ed-0001", 2)
    assert service.get("ed-0001").answer == "回収ボックスへ。"  # type: ignore[union-attr]

    retired = await service.retire(EDITOR, "ed-0001")
    assert retired["status"] == "retired" and service.get("ed-0001") is None
    history = await service.history("ed-0001")
    assert [(v["version"], v["status"], v["author"]) for v in history] == [
        (3, "retired", "kusei01"), (2, "published", "kusei01"), (1, "published", "kusei01")
    ]
    assert history[2]["published_at"] == (NOW + timedelta(minutes=5)).isoformat()
    assert [a[1] for a in audit] == ["create", "draft", "publish", "draft", "publish", "retire"]


async def test_drafts_with_personal_data_are_refused(db: Database) -> None:
    service = FaqService(db, fixed_clock(NOW))
    for answer in ("山田さん（090-1234-5678）に連絡", "taro@example.jp へ", "番号 1234 5678 9012"):
        with pytest.raises(AuthoringError) as caught:
            await service.save_draft(EDITOR, None, Draft("質問", answer, "その他"))
        assert caught.value.code == "personal_data"
    await service.save_draft(EDITOR, None, Draft("窓口の電話番号", "区役所代表 03-1234-5678 へ。", "施設"))
    with pytest.raises(AuthoringError, match="質問を入力"):
        await service.save_draft(EDITOR, None, Draft(" ", "回答", "その他"))
    with pytest.raises(AuthoringError) as missing:
        await service.save_draft(EDITOR, "no-such", Draft("q", "a", "c"))
    assert missing.value.status == 404


async def test_editor_synonyms_are_live(db: Database) -> None:
    service = FaqService(db, fixed_clock(NOW))
    await db.write(lambda c: import_faq(c, generic([e("1", "地域猫の相談窓口"), e("2", "公園の利用")]), NOW))
    await service.load()
    assert not service.search("外猫", 3)
    added = await service.add_synonym(EDITOR, "外猫 → 地域猫")
    assert added["rule"] == "外猫 → 地域猫"
    assert service.search("外猫", 1)[0].entry.id == "1"
    with pytest.raises(AuthoringError) as dup:
        await service.add_synonym(EDITOR, "外猫 -> 地域猫")
    assert dup.value.status == 409
    with pytest.raises(AuthoringError):
        await service.add_synonym(EDITOR, "ひとつだけ")
    await service.delete_synonym(EDITOR, added["id"])
    assert not service.search("外猫", 3)


async def test_old_search_gaps_are_purged(db: Database) -> None:
    clock_at = [NOW - timedelta(days=100)]
    service = FaqService(db, lambda: clock_at[0])
    await service.log_search_gap(EDITOR, "古い質問", None)
    clock_at[0] = NOW
    await service.log_search_gap(EDITOR, "新しい質問", None)
    assert await service.purge_old_search_gaps() == 1
    assert [g["text"] for g in await service.search_gaps()] == ["新しい質問"]
    assert await db.read(lambda c: authoring.search_gaps(c)) == await service.search_gaps()
