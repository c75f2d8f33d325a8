"""The FAQ editors' page and API: users with the faq_editor role, 区政情報課 staff (department =
records.public_information_department) and admins author the FAQ in the browser. Every change is
audited (records' hash-chained audit).

    GET    /faq/editor/                                  the editor page (faq/web/)
    GET    /api/faq/editor/entries?q=                    live entries (search, or the newest editor ones)
    GET    /api/faq/editor/entries/{id}                  live text and every version
    POST   /api/faq/editor/drafts                        {id?, question, answer, category, subcategory?,
                                                          keywords?, gap?: {kind, id}} -> a new draft version
    GET    /api/faq/editor/drafts                        drafts waiting to be published
    POST   /api/faq/editor/entries/{id}/versions/{v}/publish
    POST   /api/faq/editor/entries/{id}/retire
    GET    /api/faq/editor/gaps                          calls, callbacks and searches the FAQ did not answer
    GET    /api/faq/editor/gaps/report                   gaps by category and week
    GET    /api/faq/editor/synonyms   POST {rule}   DELETE /api/faq/editor/synonyms/{id}
    POST   /api/faq/editor/documents/reimport           re-read [faq] documents_dir (the ward's sources)
    GET    /api/faq/export                               the live FAQ as a generic JSON file (faq/FORMAT.md)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from access.rules import Access
from access.web import add_path_access, requires
from cti.core.http import current_principal
from cti.core.logs import log_event
from cti.core.principal import Principal, Role
from faq import gaps as gap_rules
from faq import keys as faq_keys
from faq.api import authoring_error, dumps, entry_dict, error
from faq.authoring import GAP_KINDS, AuthoringError, Draft
from faq.documents import DocumentError
from faq.entries import split_keywords
from faq.service import FaqService
from records import keys as records_keys

logger = logging.getLogger("cti.faq.editor")

WEB_DIR = Path(__file__).parent / "web"
EDITOR_ROLES = frozenset({Role.FAQ_EDITOR, Role.DEPARTMENT, Role.ADMIN})
LIST_LIMIT = 100


def is_editor(principal: Principal, public_information_department: str) -> bool:
    """FAQ editors, admins, and the staff of 区政情報課 (the department that owns the FAQ)."""
    return principal.role in (Role.FAQ_EDITOR, Role.ADMIN) or (
        principal.role == Role.DEPARTMENT and principal.department == public_information_department
    )


def _editor(request: web.Request) -> Principal | None:
    who = current_principal(request)
    settings = request.app[records_keys.SETTINGS]
    if who is None or not is_editor(who, settings.public_information_department):
        return None
    return who


def _only_editors(handler: Any) -> Any:
    async def guarded(request: web.Request) -> web.StreamResponse:
        who = _editor(request)
        if who is None:
            return error(403, "FAQの編集は区政情報課と管理者のみできます", code="forbidden")
        try:
            response: web.StreamResponse = await handler(request, who)
            return response
        except AuthoringError as exc:
            return authoring_error(exc)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return requires(EDITOR_ROLES)(guarded)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AuthoringError(400, "bad_json", "JSONで送ってください") from None
    if not isinstance(body, dict):
        raise AuthoringError(400, "bad_json", "JSONのオブジェクトで送ってください")
    return body


def _text(body: dict[str, Any], key: str, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise AuthoringError(422, "not_text", f"{key} は文字列で送ってください", key)
    return value


def _service(request: web.Request) -> FaqService:
    service: FaqService = request.app[faq_keys.FAQ]
    return service


async def editor_page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / "editor.html", headers={"Cache-Control": "no-store"})


async def list_entries(request: web.Request, who: Principal) -> web.Response:
    service = _service(request)
    query = request.query.get("q", "").strip()
    if query:
        try:
            entries = [hit.entry for hit in service.search(query, 50)]
        except ValueError as exc:
            return error(400, str(exc), "q")
    else:
        entries = [e for e in service.entries() if e.id.startswith("ed-")][-LIST_LIMIT:][::-1]
    return web.json_response({"items": [entry_dict(e, "") for e in entries], "size": service.size}, dumps=dumps)


async def get_entry(request: web.Request, who: Principal) -> web.Response:
    service = _service(request)
    key = request.match_info["id"]
    live = service.get(key)
    versions = await service.history(key)
    if live is None and not versions:
        return error(404, "このFAQはありません", code="not_found")
    return web.json_response(
        {"live": entry_dict(live, service.credit) if live else None, "versions": versions}, dumps=dumps
    )


async def save_draft(request: web.Request, who: Principal) -> web.Response:
    body = await _json_body(request)
    keywords = body.get("keywords") or []
    if isinstance(keywords, str):
        keywords = list(split_keywords(keywords))
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise AuthoringError(422, "not_text", "キーワードは文字列のリストで送ってください", "keywords")
    gap = body.get("gap")
    gap_ref: tuple[str, int] | None = None
    if gap is not None:
        if not (isinstance(gap, dict) and gap.get("kind") in GAP_KINDS and isinstance(gap.get("id"), int)):
            raise AuthoringError(422, "unknown_gap", "FAQ不足の指定が正しくありません", "gap")
        gap_ref = (str(gap["kind"]), int(gap["id"]))
    source_id = body.get("id")
    if source_id is not None and not isinstance(source_id, str):
        raise AuthoringError(422, "not_text", "id は文字列で送ってください", "id")
    draft = Draft(
        _text(body, "question"),
        _text(body, "answer"),
        _text(body, "category"),
        _text(body, "subcategory", required=False) or None,
        tuple(keywords),
    )
    saved = await _service(request).save_draft(who, source_id or None, draft, gap_ref)
    return web.json_response(saved, status=201, dumps=dumps)


async def list_drafts(request: web.Request, who: Principal) -> web.Response:
    return web.json_response({"items": await _service(request).drafts()}, dumps=dumps)


async def publish(request: web.Request, who: Principal) -> web.Response:
    try:
        version = int(request.match_info["version"])
    except ValueError:
        return error(404, "この版はありません", code="not_found")
    entry = await _service(request).publish(who, request.match_info["id"], version)
    log_event(logger, "faq_published", user=who.user_id, entry=entry.id, version=version)
    return web.json_response({"entry": entry_dict(entry, ""), "message": "公開しました"}, dumps=dumps)


async def retire(request: web.Request, who: Principal) -> web.Response:
    retired = await _service(request).retire(who, request.match_info["id"])
    return web.json_response({"version": retired, "message": "公開を終了しました"}, dumps=dumps)


async def _gap_list(request: web.Request, who: Principal) -> tuple[list[gap_rules.Gap], list[str]]:
    """Every gap the editor may see; sources that refuse or are missing are named, not fatal."""
    service = _service(request)
    records = request.app.get(records_keys.SERVICE)
    calls: list[dict[str, Any]] = []
    callbacks: list[dict[str, Any]] = []
    missing: list[str] = []
    if records is not None:
        try:
            calls = await records.faq_gaps(who, limit=500)
        except Exception:  # records refuses (RecordsError) or is down: the other sources still show
            missing.append("通話")
        try:
            callbacks = await records.list_callbacks(who, status="closed", limit=500)
        except Exception:
            missing.append("折り返し")
        names = {d.code: d.name for d in request.app[records_keys.SETTINGS].departments}
        callbacks = [{**c, "department_name": names.get(c.get("department") or "", c.get("department"))}
                     for c in callbacks]
    else:
        missing += ["通話", "折り返し"]
    merged = gap_rules.merge_gaps(calls, callbacks, await service.search_gaps(), await service.gap_answers())
    return merged, missing


async def list_gaps(request: web.Request, who: Principal) -> web.Response:
    merged, missing = await _gap_list(request, who)
    show_answered = request.query.get("answered") == "true"
    items = [g.as_dict() for g in merged if show_answered or g.answered_by_entry is None]
    return web.json_response({"items": items[:500], "unavailable": missing}, dumps=dumps)


async def gap_report(request: web.Request, who: Principal) -> web.Response:
    merged, missing = await _gap_list(request, who)
    return web.json_response({"rows": gap_rules.report(merged), "unavailable": missing}, dumps=dumps)


async def list_synonyms(request: web.Request, who: Principal) -> web.Response:
    return web.json_response(await _service(request).synonyms(), dumps=dumps)


async def add_synonym(request: web.Request, who: Principal) -> web.Response:
    body = await _json_body(request)
    added = await _service(request).add_synonym(who, _text(body, "rule"))
    return web.json_response(added, status=201, dumps=dumps)


async def delete_synonym(request: web.Request, who: Principal) -> web.Response:
    try:
        synonym_id = int(request.match_info["id"])
    except ValueError:
        return error(404, "この同義語はありません", code="not_found")
    await _service(request).delete_synonym(who, synonym_id)
    return web.json_response({"message": "削除しました"}, dumps=dumps)


async def reimport_documents(request: web.Request, who: Principal) -> web.Response:
    """Re-read the configured folder of the ward's sources ([faq] documents_dir); live at once."""
    folder = request.app[faq_keys.SETTINGS].documents_dir
    if not folder:
        return error(409, "資料フォルダ（[faq] documents_dir）が設定されていません", code="not_configured")
    try:
        done = await _service(request).import_folder(Path(folder))
    except (DocumentError, OSError) as exc:
        log_event(logger, "faq_documents_failed", user=who.user_id, error=type(exc).__name__)
        return error(422, f"資料を読み込めませんでした: {exc}", code="bad_documents")
    log_event(logger, "faq_documents_reimported", user=who.user_id, sources=len(done))
    return web.json_response(
        {"sources": [{"key": info.key, "label": info.label, **counts.as_dict()} for info, counts in done],
         "sections": _service(request).documents},
        dumps=dumps,
    )


async def export(request: web.Request, who: Principal) -> web.Response:
    """The live FAQ as a generic JSON file: importing it again gives the same FAQ."""
    service = _service(request)
    doc = service.export_document()
    return web.Response(
        text=dumps(doc),
        content_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="faq-export.json"'},
    )


def setup_editor_routes(app: web.Application) -> None:
    add_path_access(app, "/faq/editor/", Access(roles=EDITOR_ROLES))
    app.router.add_get("/faq/editor/", requires(EDITOR_ROLES)(editor_page))
    app.router.add_static("/faq/editor/assets/", WEB_DIR, name="faq_editor_assets", follow_symlinks=False)
    base = "/api/faq/editor"
    app.router.add_get(f"{base}/entries", _only_editors(list_entries))
    app.router.add_get(f"{base}/entries/{{id}}", _only_editors(get_entry))
    app.router.add_post(f"{base}/drafts", _only_editors(save_draft))
    app.router.add_get(f"{base}/drafts", _only_editors(list_drafts))
    app.router.add_post(f"{base}/entries/{{id}}/versions/{{version:[^/]+}}/publish", _only_editors(publish))
    app.router.add_post(f"{base}/entries/{{id}}/retire", _only_editors(retire))
    app.router.add_get(f"{base}/gaps", _only_editors(list_gaps))
    app.router.add_get(f"{base}/gaps/report", _only_editors(gap_report))
    app.router.add_get(f"{base}/synonyms", _only_editors(list_synonyms))
    app.router.add_post(f"{base}/synonyms", _only_editors(add_synonym))
    app.router.add_delete(f"{base}/synonyms/{{id}}", _only_editors(delete_synonym))
    app.router.add_post(f"{base}/documents/reimport", _only_editors(reimport_documents))
    app.router.add_get("/api/faq/export", _only_editors(export))
