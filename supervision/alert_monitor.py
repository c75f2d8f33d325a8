"""The access-alert monitor: feeds the audit trail (reads of personal data, failed logins) and the
auth routes' failed-login log events to the pure detector, stores every alert it raises (so it has
a stable id and survives a restart) and only then pushes it to the supervisors' screens.

The monitor task (owned by the supervisor context) wakes every ``poll_seconds``, or at once when a
failed login was counted. One bad audit row or one failing round is logged with its traceback
(code locations only: no message text, no personal data) and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from cti.core.clock import Clock
from cti.core.logs import log_event
from cti.gateway import Gateway
from supervision import alert_store
from supervision.alerts import Alert, AlertDetector, LoginFailure, RecordRead
from supervision.messages import AccessAlert

logger = logging.getLogger("supervision.alerts")

AUTH_LOGGER = "cti.screenpop.auth"
READ_ACTIONS = frozenset({"read", "list"})
READ_TYPES = frozenset({"callback", "call", "faq_gap"})
AUDIT_BATCH = 5000


@dataclass
class AlertMonitor:
    detector: AlertDetector
    db: Gateway
    clock: Clock
    push: Callable[[BaseModel], None]
    last_audit_seq: int = 0
    pending: list[Alert] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one round at a time (the task, a test)
    _storing: asyncio.Future[list[dict[str, Any]]] | None = None

    def offer(self, alerts: list[Alert]) -> None:
        """Alerts raised outside the monitor task (the log handler): stored and pushed by the task."""
        if alerts:
            self.pending.extend(alerts)
            self.wake.set()

    async def start_from_now(self) -> None:
        """Alert on what happens from now on: skip the audit trail written before this start."""
        self.last_audit_seq = await self.db.read(_max_audit_seq)

    async def check_audit(self) -> int:
        """Feed new audit rows to the detector, then store and push the alerts; returns rows seen."""
        async with self.lock:
            return await self._check_audit()

    async def _check_audit(self) -> int:
        rows = await self.db.read(lambda conn: _audit_rows(conn, self.last_audit_seq))
        for row in rows:
            self.last_audit_seq = int(row["seq"])
            try:
                self.pending.extend(self._detect(row))
            except Exception:  # one row the detector cannot take must not stop the monitor
                log_event(logger, "alert_row_failed", logging.ERROR, seq=int(row["seq"]), exc_info=True)
        await self._flush()
        return len(rows)

    def _detect(self, row: sqlite3.Row) -> list[Alert]:
        at = datetime.fromisoformat(row["at"])
        if row["action"] in READ_ACTIONS and row["record_type"] in READ_TYPES and row["outcome"] == "ok":
            ids = [row["record_id"]]
            if row["action"] == "list":
                try:
                    ids = list(json.loads(row["detail"]).get("ids", []))
                except (ValueError, AttributeError):
                    ids = []
            record_ids = tuple(f"{row['record_type']}:{i}" for i in ids if i is not None)
            if record_ids:
                return self.detector.record_read(RecordRead(row["actor"], row["role"], row["department"], at,
                                                            record_ids))
        elif row["action"] == "login" and row["outcome"] in ("failed", "denied"):
            return self.detector.login_failed(LoginFailure(at, row["actor"]))
        return []

    async def flush(self) -> list[dict[str, Any]]:
        """Store the pending alerts (one unit of work), then log and push each with its id."""
        async with self.lock:
            return await self._flush()

    async def _flush(self) -> list[dict[str, Any]]:
        if self._storing is not None and not self._storing.done():
            await asyncio.wait([self._storing])  # a cancelled round's write: let it finish its bookkeeping
        if not self.pending:
            return []
        batch = list(self.pending)

        async def store_then_push() -> list[dict[str, Any]]:
            stored = await self.db.write(lambda conn: alert_store.insert_alerts(conn, batch))
            del self.pending[: len(batch)]  # only once stored: a failed write is retried next round
            for alert in stored:
                log_event(logger, "access_alert", logging.WARNING, alert_id=alert["id"], kind=alert["kind"],
                          user=alert["user_id"], count=alert["count"], window_seconds=alert["window_seconds"])
                self.push(AccessAlert(alert=alert))
            return stored

        # Shielded: once the write may commit, the alerts leave `pending` with it even if this round is
        # cancelled (shutdown), so the shutdown flush does not store them a second time.
        self._storing = asyncio.ensure_future(store_then_push())
        return await asyncio.shield(self._storing)

    async def run(self, interval: float) -> None:
        """Owned task: check the audit trail every `interval` seconds or when woken."""
        while True:
            try:
                await self.check_audit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log_event(logger, "alert_monitor_failed", logging.ERROR, exc_info=True)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):  # not wait_for, which can drop a cancel on 3.11
                    await self.wake.wait()


def _max_audit_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM audit").fetchone()
    return int(row[0]) if row else 0


def _audit_rows(conn: sqlite3.Connection, after: int) -> list[sqlite3.Row]:
    return list(conn.execute(
        "SELECT seq, at, actor, role, department, action, record_type, record_id, outcome, detail FROM audit"
        " WHERE seq > ? ORDER BY seq LIMIT ?", (after, AUDIT_BATCH)
    ).fetchall())


class LoginFailureHandler(logging.Handler):
    """Counts ``login_failed`` and ``login_throttled`` log events of the auth routes (they are not in the
    audit trail); a throttled attempt is a failed one too."""

    def __init__(self, monitor: AlertMonitor) -> None:
        super().__init__(logging.WARNING)
        self.monitor = monitor

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg not in ("login_failed", "login_throttled"):
            return
        try:
            user = getattr(record, "cti_fields", {}).get("user_id")
            self.monitor.offer(self.monitor.detector.login_failed(LoginFailure(self.monitor.clock(), user)))
        except Exception:  # logged like the monitor's own failures (the login itself is unaffected)
            log_event(logger, "login_alert_failed", logging.ERROR, exc_info=True)
