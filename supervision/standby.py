"""The access-alert monitor on several cti nodes sharing a PostgreSQL store (cti/core/run_once.py).

One node leads the job "access-alerts": it reads the shared audit trail (every node's reads of
personal data) and stores the alerts, once. The other nodes stand by: they still count the failed
logins their own login route saw (those are log events, not audit rows, so only that node knows
them) and store the alerts raised from them, without reading the audit trail.

A node that takes the lead over after standing by starts reading the audit trail from then: the rows
before were the previous leader's to check (re-reading them would raise its alerts a second time).
"""

from __future__ import annotations

import asyncio
import logging

from cti.core.logs import log_event
from supervision.alert_monitor import AlertMonitor

logger = logging.getLogger("supervision.alerts")


class AlertsJob:
    """The leader and standby halves of the "access-alerts" job for `cti.core.run_once` leases."""

    def __init__(self, monitor: AlertMonitor, interval: float) -> None:
        self.monitor = monitor
        self.interval = interval
        self.stood_by = False

    async def lead(self) -> None:
        if self.stood_by:  # taking over: what came before was the previous leader's to check
            await self.monitor.start_from_now()
        await self.monitor.run(self.interval)

    async def standby(self) -> None:
        """Store (and push) the alerts from this node's own failed logins whenever there are some."""
        self.stood_by = True
        while True:
            await self.monitor.wake.wait()
            self.monitor.wake.clear()
            try:
                await self.monitor.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log_event(logger, "alert_standby_flush_failed", logging.ERROR, exc_info=True)
