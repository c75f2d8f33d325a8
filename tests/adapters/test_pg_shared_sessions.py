"""Two cti nodes on one PostgreSQL store with the same security.session_key (which `cti serve` requires
there): a login made on one node is valid on the other, and a logout on either ends it on both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from authhub_harness import ORIGIN, Clock, add_user, login, make_settings, session_cookie, start
from pg_support import PgCluster
from yarl import URL

SESSION_KEY = "fedcba9876543210" * 4
Client = TestClient[Any, Any]


def use_cookie(client: Client, token: str) -> None:
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"cti_session": token}, URL(str(client.make_url("/"))))


async def test_a_login_on_one_node_is_valid_on_the_other_until_logged_out(
    pg_cluster: PgCluster, tmp_path: Path,
) -> None:
    url, clock = pg_cluster.new_url(), Clock()
    settings = make_settings(security={"session_key": SESSION_KEY})
    node_a = await start(tmp_path / "a", clock, settings, store=url)
    node_b = await start(tmp_path / "b", clock, settings, store=url)
    try:
        await add_user(node_a, "op1", "operator")
        body = await login(node_a, "op1")
        token = session_cookie(node_a)
        assert token
        use_cookie(node_b, token)
        me = await node_b.get("/api/me")
        assert me.status == 200 and (await me.json())["user_id"] == "op1"
        out = await node_b.post("/api/logout", headers={"X-CSRF-Token": body["csrf_token"], "Origin": ORIGIN})
        assert out.status in (200, 204)
        assert (await node_a.get("/api/me")).status == 401
    finally:
        await node_a.close()
        await node_b.close()
