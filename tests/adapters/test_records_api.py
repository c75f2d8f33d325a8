"""The records HTTP API through aiohttp's test client, wired exactly as create_app will wire it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti import keys
from cti.app import put_settings, share_seats
from cti.calendar.rules import Calendars
from cti.config import Settings
from cti.core.clock import TOKYO
from cti.core.http import PRINCIPAL_KEY
from cti.core.principal import Principal, Role
from cti.gateway import Database
from records.plugin import records_ctx, setup_routes
from records.schema import migrations

FRIDAY_EVENING = datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)
MONDAY_OPENING = datetime(2026, 12, 7, 8, 30, tzinfo=TOKYO)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@web.middleware
async def principal_from_header(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Stands in for the auth middleware: X-Test-Principal: user;role;department."""
    header = request.headers.get("X-Test-Principal")
    if header:
        user, role, dept = header.split(";")
        request[PRINCIPAL_KEY] = Principal(user, Role(role), dept or None, request.remote or "?")
    return await handler(request)


def who(user: str, role: str, dept: str = "") -> dict[str, str]:
    return {"X-Test-Principal": f"{user};{role};{dept}"}


OP = who("op1", "operator")
OP2 = who("op2", "operator")
ZEIMU = who("tax1", "department", "zeimu")
ZEIMU2 = who("tax2", "department", "zeimu")
KOSEKI = who("reg1", "department", "koseki")
KUSEI = who("pi1", "department", "kuseijoho")

CALLBACK = {"name": "山田花子", "phone": "０９０－１２３４－５６７８", "question": "粗大ごみの出し方",
            "department": "zeimu"}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Clock, web.Application]]:
    settings = Settings()
    clock = Clock(FRIDAY_EVENING)
    app = web.Application(middlewares=[principal_from_header])
    put_settings(app, settings)
    share_seats(app)  # as create_app: records reads screenpop's seat map
    app[keys.CLOCK] = clock
    app[keys.CALENDARS] = Calendars.from_settings(settings.calendar)

    async def db_ctx(app: web.Application) -> AsyncIterator[None]:
        app[keys.DATABASE] = await Database.open(tmp_path / "cti.sqlite3", migrations())
        yield
        await app[keys.DATABASE].close()

    app.cleanup_ctx.append(db_ctx)
    app.cleanup_ctx.append(records_ctx)
    setup_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client, clock, app


async def counts(app: web.Application) -> dict[str, int]:
    tables = ("contacts", "consents", "callbacks", "attempts", "audit")
    return await app[keys.DATABASE].read(lambda c: {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                                    for t in tables})


async def fetch(app: web.Application, sql: str) -> list[tuple[Any, ...]]:
    return await app[keys.DATABASE].read(lambda c: [tuple(r) for r in c.execute(sql).fetchall()])


async def take_call(client: TestClient[Any, Any], call_id: str = "1733300000.7", consent: str = "yes") -> str:
    # the server creates the contact when the tracker sees op1 answer (no browser request)
    await client.server.app[keys.RECORDS].call_taken(call_id, "op1", caller_number="0312345678")
    r = await client.post(f"/api/records/contacts/{call_id}/consent", json={"answer": consent}, headers=OP)
    assert r.status == 201, await r.text()
    return call_id


async def test_full_flow_over_http(env: Any) -> None:
    client, clock, app = env
    call = await take_call(client)
    r = await client.post(f"/api/records/contacts/{call}/callbacks", json=CALLBACK, headers=OP)
    assert r.status == 201
    cb = await r.json()
    assert cb["phone"] == "09012345678" and cb["handover_date"] == "2026-12-07"
    assert cb["phone_display"] == "090-1234-5678"  # as people read it (records/phones.py)

    clock.at = MONDAY_OPENING
    await app[keys.RECORDS].hand_over_due()
    r = await client.get("/api/records/callbacks", headers=ZEIMU)
    assert [c["id"] for c in (await r.json())["items"]] == [cb["id"]]
    r = await client.post(f"/api/records/callbacks/{cb['id']}/start", json={"version": 2}, headers=ZEIMU)
    assert r.status == 200 and (await r.json())["status"] == "in_progress"
    r = await client.post(f"/api/records/callbacks/{cb['id']}/attempts",
                          json={"version": 3, "outcome": "reached"}, headers=ZEIMU)
    assert r.status == 200
    r = await client.post(f"/api/records/callbacks/{cb['id']}/close",
                          json={"version": 4, "summary": "案内済み"}, headers=ZEIMU)
    body = await r.json()
    assert r.status == 200 and body["status"] == "closed" and body["status_text"] == "完了"


async def test_anonymous_is_401_with_code(env: Any) -> None:
    client, _, app = env
    before = await counts(app)
    for method, path in (("GET", "/api/records/callbacks"), ("POST", "/api/records/contacts"),
                         ("GET", "/api/records/callbacks/1")):
        r = await client.request(method, path, json={"call_id": "x"})
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "unauthenticated"
    assert await counts(app) == before


async def test_bad_phone_is_422_naming_the_field_and_saves_nothing(env: Any) -> None:
    client, _, app = env
    call = await take_call(client)
    before = await counts(app)
    r = await client.post(f"/api/records/contacts/{call}/callbacks", json={**CALLBACK, "phone": "03-123-456"},
                          headers=OP)
    assert r.status == 422
    error = (await r.json())["error"]
    assert error["code"] == "invalid_phone" and error["field"] == "phone"
    assert "電話番号" in error["message"]
    assert await counts(app) == before



async def test_every_bad_field_comes_back_in_one_422(env: Any) -> None:
    client, _, app = env
    call = await take_call(client)
    before = await counts(app)
    body = {**CALLBACK, "name": "", "phone": "03-123-456", "department": "nasa"}
    r = await client.post(f"/api/records/contacts/{call}/callbacks", json=body, headers=OP)
    assert r.status == 422
    answer = await r.json()
    assert answer["error"]["field"] == "name"  # the first, as before
    assert [(e["field"], e["code"]) for e in answer["errors"]] == [
        ("name", "missing_field"), ("phone", "invalid_phone"), ("department", "unknown_department")]
    assert await counts(app) == before


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({**CALLBACK, "address": "中央区1-1"}, 422, "reason_required", "address_reason"),
        ({**CALLBACK, "department": "nasa"}, 422, "unknown_department", "department"),
        ({**CALLBACK, "question": "あ" * 2001}, 422, "too_long", "question"),
        ({**CALLBACK, "shoe_size": "27"}, 422, "unknown_field", "shoe_size"),
        ({k: v for k, v in CALLBACK.items() if k != "name"}, 422, "missing_field", "name"),
    ],
)
async def test_bad_input_codes(env: Any, body: dict[str, Any], status: int, code: str, field: str) -> None:
    client, _, app = env
    call = await take_call(client)
    before = await counts(app)
    r = await client.post(f"/api/records/contacts/{call}/callbacks", json=body, headers=OP)
    assert r.status == status
    assert (await r.json())["error"] | {"message": ""} == {"code": code, "field": field, "message": ""}
    assert await counts(app) == before


async def test_unknown_call_and_refused_consent(env: Any) -> None:
    client, _, app = env
    r = await client.post("/api/records/contacts/nope/callbacks", json=CALLBACK, headers=OP)
    assert r.status == 404 and (await r.json())["error"]["code"] == "unknown_call"
    call = await take_call(client, consent="no")
    before = await counts(app)
    r = await client.post(f"/api/records/contacts/{call}/callbacks", json=CALLBACK, headers=OP)
    assert r.status == 409 and (await r.json())["error"]["code"] == "consent_refused"
    assert await counts(app) == before
    r = await client.post("/api/records/contacts/x/callbacks", data=b"{not json", headers=OP)
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"


async def test_department_scoping_and_audited_403(env: Any) -> None:
    client, clock, app = env
    call = await take_call(client)
    cb = await (await client.post(f"/api/records/contacts/{call}/callbacks", json=CALLBACK, headers=OP)).json()
    clock.at = MONDAY_OPENING
    await app[keys.RECORDS].hand_over_due()
    assert (await client.get(f"/api/records/callbacks/{cb['id']}", headers=ZEIMU)).status == 200
    assert (await client.get(f"/api/records/callbacks/{cb['id']}", headers=KUSEI)).status == 200
    r = await client.get(f"/api/records/callbacks/{cb['id']}", headers=KOSEKI)
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"  # like a missing record
    r = await client.post(f"/api/records/callbacks/{cb['id']}/start", json={"version": 2}, headers=KOSEKI)
    assert r.status == 404
    assert (await (await client.get("/api/records/callbacks", headers=KOSEKI)).json())["items"] == []
    assert (await client.get("/api/records/callbacks", headers=OP)).status == 403
    assert (await client.get(f"/api/records/contacts/{call}", headers=OP2)).status == 404
    assert (await client.get(f"/api/records/contacts/{call}", headers=OP)).status == 200
    denied = await fetch(app, "SELECT actor, action, outcome, record_id FROM audit WHERE outcome = 'denied'"
                              " ORDER BY seq")
    assert denied == [("reg1", "read", "denied", str(cb["id"])), ("reg1", "start", "denied", str(cb["id"])),
                      ("op1", "list", "denied", None), ("op2", "read", "denied", call)]
    # koseki's (empty) list read is audited too
    assert (await fetch(app, "SELECT count(*) FROM audit WHERE action = 'list' AND outcome = 'ok'"))[0][0] == 1


async def test_concurrent_updates_one_wins_other_409(env: Any) -> None:
    client, clock, app = env
    call = await take_call(client)
    cb = await (await client.post(f"/api/records/contacts/{call}/callbacks", json=CALLBACK, headers=OP)).json()
    clock.at = MONDAY_OPENING
    await app[keys.RECORDS].hand_over_due()
    url = f"/api/records/callbacks/{cb['id']}/start"
    r1, r2 = await asyncio.gather(client.post(url, json={"version": 2}, headers=ZEIMU),
                                  client.post(url, json={"version": 2}, headers=ZEIMU2))
    assert sorted([r1.status, r2.status]) == [200, 409]
    loser = r1 if r1.status == 409 else r2
    assert (await loser.json())["error"]["code"] == "version_conflict"


async def test_wrong_transition_is_409(env: Any) -> None:
    client, _, _ = env
    call = await take_call(client)
    cb = await (await client.post(f"/api/records/contacts/{call}/callbacks", json=CALLBACK, headers=OP)).json()
    r = await client.post(f"/api/records/callbacks/{cb['id']}/close", json={"version": 1, "summary": "x"},
                          headers=KUSEI)
    assert r.status == 409
    err = (await r.json())["error"]
    assert err["code"] == "invalid_transition" and "受付済み" in err["message"]


async def test_openapi_document_lists_routes_and_schemas(env: Any) -> None:
    client, _, _ = env
    r = await client.get("/api/openapi.json")
    doc = await r.json()
    assert doc["openapi"].startswith("3.")
    assert "post" in doc["paths"]["/api/records/contacts/{call_id}/callbacks"]
    schemas = doc["components"]["schemas"]
    assert {"CallbackIn", "CallbackOut", "ErrorOut", "ConsentIn", "AttemptIn"} <= set(schemas)
    assert "phone" in schemas["CallbackIn"]["properties"]
    ref = doc["paths"]["/api/records/callbacks/{id}"]["get"]["responses"]["403"]
    assert ref["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorOut"


async def test_periodic_task_hands_over_and_is_cancelled_on_shutdown(tmp_path: Path) -> None:
    settings = Settings()
    clock = Clock(MONDAY_OPENING + timedelta(hours=1))
    app = web.Application()
    put_settings(app, settings)
    share_seats(app)  # as create_app: records reads screenpop's seat map
    app[keys.CLOCK] = clock
    app[keys.CALENDARS] = Calendars.from_settings(settings.calendar)
    db = await Database.open(tmp_path / "p.sqlite3", migrations())
    for sql in (
        "INSERT INTO contacts(call_id, operator, started_at) VALUES ('c', 'op', '2026-12-04T19:00:00+09:00')",
        "INSERT INTO consents(call_id, answer, script_id, script_version, operator, at)"
        " VALUES ('c', 'yes', 's', 1, 'op', '2026-12-04T19:00:00+09:00')",
        "INSERT INTO callbacks(call_id, consent_id, department, collected_at, collected_by, handover_date,"
        " handover_at, due_by) VALUES ('c', 1, 'zeimu', '2026-12-04T19:00:00+09:00', 'op', '2026-12-07',"
        " '2026-12-07T08:30:00.000000+09:00', '2026-12-07T17:15:00.000000+09:00')",
    ):
        await db.write(lambda c, sql=sql: c.execute(sql))
    app[keys.DATABASE] = db
    app.cleanup_ctx.append(records_ctx)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        for _ in range(100):
            if await db.read(lambda c: c.execute("SELECT status FROM callbacks").fetchone()[0]) == "handed_over":
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the periodic task did not hand the record over")
    finally:
        await runner.cleanup()
        await db.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "records-periodic"]


async def test_the_daily_task_purges_on_start(tmp_path: Path) -> None:
    settings = Settings()
    clock = Clock(FRIDAY_EVENING)
    db = await Database.open(tmp_path / "d.sqlite3", migrations())

    def make_app() -> web.Application:
        app = web.Application(middlewares=[principal_from_header])
        put_settings(app, settings)
        share_seats(app)  # as create_app: records reads screenpop's seat map
        app[keys.CLOCK] = clock
        app[keys.CALENDARS] = Calendars.from_settings(settings.calendar)
        app[keys.DATABASE] = db
        app.cleanup_ctx.append(records_ctx)
        setup_routes(app)
        return app

    async with TestClient(TestServer(make_app())) as client:
        call = await take_call(client, "old-call")
        r = await client.post(f"/api/records/contacts/{call}/callbacks", json=CALLBACK, headers=OP)
        assert r.status == 201
    clock.at = FRIDAY_EVENING + timedelta(days=365, hours=1)
    runner = web.AppRunner(make_app())
    await runner.setup()
    try:
        for _ in range(100):
            if await db.read(lambda c: c.execute("SELECT name FROM callbacks").fetchone()[0]) is None:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the daily retention task did not purge the year-old record")
    finally:
        await runner.cleanup()
        await db.close()
    assert "山田花子".encode() not in (tmp_path / "d.sqlite3").read_bytes()


async def test_a_time_without_offset_is_422_not_500(env: Any) -> None:
    client, _, app = env
    before = await counts(app)
    # a browser may not set started_at at all any more (the server's clock does): still 422 naming it
    r = await client.post("/api/records/contacts", json={"started_at": "2026-12-04T19:00:00"}, headers=OP)
    assert r.status == 422
    assert (await r.json())["error"]["field"] == "started_at"
    r = await client.post("/api/records/contacts", json={"faq_entries": "not-a-list"}, headers=OP)
    assert r.status == 422 and (await r.json())["error"]["field"] == "faq_entries"
    assert await counts(app) == before


async def test_faq_gaps_for_the_faq_authors(env: Any) -> None:
    client, _, app = env
    await app[keys.RECORDS].call_taken("gap1", "op1", ivr_category="gomi")
    # the note is free text (personal data): only on a call with the caller's consent
    assert (await client.post("/api/records/contacts/gap1/consent", json={"answer": "yes"}, headers=OP)).status == 201
    r = await client.patch("/api/records/contacts/gap1", json={"outcome": "unanswered", "faq_entries": ["q12"],
                                                               "gap_note": "犬の登録の場所"}, headers=OP)
    assert r.status == 200 and (await r.json())["outcome"] == "unanswered"
    assert (await client.get("/api/records/faq-gaps", headers=OP)).status == 403
    assert (await client.get("/api/records/faq-gaps", headers=ZEIMU)).status == 403
    r = await client.get("/api/records/faq-gaps", headers=who("sv1", "supervisor"))
    items = (await r.json())["items"]
    assert [(i["call_id"], i["category"], i["faq_entries"], i["note"]) for i in items] == [
        ("gap1", "gomi", ["q12"], "犬の登録の場所")]
    assert await fetch(app, "SELECT actor, record_type FROM audit WHERE action = 'list' AND outcome = 'ok'") == [
        ("sv1", "faq_gap")]


async def test_list_limit_out_of_range_is_refused_naming_the_field(env: Any) -> None:
    client, _, _ = env
    for limit in ("-5", "0", "100000", "ten"):
        r = await client.get(f"/api/records/callbacks?limit={limit}", headers=ZEIMU)
        assert r.status == 422, limit
        assert (await r.json())["error"]["field"] == "limit"
    assert (await client.get("/api/records/callbacks?limit=5", headers=ZEIMU)).status == 200


async def test_a_refused_role_gets_403_before_its_body_is_read(env: Any) -> None:
    client, _, _ = env
    # department staff may not create contacts or callbacks; a malformed body must not turn that into 422
    r = await client.post("/api/records/contacts", data=b"{not json", headers=ZEIMU)
    assert r.status == 403
    r = await client.post("/api/records/contacts/x/callbacks", json={"name": ""}, headers=ZEIMU)
    assert r.status == 403
    r = await client.post("/api/records/callbacks/1/close", json={}, headers=OP)
    assert r.status == 403
    r = await client.post("/api/records/contacts", data=b"{not json")
    assert r.status == 401


async def test_a_callback_save_repeated_with_its_idempotency_key_is_one_record(env: Any) -> None:
    client, _, app = env
    call = await take_call(client)
    path = f"/api/records/contacts/{call}/callbacks"
    r = await client.post(path, json=CALLBACK, headers={**OP, "Idempotency-Key": "bad key!"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request_key"
    key = {**OP, "Idempotency-Key": "5b0c6a1e-3f2d-4e8a-9b7c-1d2e3f4a5b6c"}
    first = await client.post(path, json=CALLBACK, headers=key)
    again = await client.post(path, json=CALLBACK, headers=key)  # the first answer was lost
    assert (first.status, again.status) == (201, 201)
    assert (await first.json())["id"] == (await again.json())["id"]
    assert await fetch(app, "SELECT count(*) FROM callbacks") == [(1,)]
