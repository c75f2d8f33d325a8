"""The access middleware: who is asking (session, client address), may they, and CSRF/Origin.

Order of one request: the client address is resolved (access/client_address.py; the handler and
everything after see it as ``request.remote``), the session cookie is looked up, the route's
declared access is decided (access/rules.py `decide`), then state-changing requests must carry the
session's CSRF token (or, without a session, an allowed Origin).
"""

from __future__ import annotations

import logging

from aiohttp import web

from access.client_address import resolve
from access.context import AUTH
from access.route_access import PATH_RULES, Handler, access_for
from access.rules import (
    BAD_ORIGIN,
    CSRF_FAILED,
    NOT_LOGGED_IN,
    OUTSIDE_ROOM,
    STATE_CHANGING_METHODS,
    Denial,
    csrf_ok,
    decide,
    origin_allowed,
)
from access.sessions import COOKIE_NAME, CSRF_HEADER, Session
from cti.core.http import PRINCIPAL_KEY, error_response
from cti.core.logs import log_event
from cti.core.principal import Principal

logger = logging.getLogger("cti.screenpop.auth")  # the name supervision.service listens to

SESSION_KEY: web.RequestKey[Session | None] = web.RequestKey("cti.session", Session)
# "ok" | "missing" | "expired" | "none" (no cookie)
SESSION_STATE_KEY: web.RequestKey[str] = web.RequestKey("cti.session_state", str)


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/ws" or "json" in request.headers.get("Accept", "")


def denial_response(request: web.Request, denial: Denial, headers: dict[str, str] | None = None) -> web.Response:
    if denial is NOT_LOGGED_IN and request.method == "GET" and not wants_json(request):
        raise web.HTTPSeeOther(location="/login")
    if wants_json(request):
        return error_response(denial.status, denial.code, denial.message, headers=headers)
    return web.Response(text=denial.message + "\n", status=denial.status, headers=headers, charset="utf-8")


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


RESOLVED_KEY: web.RequestKey[bool] = web.RequestKey("cti.client_address_resolved", bool)


def with_client_address(request: web.Request) -> web.Request:
    """The request as the rest of cti sees it: ``remote`` (and ``scheme``) from a trusted proxy.
    Resolved once per request (the forwarded headers must not be walked again from the result)."""
    ctx = request.app[AUTH]
    if not ctx.trusted_proxies or request.get(RESOLVED_KEY):
        return request
    request[RESOLVED_KEY] = True
    origin = resolve(
        request.remote,
        request.headers.getall("X-Forwarded-For", []),
        request.headers.getall("X-Forwarded-Proto", []),
        ctx.trusted_proxies,
    )
    if origin.address == request.remote and origin.scheme is None:
        return request
    return request.clone(remote=origin.address, scheme=origin.scheme or request.scheme)


@web.middleware
async def client_address_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost but for the error envelope, so every later middleware (HSTS, access) sees the
    forwarded client; auth_middleware resolves it as well when mounted alone."""
    return await handler(with_client_address(request))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request = with_client_address(request)
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
        return forget_cookie(denial_response(request, denial), state)

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
    return forget_cookie(response, state)


def forget_cookie(response: web.StreamResponse, state: str) -> web.StreamResponse:
    if state in ("missing", "expired") and not response.prepared and COOKIE_NAME not in response.cookies:
        response.del_cookie(COOKIE_NAME, path="/")
    return response
