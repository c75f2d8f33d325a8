"""Reports: given a known set of calls and callbacks, the daily and monthly figures are exact."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta

import pytest

from cti.core.clock import TOKYO
from supervision.reports import (
    CallbackRow,
    CallRow,
    build_report,
    daily,
    monthly,
    parse_period,
    percentile,
    report_csv,
)


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TOKYO)


CALLS = [
    CallRow("a", t(27, 9), "koseki", answered_at=t(27, 9, 1), wait_seconds=10, outcome="resolved"),
    CallRow("b", t(27, 9, 30), "koseki", answered_at=t(27, 9, 31), wait_seconds=20, outcome="transferred"),
    CallRow("c", t(27, 10), "zei", answered_at=t(27, 10, 1), wait_seconds=30, outcome="unanswered"),
    CallRow("d", t(27, 10, 5), "zei", abandoned=True),
    CallRow("e", t(27, 22, 30), None, after_hours=True),
    CallRow("f", t(26, 23, 59), "zei", answered_at=t(26, 23, 59), wait_seconds=100),  # the day before
    CallRow("g", t(27, 11), "hoken", wait_seconds=None, outcome="callback_requested"),  # contact only
]
CALLBACKS = [
    CallbackRow(1, "koseki", t(26, 20), due_by=t(27, 17, 15), status="closed",
                handed_over_at=t(27, 8, 30), closed_at=t(27, 15)),
    CallbackRow(2, "zeimu", t(26, 21), due_by=t(27, 17, 15), status="handed_over", handed_over_at=t(27, 8, 30)),
    CallbackRow(3, "zeimu", t(27, 19), due_by=t(30, 17, 15), status="received"),
]


def test_daily_totals() -> None:
    report = build_report(daily(date(2026, 11, 27)), CALLS, CALLBACKS, now=t(28, 9),
                          departments=["koseki", "zeimu", "hoken"])
    tot = report["totals"]
    assert tot["offered"] == 6
    assert tot["answered"] == 4  # a, b, c, g
    assert tot["abandoned"] == 1
    assert tot["after_hours"] == 1
    assert tot["avg_wait_seconds"] == 20.0  # (10+20+30)/3; g's wait is unknown
    assert tot["p90_wait_seconds"] == 30
    assert tot["outcomes"] == {"resolved": 1, "transferred": 1, "callback_requested": 1, "declined": 0,
                               "unanswered": 1}


def test_by_category_and_by_hour() -> None:
    report = build_report(daily(date(2026, 11, 27)), CALLS, CALLBACKS, now=t(28, 9))
    cats = {r["category"]: r for r in report["by_category"]}
    assert set(cats) == {"koseki", "zei", "hoken", "(未分類)"}
    assert cats["zei"]["offered"] == 2
    assert cats["zei"]["abandoned"] == 1
    assert cats["koseki"]["avg_wait_seconds"] == 15.0
    hours = {r["hour"]: r for r in report["by_hour"]}
    assert len(hours) == 24
    assert hours[9]["offered"] == 2
    assert hours[10]["offered"] == 2
    assert hours[22]["after_hours"] == 1
    assert hours[23]["offered"] == 0


def test_callbacks_by_department() -> None:
    report = build_report(daily(date(2026, 11, 27)), CALLS, CALLBACKS, now=t(28, 9), departments=["hoken"])
    depts = {r["department"]: r for r in report["callbacks_by_department"]}
    assert depts["koseki"] == {"department": "koseki", "created": 0, "handed_over": 1, "closed": 1, "overdue": 0}
    assert depts["zeimu"] == {"department": "zeimu", "created": 1, "handed_over": 1, "closed": 0, "overdue": 1}
    assert depts["hoken"]["created"] == 0


def test_overdue_is_counted_as_of_now_when_the_period_is_not_over() -> None:
    report = build_report(daily(date(2026, 11, 27)), [], CALLBACKS, now=t(27, 12))
    depts = {r["department"]: r for r in report["callbacks_by_department"]}
    assert depts["zeimu"]["overdue"] == 0  # due 17:15, it is only noon


def test_monthly_includes_every_day_of_the_month() -> None:
    report = build_report(monthly(2026, 11), CALLS, CALLBACKS, now=t(30, 23))
    assert report["totals"]["offered"] == 7
    assert report["totals"]["p90_wait_seconds"] == 100
    assert report["period"]["label"] == "2026-11"
    dec = monthly(2026, 12)
    assert dec.end == datetime(2027, 1, 1, tzinfo=TOKYO)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 90) is None
    assert percentile([5], 90) == 5
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile(list(range(1, 101)), 90) == 90


def test_parse_period_errors_name_the_problem() -> None:
    assert parse_period("daily", "2026-11-27").label == "2026-11-27"
    assert parse_period("monthly", "2026-02").end == datetime(2026, 3, 1, tzinfo=TOKYO)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_period("daily", "27/11/2026")
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_period("monthly", "2026-13")
    with pytest.raises(ValueError, match="daily か monthly"):
        parse_period("weekly", "2026-11")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        CallRow("x", datetime(2026, 11, 27, 9))
    with pytest.raises(ValueError, match="UTC offset"):
        build_report(daily(date(2026, 11, 27)), [], [], now=datetime(2026, 11, 27))


def test_csv_has_every_line_and_matches_the_report() -> None:
    report = build_report(daily(date(2026, 11, 27)), CALLS, CALLBACKS, now=t(28, 9))
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert rows[0][:2] == ["期間", "2026-11-27"]
    assert rows[1][2] == "着信数"
    assert rows[2][:6] == ["合計", "全体", "6", "4", "1", "1"]
    assert sum(1 for r in rows if r[0] == "時間帯別") == 24
    zeimu = next(r for r in rows if r[0] == "担当課別" and r[1] == "zeimu")
    assert zeimu[-4:] == ["1", "1", "0", "1"]


def test_report_carries_no_personal_data() -> None:
    phone = "09012345678"
    calls = [CallRow("c-1", t(27, 9) + timedelta(minutes=i), "koseki", answered_at=t(27, 10), wait_seconds=i)
             for i in range(5)]
    report = build_report(daily(date(2026, 11, 27)), calls, CALLBACKS, now=t(28, 9))
    text = json.dumps(report, ensure_ascii=False) + report_csv(report)
    assert phone not in text
    assert "c-1" not in text  # not even call ids: aggregates only


def test_waits_are_reported_to_a_tenth_of_a_second() -> None:
    calls = [CallRow(f"w{i}", t(27, 10), "zei", answered_at=t(27, 10), wait_seconds=w)
             for i, w in enumerate((10.013228, 3.04, 7.25))]
    report = build_report(daily(date(2026, 11, 27)), calls, [], now=t(28, 9), category_labels={"zei": "税"})
    assert report["totals"]["p90_wait_seconds"] == 10.0 and report["totals"]["avg_wait_seconds"] == 6.8
    assert [(c["category"], c["label"]) for c in report["by_category"]] == [("zei", "税")]
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert rows[2][6:8] == ["6.8", "10.0"] and rows[3][:2] == ["分類別", "税"]
