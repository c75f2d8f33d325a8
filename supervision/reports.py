"""Business reports (業務に関する報告), as pure computation over call, contact and callback rows.

Daily or monthly; totals, by IVR category and by hour of arrival: calls offered, answered,
abandoned, average and 90th-percentile wait (nearest rank), after-hours calls, contact outcomes,
and per department callbacks created / handed over / closed / overdue. The rows carry ids, times,
codes and flags only, and so does every report (no caller number, name or free text).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cti.core.clock import TOKYO, require_aware

UNCATEGORISED = "(未分類)"
UNCATEGORISED_LABEL = "未分類"
KIND_TEXT = {"daily": "日次", "monthly": "月次"}
CLOSED_STATUSES = frozenset({"closed", "closed_unreached"})
OUTCOMES: tuple[str, ...] = ("resolved", "transferred", "callback_requested", "declined", "unanswered")


@dataclass(frozen=True, slots=True)
class CallRow:
    """One inbound call (from the call log and/or the operator's contact record)."""

    call_id: str
    arrived_at: datetime
    category: str | None = None
    answered_at: datetime | None = None
    abandoned: bool = False
    after_hours: bool = False
    wait_seconds: float | None = None  # time in the queue until answered (None: unknown)
    outcome: str | None = None  # the contact's outcome, when an operator recorded one

    def __post_init__(self) -> None:
        require_aware(self.arrived_at, "arrived_at")
        if self.answered_at is not None:
            require_aware(self.answered_at, "answered_at")
        if self.wait_seconds is not None and self.wait_seconds < 0:
            raise ValueError(f"wait_seconds must be >= 0 (call {self.call_id})")

    @property
    def answered(self) -> bool:
        return self.answered_at is not None or self.outcome is not None


@dataclass(frozen=True, slots=True)
class CallbackRow:
    callback_id: int
    department: str
    collected_at: datetime
    due_by: datetime
    status: str
    handed_over_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open span [start, end) of local days: one day or one calendar month."""

    kind: str  # "daily" | "monthly"
    label: str
    start: datetime
    end: datetime

    def contains(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end


def daily(day: date, tz: ZoneInfo = TOKYO) -> Period:
    start = datetime.combine(day, time(0), tz)
    return Period("daily", day.isoformat(), start, datetime.combine(day + timedelta(days=1), time(0), tz))


def monthly(year: int, month: int, tz: ZoneInfo = TOKYO) -> Period:
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return Period("monthly", f"{year:04d}-{month:02d}", datetime.combine(first, time(0), tz),
                  datetime.combine(nxt, time(0), tz))


FIRST_YEAR, LAST_YEAR = 2000, 2100


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"期間は{FIRST_YEAR}年から{LAST_YEAR}年の間で指定してください（入力: {year}年）")


def parse_period(kind: str, value: str, tz: ZoneInfo = TOKYO) -> Period:
    """'daily' + 'YYYY-MM-DD' or 'monthly' + 'YYYY-MM'; ValueError naming what is wrong.

    Years outside FIRST_YEAR..LAST_YEAR are refused: there is no data there, and a period at
    datetime's limits (9999-12-31) cannot even compute its end."""
    if kind == "daily":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"日付は YYYY-MM-DD で指定してください（入力: {value!r}）") from None
        _check_year(day.year)
        return daily(day, tz)
    if kind == "monthly":
        parts = value.split("-")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or not 1 <= int(parts[1]) <= 12:
            raise ValueError(f"月は YYYY-MM で指定してください（入力: {value!r}）")
        _check_year(int(parts[0]))
        return monthly(int(parts[0]), int(parts[1]), tz)
    raise ValueError(f"期間の種類は daily か monthly です（入力: {kind!r}）")


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def _call_stats(calls: Sequence[CallRow]) -> dict[str, Any]:
    waits = [c.wait_seconds for c in calls if c.answered and c.wait_seconds is not None]
    outcomes = {o: 0 for o in OUTCOMES}
    for c in calls:
        if c.outcome in outcomes:
            outcomes[c.outcome] += 1
    return {
        "offered": len(calls),
        "answered": sum(1 for c in calls if c.answered),
        "abandoned": sum(1 for c in calls if c.abandoned and not c.answered),
        "after_hours": sum(1 for c in calls if c.after_hours),
        "avg_wait_seconds": round(sum(waits) / len(waits), 1) if waits else None,
        "p90_wait_seconds": _tenths(percentile(waits, 90)),
        "outcomes": outcomes,
    }


def _tenths(value: float | None) -> float | None:
    """Seconds to one decimal (10.0 s, not 10.013228 s): what a supervisor reads and compares."""
    return None if value is None else round(float(value), 1)


def _label(code: str, labels: Mapping[str, str]) -> str:
    return UNCATEGORISED_LABEL if code == UNCATEGORISED else labels.get(code, code)


def build_report(
    period: Period,
    calls: Iterable[CallRow],
    callbacks: Iterable[CallbackRow],
    *,
    now: datetime,
    departments: Sequence[str] = (),
    category_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report of one period. Calls count in the period they arrived; callbacks in the period
    each event happened; "overdue" counts callbacks not closed at the period's end (or now, if
    earlier) whose deadline had passed by then."""
    require_aware(now, "now")
    tz = period.start.tzinfo
    in_period = [c for c in calls if period.contains(c.arrived_at)]
    categories: dict[str, list[CallRow]] = {}
    hours: dict[int, list[CallRow]] = {h: [] for h in range(24)}
    for c in in_period:
        categories.setdefault(c.category or UNCATEGORISED, []).append(c)
        hours[c.arrived_at.astimezone(tz).hour].append(c)
    as_of = min(period.end, now)
    depts: dict[str, dict[str, int]] = {
        d: {"created": 0, "handed_over": 0, "closed": 0, "overdue": 0} for d in departments
    }
    for cb in callbacks:
        row = depts.setdefault(cb.department, {"created": 0, "handed_over": 0, "closed": 0, "overdue": 0})
        row["created"] += period.contains(cb.collected_at)
        row["handed_over"] += period.contains(cb.handed_over_at)
        row["closed"] += period.contains(cb.closed_at)
        closed_by_then = cb.closed_at is not None and cb.closed_at <= as_of
        open_then = cb.collected_at < as_of and not closed_by_then
        row["overdue"] += open_then and cb.due_by < as_of
    return {
        "period": {"kind": period.kind, "label": period.label, "start": period.start.isoformat(),
                   "end": period.end.isoformat()},
        "generated_at": now.isoformat(),
        "totals": _call_stats(in_period),
        "by_category": [{"category": k, "label": _label(k, category_labels or {}), **_call_stats(v)}
                        for k, v in sorted(categories.items())],
        "by_hour": [{"hour": h, **_call_stats(v)} for h, v in hours.items()],
        "callbacks_by_department": [{"department": k, **v} for k, v in sorted(depts.items())],
    }


CSV_CALL_COLUMNS = ("offered", "answered", "abandoned", "after_hours", "avg_wait_seconds", "p90_wait_seconds")
CSV_HEADER_JA = ("区分", "項目", "着信数", "応答数", "放棄数", "時間外着信", "平均待ち秒", "90%待ち秒",
                 "折り返し受付", "引き継ぎ", "完了", "期限超過")


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV (UTF-8 with BOM added by the caller if wanted): one row per line item."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    kind = report["period"]["kind"]
    writer.writerow(("期間", report["period"]["label"], KIND_TEXT.get(kind, kind)))
    writer.writerow(CSV_HEADER_JA)

    def cell(key: str, value: Any) -> Any:
        if value is None:
            return ""
        return f"{value:.1f}" if key.endswith("_seconds") else value

    def calls(section: str, item: str, stats: dict[str, Any]) -> None:
        writer.writerow((section, item, *[cell(k, stats[k]) for k in CSV_CALL_COLUMNS], "", "", "", ""))

    calls("合計", "全体", report["totals"])
    for row in report["by_category"]:
        calls("分類別", row.get("label") or row["category"], row)
    for row in report["by_hour"]:
        calls("時間帯別", f"{row['hour']:02d}時", row)
    for row in report["callbacks_by_department"]:
        writer.writerow(("担当課別", row.get("name") or row["department"], "", "", "", "", "", "",
                         row["created"], row["handed_over"], row["closed"], row["overdue"]))
    return out.getvalue()
