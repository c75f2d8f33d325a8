"""Login, logout and "who am I": POST /api/login, POST /api/logout, GET /api/me, GET /login.

The login throttle reserves the attempt before the password is checked (access/rules.py
`LoginThrottle.reserve`), so concurrent guesses count against the limit while they run; the check
itself runs a bounded number at a time in threads (access/passwords.py). A refused login always
gets the same answer (401 ``login_failed``), whether the account is unknown, the password wrong or
the account disabled (so the answer never confirms a password); the log says which.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from access import login_page
from access.context import AUTH, AuthContext
from access.middleware import SESSION_KEY, log_outside_room, principal_of
from access.passwords import Busy
from access.route_access import login_endpoint, public, requires
from access.rules import OPERATOR_ROOM_ROLES, OUTSIDE_ROOM, account_key, ip_key
from access.sessions import COOKIE_NAME, Session, SessionGone
from cti.core.http import FORM_TYPES, ApiError, current_principal, has_lone_surrogate, json_object, json_response
from cti.core.logs import log_event
from cti.core.principal import Principal, Role

logger = logging.getLogger("cti.screenpop.auth")  # the name supervision.service listens to

MAX_USER_ID_CHARS = 64
MAX_PASSWORD_CHARS = 1024
LOGIN_FAILED = "IDまたはパスワードが違います。"
BUSY = "ログインが混み合っています。しばらくしてから再度お試しください。"


@public
async def show_login_page(request: web.Request) -> web.Response:
    return login_page.render(notice=login_page.notice_for(request))


def _refusal(as_page: bool, refused: ApiError) -> web.Response:
    """A refused login: the form page again with the message (browser form posts), else the envelope."""
    if as_page:
        return login_page.render(error=refused.message, status=refused.status, headers=refused.headers)
    return refused.response()


async def _credentials(request: web.Request, is_form: bool) -> tuple[str, str]:
    body: dict[str, Any] = dict(await request.post()) if is_form else await json_object(request)
    user_id, password = body.get("user_id"), body.get("password")
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_USER_ID_CHARS:
        raise ApiError(400, "bad_request", "ユーザーIDを入力してください（64文字まで）", "user_id")
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_CHARS:
        raise ApiError(400, "bad_request", "パスワードを入力してください（1024文字まで）", "password")
    for name, value in (("user_id", user_id), ("password", password)):
        if has_lone_surrogate(value) or "\0" in value:
            raise ApiError(400, "invalid_text", "使えない文字が含まれています", name)
    return user_id.strip(), password


@login_endpoint
async def login(request: web.Request) -> web.StreamResponse:
    ctx = request.app[AUTH]
    is_form = request.content_type in FORM_TYPES
    try:
        user_id, password = await _credentials(request, is_form)
    except ApiError as refused:
        return _refusal(is_form, refused)
    client_ip = request.remote or ""
    reservation = ctx.throttle.reserve([account_key(user_id), ip_key(client_ip)], ctx.clock())
    if isinstance(reservation, int):
        log_event(logger, "login_throttled", logging.WARNING, client_ip=client_ip)
        return _refusal(is_form, ApiError(
            429, "too_many_attempts", f"ログインの失敗が続いたため、{reservation}秒後に再度お試しください。",
            headers={"Retry-After": str(reservation)},
        ))
    try:
        result = await ctx.accounts.authenticate(user_id, password)
    except Busy:
        ctx.throttle.succeeded(reservation)  # nothing was checked: the attempt does not count
        log_event(logger, "login_busy", logging.WARNING, client_ip=client_ip)
        return _refusal(is_form, ApiError(503, "busy", BUSY, headers={"Retry-After": "5"}))
    if result.user is None:
        log_event(
            logger,
            "login_failed",
            logging.WARNING,
            reason=result.outcome,
            user_id=user_id if result.outcome != "unknown_user" else None,
            client_ip=client_ip,
        )
        return _refusal(is_form, ApiError(401, "login_failed", LOGIN_FAILED))
    user = result.user
    if user.role in OPERATOR_ROOM_ROLES and not ctx.from_operator_room(client_ip):
        # The attempt stays counted: from outside the room this answer is all a guesser could get.
        log_outside_room(request, None)
        return _refusal(is_form, ApiError(OUTSIDE_ROOM.status, OUTSIDE_ROOM.code, OUTSIDE_ROOM.message))
    ctx.throttle.succeeded(reservation, account_key(user_id))
    old: Session | None = request.get(SESSION_KEY)
    if old is not None:  # no fixation: whatever came in is dropped, a new token goes out
        await ctx.sessions.delete(old.token_hash)
        _session_ended(ctx, old.token_hash, None)
    try:
        token, session = await ctx.sessions.create(user.user_id)
    except SessionGone:  # disabled while logging in
        return _refusal(is_form, ApiError(401, "login_failed", LOGIN_FAILED))
    log_event(logger, "login_ok", user_id=user.user_id, role=user.role.value, client_ip=client_ip)
    response: web.StreamResponse
    if is_form:
        response = web.Response(status=303, headers={"Location": _landing(user.role), "Cache-Control": "no-store"})
    else:
        response = json_response(_me_payload(principal_of(session, client_ip), session, ctx))
    response.set_cookie(COOKIE_NAME, token, httponly=True, samesite="Strict", secure=request.secure or ctx.tls,
                        path="/")
    return response


# Each role lands on its own screen (a supervisor on the wall, an FAQ editor in the editor).
LANDING = {
    Role.OPERATOR: "/operator/",
    Role.SUPERVISOR: "/supervisor/",
    Role.DEPARTMENT: "/department/",
    Role.FAQ_EDITOR: "/faq/editor/",
    Role.ADMIN: "/department/",
}


def _landing(role: Role) -> str:
    return LANDING.get(role, "/department/")


def _session_ended(ctx: AuthContext, token_hash: str, user_id: str | None) -> None:
    """Tell the packages that follow sessions (screenpop frees the seat, closes the sockets)."""
    for listener in ctx.session_ended:
        listener(token_hash, user_id)


def session_of(request: web.Request) -> Session:
    session: Session | None = request.get(SESSION_KEY)
    if session is None:  # the middleware lets no anonymous request reach a @requires handler
        raise web.HTTPUnauthorized()
    return session


@requires()
async def logout(request: web.Request) -> web.StreamResponse:
    ctx = request.app[AUTH]
    session = session_of(request)
    await ctx.sessions.delete(session.token_hash)
    # In-memory state only after the delete is committed.
    _session_ended(ctx, session.token_hash, session.user_id)
    log_event(logger, "logout", user_id=session.user_id)
    response = json_response({"ok": True})
    response.del_cookie(COOKIE_NAME, path="/")
    return response


def _me_payload(principal: Principal, session: Session, ctx: AuthContext) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "user_id": principal.user_id,
        "role": principal.role.value,
        "department": principal.department,
        "display_name": principal.display_name,
        "csrf_token": session.csrf_token,
    }
    for part in ctx.me_parts:  # e.g. screenpop's "seat"
        payload.update(part(principal.user_id))
    payload["idle_timeout_seconds"] = int(ctx.sessions.idle.total_seconds())
    return payload


@requires()
async def me(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    return json_response(_me_payload(principal, session_of(request), request.app[AUTH]))


def setup_login_routes(app: web.Application) -> None:
    app.router.add_get("/login", show_login_page)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/me", me)
