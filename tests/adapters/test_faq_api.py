"""The FAQ routes and start-up import through aiohttp's test client, on a temporary SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti import keys
from cti.app import put_settings
from cti.config import load_settings
from cti.core.clock import TOKYO, fixed_clock
from cti.core.readiness import Readiness
from cti.gateway import Database
from faq.api import faq_ctx, setup_faq_routes
from faq.parsing import KOSODATE_CREDIT
from faq.store import COMPONENT, MIGRATIONS

FIXTURE = Path(__file__).parent.parent / "fixtures" / "faq" / "kosodate_opendata_faq_corpus.json"


def make_app(tmp_path: Path, import_on_start: str | None) -> web.Application:
    env = {"CTI_STORE__PATH": str(tmp_path / "cti.sqlite3")}
    if import_on_start:
        env["CTI_FAQ__IMPORT_ON_START"] = import_on_start
    app = web.Application()
    put_settings(app, load_settings(None, env))
    app[keys.CLOCK] = fixed_clock(datetime(2026, 11, 27, 9, 0, tzinfo=TOKYO))
    app[keys.READINESS] = Readiness()

    async def database(app: web.Application) -> AsyncIterator[None]:
        app[keys.DATABASE] = await Database.open(app[keys.SETTINGS].store.path, {COMPONENT: MIGRATIONS})
        yield
        await app[keys.DATABASE].close()

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(faq_ctx)
    setup_faq_routes(app)
    return app


async def test_search_and_entry_routes_after_import_on_start(tmp_path: Path) -> None:
    app = make_app(tmp_path, str(FIXTURE))
    async with TestClient(TestServer(app)) as client:
        assert app[keys.READINESS].report()[1]["faq"] == {"ready": True, "entries": 661, "documents": 0}
        response = await client.get("/api/faq/search", params={"q": "ごみ", "limit": "3"})
        assert response.status == 200
        body = await response.json()
        assert body["credit"] == KOSODATE_CREDIT and body["query"] == "ごみ"
        assert len(body["results"]) == 3
        first = body["results"][0]
        assert first["category"] == "ごみ・リサイクル" and "ごみ" in first["question"]
        start, end = first["question_highlights"][0]
        assert first["question"][start:end] == "ごみ"

        response = await client.get(f"/api/faq/{first['id']}")
        assert response.status == 200
        entry = await response.json()
        assert entry["id"] == first["id"] and entry["answer"] and entry["credit"] == KOSODATE_CREDIT


@pytest.mark.parametrize(
    ("params", "message"),
    [({"q": ""}, "empty"), ({"q": "ごみ", "limit": "x"}, "integer"), ({"q": "ごみ", "limit": "99"}, "limit")],
)
async def test_bad_search_requests_get_400(tmp_path: Path, params: dict[str, str], message: str) -> None:
    async with TestClient(TestServer(make_app(tmp_path, str(FIXTURE)))) as client:
        response = await client.get("/api/faq/search", params=params)
        assert response.status == 400
        assert message in (await response.json())["error"]["message"]


async def test_unknown_entry_is_404_and_empty_faq_searches_to_nothing(tmp_path: Path) -> None:
    async with TestClient(TestServer(make_app(tmp_path, None))) as client:
        assert (await client.get("/api/faq/1")).status == 404
        body = await (await client.get("/api/faq/search", params={"q": "ごみ"})).json()
        assert body["results"] == [] and body["credit"] == ""


async def test_import_on_start_skipped_when_faq_already_has_entries(tmp_path: Path) -> None:
    csv = tmp_path / "mini.csv"
    csv.write_text("id,question,answer,category\nm1,ごみの日,月曜,ごみ・リサイクル\n", encoding="utf-8")
    async with TestClient(TestServer(make_app(tmp_path, str(csv)))) as client:
        assert (await client.get("/api/faq/m1")).status == 200
    async with TestClient(TestServer(make_app(tmp_path, str(FIXTURE)))) as client:
        assert (await client.get("/api/faq/m1")).status == 200  # not replaced by the big file
        assert (await client.get("/api/faq/1")).status == 404


async def test_broken_import_on_start_file_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,question\n1,q\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"faq\.import_on_start: bad\.csv: CSV header lacks answer"):
        async with TestClient(TestServer(make_app(tmp_path, str(bad)))):
            pass
