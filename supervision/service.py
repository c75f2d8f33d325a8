"""The supervisor context: what create_app wires for the supervisor and department screens.

create_app should:

    migrations: merge ``supervision.service.migrations()`` (component "supervisor")
    app.cleanup_ctx.append(supervision.calendar_store.calendar_ctx(...))  # right after the database
    app.cleanup_ctx.append(supervisor_ctx)   # after the DB, records_ctx, auth_ctx, the hub and ami_ctx
    supervision.service.setup_routes(app)

supervisor_ctx owns three tasks (started, cancelled and awaited here): the wall pusher, the call-log
writer and the alert monitor. It subscribes the event feed to the tracker's domain events and to
presence changes when telephony is wired (``app[telephony_keys.AMI]``), and attaches a log handler that counts
failed logins (``login_failed`` of cti.screenpop.auth). Every database use goes through the gateway
(``app[DATABASE]``).

The modules: event_feed (events -> wall, call log, callback progress), call_log (its table and
writer), wall_push, alert_monitor + alert_store (alerts raised, stored, acknowledged), routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from cti.calendar import keys as calendar_keys
from cti.core import keys as core_keys
from cti.core.logs import log_event
from cti.core.run_once import leases_of
from cti.gateway import DATABASE, Gateway
from faq.categories import CATEGORY_LABELS
from records import keys as records_keys
from screenpop import keys as screenpop_keys
from supervision import alert_store, calendar_store, call_log
from supervision.alert_monitor import AUTH_LOGGER, AlertMonitor, LoginFailureHandler
from supervision.alerts import AlertDetector, Thresholds
from supervision.call_log import Entry, write_call_log, write_entries
from supervision.event_feed import EventFeed
from supervision.keys import ALERT_SETTINGS, SUPERVISOR, Supervisor
from supervision.routes import setup_routes
from supervision.settings import AlertSettings
from supervision.standby import AlertsJob
from supervision.wall_push import count_overdue, push_wall
from telephony import keys as telephony_keys

logger = logging.getLogger("supervision.service")

__all__ = ["ALERT_SETTINGS", "SUPERVISOR", "count_overdue", "migrations", "setup_routes", "supervisor_ctx"]


def migrations() -> dict[str, list[str]]:
    """Component "supervisor": runtime calendar state, the call log (reports), access alerts."""
    return {"supervisor": [
        calendar_store.SCHEMA + ";\n" + call_log.SCHEMA + ";\n" + alert_store.SCHEMA,
        alert_store.ACKNOWLEDGEMENT_SCHEMA,
    ]}


def _alert_settings(app: web.Application) -> AlertSettings:
    return app.get(ALERT_SETTINGS) or AlertSettings.model_validate({})


def _thresholds(settings: AlertSettings) -> Thresholds:
    return Thresholds(reads_per_hour=settings.reads_per_hour, failed_logins=settings.failed_logins,
                      failed_login_window_seconds=settings.failed_login_window_seconds,
                      cooldown_seconds=settings.cooldown_seconds,
                      off_hours_department_reads=settings.off_hours_department_reads)


async def supervisor_ctx(app: web.Application) -> AsyncIterator[None]:
    from records import department_api
    from screenpop.keys import SEATS

    settings = _alert_settings(app)
    calendars = app[calendar_keys.CALENDARS]
    db = app[DATABASE]
    dispatcher = app.get(screenpop_keys.DISPATCHER)  # pop_ctx runs first; it gives the 受付番号
    feed = EventFeed(clock=app[core_keys.CLOCK], hub=app.get(screenpop_keys.HUB), seats=app.get(SEATS),
                     calendars=calendars, call_owners=app.setdefault(department_api.CALL_OWNERS, {}),
                     category_labels=CATEGORY_LABELS,
                     references=dispatcher.references if dispatcher is not None else None)
    records_settings = app.get(records_keys.SETTINGS)
    names = {d.code: d.name for d in records_settings.departments} if records_settings is not None else {}
    detector = AlertDetector(_thresholds(settings), lambda at: calendars.office(at).open, names)
    monitor = AlertMonitor(detector, db, app[core_keys.CLOCK], feed.send_to_supervisors)
    await monitor.start_from_now()
    app[SUPERVISOR] = Supervisor(feed, monitor)
    telephony = app.get(telephony_keys.AMI)
    if telephony is not None:
        telephony.domain_listeners.append(feed.on_domain_events)
        telephony.presence_listeners.append(feed.on_presence)
        feed.on_presence(telephony.presence.members())
    handler = LoginFailureHandler(monitor)
    logging.getLogger(AUTH_LOGGER).addHandler(handler)
    alerts_job = AlertsJob(monitor, settings.poll_seconds)
    tasks = [
        asyncio.create_task(push_wall(db, feed), name="supervisor-wall"),
        asyncio.create_task(write_call_log(db, feed.call_log), name="supervisor-call-log"),
        # Run once across cti nodes sharing a PostgreSQL store: the leader reads the shared audit trail;
        # a standby still stores the failed logins it saw itself (supervision/standby.py).
        asyncio.create_task(leases_of(app).lead("access-alerts", alerts_job.lead, alerts_job.standby),
                            name="supervisor-alerts"),
    ]
    try:
        yield
    finally:
        logging.getLogger(AUTH_LOGGER).removeHandler(handler)
        if telephony is not None:
            with contextlib.suppress(ValueError):
                telephony.domain_listeners.remove(feed.on_domain_events)
            with contextlib.suppress(ValueError):
                telephony.presence_listeners.remove(feed.on_presence)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await _flush_on_shutdown(db, feed, monitor)


async def _flush_on_shutdown(db: Gateway, feed: EventFeed, monitor: AlertMonitor) -> None:
    """What the cancelled tasks had not written yet: the last call-log events and raised alerts."""
    batch: list[Entry] = []
    while not feed.call_log.empty():
        batch.append(feed.call_log.get_nowait())
    try:
        if batch:
            await db.write(functools.partial(write_entries, batch=batch))
        await monitor.flush()
    except Exception:
        log_event(logger, "supervisor_shutdown_flush_failed", logging.ERROR, events=len(batch), exc_info=True)
