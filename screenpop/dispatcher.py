"""The pop dispatcher: tracker domain events -> ringing notices, pops and call updates on the hub.

create_app (after the records, FAQ, AMI, hub and desks contexts)::

    app.cleanup_ctx.append(pop_ctx)      # screenpop.dispatcher.pop_ctx

``PopDispatcher`` listens to the tracker's domain events (``app[telephony_keys.AMI].domain_listeners``),
feeds the pure router (screenpop/router.py) and carries out its actions through the hub; a pop is
composed (screenpop/pop.py, the wire model screenpop.messages.Pop) from the caller's history and
open callbacks (records), FAQ suggestions and the office status at the moment of the answer.

FAQ search as you type goes over the websocket too (``faq_search`` -> ``faq_results``; ``pop_ctx``
sets the hub's ``on_faq_search`` hook), so the words typed never appear in a URL; the page falls
back to GET /api/faq/search only while the socket is down. The operator page and its HTTP APIs
are screenpop/operator_api.py; seats and presence are screenpop/desk_service.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import Gauge

from cti.calendar import keys as calendar_keys
from cti.core import keys as core_keys
from cti.core.clock import TOKYO
from cti.core.logs import log_event
from cti.core.principal import Principal
from cti.core.run_once import SoleNode, leases_of
from cti.gateway import DATABASE
from faq import keys as faq_keys
from records import keys as records_keys
from screenpop import keys as screenpop_keys
from screenpop import messages
from screenpop.desk_service import finish_call, missed_ring
from screenpop.hub import Hub, SnapshotProvider
from screenpop.keys import DISPATCHER, SEATS
from screenpop.operator_api import FAQ_CREDIT
from screenpop.pop import Contact, FaqSuggestion, OpenCallback, category_of, compose_pop
from screenpop.references import CallReferences, tokyo_day
from screenpop.router import Action, CallFinished, ComposePop, Notify, PopRouter, RingNotAnswered
from screenpop.seats import SeatMap
from screenpop.served_seats import SeatLookup, ServedSeats
from telephony import keys as telephony_keys

logger = logging.getLogger("cti.screenpop.pop")

# The router keeps each live call (with its caller number) until it ends: its size shows leaks.
ROUTER_CALLS = Gauge("cti_pop_router_calls", "Calls the pop router keeps in memory (bounded)")

MAX_TODAY_PER_USER = 500
FAQ_RESULTS = 10

__all__ = ["DISPATCHER", "PopDispatcher", "pop_ctx"]


# ---- the pop dispatcher ---------------------------------------------------------------------------


class PopDispatcher:
    """Router actions -> hub messages; owns nothing long-lived (no tasks), serialises its work."""

    def __init__(self, app: web.Application, seats: SeatMap, references: CallReferences | None = None,
                 routed: SeatLookup | None = None) -> None:
        self.app = app
        self.seats = seats
        self.router = PopRouter(routed or seats)  # routed: ServedSeats when nodes share the store
        self.references = references
        self._user_locks: dict[str, asyncio.Lock] = {}  # one per operator: their messages stay in order
        self._desk_locks: dict[str, asyncio.Lock] = {}  # one per operator: their desk changes stay in order
        self._today: dict[str, dict[str, dict[str, Any]]] = {}  # user -> call_id -> row (no personal data)
        self._current: dict[str, tuple[ComposePop, str]] = {}  # user -> (their latest pop, call state)

    async def on_events(self, events: Any) -> None:
        """Listener for the tracker's domain events (one event or a list of them).

        The router is pure and synchronous, so it sees events in arrival order without a lock.
        Delivery is ordered per operator (a pop is never overtaken by that call's hangup) but one
        operator's pop lookups (SQLite) never hold up another operator's messages. Desk changes
        (後処理, 不在着信: an AMI action and a write) run after, under their own per-operator lock,
        so they never hold up a message either.
        """
        batch: Iterable[Any] = events if isinstance(events, list | tuple) else [events]
        per_user: dict[str, list[tuple[Any, Action]]] = {}
        desk_changes: dict[str, list[tuple[Any, Action]]] = {}
        for event in batch:
            for action in self.router.feed(event):
                bucket = desk_changes if isinstance(action, RingNotAnswered | CallFinished) else per_user
                bucket.setdefault(action.user_id, []).append((event, action))
        ROUTER_CALLS.set(self.router.active_calls)
        if per_user:
            await asyncio.gather(*(self._deliver(user, items) for user, items in per_user.items()))
        if desk_changes:
            await asyncio.gather(*(self._change_desk(user, items) for user, items in desk_changes.items()))

    async def _deliver(self, user_id: str, items: list[tuple[Any, Action]]) -> None:
        lock = self._user_locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            for event, action in items:
                try:
                    if isinstance(action, Notify):
                        self._note(action)
                        message = action.message
                        if isinstance(message, messages.Ringing):
                            reference = await self._reference(message.call_id, event.at)
                            message = message.model_copy(update={"reference": reference})
                        self._send(action.user_id, message)
                    elif isinstance(action, ComposePop):
                        await self.send_pop(action)
                except Exception as exc:  # one failed pop must not stop the others
                    log_event(logger, "pop_action_failed", logging.ERROR, call_id=event.call_id,
                              error=type(exc).__name__)

    async def _change_desk(self, user_id: str, items: list[tuple[Any, Action]]) -> None:
        lock = self._desk_locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            for event, action in items:
                try:
                    if isinstance(action, RingNotAnswered):
                        await missed_ring(self.app, action.user_id, action.call_id)
                    elif isinstance(action, CallFinished):
                        await finish_call(self.app, action.user_id, action.call_id)
                except Exception as exc:  # e.g. the AMI link is down: the desk stays as it was
                    log_event(logger, "desk_change_failed", logging.WARNING, call_id=event.call_id,
                              error=type(exc).__name__)

    async def _reference(self, call_id: str, at: datetime) -> str:
        if self.references is None:
            return ""
        return await self.references.assign(call_id, at)

    def _send(self, user_id: str, message: Any) -> None:
        hub = self.app.get(screenpop_keys.HUB)
        if hub is None:
            log_event(logger, "pop_no_hub", logging.WARNING, user_id=user_id, type=message.type)
            return
        hub.send_to_user(user_id, message)

    def _note(self, action: Notify) -> None:
        msg = action.message
        if isinstance(msg, messages.CallUpdate) and not msg.detail.get("ringing"):
            state = "transferred" if msg.event == "transferred" else "ended"
            row = self._today.get(action.user_id, {}).get(msg.call_id)
            if row is not None:
                row["state"] = "転送済み" if state == "transferred" else "終了"
            current = self._current.get(action.user_id)
            if current is not None and current[0].call.call_id == msg.call_id and current[1] != "ended":
                self._current[action.user_id] = (current[0], state)

    async def build_pop(self, action: ComposePop) -> messages.Pop:
        """The pop for `action`: lookups, then the pure composition (screenpop/pop.py)."""
        app = self.app
        now = app[core_keys.CLOCK]()
        office = app[calendar_keys.CALENDARS].office(now)
        number = action.call.caller_number
        records = app.get(records_keys.SERVICE)
        history_rows: list[dict[str, Any]] = []
        callback_rows: list[dict[str, Any]] = []
        if records is not None and number:
            history_rows = await records.caller_history(number, now)
            callback_rows = await records.open_callbacks_for(number)
        history = [
            Contact(
                contacted_at=datetime.combine(row["date"], time(0), TOKYO),
                category=row.get("category"),
                outcome=row.get("outcome") or "",
            )
            for row in history_rows
        ]
        callbacks = [
            OpenCallback(id=int(cb["id"]), department=cb["department"], status=cb["status"],
                         status_text=cb.get("status_text") or cb["status"], handover_date=cb["handover_date"])
            for cb in callback_rows
        ]
        faq = app.get(faq_keys.FAQ)
        suggestions: list[FaqSuggestion] = []
        credit = FAQ_CREDIT
        if faq is not None:
            limit = app[faq_keys.SETTINGS].suggestions
            category, _ = category_of(action.call.category)
            suggestions = [FaqSuggestion(id=e.id, question=e.question) for e in faq.suggest(category, [], limit)]
            credit = faq.credit or FAQ_CREDIT
        names = {d.code: d.name for d in app[records_keys.SETTINGS].departments}
        return compose_pop(action.call, office, history, callbacks, suggestions, now=now, faq_credit=credit,
                           department_names=names)

    async def send_pop(self, action: ComposePop) -> None:
        reference = await self._reference(action.call.call_id, action.answered_at)
        action = replace(action, call=replace(action.call, reference=reference))
        message = await self.build_pop(action)
        self._remember(action, message)
        self._send(action.user_id, message)
        log_event(logger, "pop_sent", user_id=action.user_id, call_id=action.call.call_id)

    async def adopt_live_call(self, user_id: str) -> bool:
        """The call up at the user's seat that this node followed without a pop (the operator's browser
        was on another cti node, which died): it becomes their current call here, with the 受付番号
        it already has. Nothing is sent: the page still shows that pop, or asks for it
        (GET /api/operator/current, after the snapshot); its updates (hangup, 後処理) now come from here,
        and records lets the operator read the call's records here as on the node that died."""
        seat = self.seats.seat_of(user_id)
        if seat is None:
            return False
        lock = self._user_locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            action = self.router.adopt(user_id, seat)
            if action is None:
                return False
            reference = (await self.references.existing_or_assign(action.call.call_id, action.answered_at)
                         if self.references is not None else "")
            action = replace(action, call=replace(action.call, reference=reference))
            self._remember(action, await self.build_pop(action))
            records = self.app.get(records_keys.SERVICE)
            if records is not None:  # the contact exists (the other node made it): the call is theirs here too
                await records.call_taken(action.call.call_id, user_id, caller_number=action.call.caller_number,
                                         ivr_category=action.call.category)
        log_event(logger, "pop_adopted", user_id=user_id, call_id=action.call.call_id)
        return True

    def _remember(self, action: ComposePop, message: messages.Pop) -> None:
        """The call in the user's list of today's calls, and as their current call."""
        day = action.answered_at.astimezone(TOKYO).date().isoformat()
        rows = self._today.setdefault(action.user_id, {})
        rows[action.call.call_id] = {
            "call_id": action.call.call_id,
            "reference": message.reference,
            "at": action.answered_at.isoformat(),
            "day": day,
            "category_label": message.category_label,
            "state": "通話中",
        }
        while len(rows) > MAX_TODAY_PER_USER:
            rows.pop(next(iter(rows)))
        self._current[action.user_id] = (action, "talking")

    async def current(self, user_id: str) -> dict[str, Any] | None:
        """The user's latest pop, composed again (fresh history and office status), with its state;
        for a page reloaded during (or right after) a call, or come over from another cti node."""
        await self.adopt_live_call(user_id)
        current = self._current.get(user_id)
        if current is None:
            return None
        action, state = current
        payload = (await self.build_pop(action)).model_dump(exclude={"seq"})
        payload["call_state"] = state
        return payload

    def today(self, user_id: str, now: datetime) -> list[dict[str, Any]]:
        day = now.astimezone(TOKYO).date().isoformat()
        rows = [dict(r) for r in self._today.get(user_id, {}).values() if r["day"] == day]
        for r in rows:
            r.pop("day")
        return sorted(rows, key=lambda r: r["at"], reverse=True)


async def pop_ctx(app: web.Application) -> AsyncIterator[None]:
    """Create the pop dispatcher and subscribe it to the tracker (when the AMI link runs)."""
    seats = app.get(SEATS)
    if seats is None:  # auth_ctx normally made it
        seats = SeatMap()
        app[SEATS] = seats
    database = app.get(DATABASE)
    # several nodes (PostgreSQL leases): one 受付番号 per call on every node's screens
    shared = not isinstance(leases_of(app), SoleNode)
    references = CallReferences(database, shared=shared) if database is not None else None
    if references is not None:
        now = app[core_keys.CLOCK]()
        await references.prime(now)
        # at start: the look-up rows go with the call records' retention (no personal data in them)
        keep_from = now - timedelta(days=app[records_keys.SETTINGS].retention_days)
        await references.forget_before(tokyo_day(keep_from))
    hub = app.get(screenpop_keys.HUB)
    routed = None
    if not isinstance(leases_of(app), SoleNode) and isinstance(hub, Hub):  # several nodes, one store
        routed = ServedSeats(seats, hub.serves)
    dispatcher = PopDispatcher(app, seats, references, routed)
    app[DISPATCHER] = dispatcher
    desk_snapshot: SnapshotProvider | None = getattr(hub, "snapshot_provider", None)
    if hub is not None and desk_snapshot is not None:

        async def snapshot(principal: Principal) -> messages.DeskState:
            # the desk first (it may have just learnt the seat from the store), then the call up at
            # that seat, so the page's next GET /api/operator/current finds it
            state = await desk_snapshot(principal)
            try:
                await dispatcher.adopt_live_call(principal.user_id)
            except Exception as exc:
                log_event(logger, "pop_adopt_failed", logging.WARNING, user_id=principal.user_id,
                          error=type(exc).__name__)
            return state

        hub.snapshot_provider = snapshot
    telephony = app.get(telephony_keys.AMI)
    listeners = getattr(telephony, "domain_listeners", None)
    if listeners is not None:
        listeners.append(dispatcher.on_events)
    faq = app.get(faq_keys.FAQ)
    faq_hooked = False
    if hub is not None and faq is not None and getattr(hub, "on_faq_search", None) is None:

        async def on_faq_search(principal: Principal, q: str) -> list[dict[str, Any]]:
            # over the websocket, so what the operator types never lands in a URL or an access log
            return list(faq.operator_results(q, FAQ_RESULTS))  # FAQ hits, then the ward's documents

        hub.on_faq_search = on_faq_search
        faq_hooked = True
    try:
        yield
    finally:
        if hub is not None and desk_snapshot is not None:
            hub.snapshot_provider = desk_snapshot
        if faq_hooked and hub is not None:
            hub.on_faq_search = None
        if listeners is not None and dispatcher.on_events in listeners:
            listeners.remove(dispatcher.on_events)
        if references is not None:
            await references.close()
