"""aiohttp side of access: what other packages import.

The pieces live in modules named after what they hold: access/context.py (AUTH, auth_ctx),
access/middleware.py (auth_middleware), access/route_access.py (requires, public, add_path_access),
access/routes.py (login, logout, me), access/login_page.py (the one login screen). The names below
are re-exported so ``from access.web import ...`` keeps working. The lead's create_app calls::

    app.cleanup_ctx.append(auth_ctx)          # after the database context (needs app[DATABASE], app[SETTINGS])
    app.middlewares.append(auth_middleware)   # before any middleware that reads the principal
    setup_auth_routes(app)
"""

from __future__ import annotations

import logging

from aiohttp import web

from access.context import AUTH, PASSWORD_HASHER, AuthContext, auth_ctx
from access.middleware import (
    SESSION_KEY,
    SESSION_STATE_KEY,
    auth_middleware,
    denial_response,
    log_outside_room,
    principal_of,
    wants_json,
)
from access.route_access import ACCESS_ATTR, PATH_RULES, access_for, add_path_access, public, requires
from access.routes import setup_login_routes
from access.rules import Access
from cti.core.http import error_response

__all__ = [
    "ACCESS_ATTR",
    "AUTH",
    "PASSWORD_HASHER",
    "PATH_RULES",
    "SESSION_KEY",
    "SESSION_STATE_KEY",
    "Access",
    "AuthContext",
    "access_for",
    "add_path_access",
    "auth_ctx",
    "auth_middleware",
    "denial_response",
    "log_outside_room",
    "principal_of",
    "public",
    "requires",
    "setup_auth_routes",
    "wants_json",
]

logger = logging.getLogger("cti.screenpop.auth")


def _bad_request(message: str) -> web.Response:
    return error_response(400, "bad_request", message)


def setup_auth_routes(app: web.Application) -> None:
    setup_login_routes(app)
