"""Access alerts: given scripted reads and login failures, then exactly the expected alerts fire."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from cti.core.clock import TOKYO
from supervision.alerts import AlertDetector, LoginFailure, RecordRead, Thresholds

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO)  # a Friday, office open


def office_open(at: datetime) -> bool:
    return at.weekday() < 5 and 8 <= at.hour < 17


def detector(**kw: int) -> AlertDetector:
    return AlertDetector(Thresholds(**kw), office_open)


def read(user: str, seconds: int, *ids: int | str, role: str = "department") -> RecordRead:
    return RecordRead(user, role, "koseki", T0 + timedelta(seconds=seconds),
                      tuple(f"callback:{i}" for i in (ids or (seconds,))))


def test_reads_over_the_hourly_threshold_fire_once() -> None:
    d = detector(reads_per_hour=5)
    fired = [a for i in range(5) for a in d.record_read(read("staff1", i))]
    assert fired == []
    alerts = d.record_read(read("staff1", 10))
    assert [a.kind for a in alerts] == ["bulk_reads"]
    assert alerts[0].count == 6
    assert alerts[0].user_id == "staff1"
    assert d.record_read(read("staff1", 11)) == []  # cooldown: one alert per burst
    assert d.record_read(read("staff2", 12)) == []  # another account is counted apart


def test_reads_spread_over_more_than_an_hour_do_not_fire() -> None:
    d = detector(reads_per_hour=3)
    for i in range(10):
        assert d.record_read(read("staff1", i * 1300)) == []


def test_a_list_counts_as_many_reads() -> None:
    d = detector(reads_per_hour=50)
    assert d.record_read(read("staff1", 0, *range(30))) == []
    assert [a.kind for a in d.record_read(read("staff1", 5, *range(30, 60)))] == ["bulk_reads"]


def test_rereading_the_same_records_counts_each_once() -> None:
    d = detector(reads_per_hour=50)
    for minute in range(60):  # an inbox of 30 refreshed every minute
        assert d.record_read(read("staff1", minute * 60, *range(30))) == []
    assert d.record_read(read("staff1", 3601, *range(30, 51)))[0].count == 51


def test_old_reads_leave_the_window() -> None:
    d = detector(reads_per_hour=2)
    assert d.record_read(read("s", 0, 1, 2)) == []
    assert d.record_read(read("s", 3600, 3)) == []  # 1 and 2 are an hour old: out
    assert [a.count for a in d.record_read(read("s", 3601, 4, 5))] == [3]  # 3, 4, 5


def test_department_reads_outside_office_hours() -> None:
    d = detector()
    night = RecordRead("staff1", "department", "koseki", datetime(2026, 11, 27, 22, 0, tzinfo=TOKYO), ("callback:1",))
    alerts = d.record_read(night)
    assert [a.kind for a in alerts] == ["off_hours_read"]
    assert "staff1" in alerts[0].text
    admin = RecordRead("admin1", "admin", None, datetime(2026, 11, 27, 22, 0, tzinfo=TOKYO), ("callback:1",))
    assert d.record_read(admin) == []
    assert d.record_read(read("staff3", 0)) == []  # in office hours


def test_burst_of_failed_logins() -> None:
    d = detector(failed_logins=3, failed_login_window_seconds=60)
    assert d.login_failed(LoginFailure(T0)) == []
    assert d.login_failed(LoginFailure(T0 + timedelta(seconds=100))) == []  # the first fell out of the window
    assert d.login_failed(LoginFailure(T0 + timedelta(seconds=110))) == []
    alerts = d.login_failed(LoginFailure(T0 + timedelta(seconds=120)))
    assert [(a.kind, a.count, a.window_seconds) for a in alerts] == [("login_failures", 3, 60)]


def test_cooldown_expires() -> None:
    d = detector(reads_per_hour=1, cooldown_seconds=600)
    assert d.record_read(read("s", 0)) == []
    assert len(d.record_read(read("s", 1))) == 1
    assert d.record_read(read("s", 2)) == []
    assert len(d.record_read(read("s", 700))) == 1


def test_alerts_carry_no_personal_data() -> None:
    d = detector(reads_per_hour=1)
    d.record_read(read("staff1", 0))
    alert = d.record_read(read("staff1", 1))[0]
    assert set(alert.as_dict()) == {"kind", "at", "text", "user_id", "count", "window_seconds"}
    json.dumps(alert.as_dict(), ensure_ascii=False)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="reads_per_hour"):
        Thresholds(reads_per_hour=0)
    d = detector()
    with pytest.raises(ValueError, match="UTC offset"):
        d.record_read(RecordRead("s", "department", "k", datetime(2026, 11, 27, 10), ("callback:1",)))
    with pytest.raises(ValueError, match="UTC offset"):
        d.login_failed(LoginFailure(datetime(2026, 11, 27, 10)))


def test_a_later_burst_of_failed_logins_alerts_again_within_the_cooldown() -> None:
    d = detector(failed_logins=3, failed_login_window_seconds=60, cooldown_seconds=3600)
    first = [d.login_failed(LoginFailure(T0 + timedelta(seconds=s))) for s in (0, 5, 10)]
    assert [len(a) for a in first] == [0, 0, 1]
    # the same burst goes on (no gap of a whole window): quiet
    assert [d.login_failed(LoginFailure(T0 + timedelta(seconds=s))) for s in (20, 70, 125)] == [[], [], []]
    # a whole window without failures ends the burst; ten minutes later a new one alerts again
    later = [d.login_failed(LoginFailure(T0 + timedelta(minutes=10, seconds=s))) for s in (0, 1, 2)]
    assert [[(a.kind, a.count) for a in x] for x in later] == [[], [], [("login_failures", 3)]]


def test_an_ongoing_burst_alerts_again_once_per_cooldown() -> None:
    d = detector(failed_logins=2, failed_login_window_seconds=60, cooldown_seconds=600)
    fired = [s for s in range(0, 1500, 30) if d.login_failed(LoginFailure(T0 + timedelta(seconds=s)))]
    assert fired == [30, 630, 1230]  # never a whole minute without a failure: one burst


def test_off_hours_alert_names_the_department_not_its_code() -> None:
    d = AlertDetector(Thresholds(), office_open, {"koseki": "戸籍住民課"})
    night = RecordRead("staff1", "department", "koseki", datetime(2026, 11, 27, 22, 0, tzinfo=TOKYO), ("callback:1",))
    [alert] = d.record_read(night)
    assert "戸籍住民課" in alert.text and "koseki" not in alert.text
