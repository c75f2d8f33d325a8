"""The two calendars, as pure code: the call center's hours and the ward office's business days (開庁).

Precedence, highest first (documented in the README and tested):
    1. emergency close (call center only, set at runtime, takes effect at once)
    2. closure overrides (a period closed, with a reason)
    3. opening overrides (an extra open period, e.g. a Sunday office opening in tax season)
    4. base rules: daily hours, closed month-days (Jan 1-3 / Dec 29-Jan 3), and for the office
       weekends and Japanese national holidays (incl. 振替休日 and 国民の休日, from `holidays`)

Intervals are half-open: the opening minute is open, the closing minute is closed.
Every instant passed in must carry a UTC offset; a naive datetime raises ValueError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import holidays

from cti.core.clock import TOKYO, require_aware

if TYPE_CHECKING:
    from cti.calendar.settings import CalendarSettings

# How far next_open looks ahead; no real schedule is closed for longer than this.
SEARCH_HORIZON_DAYS = 400


class Which(StrEnum):
    CALL_CENTER = "call_center"
    OFFICE = "office"
    BOTH = "both"


class Reason(StrEnum):
    NIGHT = "night"
    YEAR_END = "year_end"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    CLOSURE = "closure"
    EMERGENCY = "emergency"


@dataclass(frozen=True, slots=True)
class Status:
    """Whether one calendar is open at an instant, why not, and when it next opens."""

    open: bool
    reason: Reason | None = None
    reason_text: str = ""
    holiday_name: str | None = None
    next_open: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "reason": self.reason.value if self.reason else None,
            "reason_text": self.reason_text or None,
            "holiday_name": self.holiday_name,
            "next_open": self.next_open.isoformat() if self.next_open else None,
        }


@dataclass(frozen=True, slots=True)
class DailyHours:
    opens: time
    closes: time
    closed_month_days: frozenset[tuple[int, int]] = frozenset()

    def __post_init__(self) -> None:
        if self.closes <= self.opens:
            raise ValueError(f"closes ({self.closes}) must be after opens ({self.opens})")


@dataclass(frozen=True, slots=True)
class Override:
    kind: str  # "closure" | "opening"
    applies_to: Which
    start: datetime
    end: datetime
    reason: str
    id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("closure", "opening"):
            raise ValueError(f"override kind must be 'closure' or 'opening', got {self.kind!r}")
        require_aware(self.start, "override start")
        require_aware(self.end, "override end")
        if self.end <= self.start:
            raise ValueError("override end must be after its start")
        if not self.reason.strip():
            raise ValueError("override reason must not be empty")

    def covers(self, which: Which, at: datetime) -> bool:
        return self.applies_to in (which, Which.BOTH) and self.start <= at < self.end


@dataclass
class Calendars:
    """Both calendars plus runtime state (overrides added at runtime, emergency close)."""

    call_center_hours: DailyHours
    office_hours: DailyHours
    overrides: list[Override] = field(default_factory=list)
    tz: ZoneInfo = TOKYO
    emergency_reason: str | None = None
    _holidays: holidays.HolidayBase = field(init=False, repr=False)
    # Called after every runtime change (e.g. the routing state in Asterisk is republished at once).
    _change_listeners: list[Callable[[], None]] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._holidays = holidays.country_holidays("JP", language="ja")

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener()` after each runtime change; returns the function that unsubscribes."""
        self._change_listeners.append(listener)
        return lambda: self._change_listeners.remove(listener) if listener in self._change_listeners else None

    def _changed(self) -> None:
        for listener in list(self._change_listeners):
            listener()

    @classmethod
    def from_settings(cls, settings: CalendarSettings) -> Calendars:
        return cls(
            call_center_hours=_hours(settings.call_center),
            office_hours=_hours(settings.office),
            overrides=[
                Override(
                    kind=o.kind,
                    applies_to=Which(o.applies_to),
                    start=o.start,
                    end=o.end,
                    reason=o.reason,
                    id=f"config-{i + 1}",
                )
                for i, o in enumerate(settings.overrides)
            ],
            tz=ZoneInfo(settings.timezone),
        )

    # ---- runtime changes -------------------------------------------------------------------
    def set_emergency(self, reason: str | None) -> None:
        """Close the call center at once (reason) or lift the emergency close (None)."""
        if reason is not None and not reason.strip():
            raise ValueError("an emergency close needs a reason")
        self.emergency_reason = reason
        self._changed()

    def add_override(self, override: Override) -> None:
        if override.id and any(o.id == override.id for o in self.overrides):
            raise ValueError(f"an override with id {override.id!r} already exists")
        self.overrides.append(override)
        self._changed()

    def remove_override(self, override_id: str) -> Override:
        for i, o in enumerate(self.overrides):
            if o.id == override_id:
                removed = self.overrides.pop(i)
                self._changed()
                return removed
        raise KeyError(f"no override with id {override_id!r}")

    # ---- queries ------------------------------------------------------------------------------
    def holiday_name(self, day: date) -> str | None:
        name = self._holidays.get(day)
        return str(name) if name else None

    def call_center(self, at: datetime) -> Status:
        return self._status(Which.CALL_CENTER, at)

    def office(self, at: datetime) -> Status:
        return self._status(Which.OFFICE, at)

    def is_office_day(self, day: date) -> bool:
        """True if the office opens at some time on `day`."""
        start = datetime.combine(day, time(0), self.tz)
        if self._closed_reason(Which.OFFICE, start) is None:
            return True
        first = self._next_open(Which.OFFICE, start)
        return first is not None and first.date() == day

    def next_office_day(self, after: date) -> date:
        """The first office business day strictly after `after`."""
        start = datetime.combine(after + timedelta(days=1), time(0), self.tz)
        if self._closed_reason(Which.OFFICE, start) is None:
            return start.date()
        first = self._next_open(Which.OFFICE, start)
        if first is None:
            raise ValueError(f"the office does not open within {SEARCH_HORIZON_DAYS} days after {after}")
        return first.date()

    def handover_date(self, collected_at: datetime) -> date:
        """The day a record collected at `collected_at` goes to the departments.

        The same day while the office is open, else the day of the office's next opening
        (so a record taken at 07:00 on a business day is handed over at 08:30 that day).
        """
        at = self._local(collected_at)
        status = self.office(at)
        if status.open:
            return at.date()
        if status.next_open is None:
            raise ValueError(f"the office does not open within {SEARCH_HORIZON_DAYS} days after {at}")
        return status.next_open.date()

    def office_opening_on(self, day: date) -> datetime:
        """The first instant the office is open on `day` (the handover moment)."""
        start = datetime.combine(day, time(0), self.tz)
        if self._closed_reason(Which.OFFICE, start) is None:
            return start
        first = self._next_open(Which.OFFICE, start)
        if first is None or first.date() != day:
            raise ValueError(f"the office is not open on {day}")
        return first

    # ---- rules -------------------------------------------------------------------------------
    def _status(self, which: Which, at: datetime) -> Status:
        at = self._local(at)
        closed = self._closed_reason(which, at)
        if closed is None:
            return Status(open=True)
        reason, text, holiday = closed
        next_open = None if reason is Reason.EMERGENCY else self._next_open(which, at)
        return Status(open=False, reason=reason, reason_text=text, holiday_name=holiday, next_open=next_open)

    def _closed_reason(self, which: Which, at: datetime) -> tuple[Reason, str, str | None] | None:
        """None when open; else (reason code, Japanese text, holiday name)."""
        if which is Which.CALL_CENTER and self.emergency_reason is not None:
            return Reason.EMERGENCY, f"緊急のため受付を停止しています（{self.emergency_reason}）", None
        for o in self.overrides:
            if o.kind == "closure" and o.covers(which, at):
                return Reason.CLOSURE, f"臨時休業です（{o.reason}）", None
        for o in self.overrides:
            if o.kind == "opening" and o.covers(which, at):
                return None
        return self._base_closed_reason(which, at)

    def _base_closed_reason(self, which: Which, at: datetime) -> tuple[Reason, str, str | None] | None:
        hours = self.call_center_hours if which is Which.CALL_CENTER else self.office_hours
        day = at.date()
        if (day.month, day.day) in hours.closed_month_days:
            if which is Which.CALL_CENTER:
                return Reason.YEAR_END, "年末年始のため受付を休止しています", None
            return Reason.YEAR_END, "年末年始のため閉庁しています", None
        if which is Which.OFFICE:
            name = self.holiday_name(day)
            if name is not None:
                return Reason.HOLIDAY, f"祝日（{name}）のため閉庁しています", name
            if day.weekday() >= 5:
                return Reason.WEEKEND, "土曜日・日曜日は閉庁しています", None
        if not hours.opens <= at.time() < hours.closes:
            label = "受付時間" if which is Which.CALL_CENTER else "開庁時間"
            return Reason.NIGHT, f"{label}外です（{_hm(hours.opens)}〜{_hm(hours.closes)}）", None
        return None

    def _next_open(self, which: Which, at: datetime) -> datetime | None:
        for candidate in self._opening_candidates(which, at):
            if candidate > at and self._closed_reason(which, candidate) is None:
                return candidate
        return None

    def _opening_candidates(self, which: Which, at: datetime) -> Iterator[datetime]:
        """Instants where an open period can begin, in order: daily openings, opening-override
        starts and closure-override ends (a closure that ends inside opening hours)."""
        hours = self.call_center_hours if which is Which.CALL_CENTER else self.office_hours
        horizon = _days_after(at, SEARCH_HORIZON_DAYS + 1)
        # Only edges within the horizon: an override reaching year 1 or 9999 must not be converted
        # (its instant overflows in another zone) nor searched (nothing past the horizon counts).
        edges = sorted(
            {o.start if o.kind == "opening" else o.end for o in self.overrides if o.applies_to in (which, Which.BOTH)}
        )
        edges = [self._local(e) for e in edges if at < e <= horizon]
        daily = (
            datetime.combine(day, hours.opens, self.tz)
            for day in _days(at.date(), SEARCH_HORIZON_DAYS + 1)
        )
        yield from _merge_sorted(daily, edges)

    def _local(self, at: datetime) -> datetime:
        try:
            return require_aware(at, "instant").astimezone(self.tz)
        except OverflowError:  # e.g. 0001-01-01T00:00+09:00 is still year 0 in UTC
            raise ValueError(f"instant out of range: {at.isoformat()}") from None


def _days(first: date, count: int) -> Iterator[date]:
    """`count` consecutive days from `first`, stopping early at the end of the calendar (9999-12-31)."""
    day = first
    for _ in range(count):
        yield day
        if day == date.max:
            return
        day += timedelta(days=1)


def _days_after(at: datetime, days: int) -> datetime:
    """`at` plus `days` days, or the latest representable instant when that overflows."""
    try:
        return at + timedelta(days=days)
    except OverflowError:
        return datetime.max.replace(tzinfo=at.tzinfo)


def _merge_sorted(first: Iterable[datetime], second: Sequence[datetime]) -> Iterator[datetime]:
    pending = list(second)
    for value in first:
        while pending and pending[0] <= value:
            yield pending.pop(0)
        yield value
    yield from pending


def _hours(settings: Any) -> DailyHours:
    month_days = frozenset((int(md[:2]), int(md[3:])) for md in settings.closed_month_days)
    return DailyHours(opens=settings.opens, closes=settings.closes, closed_month_days=month_days)


def _hm(value: time) -> str:
    return f"{value.hour}:{value.minute:02d}"


def status_report(calendars: Calendars, at: datetime) -> dict[str, Any]:
    """Both calendars at `at` as plain data (the `cti calendar at --json` shape)."""
    at = require_aware(at, "instant")
    return {
        "at": at.isoformat(),
        "call_center": calendars.call_center(at).as_dict(),
        "office": calendars.office(at).as_dict(),
        "handover_date": calendars.handover_date(at).isoformat(),
    }
