"""Shared HTTP plumbing of the supervisor and department APIs: JSON answers, errors, access checks.

Access is decided by access.rules.decide (the same rule the auth middleware applies); the check
here is repeated per handler so a route stays protected even if it is mounted without the
middleware's route table. State-changing requests also need the session's CSRF token, which the
auth middleware checks before any handler runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from access import keys as access_keys
from access import rules as auth
from cti.core.http import current_principal
from cti.core.logs import log_event
from cti.core.principal import Principal, Role

logger = logging.getLogger("screenpop.supervisor")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
DEPARTMENT_STAFF = frozenset({Role.DEPARTMENT, Role.ADMIN})


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def response(self) -> web.Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return json_response({"error": body}, self.status)


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False, default=_default), status=status,
                        content_type="application/json", charset="utf-8")


def from_operator_room(request: web.Request) -> bool:
    networks = auth.parse_networks(request.app[access_keys.SETTINGS].security.operator_networks)
    return auth.in_networks(request.remote, networks)


def require(request: web.Request, roles: Iterable[Role], *, operator_room_only: bool = False) -> Principal:
    """The principal, or ApiError 401/403 (same decision as the auth middleware)."""
    principal = current_principal(request)
    access = auth.Access(roles=frozenset(roles), operator_room_only=operator_room_only)
    denial = auth.decide(access, principal, from_operator_room=from_operator_room(request))
    if denial is not None:
        log_event(logger, "supervisor_access_denied", level=logging.WARNING, code=denial.code,
                  user=principal.user_id if principal else None, path=request.path)
        raise ApiError(denial.status, denial.code, denial.message)
    assert principal is not None
    return principal


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "リクエストの本文がJSONではありません") from None
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_json", "リクエストの本文はJSONオブジェクトにしてください")
    return raw


def guarded(handler: Handler) -> Handler:
    """Turn ApiError (and records' RecordsError) into the common error body."""
    from records.api import error_response
    from records.rules import RecordsError

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as err:
            return err.response()
        except RecordsError as err:
            return error_response(err)

    wrapped.__name__ = handler.__name__
    return wrapped
