"""aiohttp wiring of accounts, sessions, CSRF, the operator-room allowlist and seats.

The lead's create_app calls::

    app.cleanup_ctx.append(auth_ctx)          # after the DB context (needs app[DB], app[SETTINGS])
    app.middlewares.append(auth_middleware)   # before any middleware that reads the principal
    setup_auth_routes(app)

Routes declare who may use them with ``@requires(...)`` / ``@public``; undeclared routes under
``/api/`` need a login, other undeclared paths are public (health, metrics, static files) unless a
prefix rule says otherwise (``add_path_access(app, "/operator/", Access(..., operator_room_only=True))``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from aiohttp import web
from argon2 import PasswordHasher

from cti import keys
from cti.clock import Clock, system_clock
from cti.db import migrate
from cti.logs import log_event
from cti.principal import PRINCIPAL_KEY, Principal, Role, current_principal
from screenpop.accounts import MIGRATIONS, AccountStore
from screenpop.auth import (
    BAD_ORIGIN,
    CSRF_FAILED,
    NOT_LOGGED_IN,
    OPERATOR_ROOM_ROLES,
    OUTSIDE_ROOM,
    STATE_CHANGING_METHODS,
    Access,
    Denial,
    IpNetwork,
    LoginThrottle,
    account_key,
    csrf_ok,
    decide,
    in_networks,
    ip_key,
    origin_allowed,
    parse_networks,
)
from screenpop.seats import SeatError, SeatMap, SeatTaken, SeatUnknown, seat_label
from screenpop.sessions import COOKIE_NAME, CSRF_HEADER, Session, SessionStore

logger = logging.getLogger("cti.screenpop.auth")

SESSION_KEY: web.RequestKey[Session | None] = web.RequestKey("cti.session", Session)
# "ok" | "missing" | "expired" | "none" (no cookie)
SESSION_STATE_KEY: web.RequestKey[str] = web.RequestKey("cti.session_state", str)
ACCESS_ATTR = "__cti_access__"


@dataclass
class AuthContext:
    accounts: AccountStore
    sessions: SessionStore
    throttle: LoginThrottle
    seats: SeatMap
    networks: tuple[IpNetwork, ...]
    allowed_origins: list[str]
    known_departments: list[str]
    clock: Clock

    def from_operator_room(self, client_ip: str | None) -> bool:
        return in_networks(client_ip, self.networks)


AUTH: web.AppKey[AuthContext] = web.AppKey("auth", AuthContext)
SEATS: web.AppKey[SeatMap] = web.AppKey("seats", SeatMap)
# Optional, set before startup: a cheaper argon2 hasher (tests) or tuned parameters.
PASSWORD_HASHER: web.AppKey[PasswordHasher] = web.AppKey("password_hasher", PasswordHasher)
PATH_RULES: web.AppKey[list[tuple[str, Access]]] = web.AppKey("path_access_rules", list)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def requires(roles: Iterable[Role] | None = None, *, operator_room_only: bool = False) -> Callable[[H], H]:
    """Declare a handler's access: a login with one of `roles` (any role when None)."""
    access = Access(roles=frozenset(roles) if roles is not None else None, operator_room_only=operator_room_only)

    def mark(handler: H) -> H:
        setattr(handler, ACCESS_ATTR, access)
        return handler

    return mark


def public(handler: H) -> H:
    setattr(handler, ACCESS_ATTR, Access(public=True))
    return handler


def add_path_access(app: web.Application, prefix: str, access: Access) -> None:
    """Access for undeclared handlers (e.g. static files) under a path prefix; longest prefix wins."""
    app.setdefault(PATH_RULES, []).append((prefix, access))


def access_for(request: web.Request, rules: list[tuple[str, Access]]) -> Access:
    declared = getattr(request.match_info.handler, ACCESS_ATTR, None)
    if isinstance(declared, Access):
        return declared
    matches = [(p, a) for p, a in rules if request.path.startswith(p)]
    if matches:
        return max(matches, key=lambda pa: len(pa[0]))[1]
    if request.path.startswith("/api/"):
        return Access()
    return Access(public=True)


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/ws" or "json" in request.headers.get("Accept", "")


def denial_response(request: web.Request, denial: Denial, headers: dict[str, str] | None = None) -> web.Response:
    if denial is NOT_LOGGED_IN and request.method == "GET" and not wants_json(request):
        raise web.HTTPSeeOther(location="/login")
    if wants_json(request):
        return web.json_response(
            {"error": denial.code, "message": denial.message},
            status=denial.status,
            headers=headers,
            dumps=_dumps,
        )
    return web.Response(text=denial.message + "\n", status=denial.status, headers=headers, charset="utf-8")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def log_outside_room(request: web.Request, principal: Principal | None) -> None:
    log_event(
        logger,
        "access_denied_outside_operator_room",
        logging.WARNING,
        client_ip=request.remote,
        path=request.path,
        user_id=principal.user_id if principal else None,
    )


def principal_of(session: Session, client_ip: str) -> Principal:
    return Principal(
        user_id=session.user_id,
        role=session.role,
        department=session.department,
        client_ip=client_ip,
        display_name=session.display_name,
    )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[AUTH]
    client_ip = request.remote or ""
    token = request.cookies.get(COOKIE_NAME)
    session: Session | None = None
    state = "none"
    if token:
        found = await ctx.sessions.lookup(token)
        session, state = found.session, found.outcome
    request[SESSION_STATE_KEY] = state
    request[SESSION_KEY] = session
    principal = principal_of(session, client_ip) if session else None
    if principal is not None:
        request[PRINCIPAL_KEY] = principal

    access = access_for(request, request.app.get(PATH_RULES, []))
    denial = decide(access, principal, from_operator_room=ctx.from_operator_room(client_ip))
    if denial is not None:
        if denial is OUTSIDE_ROOM:
            log_outside_room(request, principal)
        return _forget_cookie(denial_response(request, denial), state)

    if request.method in STATE_CHANGING_METHODS:
        if session is not None and access.session_csrf:
            if not csrf_ok(session.csrf_token, request.headers.get(CSRF_HEADER)):
                log_event(logger, "csrf_rejected", logging.WARNING, user_id=session.user_id, path=request.path)
                return denial_response(request, CSRF_FAILED)
        else:
            if not origin_allowed(request.headers.get("Origin"), ctx.allowed_origins, require=False):
                log_event(logger, "origin_rejected", logging.WARNING, client_ip=client_ip, path=request.path)
                return denial_response(request, BAD_ORIGIN)

    response = await handler(request)
    return _forget_cookie(response, state)


def _forget_cookie(response: web.StreamResponse, state: str) -> web.StreamResponse:
    if state in ("missing", "expired") and not response.prepared and COOKIE_NAME not in response.cookies:
        response.del_cookie(COOKIE_NAME, path="/")
    return response


# --- routes -------------------------------------------------------------------------------------

LOGIN_PAGE = """<!doctype html>
<html lang="ja">
<head><meta charset="utf-8"><title>ログイン - CTI</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<main>
<h1>ログイン</h1>
{error}<form method="post" action="/api/login">
<p><label>ユーザーID <input name="user_id" autocomplete="username" required autofocus></label></p>
<p><label>パスワード <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">ログイン</button></p>
</form>
</main>
</body>
</html>
"""


@public
async def login_page(request: web.Request) -> web.Response:
    return _login_html(None, 200)


def _login_html(error: str | None, status: int, headers: dict[str, str] | None = None) -> web.Response:
    notice = f'<p role="alert" class="error">{html.escape(error)}</p>\n' if error else ""
    return web.Response(
        text=LOGIN_PAGE.replace("{error}", notice),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY", **(headers or {})},
    )


def _login_error(
    as_page: bool, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A refused login: the form page again with the message (browser form posts), else JSON."""
    if as_page:
        return _login_html(message, status, headers)
    return web.json_response({"error": code, "message": message}, status=status, headers=headers, dumps=_dumps)


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": "bad_request", "message": message}, status=400, dumps=_dumps)


def _login_endpoint(handler: H) -> H:
    setattr(handler, ACCESS_ATTR, Access(public=True, session_csrf=False))
    return handler


@_login_endpoint
async def login(request: web.Request) -> web.StreamResponse:
    ctx = request.app[AUTH]
    is_form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
    try:
        body: Any = dict(await request.post()) if is_form else await request.json()
    except (ValueError, UnicodeDecodeError):
        return _bad_request("本文がJSONではありません / body is not valid JSON")
    if not isinstance(body, dict):
        return _bad_request("本文はオブジェクトが必要です / body must be a JSON object")
    user_id, password = body.get("user_id"), body.get("password")
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 64:
        return _bad_request("user_id が必要です / user_id (string, at most 64 characters) is required")
    if not isinstance(password, str) or not password or len(password) > 1024:
        return _bad_request("password が必要です / password (string, at most 1024 characters) is required")
    user_id = user_id.strip()
    client_ip = request.remote or ""
    now = ctx.clock()
    throttle_keys = [account_key(user_id), ip_key(client_ip)]
    wait = ctx.throttle.retry_after(throttle_keys, now)
    if wait is not None:
        log_event(logger, "login_throttled", logging.WARNING, client_ip=client_ip)
        return _login_error(
            is_form,
            429,
            "too_many_attempts",
            f"ログインの失敗が続いたため、{wait}秒後に再度お試しください / Too many failed logins; retry in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    result = await ctx.accounts.authenticate(user_id, password)
    if result.user is None:
        ctx.throttle.record_failure(throttle_keys, ctx.clock())
        log_event(
            logger,
            "login_failed",
            logging.WARNING,
            reason=result.outcome,
            user_id=user_id if result.outcome != "unknown_user" else None,
            client_ip=client_ip,
        )
        if result.outcome == "disabled":
            return _login_error(
                is_form, 403, "account_disabled", "このアカウントは無効です / This account is disabled."
            )
        return _login_error(is_form, 401, "login_failed", "IDまたはパスワードが違います / Wrong user id or password.")
    user = result.user
    if user.role in OPERATOR_ROOM_ROLES and not ctx.from_operator_room(client_ip):
        log_outside_room(request, None)
        return _login_error(is_form, OUTSIDE_ROOM.status, OUTSIDE_ROOM.code, OUTSIDE_ROOM.message)
    ctx.throttle.clear(account_key(user_id))
    old: Session | None = request.get(SESSION_KEY)
    if old is not None:  # no fixation: whatever came in is dropped, a new token goes out
        await ctx.sessions.delete(old.token_hash)
        _expire_sockets(request.app, old.token_hash)
    token, session = await ctx.sessions.create(user.user_id)
    log_event(logger, "login_ok", user_id=user.user_id, role=user.role.value, client_ip=client_ip)
    response: web.StreamResponse
    if is_form:
        response = web.Response(status=303, headers={"Location": _landing(user.role)})
    else:
        response = web.json_response(_me_payload(principal_of(session, client_ip), session, ctx), dumps=_dumps)
    response.set_cookie(COOKIE_NAME, token, httponly=True, samesite="Strict", secure=request.secure, path="/")
    return response


def _landing(role: Role) -> str:
    return "/operator/" if role in OPERATOR_ROOM_ROLES else "/"


def _expire_sockets(app: web.Application, token_hash: str, user_id: str | None = None) -> None:
    hub = app.get(keys.HUB)
    if hub is not None:
        hub.expire_session(token_hash)
        if user_id is not None:
            hub.drop_history(user_id)


def _session_of(request: web.Request) -> Session:
    session: Session | None = request.get(SESSION_KEY)
    if session is None:  # the middleware lets no anonymous request reach a @requires handler
        raise web.HTTPUnauthorized()
    return session


@requires()
async def logout(request: web.Request) -> web.StreamResponse:
    ctx = request.app[AUTH]
    session = _session_of(request)
    await ctx.sessions.delete(session.token_hash)
    ctx.seats.release_user(session.user_id)
    _expire_sockets(request.app, session.token_hash, session.user_id)
    log_event(logger, "logout", user_id=session.user_id)
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE_NAME, path="/")
    return response


def _me_payload(principal: Principal, session: Session, ctx: AuthContext) -> dict[str, Any]:
    return {
        "user_id": principal.user_id,
        "role": principal.role.value,
        "department": principal.department,
        "display_name": principal.display_name,
        "csrf_token": session.csrf_token,
        "seat": ctx.seats.seat_of(principal.user_id),
        "idle_timeout_seconds": int(ctx.sessions.idle.total_seconds()),
    }


@requires()
async def me(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    return web.json_response(
        _me_payload(principal, _session_of(request), request.app[AUTH]),
        dumps=_dumps,
        headers={"Cache-Control": "no-store"},
    )


@requires(roles=OPERATOR_ROOM_ROLES | {Role.ADMIN}, operator_room_only=True)
async def list_seats(request: web.Request) -> web.Response:
    seats = request.app[AUTH].seats
    taken = seats.snapshot()
    # labels: how people say each seat (席101（内線101）), for the known queue members and taken seats
    labels = {interface: seat_label(interface) for interface in sorted({*taken, *seats.known_seats()})}
    return web.json_response({"seats": taken, "labels": labels}, dumps=_dumps)


@requires(roles=OPERATOR_ROOM_ROLES, operator_room_only=True)
async def take_seat(request: web.Request) -> web.Response:
    ctx = request.app[AUTH]
    principal = current_principal(request)
    assert principal is not None
    try:
        body = await request.json()
    except ValueError:
        return _bad_request("本文がJSONではありません / body is not valid JSON")
    interface = body.get("interface") if isinstance(body, dict) else None
    if not isinstance(interface, str):
        return _bad_request("interface が必要です / interface (e.g. PJSIP/101) is required")
    try:
        interface = ctx.seats.take(principal.user_id, interface)
    except SeatTaken as exc:
        return web.json_response(
            {"error": "seat_taken", "message": str(exc), "holder": exc.holder}, status=409, dumps=_dumps
        )
    except SeatUnknown as exc:
        return web.json_response(
            {"error": "unknown_seat", "message": str(exc), "seats": {k: seat_label(k) for k in exc.known}},
            status=400, dumps=_dumps,
        )
    except SeatError as exc:
        return _bad_request(str(exc))
    log_event(logger, "seat_taken", user_id=principal.user_id, interface=interface)
    return web.json_response({"seat": interface, "label": seat_label(interface)}, dumps=_dumps)


@requires(roles=OPERATOR_ROOM_ROLES, operator_room_only=True)
async def release_seat(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    released = request.app[AUTH].seats.release_user(principal.user_id)
    if released:
        log_event(logger, "seat_released", user_id=principal.user_id, interface=released)
    return web.json_response({"released": released})


def setup_auth_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/seats", list_seats)
    app.router.add_post("/api/seat", take_seat)
    app.router.add_delete("/api/seat", release_seat)


def queue_member_interfaces(app: web.Application) -> list[str]:
    """The operators queue's members as the PBX reports them (the AMI link's presence board); empty
    while the link has not synced yet, when seats are only checked for their form."""
    board = getattr(app.get(keys.AMI), "presence", None)
    if board is None:
        return []
    return sorted({m.interface for m in board.members(app[keys.SETTINGS].ami.queue)})


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """Accounts, sessions, throttle and seats for the app's lifetime; owns the session purge task."""
    settings = app[keys.SETTINGS]
    conn = app[keys.DB]
    clock = app.get(keys.CLOCK, system_clock)
    await migrate(conn, MIGRATIONS)
    sec = settings.security
    idle = timedelta(minutes=sec.session_idle_minutes)
    seats = app.get(SEATS) or SeatMap(known=lambda: queue_member_interfaces(app))
    ctx = AuthContext(
        accounts=AccountStore(conn, clock, app.get(PASSWORD_HASHER)),
        sessions=SessionStore(conn, clock, idle),
        throttle=LoginThrottle(sec.login_max_failures, timedelta(seconds=sec.login_window_seconds)),
        seats=seats,
        networks=parse_networks(sec.operator_networks),
        allowed_origins=list(sec.allowed_origins),
        known_departments=[d.code for d in settings.records.departments],
        clock=clock,
    )
    app[AUTH] = ctx
    app[SEATS] = seats
    purge = asyncio.create_task(_purge_loop(ctx.sessions), name="session-purge")
    try:
        yield
    finally:
        purge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purge


async def _purge_loop(sessions: SessionStore, every_seconds: float = 300.0) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        try:
            removed = await sessions.purge_expired()
            if removed:
                log_event(logger, "sessions_purged", count=removed)
        except Exception as exc:  # keep purging later; the lookup path checks expiry anyway
            log_event(logger, "session_purge_failed", logging.ERROR, error=type(exc).__name__)
