"""HTTP pieces every package shares: the request's principal, JSON answers, THE error envelope, the
guarded JSON body parser and the middlewares that make every answer safe.

Every error a client sees has one shape::

    {"error": {"code": "invalid_json", "message": "<Japanese>", "field": "user_id"}}   (field optional)

Handlers raise `ApiError` (or return `error_response`); anything else that escapes a handler is
caught by `error_middleware`, logged with its traceback (file/line/function only: no exception
message, which may quote personal data) and answered 500 in the envelope, never a bare traceback.

Every JSON request body passes `parse_json_guarded` once (`json_guard_middleware`, innermost, so
the access decision comes first): valid UTF-8, no lone surrogates anywhere, nesting at most
`MAX_DEPTH`, numbers at most `MAX_NUMBER_CHARS` characters, no NaN/Infinity. Handlers read the
checked value with `await json_body(request)` (``await request.json()`` still works: it re-parses
the same, already-checked bytes).
"""

from __future__ import annotations

import json
import logging
import math
import re
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cti.core.logs import log_event
from cti.core.principal import Principal

logger = logging.getLogger("cti.http")

PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("cti.core.principal", Principal)

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 40  # enough for any int64 and any float repr; refuses 5,000-digit numbers
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SURROGATE = re.compile("[\ud800-\udfff]")

# The one Content-Security-Policy of every answer: scripts only from this server, never framed.
# Inline style attributes stay allowed (the supervisor page uses a few; styles cannot run code).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def current_principal(request: web.Request) -> Principal | None:
    """The authenticated principal of this request, or None when anonymous."""
    value = request.get(PRINCIPAL_KEY)
    return value if isinstance(value, Principal) else None


# --- JSON answers and the error envelope ------------------------------------------------------------


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def dumps(value: Any) -> str:
    """JSON text as cti answers it: UTF-8 Japanese as is, datetimes as ISO 8601."""
    return json.dumps(value, ensure_ascii=False, default=_default)


def json_response(
    data: Any, status: int = 200, *, headers: dict[str, str] | None = None, no_store: bool = True
) -> web.Response:
    """A JSON answer; not cached by default (answers carry personal data or session state)."""
    merged = {"Cache-Control": "no-store"} if no_store else {}
    merged.update(headers or {})
    return web.Response(text=dumps(data), status=status, content_type="application/json", charset="utf-8",
                        headers=merged)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    inner: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        inner["field"] = field
    return {"error": inner}


def error_response(
    status: int, code: str, message: str, field: str | None = None, *, headers: dict[str, str] | None = None
) -> web.Response:
    """The error envelope; `message` is Japanese (users see Japanese only)."""
    return json_response(error_body(code, message, field), status, headers=headers)


class ApiError(Exception):
    """Raise from a handler to answer the error envelope (error_middleware turns it into the response)."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}")  # no message: it may quote the input
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.field, headers=self.headers)


# --- the guarded JSON body -------------------------------------------------------------------------

JSON_BODY_KEY: web.RequestKey[object] = web.RequestKey("cti.core.json_body", object)
_NOT_JSON = "リクエストの本文が正しいJSONではありません"


def _bad_json(message: str = _NOT_JSON, code: str = "invalid_json") -> ApiError:
    return ApiError(400, code, message)


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _bad_json("数値の桁数が多すぎます", "number_too_long")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if len(text) > MAX_NUMBER_CHARS or not math.isfinite(value):
        raise _bad_json("数値の桁数が多すぎます", "number_too_long")
    return value


def _constant(name: str) -> Any:
    raise _bad_json("NaN や Infinity は使えません")


def has_lone_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def parse_json_guarded(raw: bytes) -> Any:
    """Parse a request body or raise ApiError 400 (see the module docstring for what is refused)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_json("リクエストの本文が正しいUTF-8ではありません", "invalid_encoding") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except ApiError:
        raise
    except RecursionError:
        raise _bad_json("JSONの入れ子が深すぎます", "too_deep") from None
    except ValueError:
        raise _bad_json() from None
    _check_tree(value)
    return value


def _check_tree(value: Any) -> None:
    """Depth and strings, iteratively (a recursive walk is what a deep document would break)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if has_lone_surrogate(node):
                raise _bad_json("文字列に不正な文字（サロゲート）が含まれています", "invalid_text")
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise _bad_json("JSONの入れ子が深すぎます", "too_deep")
        if isinstance(node, dict):
            for key, item in node.items():
                stack.append((key, depth + 1))
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in node)


def is_json_request(request: web.Request) -> bool:
    """A body any handler may read as JSON: every body except forms (handlers call request.json()
    without looking at the content type, so the guard does not trust it either)."""
    return request.method in BODY_METHODS and request.body_exists and request.content_type not in FORM_TYPES


async def json_body(request: web.Request) -> Any:
    """The request's JSON body, checked by the guard (ApiError 400 when malformed)."""
    if JSON_BODY_KEY in request:
        return request[JSON_BODY_KEY]
    value = parse_json_guarded(await request.read())
    request[JSON_BODY_KEY] = value
    return value


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    value = await json_body(request)
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", "リクエストの本文はJSONオブジェクトにしてください")
    return value


# --- middlewares -----------------------------------------------------------------------------------


def traceback_summary(exc: BaseException) -> list[str]:
    """Where an exception came from (file:line function), without its message or local values."""
    return [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)][-12:]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: ApiError -> its envelope; any other escaping exception -> logged, 500 envelope.

    aiohttp's own HTTP exceptions (redirects, 404/405, 413 too large) pass through; those with an
    error status under /api/ are answered in the envelope too.
    """
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            message = _HTTP_MESSAGES.get(exc.status, "エラーが発生しました")
            return error_response(exc.status, f"http_{exc.status}", message)
        raise
    except Exception as exc:
        log_event(
            logger,
            "unhandled_exception",
            logging.ERROR,
            error=type(exc).__name__,
            method=request.method,
            path=request.rel_url.path,  # the path only: query strings may carry search words
            where=traceback_summary(exc),
        )
        if request.headers.get("Upgrade", "").lower() == "websocket":
            raise  # its handshake may be sent already: a second answer would corrupt the stream
        return error_response(500, "internal_error", INTERNAL_ERROR)


INTERNAL_ERROR = "サーバー内部でエラーが発生しました。しばらくしてから再度お試しください"
_HTTP_MESSAGES = {
    400: "リクエストが正しくありません",
    404: "見つかりません",
    405: "この操作はできません",
    413: "リクエストが大きすぎます",
}


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CSP (frame-ancestors 'none'), nosniff, same-origin referrers on every answer; HSTS over TLS."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure_headers(request, exc)
        raise
    _secure_headers(request, response)
    return response


def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    if response.prepared:  # a websocket or stream already sent its headers
        return
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on form posts,
    # which the login's Origin check (rightly) refuses.
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.secure:
        headers.setdefault("Strict-Transport-Security", HSTS)


@web.middleware
async def json_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost: every JSON body is checked once before any handler sees it."""
    if is_json_request(request):
        try:
            await json_body(request)
        except ApiError as exc:
            log_event(logger, "request_body_refused", logging.WARNING, code=exc.code, path=request.rel_url.path)
            return exc.response()
    return await handler(request)
