"""Reports API: reads call, contact and callback rows for a period and hands them to supervision.reports.

    GET /api/reports?kind=daily&period=2026-11-27      JSON report (supervisors, admins)
    GET /api/reports.csv?kind=monthly&period=2026-11   CSV download (supervisors, admins; audited)
    GET /api/supervisor/faq-gaps?limit=100             questions operators could not answer (audited)

Only ids, times and codes are read for reports (never caller numbers or free text), so a report
cannot carry personal data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from datetime import datetime
from typing import Any

from aiohttp import web

from access.route_access import SUPERVISORS, require
from cti.core import keys as core_keys
from cti.core.http import ApiError, json_response
from cti.core.logs import log_event
from cti.core.principal import Principal
from cti.gateway import DATABASE, Gateway
from faq.index import CATEGORY_LABELS
from records import keys as records_keys
from records.api import guarded
from records.audit_trail import append_audit
from records.rules import iso
from supervision.reports import CallbackRow, CallRow, Period, build_report, parse_period, report_csv
from supervision.wall_view import category_label

logger = logging.getLogger("supervision.reports")

def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


Raw = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _tuples(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Plain tuples, not sqlite3.Row: a month is ~300,000 rows, and tuples are made and read faster."""
    cur = conn.cursor()
    cur.row_factory = None
    return list(cur.execute(sql, params).fetchall())


def fetch_raw(conn: sqlite3.Connection, period: Period) -> Raw:
    """(read) Rows of the call log, the contacts and the callbacks that may count in the period
    (index range scans only; no personal-data column is read)."""
    start, end = iso(period.start), iso(period.end)
    log = _tuples(conn, "SELECT call_id, arrived_at, category, queued_at, answered_at, abandoned, after_hours"
                  " FROM call_log WHERE arrived_at >= ? AND arrived_at < ?", (start, end))
    contacts = _tuples(
        conn,
        "SELECT c.call_id, c.started_at, c.ivr_category, c.outcome FROM call_log l"
        " JOIN contacts c ON c.call_id = l.call_id WHERE l.arrived_at >= ? AND l.arrived_at < ?"
        " UNION SELECT c.call_id, c.started_at, c.ivr_category, c.outcome FROM contacts c"
        " WHERE c.started_at >= ? AND c.started_at < ?"
        " AND NOT EXISTS (SELECT 1 FROM call_log l WHERE l.call_id = c.call_id)", (start, end, start, end))
    callbacks = _tuples(conn, "SELECT id, department, collected_at, due_by, status, handed_over_at, closed_at"
                        " FROM callbacks WHERE collected_at < ?", (end,))
    return log, contacts, callbacks


def to_rows(raw: Raw) -> tuple[list[CallRow], list[CallbackRow]]:
    """The report's input rows (CPU only: run it off the event loop for big periods)."""
    log_rows, contact_rows, callback_rows = raw
    log = {r[0]: r for r in log_rows}
    contacts = {r[0]: r for r in contact_rows}
    calls: list[CallRow] = []
    for call_id in sorted(set(log) | set(contacts)):
        lg, ct = log.get(call_id), contacts.get(call_id)
        arrived = _dt(lg[1]) if lg else _dt(ct[1]) if ct else None
        assert arrived is not None
        answered = _dt(lg[4]) if lg else None
        queued = _dt(lg[3]) if lg else None
        wait = (answered - (queued or arrived)).total_seconds() if answered and lg else None
        category = (ct[2] if ct and ct[2] else None) or (lg[2] if lg else None)
        calls.append(CallRow(
            call_id=call_id, arrived_at=arrived, category=category,
            answered_at=answered or (_dt(ct[1]) if ct else None),
            abandoned=bool(lg[5]) if lg else False,
            after_hours=bool(lg[6]) if lg else False,
            wait_seconds=max(0.0, wait) if wait is not None else None,
            outcome=ct[3] if ct else None,
        ))
    callbacks: list[CallbackRow] = []
    for cb_id, department, collected_at, due_by_text, status, handed_over_at, closed_at in callback_rows:
        due_by, collected = _dt(due_by_text), _dt(collected_at)
        assert due_by is not None and collected is not None
        callbacks.append(CallbackRow(int(cb_id), department, collected, due_by, status,
                                     _dt(handed_over_at), _dt(closed_at)))
    return calls, callbacks


async def load_rows(db: Gateway, period: Period) -> tuple[list[CallRow], list[CallbackRow]]:
    """The calls that arrived in the period (call log joined with contacts) and every callback row
    that may count in it (created before its end)."""
    raw = await db.read(lambda conn: fetch_raw(conn, period))
    return await asyncio.to_thread(to_rows, raw)  # converted off the event loop


async def compute(request: web.Request) -> tuple[Period, dict[str, Any]]:
    kind = request.query.get("kind", "daily")
    value = request.query.get("period")
    now = request.app[core_keys.CLOCK]()
    if not value:
        value = now.date().isoformat() if kind == "daily" else now.strftime("%Y-%m")
    try:
        period = parse_period(kind, value)
    except ValueError as exc:
        raise ApiError(422, "invalid_period", str(exc), "period") from None
    calls, callbacks = await load_rows(request.app[DATABASE], period)
    names = {d.code: d.name for d in request.app[records_keys.SETTINGS].departments}
    # CPU-bound for a busy month: computed in a thread so calls, pops and routing keep flowing.
    report = await asyncio.to_thread(build_report, period, calls, callbacks, now=now, departments=list(names),
                                     category_labels=CATEGORY_LABELS)
    for row in report["callbacks_by_department"]:
        row["name"] = names.get(row["department"], row["department"])
    return period, report


@guarded
async def get_report(request: web.Request) -> web.StreamResponse:
    require(request, SUPERVISORS)
    _period, report = await compute(request)
    return json_response(report)


@guarded
async def get_report_csv(request: web.Request) -> web.StreamResponse:
    who = require(request, SUPERVISORS)
    period, report = await compute(request)
    now = request.app[core_keys.CLOCK]()
    await request.app[DATABASE].write(lambda conn: append_audit(
        conn, who, "export", "report", period.label, now, detail={"kind": period.kind, "format": "csv"}))
    log_event(logger, "report_exported", user=who.user_id, period=period.label, kind=period.kind)
    body = "\ufeff" + await asyncio.to_thread(report_csv, report)  # BOM: Excel opens UTF-8 Japanese correctly
    return web.Response(
        body=body.encode("utf-8"), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="cti-report-{period.kind}-{period.label}.csv"',
                 "Cache-Control": "no-store"},
    )


@guarded
async def faq_gaps(request: web.Request) -> web.StreamResponse:
    """Questions operators could not answer: category, FAQ entries tried and the operator's note."""
    who = require(request, SUPERVISORS)
    try:
        limit = max(1, min(int(request.query.get("limit", "100")), 1000))
    except ValueError:
        raise ApiError(422, "invalid_field", "limit は数値です", "limit") from None
    now = request.app[core_keys.CLOCK]()
    rows = await request.app[DATABASE].write(lambda conn: _faq_gap_rows(conn, who, limit, now))
    items = [{"id": r["id"], "category": r["ivr_category"], "category_label": category_label(r["ivr_category"],
                                                                                             CATEGORY_LABELS),
              "faq_entries": json.loads(r["faq_entries"]), "note": r["note"], "created_at": r["created_at"]}
             for r in rows]
    by_category: dict[str, int] = {}
    by_label: dict[str, int] = {}
    for item in items:
        key = item["category"] or "(未分類)"
        by_category[key] = by_category.get(key, 0) + 1
        by_label[item["category_label"]] = by_label.get(item["category_label"], 0) + 1
    return json_response({"items": items, "by_category": by_category, "by_category_label": by_label})


def _faq_gap_rows(conn: sqlite3.Connection, who: Principal, limit: int, at: datetime) -> list[sqlite3.Row]:
    """(unit of work) The newest FAQ gaps and the audit row of their reading (the note is free text)."""
    rows = conn.execute(
        "SELECT id, ivr_category, faq_entries, note, created_at FROM faq_gaps WHERE purged_at IS NULL"
        " ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)
    ).fetchall()
    append_audit(conn, who, "list", "faq_gap", None, at, detail={"ids": [r["id"] for r in rows]})
    return rows


def setup_routes(app: web.Application) -> None:
    from access.web import requires

    only = requires(SUPERVISORS)
    app.router.add_get("/api/reports", only(get_report))
    app.router.add_get("/api/reports.csv", only(get_report_csv))
    app.router.add_get("/api/supervisor/faq-gaps", only(faq_gaps))
