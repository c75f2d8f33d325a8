"""The two calendars, table-driven over 2026-2028 (Golden Week, year-end, substitute and citizens'
holidays, every boundary minute, every override kind)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from cti.calendar.rules import Calendars, Override, Reason, Which, status_report
from cti.config import CalendarSettings, OverrideSettings
from cti.core.clock import TOKYO


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + "+09:00")


@pytest.fixture
def cal() -> Calendars:
    return Calendars.from_settings(CalendarSettings())


# (instant, call-center open?, reason, next_open)
CALL_CENTER_CASES = [
    ("2026-12-28T07:59", False, Reason.NIGHT, "2026-12-28T08:00"),
    ("2026-12-28T08:00", True, None, None),  # opening minute is open
    ("2026-12-28T21:59", True, None, None),
    ("2026-12-28T22:00", False, Reason.NIGHT, "2026-12-29T08:00"),  # closing minute is closed
    ("2026-12-31T12:00", True, None, None),  # open on Dec 31 although the office is not
    ("2027-01-01T12:00", False, Reason.YEAR_END, "2027-01-04T08:00"),
    ("2027-01-03T21:00", False, Reason.YEAR_END, "2027-01-04T08:00"),
    ("2026-12-31T22:30", False, Reason.NIGHT, "2027-01-04T08:00"),  # night rolls into Jan 1-3
    ("2027-01-04T08:00", True, None, None),
    ("2026-05-03T10:00", True, None, None),  # Golden Week: the call center is open every day
    ("2027-03-22T10:00", True, None, None),  # a substitute holiday
    ("2028-01-01T00:00", False, Reason.YEAR_END, "2028-01-04T08:00"),
]


@pytest.mark.parametrize(("instant", "is_open", "reason", "next_open"), CALL_CENTER_CASES)
def test_call_center_hours(cal: Calendars, instant: str, is_open: bool, reason: Reason | None,
                           next_open: str | None) -> None:
    status = cal.call_center(at(instant))
    assert status.open is is_open
    assert status.reason == reason
    assert status.next_open == (at(next_open) if next_open else None)
    assert bool(status.reason_text) is (not is_open)


# (instant, office open?, reason, holiday name, next_open)
OFFICE_CASES = [
    ("2026-12-28T08:29", False, Reason.NIGHT, None, "2026-12-28T08:30"),
    ("2026-12-28T08:30", True, None, None, None),
    ("2026-12-28T17:14", True, None, None, None),
    ("2026-12-28T17:15", False, Reason.NIGHT, None, "2027-01-04T08:30"),
    ("2026-12-29T10:00", False, Reason.YEAR_END, None, "2027-01-04T08:30"),
    ("2027-01-03T10:00", False, Reason.YEAR_END, None, "2027-01-04T08:30"),
    ("2026-12-26T10:00", False, Reason.WEEKEND, None, "2026-12-28T08:30"),
    # Golden Week 2026: Apr 29 (Wed) holiday; May 3 (Sun), 4, 5 holidays; May 6 substitute holiday
    ("2026-04-29T10:00", False, Reason.HOLIDAY, "昭和の日", "2026-04-30T08:30"),
    ("2026-05-01T10:00", True, None, None, None),
    ("2026-05-02T10:00", False, Reason.WEEKEND, None, "2026-05-07T08:30"),
    ("2026-05-04T10:00", False, Reason.HOLIDAY, "みどりの日", "2026-05-07T08:30"),
    ("2026-05-06T10:00", False, Reason.HOLIDAY, "振替休日", "2026-05-07T08:30"),
    # Silver Week 2026: Sep 22 is a citizens' holiday between two holidays
    ("2026-09-22T10:00", False, Reason.HOLIDAY, "国民の休日", "2026-09-24T08:30"),
    ("2027-03-22T10:00", False, Reason.HOLIDAY, "振替休日", "2027-03-23T08:30"),
    ("2028-05-05T09:00", False, Reason.HOLIDAY, "こどもの日", "2028-05-08T08:30"),
    ("2028-12-28T17:00", True, None, None, None),
    ("2028-12-28T17:15", False, Reason.NIGHT, None, "2029-01-04T08:30"),
]


@pytest.mark.parametrize(("instant", "is_open", "reason", "holiday", "next_open"), OFFICE_CASES)
def test_office_business_hours(cal: Calendars, instant: str, is_open: bool, reason: Reason | None,
                               holiday: str | None, next_open: str | None) -> None:
    status = cal.office(at(instant))
    assert status.open is is_open
    assert status.reason == reason
    assert status.holiday_name == holiday
    assert status.next_open == (at(next_open) if next_open else None)


@pytest.mark.parametrize(
    ("collected", "handover"),
    [
        ("2026-12-28T12:00", "2026-12-28"),  # office open: same day
        ("2026-12-28T18:00", "2027-01-04"),  # after hours before year-end
        ("2026-12-28T07:00", "2026-12-28"),  # before opening on a business day: that morning
        ("2026-05-02T10:00", "2026-05-07"),  # Golden Week
        ("2026-09-19T21:00", "2026-09-24"),  # Silver Week with the citizens' holiday
        ("2027-03-19T20:00", "2027-03-23"),  # Fri evening, weekend, substitute holiday Monday
    ],
)
def test_handover_date(cal: Calendars, collected: str, handover: str) -> None:
    assert cal.handover_date(at(collected)) == date.fromisoformat(handover)


def test_next_office_day_skips_weekends_holidays_and_year_end(cal: Calendars) -> None:
    assert cal.next_office_day(date(2026, 12, 25)) == date(2026, 12, 28)
    assert cal.next_office_day(date(2026, 12, 28)) == date(2027, 1, 4)
    assert cal.next_office_day(date(2026, 9, 18)) == date(2026, 9, 24)
    assert cal.is_office_day(date(2026, 9, 24)) and not cal.is_office_day(date(2026, 9, 22))


def test_naive_datetimes_are_rejected(cal: Calendars) -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        cal.call_center(datetime(2026, 12, 28, 12, 0))
    with pytest.raises(ValueError, match="UTC offset"):
        cal.handover_date(datetime(2026, 12, 28, 12, 0))


def test_other_offsets_are_converted_to_tokyo(cal: Calendars) -> None:
    # 2026-12-28 22:30 UTC is 07:30 on the 29th in Tokyo: night for the call center
    utc = datetime.fromisoformat("2026-12-28T22:30:00+00:00")
    assert cal.call_center(utc).reason is Reason.NIGHT
    assert cal.call_center(utc).next_open == at("2026-12-29T08:00")


# ---- overrides and their precedence: emergency > closure > opening > base rules ----------------

def test_closure_override_closes_both_calendars_with_its_reason(cal: Calendars) -> None:
    cal.add_override(Override("closure", Which.BOTH, at("2027-02-01T00:00"), at("2027-02-02T12:00"),
                              "システム保守", id="m1"))
    status = cal.call_center(at("2027-02-01T10:00"))
    assert (status.open, status.reason) == (False, Reason.CLOSURE)
    assert "システム保守" in status.reason_text
    assert status.next_open == at("2027-02-02T12:00")  # the closure ends inside opening hours
    assert cal.office(at("2027-02-02T11:00")).next_open == at("2027-02-02T12:00")
    assert cal.office(at("2027-02-02T12:00")).open


def test_closure_applies_only_to_its_calendar(cal: Calendars) -> None:
    cal.add_override(Override("closure", Which.OFFICE, at("2027-02-01T00:00"), at("2027-02-02T00:00"),
                              "災害対応"))
    assert not cal.office(at("2027-02-01T10:00")).open
    assert cal.call_center(at("2027-02-01T10:00")).open


def test_extra_opening_opens_a_sunday_for_the_office(cal: Calendars) -> None:
    sunday = at("2027-03-07T10:00")
    assert cal.office(sunday).reason is Reason.WEEKEND
    cal.add_override(Override("opening", Which.OFFICE, at("2027-03-07T09:00"), at("2027-03-07T17:00"),
                              "確定申告の休日開庁"))
    assert cal.office(sunday).open
    assert cal.office(at("2027-03-07T08:59")).next_open == at("2027-03-07T09:00")
    assert cal.office(at("2027-03-07T17:00")).open is False
    # a record collected the Saturday evening is handed over on that Sunday
    assert cal.handover_date(at("2027-03-06T20:00")) == date(2027, 3, 7)
    assert cal.next_office_day(date(2027, 3, 6)) == date(2027, 3, 7)


def test_closure_beats_extra_opening(cal: Calendars) -> None:
    cal.add_override(Override("opening", Which.OFFICE, at("2027-03-07T09:00"), at("2027-03-07T17:00"), "休日開庁"))
    cal.add_override(Override("closure", Which.BOTH, at("2027-03-07T00:00"), at("2027-03-08T00:00"), "台風"))
    assert cal.office(at("2027-03-07T10:00")).reason is Reason.CLOSURE


def test_emergency_beats_everything_takes_effect_at_once_and_lifts(cal: Calendars) -> None:
    noon = at("2026-12-28T12:00")
    cal.add_override(Override("opening", Which.CALL_CENTER, at("2026-12-28T00:00"), at("2026-12-29T00:00"), "x"))
    cal.set_emergency("地震")
    status = cal.call_center(noon)
    assert (status.open, status.reason, status.next_open) == (False, Reason.EMERGENCY, None)
    assert "地震" in status.reason_text
    assert cal.office(noon).open  # the emergency close is the call center's
    cal.set_emergency(None)
    assert cal.call_center(noon).open


def test_bad_overrides_are_refused(cal: Calendars) -> None:
    with pytest.raises(ValueError, match="after its start"):
        Override("closure", Which.BOTH, at("2027-02-02T00:00"), at("2027-02-01T00:00"), "x")
    with pytest.raises(ValueError, match="UTC offset"):
        Override("closure", Which.BOTH, datetime(2027, 2, 1), at("2027-02-02T00:00"), "x")
    with pytest.raises(ValueError, match="kind"):
        Override("maybe", Which.BOTH, at("2027-02-01T00:00"), at("2027-02-02T00:00"), "x")
    with pytest.raises(ValueError, match="reason"):
        cal.set_emergency("  ")
    cal.add_override(Override("closure", Which.BOTH, at("2027-02-01T00:00"), at("2027-02-02T00:00"), "x", id="a"))
    with pytest.raises(ValueError, match="already exists"):
        cal.add_override(Override("closure", Which.BOTH, at("2027-02-01T00:00"), at("2027-02-02T00:00"), "x", id="a"))
    assert cal.remove_override("a").id == "a"
    with pytest.raises(KeyError):
        cal.remove_override("a")


def test_overrides_and_hours_from_settings() -> None:
    settings = CalendarSettings(
        overrides=[OverrideSettings(kind="closure", applies_to="call_center", start=at("2027-02-01T00:00"),
                                    end=at("2027-02-01T12:00"), reason="訓練")],
    )
    settings.office.opens = time(9, 0)
    cal = Calendars.from_settings(settings)
    assert cal.call_center(at("2027-02-01T10:00")).reason is Reason.CLOSURE
    assert cal.office(at("2027-02-01T08:45")).next_open == at("2027-02-01T09:00")


def test_status_report_has_the_cli_shape(cal: Calendars) -> None:
    report = status_report(cal, at("2026-12-28T18:00"))
    assert report["at"] == "2026-12-28T18:00:00+09:00"
    assert report["call_center"] == {
        "open": True, "reason": None, "reason_text": None, "holiday_name": None, "next_open": None,
    }
    assert report["office"]["open"] is False
    assert report["office"]["reason"] == "night"
    assert report["office"]["next_open"] == "2027-01-04T08:30:00+09:00"
    assert report["handover_date"] == "2027-01-04"
    assert datetime.fromisoformat(report["office"]["next_open"]).tzinfo is not None
    assert TOKYO  # the module's zone is the default


@pytest.mark.parametrize("offset", ["+00:00", "+09:00", "-12:00", "+14:00"])
def test_a_closure_from_year_1_to_9999_is_handled(cal: Calendars, offset: str) -> None:
    cal.add_override(Override("closure", Which.BOTH, datetime.fromisoformat("0001-01-01T00:00:00" + offset),
                              datetime.fromisoformat("9999-12-31T23:59:59" + offset), "長期休業", "rt-1"))
    for which in (cal.office, cal.call_center):
        status = which(at("2026-12-02T10:00"))
        assert not status.open and status.reason is Reason.CLOSURE and status.next_open is None
    with pytest.raises(ValueError, match="does not open within"):
        cal.handover_date(at("2026-12-02T10:00"))


def test_instants_at_the_ends_of_the_calendar(cal: Calendars) -> None:
    late = status_report(cal, at("9999-12-27T10:00"))  # a Monday
    assert late["office"]["open"] is True and late["handover_date"] == "9999-12-27"
    assert cal.office(at("9999-12-31T20:00")).next_open is None  # nothing after the last day
    early = cal.office(at("0001-01-04T00:00")).next_open  # a local-mean-time offset back then: compare locally
    assert early is not None and (early.date(), early.time()) == (date(1, 1, 4), time(8, 30))
    with pytest.raises(ValueError, match="out of range"):
        cal.office(datetime.fromisoformat("0001-01-01T00:00:00+09:00"))  # year 0 in UTC


def test_a_same_day_closure_moves_the_handover_to_its_end(cal: Calendars) -> None:
    cal.add_override(Override("closure", Which.OFFICE, at("2026-12-02T08:00"), at("2026-12-02T12:00"), "停電"))
    day = cal.handover_date(at("2026-12-02T07:00"))
    assert day == date(2026, 12, 2) and cal.office_opening_on(day) == at("2026-12-02T12:00")
    assert cal.is_office_day(day)
    cal.add_override(Override("closure", Which.OFFICE, at("2026-12-02T11:00"), at("2026-12-03T00:00"), "延長"))
    day = cal.handover_date(at("2026-12-02T07:00"))
    assert day == date(2026, 12, 3) and cal.office_opening_on(day) == at("2026-12-03T08:30")
    assert not cal.is_office_day(date(2026, 12, 2)) and cal.next_office_day(date(2026, 12, 1)) == date(2026, 12, 3)
