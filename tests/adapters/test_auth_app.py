"""Auth and the hub inside the real composed app (cti.app.create_app): every API is closed to
anonymous callers unless declared public, and a logged-in operator gets a working websocket."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from access.rules import Access
from access.web import ACCESS_ATTR, AUTH
from cti import keys
from cti.app import create_app
from cti.config import Settings, load_settings

ORIGIN = "http://127.0.0.1:8080"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        {
            "CTI_STORE__PATH": str(tmp_path / "cti.sqlite3"),
            "CTI_AMI__ENABLED": "false",
            "CTI_AGI__ENABLED": "false",
        },
    )


async def test_no_api_answers_an_anonymous_caller_unless_declared_public(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path))
    async with TestClient(TestServer(app)) as client:
        checked = 0
        for route in app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path") or info.get("formatter")
            if (
                not path
                or not path.startswith("/api/")
                or route.method not in ("GET", "POST", "PUT", "PATCH", "DELETE")
            ):
                continue
            access = getattr(route.handler, ACCESS_ATTR, None)
            if isinstance(access, Access) and access.public:
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            resp = await client.request(route.method, url, headers={"Origin": ORIGIN}, json={})
            assert resp.status in (401, 403), (route.method, path, resp.status)
            checked += 1
        assert checked >= 5


async def test_an_operator_logs_in_takes_a_seat_and_gets_a_pop_over_the_socket(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path))
    async with TestClient(TestServer(app)) as client:
        auth = app[AUTH]
        await auth.accounts.add("op1", "operator", "correct horse battery")
        resp = await client.post(
            "/api/login", json={"user_id": "op1", "password": "correct horse battery"}, headers={"Origin": ORIGIN}
        )
        me: dict[str, Any] = await resp.json()
        assert resp.status == 200
        resp = await client.post(
            "/api/seat", json={"interface": "PJSIP/op101"}, headers={"X-CSRF-Token": me["csrf_token"]}
        )
        assert resp.status == 200
        ws = await client.ws_connect("/ws", headers={"Origin": ORIGIN})
        hello = json.loads((await ws.receive(timeout=5)).data)
        assert hello["type"] == "hello" and hello["user_id"] == "op1"
        await ws.send_str(json.dumps({"type": "resume", "last_seq": 0}))
        from datetime import datetime

        from cti.core.clock import TOKYO
        from screenpop.keys import DISPATCHER
        from telephony.events import OperatorRinging

        at = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
        for call_id, seat in (("c1", "PJSIP/op101"), ("c2", "PJSIP/op102")):  # op102: nobody seated, no message
            await app[DISPATCHER].on_events(OperatorRinging(
                call_id=call_id, at=at, interface=seat, member_name=None, queue="operators",
                caller_number="0312345678", caller_name=None))
        got = json.loads((await ws.receive(timeout=5)).data)
        assert got["type"] == "ringing" and got["call_id"] == "c1" and got["seq"] == 1
        assert app[keys.HUB].connection_count() == 1
        await ws.close()
