"""The websocket handler: GET /ws, GET /api/ws/schema.json, and the hub's lifetime.

The lead's create_app calls (after auth_ctx, which this needs)::

    app.cleanup_ctx.append(hub_ctx)   # owns the Hub (app[screenpop.keys.HUB]) and its session sweep task
    setup_ws_routes(app)

Handshake order: Origin (403 unless in settings.security.allowed_origins) -> session (401 without a
session cookie; a cookie whose session expired gets the upgrade, a ``session_expired`` message and
close 4401, since a browser cannot read a failed handshake's status) -> operator-room network for
operators and supervisors (403). Client messages touch the session (idle timeout); a sweep closes
sockets whose session ended (4401) and frees the seat.

Presence changes and the snapshot a (re)connecting page gets are the desks' (screenpop/desk_service.py
sets the hub's ``on_presence`` and ``snapshot_provider``); this module only routes the messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web
from pydantic import ValidationError

from access import keys as access_keys
from access.rules import OUTSIDE_ROOM, Access, decide, origin_allowed
from access.web import (
    AUTH,
    SESSION_KEY,
    SESSION_STATE_KEY,
    AuthContext,
    denial_response,
    log_outside_room,
    public,
)
from cti.core.http import current_principal
from cti.core.logs import log_event
from cti.core.principal import Principal
from screenpop import keys as screenpop_keys
from screenpop import messages as m
from screenpop.hub import Hub
from screenpop.hub_connection import Connection

logger = logging.getLogger("cti.screenpop.ws")


def hub_of(app: web.Application) -> Hub:
    hub = app[screenpop_keys.HUB]
    assert isinstance(hub, Hub)
    return hub


@public
async def ws_schema(request: web.Request) -> web.Response:
    return web.json_response(m.schema(), headers={"Cache-Control": "no-cache"})


@public  # the handler does its own checks: see the module doc for the order
async def ws_handler(request: web.Request) -> web.StreamResponse:
    app = request.app
    ctx = app[AUTH]
    settings = app[screenpop_keys.SETTINGS]
    hub = hub_of(app)
    if not origin_allowed(request.headers.get("Origin"), ctx.allowed_origins, require=True):
        log_event(logger, "ws_origin_rejected", logging.WARNING, client_ip=request.remote)
        return web.json_response(
            {"error": "bad_origin", "message": "許可されていない送信元です / Websocket origin not allowed."},
            status=403,
        )
    principal = current_principal(request)
    session = request.get(SESSION_KEY)
    ws = web.WebSocketResponse(
        heartbeat=settings.hub.heartbeat_seconds,
        max_msg_size=settings.hub.max_message_bytes,
        compress=False,
    )
    if principal is None or session is None:
        if request.get(SESSION_STATE_KEY) in ("expired", "missing"):
            await ws.prepare(request)
            await ws.send_str(m.SessionExpired().model_dump_json())
            await ws.close(code=m.CLOSE_SESSION_EXPIRED, message=b"session_expired")
            return ws
        return web.json_response(
            {"error": "not_logged_in", "message": "ログインしてください / Please log in."}, status=401
        )
    denial = decide(Access(), principal, from_operator_room=ctx.from_operator_room(request.remote))
    if denial is not None:
        if denial is OUTSIDE_ROOM:
            log_outside_room(request, principal)
        return denial_response(request, denial)

    await ws.prepare(request)

    def abort() -> None:
        transport = request.transport
        if transport is not None:
            transport.abort()

    def unsent() -> int:
        transport = request.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    conn = hub.connect(principal, session.token_hash, ws, abort, unsent)
    conn.start_writer()
    synced = False
    try:
        async for frame in ws:
            if frame.type is WSMsgType.TEXT:
                synced = await _on_text(app, ctx, conn, frame.data, synced)
            elif frame.type is WSMsgType.BINARY:
                conn.send_local(m.Error(code="bad_message", message="テキストのJSONのみ / only JSON text frames"))
            elif frame.type is WSMsgType.ERROR:
                error = frame.data
                if isinstance(error, WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG:
                    conn.disconnect_reason = "too_big"
                elif isinstance(error, TimeoutError):  # aiohttp's heartbeat: no PONG in time
                    conn.disconnect_reason = "heartbeat"
                else:
                    conn.disconnect_reason = "error"
    finally:
        # (here too when aiohttp cancels the handler because the connection was lost)
        if conn.close_request is None and conn.disconnect_reason == "client_closed":
            if isinstance(ws.exception(), TimeoutError):  # aiohttp's heartbeat: no PONG in time
                conn.disconnect_reason = "heartbeat"
            elif ws.close_code in (WSCloseCode.ABNORMAL_CLOSURE, None):
                conn.disconnect_reason = "network"
        await conn.stop_writer()
        hub.disconnect(conn)
    return ws


async def _on_text(app: web.Application, ctx: AuthContext, conn: Connection, data: str, synced: bool) -> bool:
    try:
        msg = m.parse_client_message(data)
    except ValidationError as exc:
        if not synced:
            conn.sync_without_resume()
        conn.send_local(m.Error(code="bad_message", message=_describe(exc)))
        return True
    # Client activity keeps the session alive; an ended session closes the socket (4401).
    found = await ctx.sessions.lookup_hash(conn.session_hash)
    if found.session is None:
        _session_ended(app, conn.session_hash, conn.user_id)
        return synced
    if isinstance(msg, m.Resume):
        conn.resume(msg)
        return True
    if not synced:
        conn.sync_without_resume()
    hub = conn.hub
    if isinstance(msg, m.Ping):
        conn.send_local(m.Pong())
    elif isinstance(msg, m.PresenceSet):
        await _presence(app, hub, conn.principal, msg)
    elif isinstance(msg, m.FaqSearch):
        if hub.on_faq_search is None:
            conn.send_local(m.Error(code="faq_unavailable", message="FAQ検索は利用できません / FAQ search unavailable"))
        else:
            try:
                results = await hub.on_faq_search(conn.principal, msg.q)
            except Exception as exc:
                log_event(logger, "faq_search_failed", logging.ERROR, user_id=conn.user_id, error=type(exc).__name__)
                conn.send_local(m.Error(code="faq_failed", message="FAQ検索に失敗しました / FAQ search failed"))
            else:
                conn.send_local(m.FaqResults(q=msg.q, results=results))
    return True


async def _presence(app: web.Application, hub: Hub, principal: Principal, msg: m.PresenceSet) -> None:
    """The desks' hook does the change and tells everyone; here only its failure is reported."""
    if hub.on_presence is None:
        hub.send_to_user(
            principal.user_id,
            m.Error(code="presence_failed", message="在席状態を変更できませんでした / Presence is not available"),
        )
        return
    try:
        await hub.on_presence(principal, msg)
    except Exception as exc:
        log_event(logger, "presence_failed", logging.ERROR, user_id=principal.user_id, error=type(exc).__name__)
        hub.send_to_user(
            principal.user_id,
            m.Error(code="presence_failed", message="在席状態を変更できませんでした / Could not change presence"),
        )


def _session_ended(app: web.Application, token_hash: str, user_id: str) -> None:
    hub_of(app).expire_session(token_hash)
    hub_of(app).drop_history(user_id)
    seats = app.get(screenpop_keys.SEATS)
    if seats is not None:
        seats.release_user(user_id)  # the desks hear of it and forget the row


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(message)"
    return f"不正なメッセージです / bad message: {where}: {first['msg']}"


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the hub for the app's lifetime: create it, sweep ended sessions, close every socket at exit."""
    settings = app[screenpop_keys.SETTINGS].hub
    hub = Hub(
        queue_size=settings.client_queue_size,
        replay_window=settings.replay_window,
        heartbeat_seconds=settings.heartbeat_seconds,
    )
    app[screenpop_keys.HUB] = hub
    auth = app.get(AUTH)
    if auth is not None:  # a session that ended (logout, replaced by a login) loses its sockets at once
        auth.session_ended.append(lambda token_hash, user_id: _expire_sockets(hub, token_hash, user_id))
    idle_seconds = app[access_keys.SETTINGS].security.session_idle_minutes * 60
    sweep = asyncio.create_task(_sweep_loop(app, min(30.0, idle_seconds / 4)), name="ws-session-sweep")
    try:
        yield
    finally:
        sweep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweep
        await hub.close_all()


def _expire_sockets(hub: Hub, token_hash: str, user_id: str | None) -> None:
    hub.expire_session(token_hash)
    if user_id is not None:  # logout: the user's message history goes too
        hub.drop_history(user_id)


async def sweep_sessions(app: web.Application) -> int:
    """Close the sockets whose session ended (idle, logout, disabled account); returns how many."""
    ctx = app[AUTH]
    ended = 0
    checked: dict[str, bool] = {}
    for conn in list(hub_of(app).connections()):
        if conn.close_request is not None:
            continue
        if conn.session_hash not in checked:
            found = await ctx.sessions.lookup_hash(conn.session_hash, touch=False)
            checked[conn.session_hash] = found.session is not None
        if not checked[conn.session_hash]:
            _session_ended(app, conn.session_hash, conn.user_id)
            ended += 1
    return ended


async def _sweep_loop(app: web.Application, every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await sweep_sessions(app)
        except Exception as exc:
            log_event(logger, "ws_sweep_failed", logging.ERROR, error=type(exc).__name__)


def setup_ws_routes(app: web.Application) -> None:
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/api/ws/schema.json", ws_schema)
    # Sockets are closed (1001) at shutdown, before aiohttp waits for handlers to finish:
    # an open websocket would otherwise hold the shutdown for its whole timeout.
    app.on_shutdown.append(_close_sockets)


async def _close_sockets(app: web.Application) -> None:
    hub = app.get(screenpop_keys.HUB)
    if isinstance(hub, Hub):
        await hub.close_all()
