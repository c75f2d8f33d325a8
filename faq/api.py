"""Wiring of the FAQ into the aiohttp app: the cleanup context, the operators' read routes and the
editors' routes (faq/editor_api.py).

create_app does (after database_ctx, whose migrations include ``"faq": faq.store.MIGRATIONS``)::

    app.cleanup_ctx.append(faq_ctx)
    setup_faq_routes(app)

Operator routes (any logged-in role):

    GET  /api/faq/search?q=&limit=   FAQ hits, the ward's document hits, ``weak`` (nothing close)
    GET  /api/faq/{id}               one entry, or one document section (ids ``doc-...``)
    POST /api/faq/gaps               {"query", "category"}: log a search that found nothing close
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from access.web import requires
from cti.core import keys as core_keys
from cti.core.http import current_principal, error_response
from cti.core.logs import log_event
from cti.core.principal import Principal, Role
from cti.gateway import DATABASE
from faq import keys as faq_keys
from faq.authoring import EDITOR_ID_PREFIX, AuthoringError
from faq.documents import DocSection, DocumentError
from faq.index import MAX_LIMIT, FaqEntry
from faq.parsing import FaqFormatError, parse_faq
from faq.service import FaqService, is_weak
from records import keys as records_keys

logger = logging.getLogger("cti.faq")

DEFAULT_LIMIT = 10
DOCUMENT_LIMIT = 3
NO_CLOSE_ANSWER = "近い回答が見つかりません"
EDITOR_CREDIT = "出典：区政情報課（FAQ編集）"
GAP_REPORTERS = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)


def _audit_through_records(app: web.Application) -> Any:
    """FAQ changes go into the records' hash-chained audit (one audit for the whole server)."""

    async def audit(
        who: Principal, action: str, kind: str, ref: str | int | None, outcome: str, detail: Mapping[str, Any] | None
    ) -> None:
        records = app.get(records_keys.SERVICE)
        if records is not None:
            await records.audit_alone(who, action, kind, ref, outcome, detail)
        else:  # no records service (a test app without it): the log still says who did what
            log_event(logger, "faq_change", user=who.user_id, action=action, kind=kind, ref=str(ref))

    return audit


async def faq_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the FAQ search service from the app's database (importing the configured file if
    the FAQ is empty) and store it under faq_keys.FAQ."""
    settings = app[faq_keys.SETTINGS]
    service = FaqService(app[DATABASE], app[core_keys.CLOCK], settings.category_map, _audit_through_records(app))
    await service.load()
    if service.size == 0 and settings.import_on_start:
        path = Path(settings.import_on_start)
        data = await asyncio.to_thread(path.read_bytes)  # a missing file stops the start: clear error
        try:
            parsed = parse_faq(data, path.name)
        except FaqFormatError as exc:
            raise RuntimeError(f"faq.import_on_start: {exc}") from None
        counts = await service.import_parsed(parsed)
        log_event(logger, "faq_imported_on_start", **counts.as_dict())
    if settings.documents_dir:
        # The ward's other sources: re-imported at every start (idempotent: unchanged files change nothing).
        try:
            done = await service.import_folder(Path(settings.documents_dir))
        except (DocumentError, OSError) as exc:
            raise RuntimeError(f"faq.documents_dir: {exc}") from None
        log_event(logger, "faq_documents_on_start", sources=len(done), sections=service.documents)
    await service.purge_old_search_gaps()
    app[faq_keys.FAQ] = service
    app[core_keys.READINESS].register(
        "faq", lambda: (True, {"entries": service.size, "documents": service.documents})
    )
    try:
        yield
    finally:
        app[core_keys.READINESS].unregister("faq")


def setup_faq_routes(app: web.Application) -> None:
    from faq.editor_api import setup_editor_routes

    app.router.add_get("/api/faq/search", faq_search)
    app.router.add_post("/api/faq/gaps", requires(GAP_REPORTERS)(log_gap))
    setup_editor_routes(app)  # before /api/faq/{id}: /api/faq/editor/... and /api/faq/export are not ids
    app.router.add_get("/api/faq/{id}", faq_entry)


def error(status: int, message: str, field: str | None = None, code: str = "invalid") -> web.Response:
    return error_response(status, code, message, field)


def authoring_error(exc: AuthoringError) -> web.Response:
    return error(exc.status, exc.message, exc.field, exc.code)


def search_body(service: FaqService, query: str, limit: int) -> dict[str, Any]:
    """Search results as the operator screen shows them (raises ValueError on a bad query)."""
    hits = service.search(query, limit)
    documents = service.search_documents(query, DOCUMENT_LIMIT)
    weak = is_weak(hits) and is_weak([d.hit for d in documents])
    return {
        "query": query,
        "results": [hit.as_dict() for hit in hits],
        "documents": [d.as_dict() for d in documents],
        "weak": weak,
        "notice": NO_CLOSE_ANSWER if weak else "",
        "credit": service.credit,
    }


async def faq_search(request: web.Request) -> web.Response:
    """GET /api/faq/search?q=...&limit=N -> {"query", "results", "documents", "weak", "notice", "credit"}."""
    service: FaqService = request.app[faq_keys.FAQ]
    query = request.query.get("q", "")
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        return error(400, f"limit must be an integer between 1 and {MAX_LIMIT}", "limit", "invalid_limit")
    try:
        body = search_body(service, query, limit)
    except ValueError as exc:
        return error(400, str(exc), code="invalid_query")
    return web.json_response(body, dumps=dumps)


async def faq_entry(request: web.Request) -> web.Response:
    """GET /api/faq/{id} -> the whole entry with its credit line (or a document section)."""
    service: FaqService = request.app[faq_keys.FAQ]
    key = request.match_info["id"]
    section = service.get_document(key)
    if section is not None:
        return web.json_response(section_dict(section), dumps=dumps)
    entry = service.get(key)
    if entry is None:
        return error(404, "no FAQ entry with this id", code="not_found")
    # The imported FAQ's credit (CC BY) is not the source of an entry the editors wrote.
    credit = EDITOR_CREDIT if entry.id.startswith(EDITOR_ID_PREFIX) else service.credit
    return web.json_response(entry_dict(entry, credit), dumps=dumps)


async def log_gap(request: web.Request) -> web.Response:
    """POST /api/faq/gaps {"query", "category"?}: the operator logs a question the FAQ could not answer."""
    service: FaqService = request.app[faq_keys.FAQ]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "JSONで送ってください")
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return error(422, "検索語がありません", "query")
    category = body.get("category")
    if category is not None and (not isinstance(category, str) or len(category) > 32):
        return error(422, "カテゴリが正しくありません", "category")
    who = current_principal(request)
    if who is None:  # the route requires a login; the middleware answered already
        return error(401, "ログインしてください")
    try:
        gap = await service.log_search_gap(who, body["query"], category)
    except AuthoringError as exc:
        return authoring_error(exc)
    return web.json_response({"id": gap["id"], "message": "FAQ不足として記録しました"}, status=201, dumps=dumps)


def entry_dict(entry: FaqEntry, credit: str) -> dict[str, Any]:
    return {
        "id": entry.id,
        "question": entry.question,
        "answer": entry.answer,
        "category": entry.category,
        "subcategory": entry.subcategory,
        "keywords": list(entry.keywords),
        "credit": credit,
    }


def section_dict(section: DocSection) -> dict[str, Any]:
    """A document section in the shape of an entry (question = heading), with its source and link."""
    return {
        "id": section.id,
        "question": section.title,
        "answer": section.body,
        "category": section.source_label,
        "subcategory": None,
        "keywords": [],
        "credit": f"出典：{section.source_label}",
        "source": section.source_label,
        "url": section.url,
        "kind": "document",
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
