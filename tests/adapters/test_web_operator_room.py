"""The operator screen is served to the operator room's networks only; others are sent to /department/."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from cti.app import create_app
from cti.config import load_settings


def app_for(tmp_path: Path, networks: list[str]):  # type: ignore[no-untyped-def]
    return create_app(load_settings(None, {
        "CTI_STORE__PATH": str(tmp_path / "cti.sqlite3"), "CTI_AMI__ENABLED": "false",
        "CTI_AGI__ENABLED": "false", "CTI_SECURITY__OPERATOR_NETWORKS": json.dumps(networks),
    }))


async def test_inside_the_operator_room_the_page_is_served(tmp_path: Path) -> None:
    async with TestClient(TestServer(app_for(tmp_path, ["127.0.0.0/8"]))) as client:
        for path in ("/", "/operator/"):
            response = await client.get(path, allow_redirects=False)
            assert response.status == 200, path
            assert "<html" in (await response.text()).lower()


async def test_outside_the_operator_room_the_page_is_refused(tmp_path: Path) -> None:
    async with TestClient(TestServer(app_for(tmp_path, ["10.20.0.0/16"]))) as client:
        landing = await client.get("/", allow_redirects=False)
        assert landing.status == 302 and landing.headers["Location"] == "/department/"
        page = await client.get("/operator/", allow_redirects=False)
        assert page.status == 403
        assert "オペレーター室" in await page.text()
