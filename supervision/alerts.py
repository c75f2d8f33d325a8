"""Access alerts (incident reporting), as a pure detector: events in, alerts out.

Three rules:
- ``bulk_reads``: one account read more than ``reads_per_hour`` distinct records within a sliding hour
  (re-reading the same records, e.g. an inbox refreshed every minute, counts each record once);
- ``off_hours_read``: department staff read a record while the ward office is closed;
- ``login_failures``: ``failed_logins`` failed logins or more within ``failed_login_window_seconds``.

An alert names the account id (never a name), a count and a window - no personal data. A rule
that fired stays quiet for ``cooldown_seconds`` for the same account, so a burst gives one alert.
Failed logins are counted per burst instead: a burst ends when no login failed for a whole window,
and the next burst alerts again however soon it comes (the cooldown only quiets an ongoing burst,
re-alerting once per cooldown while it goes on).
The caller passes every instant (aware datetimes); the detector has no clock of its own.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cti.core.clock import require_aware

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Thresholds:
    reads_per_hour: int = 100
    failed_logins: int = 10
    failed_login_window_seconds: int = 300
    cooldown_seconds: int = 3600
    off_hours_department_reads: bool = True

    def __post_init__(self) -> None:
        for name in ("reads_per_hour", "failed_logins", "failed_login_window_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.cooldown_seconds < 0:
            raise ValueError("cooldown_seconds must be >= 0")


@dataclass(frozen=True, slots=True)
class RecordRead:
    """An account read these personal-data records at `at` (from the audit trail)."""

    user_id: str
    role: str
    department: str | None
    at: datetime
    record_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LoginFailure:
    at: datetime
    user_id: str | None = None  # the account tried, when it exists (ids only)


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    at: datetime
    text: str  # Japanese, ids and numbers only
    user_id: str | None = None
    count: int = 0
    window_seconds: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at.isoformat(), "text": self.text, "user_id": self.user_id,
                "count": self.count, "window_seconds": self.window_seconds}


@dataclass
class AlertDetector:
    thresholds: Thresholds
    office_open: Callable[[datetime], bool]
    department_names: Mapping[str, str] = field(default_factory=dict)  # code -> 税務課 (alert texts)
    _reads: dict[str, deque[tuple[datetime, str]]] = field(default_factory=dict)
    _distinct: dict[str, Counter[str]] = field(default_factory=dict)
    _failures: deque[datetime] = field(default_factory=deque)
    _last_fired: dict[tuple[str, str], datetime] = field(default_factory=dict)
    _burst_alerted: bool = False  # the ongoing burst of failed logins has raised its alert

    def _department(self, code: str | None) -> str:
        return self.department_names.get(code, "担当課不明") if code else "担当課不明"

    def record_read(self, event: RecordRead) -> list[Alert]:
        at = require_aware(event.at, "at")
        alerts: list[Alert] = []
        window = self._reads.setdefault(event.user_id, deque())
        seen = self._distinct.setdefault(event.user_id, Counter())
        for record_id in event.record_ids:
            window.append((at, record_id))
            seen[record_id] += 1
        while window and window[0][0] <= at - HOUR:
            _, old = window.popleft()
            seen[old] -= 1
            if seen[old] <= 0:
                del seen[old]
        total = len(seen)
        limit = self.thresholds.reads_per_hour
        if total > limit and self._arm("bulk_reads", event.user_id, at):
            alerts.append(Alert(
                "bulk_reads", at,
                f"アカウント {event.user_id} が1時間に{total}件の記録を参照しました（しきい値 {limit}件）",
                event.user_id, total, 3600,
            ))
        if (self.thresholds.off_hours_department_reads and event.role == "department" and event.record_ids
                and not self.office_open(at) and self._arm("off_hours_read", event.user_id, at)):
            alerts.append(Alert(
                "off_hours_read", at,
                f"担当課のアカウント {event.user_id}（{self._department(event.department)}）"
                "が閉庁時間中に記録を参照しました",
                event.user_id, len(set(event.record_ids)), 0,
            ))
        return alerts

    def login_failed(self, event: LoginFailure) -> list[Alert]:
        at = require_aware(event.at, "at")
        window_s = self.thresholds.failed_login_window_seconds
        window = timedelta(seconds=window_s)
        if self._failures and at - self._failures[-1] >= window:
            self._burst_alerted = False  # a whole window without failures: the burst is over
        self._failures.append(at)
        while self._failures and self._failures[0] <= at - window:
            self._failures.popleft()
        count = len(self._failures)
        if count < self.thresholds.failed_logins:
            return []
        if self._burst_alerted:
            last = self._last_fired.get(("login_failures", "*"))
            if last is not None and at - last < timedelta(seconds=self.thresholds.cooldown_seconds):
                return []  # the same burst goes on: one alert per cooldown
        self._burst_alerted = True
        self._last_fired[("login_failures", "*")] = at
        return [Alert("login_failures", at, f"{window_s}秒間にログインの失敗が{count}回ありました",
                      None, count, window_s)]

    def _arm(self, kind: str, key: str, at: datetime) -> bool:
        """True (and remember it) unless the same rule fired for the same key within the cooldown."""
        last = self._last_fired.get((kind, key))
        if last is not None and at - last < timedelta(seconds=self.thresholds.cooldown_seconds):
            return False
        self._last_fired[(kind, key)] = at
        return True
