"""Reports from the DB: domain events fill the call log, operators' contacts and callbacks add to it;
the daily/monthly report matches a known set of calls, CSV is for supervisors/admins only and audited,
and neither carries personal data. Also: the FAQ gaps list for the FAQ authors."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

from supervisor_env import Env, make_env

from cti import keys
from cti.core.clock import TOKYO
from supervision.service import SUPERVISOR
from telephony.events import CallAbandoned, CallArrived, CallEnded, CallQueued, CallRouted, OperatorConnected

FRIDAY_EVENING = datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)
MONDAY = datetime(2026, 12, 7, 0, 0, tzinfo=TOKYO)
CALLER = "0312345678"
OP_IF = "PJSIP/op101"


def m(h: int, mi: int = 0, s: int = 0) -> datetime:
    return MONDAY + timedelta(hours=h, minutes=mi, seconds=s)


def ended(call_id: str, at: datetime, reason: str) -> CallEnded:
    return CallEnded(call_id=call_id, at=at, reason=reason, hung_up_by="citizen", cause=16, cause_text=None,
                     last_state="Up", duration_s=60.0, talk_s=None, interface=None)


def arrived(call_id: str, at: datetime) -> CallArrived:
    return CallArrived(call_id=call_id, at=at, caller_number=CALLER, caller_name="ヤマダ", dialled_number="0301110000")


def monday_events() -> list[object]:
    return [
        arrived("c1", m(10)), CallRouted(call_id="c1", at=m(10), route="open", reason=None, category=None),
        CallQueued(call_id="c1", at=m(10, 0, 5), queue="operators", position=1, category="koseki"),
        OperatorConnected(call_id="c1", at=m(10, 0, 25), interface=OP_IF, member_name=None, queue="operators",
                          hold_time=20),
        ended("c1", m(10, 5), "answered"),
        arrived("c2", m(10, 10)),
        CallQueued(call_id="c2", at=m(10, 10, 2), queue="operators", position=1, category="zei"),
        CallAbandoned(call_id="c2", at=m(10, 11, 2), queue="operators", position=1, hold_time=60),
        ended("c2", m(10, 11, 2), "abandoned"),
        arrived("c3", m(11)),
        CallQueued(call_id="c3", at=m(11, 0, 1), queue="operators", position=1, category="zei"),
        OperatorConnected(call_id="c3", at=m(11, 0, 41), interface=OP_IF, member_name=None, queue="operators",
                          hold_time=40),
        ended("c3", m(11, 9), "answered"),
        arrived("c4", m(23)), CallRouted(call_id="c4", at=m(23), route="closed", reason="night", category=None),
        ended("c4", m(23, 1), "closed"),
    ]


async def known_day(env: Env) -> None:
    """Friday evening: one callback for 税務課; Monday: four calls, c1 resolved by op1."""
    env.clock.at = FRIDAY_EVENING
    csrf = await env.login("op1")
    await env.app[keys.RECORDS].call_taken("fri-1", "op1", caller_number=CALLER)  # the server, on the answer
    assert (await env.client.post("/api/records/contacts/fri-1/consent", json={"answer": "yes"},
                                  headers=csrf)).status == 201
    r = await env.client.post("/api/records/contacts/fri-1/callbacks", headers=csrf, json={
        "name": "山田花子", "phone": "09012345678", "question": "固定資産税の減免", "department": "zeimu"})
    assert r.status == 201
    env.clock.at = m(8, 30)
    await env.app[keys.RECORDS].hand_over_due()
    sup = env.app[SUPERVISOR].feed
    sup.on_domain_events(monday_events())
    env.clock.at = m(10, 1)
    csrf = await env.login("op1")  # the Friday session has expired
    env.clock.at = m(10, 0, 25)  # the server creates the contact when op1 answers
    await env.app[keys.RECORDS].call_taken("c1", "op1", caller_number=CALLER, ivr_category="koseki")
    env.clock.at = m(10, 1)
    assert (await env.client.patch("/api/records/contacts/c1", json={"outcome": "resolved"},
                                   headers=csrf)).status == 200
    for _ in range(200):  # the call-log writer is an owned background task
        if await env.scalar("SELECT count(*) FROM call_log WHERE ended_at IS NOT NULL") == 4:
            break
        await asyncio.sleep(0.01)
    assert await env.scalar("SELECT count(*) FROM call_log WHERE ended_at IS NOT NULL") == 4
    env.clock.at = m(23, 30)


async def test_daily_report_matches_the_known_calls(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target) as env:
        await known_day(env)
        await env.login("sv1")
        r = await env.client.get("/api/reports?kind=daily&period=2026-12-07")
        assert r.status == 200, await r.text()
        report = await r.json()
        tot = report["totals"]
        assert (tot["offered"], tot["answered"], tot["abandoned"], tot["after_hours"]) == (4, 2, 1, 1)
        assert tot["avg_wait_seconds"] == 30.0 and tot["p90_wait_seconds"] == 40.0
        assert tot["outcomes"]["resolved"] == 1
        hours = {h["hour"]: h["offered"] for h in report["by_hour"] if h["offered"]}
        assert hours == {10: 2, 11: 1, 23: 1}
        cats = {c["category"]: c["offered"] for c in report["by_category"]}
        assert cats == {"koseki": 1, "zei": 2, "(未分類)": 1}
        assert [c["label"] for c in report["by_category"]] == ["未分類", "戸籍・住民票", "税"]
        zeimu = next(d for d in report["callbacks_by_department"] if d["department"] == "zeimu")
        assert zeimu == {"department": "zeimu", "name": "税務課", "created": 0, "handed_over": 1, "closed": 0,
                         "overdue": 1}
        r = await env.client.get("/api/reports?kind=monthly&period=2026-12")
        monthly = await r.json()
        assert monthly["totals"]["offered"] == 5  # + the Friday contact
        zeimu = next(d for d in monthly["callbacks_by_department"] if d["department"] == "zeimu")
        assert zeimu["created"] == 1
        r = await env.client.get("/api/reports?kind=weekly&period=2026-12")
        assert r.status == 422 and (await r.json())["error"]["field"] == "period"


async def test_periods_at_the_ends_of_the_calendar_are_refused_not_a_server_error(
    tmp_path: Path, store_target: str,
) -> None:
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target) as env:
        await env.login("sv1")
        for path in ("/api/reports?kind=daily&period=9999-12-31", "/api/reports?kind=monthly&period=9999-12",
                     "/api/reports.csv?kind=daily&period=9999-12-31", "/api/reports?kind=daily&period=0001-01-01",
                     "/api/reports?kind=monthly&period=0000-01", "/api/reports?kind=monthly&period=1999-12"):
            r = await env.client.get(path)
            assert r.status == 422, (path, r.status)
            error = (await r.json())["error"]
            assert error["field"] == "period" and "2000年から2100年" in error["message"]
        assert (await env.client.get("/api/reports?kind=daily&period=2100-12-31")).status == 200


async def test_csv_only_for_supervisors_and_admins_and_audited(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target) as env:
        await known_day(env)
        for user in ("op1", "tax1", "pi1"):
            await env.login(user)
            r = await env.client.get("/api/reports.csv?kind=daily&period=2026-12-07")
            assert r.status == 403, user
            assert (await env.client.get("/api/reports?kind=daily&period=2026-12-07")).status == 403
        assert await env.audit(action="export") == []
        for user in ("sv1", "ad1"):
            await env.login(user)
            r = await env.client.get("/api/reports.csv?kind=daily&period=2026-12-07")
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/csv")
            assert "attachment" in r.headers["Content-Disposition"]
            text = (await r.read()).decode("utf-8-sig")
            rows = list(csv.reader(io.StringIO(text)))
            assert rows[0] == ["期間", "2026-12-07", "日次"]
            assert rows[2] == ["合計", "全体", "4", "2", "1", "1", "30.0", "40.0", "", "", "", ""]
            assert {r[1] for r in rows if r[0] == "分類別"} == {"未分類", "戸籍・住民票", "税"}
            assert "税務課" in {r[1] for r in rows if r[0] == "担当課別"}
            assert not {"koseki", "zei", "zeimu", "daily"} & {cell for r in rows for cell in r}
        exports = await env.audit(action="export")
        assert [(e["actor"], e["record_type"], e["record_id"]) for e in exports] == [
            ("sv1", "report", "2026-12-07"), ("ad1", "report", "2026-12-07")]


async def test_reports_carry_no_personal_data(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target) as env:
        await known_day(env)
        await env.login("sv1")
        text = await (await env.client.get("/api/reports?kind=monthly&period=2026-12")).text()
        text += (await (await env.client.get("/api/reports.csv?kind=monthly&period=2026-12")).read()).decode()
        for personal in (CALLER, "09012345678", "山田", "ヤマダ", "固定資産税の減免", "fri-1", "c1"):
            assert personal not in text
        # nor does the call log keep the caller's number
        rows = await env.app[keys.DATABASE].read(lambda conn: conn.execute("SELECT * FROM call_log").fetchall())
        assert rows and CALLER not in str([tuple(r) for r in rows])


async def test_faq_gaps_for_the_faq_authors(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, m(10), store=store_target) as env:
        csrf = await env.login("op1")
        await env.app[keys.RECORDS].call_taken("g1", "op1", ivr_category="gomi")  # the server, on the answer
        # the note is free text (personal data): only on a call with the caller's consent
        assert (await env.client.post("/api/records/contacts/g1/consent", json={"answer": "yes"},
                                      headers=csrf)).status == 201
        r = await env.client.patch("/api/records/contacts/g1", headers=csrf, json={
            "outcome": "unanswered", "faq_entries": ["faq-12"], "gap_note": "粗大ごみの手数料券の販売店"})
        assert r.status == 200, await r.text()
        assert (await env.client.get("/api/supervisor/faq-gaps")).status == 403
        await env.login("sv1")
        r = await env.client.get("/api/supervisor/faq-gaps")
        assert r.status == 200
        body = await r.json()
        assert [(g["category"], g["faq_entries"], g["note"]) for g in body["items"]] == [
            ("gomi", ["faq-12"], "粗大ごみの手数料券の販売店")]
        assert body["by_category"] == {"gomi": 1}
        assert body["items"][0]["category_label"] == "ごみ・リサイクル"
        assert body["by_category_label"] == {"ごみ・リサイクル": 1}
        assert len(await env.audit(action="list", record_type="faq_gap", actor="sv1")) == 1
