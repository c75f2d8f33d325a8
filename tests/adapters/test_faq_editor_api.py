"""The FAQ editors' API and the operators' gap logging through the real app (create_app, logins,
CSRF, records' audit): gap -> draft -> publish -> found by an operator; who may do what."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from e2e.browser import PASSWORD, MovableClock, StaffUser, build_operator_app, operator_settings

from cti import keys
from cti.core.clock import TOKYO
from faq.folder import read_folder

FIXTURES = Path(__file__).parent.parent / "fixtures" / "faq"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
USERS = [
    StaffUser("op1"),
    StaffUser("pi1", "department", "区政情報課", "kuseijoho"),
    StaffUser("tax1", "department", "税務課", "zeimu"),
    StaffUser("ad1", "admin"),
]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_operator_app(operator_settings(tmp_path, 8080), MovableClock(NOW), USERS)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def login(client: TestClient[Any, Any], user: str) -> dict[str, str]:
    client.session.cookie_jar.clear()
    resp = await client.post("/api/login", json={"user_id": user, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    return {"X-CSRF-Token": (await resp.json())["csrf_token"]}


async def test_gap_to_published_entry_found_by_operators(client: TestClient[Any, Any]) -> None:
    csrf = await login(client, "op1")
    body = await (await client.get("/api/faq/search", params={"q": "家庭用プリンターの回収"})).json()
    assert body["weak"] is True and body["notice"] == "近い回答が見つかりません"
    resp = await client.post("/api/faq/gaps", json={"query": "家庭用プリンターの回収", "category": "gomi"},
                             headers=csrf)
    assert resp.status == 201
    assert (await client.get("/api/faq/editor/gaps")).status == 403  # operators do not edit

    csrf = await login(client, "tax1")
    assert (await client.get("/api/faq/editor/gaps")).status == 403  # another department neither

    csrf = await login(client, "pi1")
    gaps = (await (await client.get("/api/faq/editor/gaps")).json())["items"]
    gap = next(g for g in gaps if g["kind"] == "search")
    assert gap["text"] == "家庭用プリンターの回収" and gap["category_label"] == "ごみ・リサイクル"
    draft = {"question": "家庭用プリンターは何ごみですか？", "answer": "小型家電の回収ボックスへ出してください。",
             "category": "ごみ・リサイクル", "keywords": ["小型家電"], "gap": {"kind": "search", "id": gap["id"]}}
    resp = await client.post("/api/faq/editor/drafts", json=draft, headers=csrf)
    assert resp.status == 201, await resp.text()
    saved = await resp.json()
    resp = await client.post("/api/faq/editor/drafts", json={**draft, "answer": "090-1111-2222 の山田へ"}, headers=csrf)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "personal_data"
    # a keyword the store would split into two (it keeps them one per line) is refused, not split
    resp = await client.post("/api/faq/editor/drafts", json={**draft, "keywords": ["小型\n家電"]}, headers=csrf)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "bad_keyword"
    # a string lists keywords one per line or by semicolons; 、 belongs to a caller's phrasing
    resp = await client.post("/api/faq/editor/drafts", json={**draft, "keywords": "捨てたい、どうする；小型家電"},
                             headers=csrf)
    assert resp.status == 201 and (await resp.json())["keywords"] == ["捨てたい、どうする", "小型家電"]
    resp = await client.post(f"/api/faq/editor/entries/{saved['id']}/versions/{saved['version']}/publish",
                             json={}, headers=csrf)
    assert resp.status == 200, await resp.text()
    answered = (await (await client.get("/api/faq/editor/gaps", params={"answered": "true"})).json())["items"]
    assert any(g["id"] == gap["id"] and g["answered"] and g["entry"] == saved["id"] for g in answered)
    report = (await (await client.get("/api/faq/editor/gaps/report")).json())["rows"]
    assert {"week": "2026-11-30", "category": "ごみ・リサイクル", "total": 1, "answered": 1} in report
    exported = await (await client.get("/api/faq/export")).json()
    assert saved["id"] in {e["id"] for e in exported["entries"]} and len(exported["entries"]) == 662

    await login(client, "op1")
    body = await (await client.get("/api/faq/search", params={"q": "プリンター 捨てたい"})).json()
    assert body["results"][0]["id"] == saved["id"] and body["weak"] is False
    audited = await client.app[keys.DATABASE].read(lambda conn: conn.execute(
        "SELECT actor, action, record_type, record_id FROM audit"
        " WHERE record_type IN ('faq_entry', 'faq_search_gap') ORDER BY seq"
    ).fetchall())
    assert [(r["actor"], r["action"], r["record_type"]) for r in audited] == [
        ("op1", "create", "faq_search_gap"), ("pi1", "draft", "faq_entry"), ("pi1", "draft", "faq_entry"),
        ("pi1", "publish", "faq_entry"),
    ]  # (the second draft: the keywords given as one string)


async def test_synonyms_and_documents_through_the_api(client: TestClient[Any, Any]) -> None:
    csrf = await login(client, "ad1")
    resp = await client.post("/api/faq/editor/synonyms", json={"rule": "ばそこん"}, headers=csrf)
    assert resp.status == 422
    resp = await client.post("/api/faq/editor/synonyms", json={"rule": "地域ねこ → 野良犬"}, headers=csrf)
    assert resp.status == 201
    synonyms = await (await client.get("/api/faq/editor/synonyms")).json()
    assert [s["rule"] for s in synonyms["editor"]] == ["地域ねこ → 野良犬"]
    assert "学童 = 放課後クラブ" in synonyms["shipped"]

    service = client.app[keys.FAQ]
    for info, sections in read_folder(FIXTURES / "ward-docs"):
        await service.import_documents(info, sections)
    body = await (await client.get("/api/faq/search", params={"q": "期日前投票"})).json()
    doc = body["documents"][0]
    assert doc["source"] == "さくら区 暮らしのガイド 2026" and doc["url"].startswith("https://www.city.sakura")
    assert body["weak"] is False  # the FAQ has nothing, but a document answers
    entry = await (await client.get(f"/api/faq/{doc['id']}")).json()
    assert entry["kind"] == "document" and "期日前投票所" in entry["answer"] and entry["url"] == doc["url"]


async def test_a_departments_callback_answer_becomes_an_entry(client: TestClient[Any, Any]) -> None:
    clock = client.app[keys.CLOCK]
    clock.at = datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)  # Friday evening: the office is closed
    csrf = await login(client, "op1")
    call = "1764800000.7"
    await client.app[keys.RECORDS].call_taken(call, "op1")  # the server, on the answer
    r = await client.post(f"/api/records/contacts/{call}/consent", json={"answer": "yes"}, headers=csrf)
    assert r.status == 201
    r = await client.post(f"/api/records/contacts/{call}/callbacks", headers=csrf, json={
        "name": "山田花子", "phone": "09012345678", "question": "軽自動車税の納付方法", "department": "zeimu"})
    assert r.status == 201, await r.text()
    callback = (await r.json())["id"]
    clock.at = datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)  # Monday: handed over to 税務課
    await client.app[keys.RECORDS].hand_over_due()
    csrf = await login(client, "tax1")
    version = (await (await client.get(f"/api/records/callbacks/{callback}")).json())["version"]
    r = await client.post(f"/api/records/callbacks/{callback}/start", headers=csrf, json={"version": version})
    assert r.status == 200, await r.text()
    r = await client.post(f"/api/records/callbacks/{callback}/attempts", headers=csrf,
                          json={"outcome": "reached", "version": (await r.json())["version"]})
    assert r.status == 200, await r.text()
    summary = "軽自動車税はコンビニとスマホ決済で納付できると案内"
    r = await client.post(f"/api/records/callbacks/{callback}/close", headers=csrf,
                          json={"summary": summary, "version": (await r.json())["version"]})
    assert r.status == 200, await r.text()

    csrf = await login(client, "pi1")
    gaps = (await (await client.get("/api/faq/editor/gaps")).json())["items"]
    gap = next(g for g in gaps if g["kind"] == "callback")
    assert gap["id"] == callback and gap["category_label"] == "税務課"
    assert "コンビニとスマホ決済" in gap["text"]
    draft = {"question": "軽自動車税はコンビニで納付できますか？", "answer": "コンビニとスマホ決済で納付できます。",
             "category": "税金", "gap": {"kind": "callback", "id": callback}}
    saved = await (await client.post("/api/faq/editor/drafts", json=draft, headers=csrf)).json()
    r = await client.post(f"/api/faq/editor/entries/{saved['id']}/versions/1/publish", json={}, headers=csrf)
    assert r.status == 200
    left = (await (await client.get("/api/faq/editor/gaps")).json())["items"]
    assert not [g for g in left if g["kind"] == "callback"]
    await login(client, "op1")
    body = await (await client.get("/api/faq/search", params={"q": "軽自動車税 コンビニ"})).json()
    assert body["results"][0]["id"] == saved["id"]


async def test_the_faq_editor_role_edits_the_faq_and_nothing_else(tmp_path: Path) -> None:
    users = [*USERS, StaffUser("ed1", "faq_editor", "FAQ担当")]
    app = build_operator_app(operator_settings(tmp_path, 8080), MovableClock(NOW), users)
    async with TestClient(TestServer(app)) as client:
        csrf = await login(client, "ed1")
        assert (await client.get("/faq/editor/")).status == 200
        draft = {"question": "区民農園の申込方法は？", "answer": "3月に抽選で受け付けます。", "category": "施設"}
        saved = await (await client.post("/api/faq/editor/drafts", json=draft, headers=csrf)).json()
        resp = await client.post(f"/api/faq/editor/entries/{saved['id']}/versions/1/publish", json={}, headers=csrf)
        assert resp.status == 200
        assert (await client.get("/api/faq/search", params={"q": "区民農園"})).status == 200  # any login reads
        for path in ("/api/department/inbox", "/api/supervisor/faq-gaps", "/department/"):
            assert (await client.get(path, allow_redirects=False)).status == 403, path
        assert (await client.get("/api/records/callbacks")).status == 403
        gaps = await (await client.get("/api/faq/editor/gaps")).json()
        assert gaps["unavailable"] == ["通話", "折り返し"]  # records' gaps are for 区政情報課 and supervisors


async def test_accounts_upgrade_keeps_users_and_accepts_the_new_role(tmp_path: Path) -> None:
    import sqlite3

    from access.accounts import MIGRATIONS as ACCOUNTS
    from cti.gateway import Database

    path = tmp_path / "old.sqlite3"
    old = await Database.open(path, {"accounts": ACCOUNTS["accounts"][:1]})
    await old.write(lambda c: c.execute(
        "INSERT INTO users VALUES ('op1', 'operator', NULL, '', 'h', 0, '2026-01-01', '2026-01-01')"))
    await old.write(lambda c: c.execute("INSERT INTO sessions VALUES ('t', 'op1', 'c', '2026-01-01', '2026-01-01')"))
    await old.close()
    new = await Database.open(path, ACCOUNTS)
    try:
        rows = await new.read(lambda c: c.execute("SELECT user_id, role FROM users").fetchall())
        assert [tuple(r) for r in rows] == [("op1", "operator")]
        assert await new.read(lambda c: c.execute("SELECT count(*) FROM sessions").fetchone()[0]) == 0
        await new.write(lambda c: c.execute(
            "INSERT INTO users VALUES ('ed1', 'faq_editor', NULL, '', 'h', 0, '2026-01-01', '2026-01-01')"))
        with pytest.raises(sqlite3.IntegrityError):  # sessions still belong to existing users
            await new.write(lambda c: c.execute("INSERT INTO sessions VALUES ('x', 'nobody', 'c', 'a', 'b')"))
        with pytest.raises(sqlite3.IntegrityError):
            await new.write(lambda c: c.execute(
                "INSERT INTO users VALUES ('x', 'root', NULL, '', 'h', 0, '2026-01-01', '2026-01-01')"))
    finally:
        await new.close()


async def test_documents_folder_is_imported_at_start_and_again_from_the_editor(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "ward-docs"
    shutil.copytree(FIXTURES / "ward-docs", folder)
    settings = operator_settings(tmp_path, 8080, faq={"documents_dir": str(folder)})
    app = build_operator_app(settings, MovableClock(NOW), USERS)
    async with TestClient(TestServer(app)) as client:
        started_with = app[keys.FAQ].documents
        assert started_with >= 12
        csrf = await login(client, "pi1")
        body = await (await client.post("/api/faq/editor/documents/reimport", json={}, headers=csrf)).json()
        assert all(s["added"] == s["updated"] == s["removed"] == 0 for s in body["sources"])  # idempotent
        guide = folder / "guide" / "kurashi.md"
        text = guide.read_text(encoding="utf-8").replace("期日前投票所は", "期日前投票の会場は")
        guide.write_text(text, encoding="utf-8")
        body = await (await client.post("/api/faq/editor/documents/reimport", json={}, headers=csrf)).json()
        changed = {s["key"]: (s["added"], s["updated"], s["removed"]) for s in body["sources"]}
        assert changed == {"guide": (0, 1, 0), "kouhou": (0, 0, 0), "website": (0, 0, 0)}
        found = await (await client.get("/api/faq/search", params={"q": "期日前投票の会場"})).json()
        assert "期日前投票の会場は" in found["documents"][0]["snippet"]  # live without a restart
        csrf = await login(client, "tax1")
        resp = await client.post("/api/faq/editor/documents/reimport", json={}, headers=csrf)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
