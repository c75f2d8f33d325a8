"""Several cti nodes on one PostgreSQL store: what each node runs so that they act as one.

- `cluster_ctx` (after the calendar context): the node's `Leases` (cti/core/run_once.py):
  `PgLeases` (cti/pg_leases.py) on PostgreSQL, `SoleNode` on SQLite; and, on PostgreSQL, the calendar follower.
- On PostgreSQL, records name a contact's operator through `ServedSeats` (the node the operator's
  browser is on names them; screenpop/served_seats.py), as the pop dispatcher routes calls.
- The calendar follower: the emergency switch and the runtime overrides are stored by whichever node
  a supervisor used; every other node's in-memory calendar (what its FastAGI routing answers from)
  follows the stored state within `CALENDAR_FOLLOW_SECONDS`.
- `cti.core.run_once.leases_of(app)`: what the packages' run-once jobs lead with (SoleNode when the
  context is absent, as in tests that wire a partial app).

What needs no coordination: each node follows every call over AMI and pops only its own websockets;
the call log is written by every node with idempotent upserts (one row per call, whatever node saw
the event first), so a node dying mid-call loses none of it; every write is serialized by the
gateway's one-writer lock, so the audit trail stays one chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from cti import keys
from cti.calendar.rules import Calendars
from cti.core.logs import log_event
from cti.core.run_once import LEASES, Leases, SoleNode, node_name
from cti.gateway import Gateway
from cti.pg_leases import PgLeases
from cti.store_backend import is_postgres
from records import keys as records_keys
from screenpop import keys as screenpop_keys
from screenpop.served_seats import ServedSeats
from supervision.calendar_store import RUNTIME_PREFIX, RuntimeState, read_state

logger = logging.getLogger("cti.cluster")

CALENDAR_FOLLOW_SECONDS = 2.0


def sync_calendar(calendars: Calendars, state: RuntimeState) -> bool:
    """Make the runtime part of `calendars` equal the stored state (added, removed, the switch);
    configured overrides are left alone. Returns whether anything changed."""
    changed = False
    stored = {o.id: o for o in state.overrides}
    for override in list(calendars.overrides):
        if override.id.startswith(RUNTIME_PREFIX) and override.id not in stored:
            calendars.remove_override(override.id)
            changed = True
    known = {o.id for o in calendars.overrides}
    for override_id, override in stored.items():
        if override_id not in known:
            calendars.add_override(override)
            changed = True
    if calendars.emergency_reason != state.emergency_reason:
        calendars.set_emergency(state.emergency_reason)
        changed = True
    return changed


async def follow_calendar(db: Gateway, calendars: Calendars, interval: float = CALENDAR_FOLLOW_SECONDS) -> None:
    """Owned task (PostgreSQL): keep this node's calendar equal to the stored runtime state."""
    while True:
        try:
            if sync_calendar(calendars, await db.read(read_state)):
                log_event(logger, "calendar_followed", emergency=calendars.emergency_reason is not None,
                          overrides=len(calendars.overrides))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_event(logger, "calendar_follow_failed", logging.ERROR, error=type(exc).__name__)
        await asyncio.sleep(interval)


def hub_serves(app: web.Application, user_id: str) -> bool:
    """The operator's browser is on this node (no hub: a partial app, every seat counts)."""
    hub = app.get(screenpop_keys.HUB)
    return hub is None or bool(hub.serves(user_id))


async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    """The node's leases; on PostgreSQL the calendar follower too."""
    store = app[keys.SETTINGS].store
    leases: Leases
    follower: asyncio.Task[None] | None = None
    if is_postgres(store.url):
        assert store.url is not None
        leases = PgLeases(store.url, node_name())
        # a contact's operator is named by the node their browser is on (screenpop/served_seats.py)
        app[records_keys.SEATS] = ServedSeats(app[records_keys.SEATS], lambda user: hub_serves(app, user))
        follower = asyncio.create_task(follow_calendar(app[keys.DATABASE], app[keys.CALENDARS]),
                                       name="calendar-follower")
    else:
        leases = SoleNode()
    app[LEASES] = leases
    log_event(logger, "cluster_node", node=node_name(), shared_store=follower is not None)
    try:
        yield
    finally:
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        await leases.close()
