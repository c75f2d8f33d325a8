"""The one notion of time: an injected clock returning aware datetimes in Asia/Tokyo."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The production clock: now, in Asia/Tokyo."""
    return datetime.now(TOKYO)


def fixed_clock(at: datetime) -> Clock:
    """A clock frozen at `at` (tests)."""
    require_aware(at, "at")
    return lambda: at


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """Reject naive datetimes: every instant in cti carries its offset."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must carry a UTC offset (e.g. +09:00); got naive {value.isoformat()}")
    return value
