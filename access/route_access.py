"""How routes declare who may use them: ``@requires(...)``, ``@public``, path prefixes.

Undeclared routes under ``/api/`` need a login; other undeclared paths are public (health, metrics,
static files) unless a prefix rule says otherwise
(``add_path_access(app, "/operator/", Access(..., operator_room_only=True))``).

``require(request, roles)`` repeats the middleware's decision inside a handler (the supervisor,
calendar and department APIs), so a route stays protected even if mounted without the route table.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from aiohttp import web

from access import keys as access_keys
from access.rules import Access, decide, in_networks, parse_networks
from cti.core.http import ApiError, current_principal
from cti.core.logs import log_event
from cti.core.principal import Principal, Role

logger = logging.getLogger("screenpop.supervisor")  # the denials' logger name of old (log readers know it)

SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
DEPARTMENT_STAFF = frozenset({Role.DEPARTMENT, Role.ADMIN})
ACCESS_ATTR = "__cti_access__"
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


def login_endpoint(handler: H) -> H:
    """Public, and without the session CSRF check (SameSite=Strict plus the Origin check instead):
    a login must work while an old session cookie is still around."""
    setattr(handler, ACCESS_ATTR, Access(public=True, session_csrf=False))
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


def from_operator_room(request: web.Request) -> bool:
    networks = parse_networks(request.app[access_keys.SETTINGS].security.operator_networks)
    return in_networks(request.remote, networks)


def require(request: web.Request, roles: Iterable[Role], *, operator_room_only: bool = False) -> Principal:
    """The principal, or ApiError 401/403 (same decision as the auth middleware)."""
    principal = current_principal(request)
    access = Access(roles=frozenset(roles), operator_room_only=operator_room_only)
    denial = decide(access, principal, from_operator_room=from_operator_room(request))
    if denial is not None:
        log_event(logger, "supervisor_access_denied", level=logging.WARNING, code=denial.code,
                  user=principal.user_id if principal else None, path=request.path)
        raise ApiError(denial.status, denial.code, denial.message)
    assert principal is not None
    return principal
