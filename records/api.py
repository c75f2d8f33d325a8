"""HTTP API of records (aiohttp). Thin: parse with the pydantic models, call the service, answer JSON.

Who may do what is decided in records.rules.authorize (called by the service), nowhere else.
Every 4xx answers {"error": {"code", "message" (Japanese, names the field), "field"}}; a 422 also
lists every bad field of the form at once: "errors": [{"field", "code", "message"}, ...].
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from cti.core.http import ApiError, current_principal, echoable_field, json_response
from cti.core.logs import log_event
from records import keys as records_keys
from records import models as m
from records.rules import FIELD_LABELS, Access, RecordsError, authorize, parse_record_id
from records.service import RecordsService

logger = logging.getLogger("records.api")

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BASE = "/api/records"
REQUEST_KEY = re.compile(r"[A-Za-z0-9-]{16,64}")  # Idempotency-Key of a callback save


def _service(request: web.Request) -> RecordsService:
    service: RecordsService = request.app[records_keys.SERVICE]
    return service


_json = json_response  # cti.core.http's: UTF-8 Japanese, ISO 8601 datetimes, not cached


def error_response(err: RecordsError) -> web.Response:
    return _json(err.as_dict(), err.status)


def _validation_error(exc: ValidationError) -> RecordsError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    label = FIELD_LABELS.get(str(first["loc"][0]), field or "入力") if first["loc"] else "入力"
    kind = first["type"]
    if kind == "extra_forbidden":  # the key is the client's: named back only when it is a plain name
        named = echoable_field(field)
        message = f"項目「{named}」は受け付けていません" if named else "受け付けていない項目があります"
        return RecordsError(422, "unknown_field", message, named)
    if kind == "missing":
        return RecordsError(422, "missing_field", f"{label}を入力してください", field)
    if "too_long" in kind:
        return RecordsError(422, "too_long", f"{label}が長すぎます", field)
    # pydantic's own text is English: users read the field's name and what is wrong, in Japanese only.
    return RecordsError(422, "invalid_field", f"{label}の値が正しくありません", field)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or RecordsError 400 (never a 500: a number of 5,000 digits is a
    ValueError in Python's json, not a JSONDecodeError)."""
    try:
        raw = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RecordsError(400, "invalid_json", "リクエストの本文がJSONではありません（数値が大きすぎる等）") from None
    if not isinstance(raw, dict):
        raise RecordsError(400, "invalid_json", "リクエストの本文はJSONオブジェクトにしてください")
    return raw


async def _body(request: web.Request, model: type[M]) -> M:
    raw = await read_json_object(request)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None


MAX_LIST_LIMIT = 1000


def _int_id(request: web.Request) -> int:
    """A record id from the path; anything SQLite could not hold is simply not found."""
    value = parse_record_id(request.match_info["id"])
    if value is None:
        raise RecordsError(404, "not_found", "折り返し依頼の番号が正しくありません", "id")
    return value


def guarded(handler: Handler) -> Handler:
    """For handlers that call records (supervision's, the department API): ApiError and RecordsError
    both become the error envelope (also where the app's error middleware is not mounted)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as err:
            return err.response()
        except RecordsError as err:
            return error_response(err)

    wrapped.__name__ = handler.__name__
    return wrapped


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except RecordsError as err:
            log_event(logger, "records_request_refused", status=err.status, code=err.code, field=err.field)
            return error_response(err)

    wrapped.__name__ = handler.__name__
    return wrapped


# ---- handlers ------------------------------------------------------------------------------------


def _gate(request: web.Request, access: Access) -> None:
    """Who may ask at all, decided before the body is read (so a refused role gets 401/403, not a
    validation error): the role part of rules.authorize, which the service applies again in full."""
    settings = request.app[records_keys.SETTINGS]
    authorize(current_principal(request), access, public_information_department=settings.public_information_department)


@_guard
async def claim_contact(request: web.Request) -> web.StreamResponse:
    """Refused: the server creates the contact when the tracker sees the operator answer. Any call id,
    caller number or time in the body is named as not accepted (422); an empty body gets 410."""
    _gate(request, Access.CREATE)
    await _body(request, m.ContactClaim)
    raise RecordsError(410, "created_by_server",
                       "通話の記録は、応答した時点でサーバーが作成します（画面からは作成しません）")


@_guard
async def update_contact(request: web.Request) -> web.StreamResponse:
    _gate(request, Access.CREATE)
    data = await _body(request, m.ContactUpdate)
    out = await _service(request).update_contact(current_principal(request), request.match_info["call_id"], data)
    return _json(out)


@_guard
async def get_call(request: web.Request) -> web.StreamResponse:
    return _json(await _service(request).get_call(current_principal(request), request.match_info["call_id"]))


@_guard
async def record_consent(request: web.Request) -> web.StreamResponse:
    _gate(request, Access.CREATE)
    data = await _body(request, m.ConsentIn)
    out = await _service(request).record_consent(current_principal(request), request.match_info["call_id"], data)
    return _json(out, 201)


@_guard
async def create_callback(request: web.Request) -> web.StreamResponse:
    _gate(request, Access.CREATE)
    key = request.headers.get("Idempotency-Key")  # the page's key of this 保存 (a repeat answers the first)
    if key is not None and not REQUEST_KEY.fullmatch(key):
        raise RecordsError(400, "bad_request_key", "保存の識別子の形式が正しくありません。画面を再読み込みしてください")
    data = await _body(request, m.CallbackIn)
    out = await _service(request).create_callback(current_principal(request), request.match_info["call_id"], data,
                                                  request_key=key)
    return _json(out, 201)


@_guard
async def list_callbacks(request: web.Request) -> web.StreamResponse:
    q = request.query
    overdue = None
    if "overdue" in q:
        if q["overdue"] not in ("true", "false"):
            raise RecordsError(422, "invalid_field", "overdue は true か false です", "overdue")
        overdue = q["overdue"] == "true"
    try:
        limit = int(q.get("limit", "200"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise RecordsError(422, "invalid_field", f"limit は 1〜{MAX_LIST_LIMIT} の数値です", "limit")
    items = await _service(request).list_callbacks(
        current_principal(request), status=q.get("status") or None, overdue=overdue,
        department=q.get("department") or None, limit=limit,
    )
    return _json({"items": items})


@_guard
async def get_callback(request: web.Request) -> web.StreamResponse:
    return _json(await _service(request).get_callback(current_principal(request), _int_id(request)))


@_guard
async def start_callback(request: web.Request) -> web.StreamResponse:
    _gate(request, Access.UPDATE)
    data = await _body(request, m.VersionIn)
    return _json(await _service(request).start(current_principal(request), _int_id(request), data.version))


@_guard
async def attempt_callback(request: web.Request) -> web.StreamResponse:
    _gate(request, Access.UPDATE)
    data = await _body(request, m.AttemptIn)
    return _json(await _service(request).attempt(current_principal(request), _int_id(request), data))


@_guard
async def close_callback(request: web.Request) -> web.StreamResponse:
    _gate(request, Access.UPDATE)
    data = await _body(request, m.CloseIn)
    return _json(await _service(request).close(current_principal(request), _int_id(request), data))


@_guard
async def list_faq_gaps(request: web.Request) -> web.StreamResponse:
    return _json({"items": await _service(request).faq_gaps(current_principal(request))})


async def openapi(request: web.Request) -> web.StreamResponse:
    return _json(openapi_document())


# ---- routes and OpenAPI ---------------------------------------------------------------------------

ROUTES: list[tuple[str, str, Handler, type[BaseModel] | None, type[BaseModel], int, str]] = [
    ("POST", f"{BASE}/contacts", claim_contact, m.ContactClaim, m.ErrorOut, 410,
     "廃止: 通話の記録はサーバーが応答時に作成（項目はすべて拒否）"),
    ("GET", f"{BASE}/contacts/{{call_id}}", get_call, None, m.CallRecords, 200,
     "対応中・後処理中の通話の記録（オペレーター本人）。通話の記録はサーバーが応答時に作成"),
    ("PATCH", f"{BASE}/contacts/{{call_id}}", update_contact, m.ContactUpdate, m.ContactOut, 200, "通話の結果を記録"),
    ("POST", f"{BASE}/contacts/{{call_id}}/consent", record_consent, m.ConsentIn, m.ConsentOut, 201, "同意の記録"),
    ("POST", f"{BASE}/contacts/{{call_id}}/callbacks", create_callback, m.CallbackIn, m.CallbackOut, 201,
     "折り返し依頼の受付（閉庁時間）"),
    ("GET", f"{BASE}/callbacks", list_callbacks, None, m.CallbackList, 200, "折り返し依頼の一覧（担当課）"),
    ("GET", f"{BASE}/callbacks/{{id}}", get_callback, None, m.CallbackOut, 200, "折り返し依頼の参照"),
    ("POST", f"{BASE}/callbacks/{{id}}/start", start_callback, m.VersionIn, m.CallbackOut, 200, "対応開始"),
    ("POST", f"{BASE}/callbacks/{{id}}/attempts", attempt_callback, m.AttemptIn, m.CallbackOut, 200,
     "折り返しの結果を記録"),
    ("POST", f"{BASE}/callbacks/{{id}}/close", close_callback, m.CloseIn, m.CallbackOut, 200, "完了（回答の要約）"),
    ("GET", f"{BASE}/faq-gaps", list_faq_gaps, None, m.FaqGapList, 200, "FAQで回答できなかった通話（FAQ担当）"),
]


def openapi_document() -> dict[str, Any]:
    models = {r[3] for r in ROUTES if r[3]} | {r[4] for r in ROUTES} | {m.ErrorOut}
    _, schema = models_json_schema(
        [(model, "validation" if model.__name__.endswith("In") or model.__name__ in ("ContactUpdate", "ContactClaim")
          else "serialization") for model in sorted(models, key=lambda x: x.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    error_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    paths: dict[str, Any] = {}
    for method, path, _handler, body, out, status, summary in ROUTES:
        op: dict[str, Any] = {
            "summary": summary,
            "responses": {
                str(status): {"description": "OK", "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{out.__name__}"}}}},
                "401": {"description": "ログインが必要", **error_ref},
                "403": {"description": "権限なし（監査記録に残ります）", **error_ref},
                "404": {"description": "ありません、または参照範囲外（監査記録に残ります）", **error_ref},
                "409": {"description": "状態・同意・版の競合", **error_ref},
                "422": {"description": "入力の誤り（field が項目を示します）", **error_ref},
            },
        }
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in ("call_id", "id") if f"{{{p}}}" in path]
        if params:
            op["parameters"] = params
        if body is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "cti records API", "version": "1"},
        "paths": paths,
        "components": {"schemas": schema.get("$defs", {})},
    }


def setup_routes(app: web.Application) -> None:
    for method, path, handler, *_ in ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_get("/api/openapi.json", openapi)
