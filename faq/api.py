"""Wiring of the FAQ into the aiohttp app: a cleanup context and two read-only JSON routes.

create_app should (after database_ctx, which must include ``"faq": faq.store.MIGRATIONS``
in its migrations) do::

    app.cleanup_ctx.append(faq_ctx)
    setup_faq_routes(app)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from cti import keys
from cti.core.logs import log_event
from cti.db import migrate
from faq.index import MAX_LIMIT, FaqEntry, FaqFormatError, parse_faq
from faq.store import COMPONENT, MIGRATIONS, FaqService

logger = logging.getLogger("cti.faq")

DEFAULT_LIMIT = 10


async def faq_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the FAQ search service from the app's database (importing the configured file if
    the FAQ is empty) and store it under keys.FAQ."""
    settings = app[keys.SETTINGS]
    conn = app[keys.DB]
    await migrate(conn, {COMPONENT: MIGRATIONS})  # idempotent; normally done by database_ctx
    service = FaqService(conn, app[keys.CLOCK], settings.faq.category_map)
    await service.load()
    if service.size == 0 and settings.faq.import_on_start:
        path = Path(settings.faq.import_on_start)
        data = await asyncio.to_thread(path.read_bytes)  # a missing file stops the start: clear error
        try:
            parsed = parse_faq(data, path.name)
        except FaqFormatError as exc:
            raise RuntimeError(f"faq.import_on_start: {exc}") from None
        counts = await service.import_parsed(parsed)
        log_event(logger, "faq_imported_on_start", **counts.as_dict())
    app[keys.FAQ] = service
    app[keys.READINESS].register("faq", lambda: (True, {"entries": service.size}))
    try:
        yield
    finally:
        app[keys.READINESS].unregister("faq")


def setup_faq_routes(app: web.Application) -> None:
    app.router.add_get("/api/faq/search", faq_search)
    app.router.add_get("/api/faq/{id}", faq_entry)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def faq_search(request: web.Request) -> web.Response:
    """GET /api/faq/search?q=...&limit=N -> {"query", "results": [...], "credit"}."""
    service: FaqService = request.app[keys.FAQ]
    query = request.query.get("q", "")
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        return _error(400, f"limit must be an integer between 1 and {MAX_LIMIT}")
    try:
        hits = service.search(query, limit)
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response(
        {"query": query, "results": [hit.as_dict() for hit in hits], "credit": service.credit},
        dumps=_dumps,
    )


async def faq_entry(request: web.Request) -> web.Response:
    """GET /api/faq/{id} -> the whole entry with its credit line."""
    service: FaqService = request.app[keys.FAQ]
    entry = service.get(request.match_info["id"])
    if entry is None:
        return _error(404, "no FAQ entry with this id")
    return web.json_response(entry_dict(entry, service.credit), dumps=_dumps)


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


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
