"""Hostile request bodies against EVERY JSON route of the real app (create_app), as every role.

The routes are enumerated from ``app.router.routes()`` (every POST/PUT/PATCH/DELETE), like
tests/reliability/test_rel_authz_matrix.py: a new route is fuzzed without anyone adding it here.
Two kinds of body, both derandomised (the same every CI run, so a red run is reproducible):

- *malformed* (the guard's business, cti/core/http.py): 100,000-level nesting, lone surrogates in
  keys and values, 5,000-digit numbers and floats, NaN/Infinity/1e999, invalid UTF-8, truncated
  JSON, an oversized body (> client_max_size). Sent by every role (and anonymous): the answer is
  always a 4xx: the access refusal for those who may not use the route, else the guard's 400/413.
- *well-formed but wrong*: the route's valid body with one field at a time replaced by a wrong type,
  a huge number, an out-of-range date (year 0001 +14:00, 9999-12-31 -14:00), zero-width or NUL text,
  a lone-surrogate-free personal value; non-object tops; unknown fields. Sent by the roles the
  route lets through (found by sending the valid body first), so the handlers' validation is hit.

Asserted for every answer: never a 5xx; every 4xx is the envelope ``{"error": {"code", "message"}}``
with a Japanese message and does not echo personal data; a refused request changes nothing in the
database (a digest of every table but those in ``UNCHECKED_TABLES``, which record refusals or
move on their own). CI: the fixed set (~6,300 requests, 12-21 s); CTI_FUZZ_LONG=1 adds 400 random
combinations of several hostile fields per route and role (~30,000 requests, 2.5 min).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fuzz_support import LONG, ROOT, figures

sys.path.insert(0, str(ROOT / "tests" / "reliability"))
from rel_app import USERS, Browser, Env, running_app

from cti import keys
from cti.core.clock import TOKYO

NAME, PHONE, QUESTION, CALLER = "鈴木一郎", "09087654321", "児童手当の振込日について知りたい", "0398765432"
# A personal value put into hostile bodies: an error answer must never repeat it.
HOSTILE_PERSONAL = "山田花子 090-1111-2222 東京都港区芝公園4-2-8"
PERSONAL = [NAME, PHONE, QUESTION, CALLER, "山田花子", "090-1111-2222", "芝公園"]
ROLES = ["anonymous", *(u[0] for u in USERS)]
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
MAX_BODY = 1024 * 1024  # cti.app: client_max_size
JAPANESE = re.compile("[\u3040-\u30ff\u3400-\u9fff]")
# audit and access_alerts record refusals on purpose (a burst of failed logins is an alert);
# sessions' last-seen time moves with every request; purge_runs is written by the records task
# every minute on its own (the seed moved the clock to a new day), not by any request.
UNCHECKED_TABLES = {"audit", "access_alerts", "sessions", "purge_runs"}
# No telephony in this app: a valid call request is "cannot place the call now", not a fault.
ALLOWED_5XX = {("/api/department/callbacks/{id}/call", 503, "telephony_unavailable")}
# Extra top-level keys some errors carry beside the envelope (the seat's holder: a staff user id).
EXTRA_KEYS = {"seat_taken": {"holder"}}
RANDOM_ROUNDS = 400 if LONG else 0

MALFORMED: dict[str, bytes] = {
    "nesting_100000": b"[" * 100_000 + b"]" * 100_000,
    "nesting_objects_100000": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "lone_surrogate_value": b'{"user_id": "\\ud800", "password": "abc\\udfffdefghij", "reason": "\\udc00"}',
    "lone_surrogate_key": b'{"\\udc00": 1, "version": 1}',
    "lone_surrogate_nested": b'{"keywords": ["ok", {"\\ud83d": "\\ude00x"}]}',
    "number_5000_digits": b'{"version": ' + b"9" * 5000 + b', "faq_entries": [' + b"9" * 5000 + b"]}",
    "float_5000_digits": b'{"version": 1.' + b"5" * 5000 + b"}",
    "nan": b'{"version": NaN}',
    "infinity": b'{"version": Infinity, "active": -Infinity}',
    "overflowing_float": b'{"version": 1e999}',
    "invalid_utf8": b'{"reason": "\xff\xfe\xc0\xaf", "name": "\xed\xa0\x80"}',
    "truncated": b'{"name": "' + HOSTILE_PERSONAL.encode() + b'", ',
    "empty": b"",
    "oversized": b'{"question": "' + b"a" * (MAX_BODY + 16) + b'"}',
}
# The guard's codes, and the middleware's refusals (which come first: the body is not read then).
GUARD_CODES = {"invalid_json", "invalid_encoding", "too_deep", "number_too_long", "invalid_text", "http_413"}
ACCESS_CODES = {"not_logged_in", "forbidden_role", "outside_operator_room", "csrf_failed", "bad_origin",
                "forbidden", "not_found"}

HOSTILE_VALUES: list[Any] = [
    None, True, 0, -1, 1.5, 2**63, -(2**63) - 1, 10**30, "", " ", "abc", "x" * 20_000, [], {}, ["a"], {"a": [1]},
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31", "0001-01-01", "2026-13-45T25:61:00+09:00",
    "\u200b\u200c", "山田\u0000", "\ufeff", "a\x1bb", "\U0001f600" * 3, HOSTILE_PERSONAL,
    [HOSTILE_PERSONAL], {HOSTILE_PERSONAL: HOSTILE_PERSONAL},
]
TOPS: list[Any] = [[], "text", 0, None, True, [{"version": 1}]]

FUTURE = "2027-01-10T00:00:00+09:00"
# A valid body per route (by path template); routes without one get {} mutated by unknown fields.
VALID: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/login"): {"user_id": "op1", "password": "not the password 123"},
    ("POST", "/api/records/contacts"): {"call_id": "hostile-new-call"},
    ("PATCH", "/api/records/contacts/{call_id}"): {"outcome": "answered", "faq_entries": [1],
                                                   "ended_at": "2026-12-04T19:05:00+09:00"},
    ("POST", "/api/records/contacts/{call_id}/consent"): {"answer": "yes"},
    ("POST", "/api/records/contacts/{call_id}/callbacks"): {"name": NAME, "phone": PHONE, "question": QUESTION,
                                                            "department": "zeimu"},
    ("POST", "/api/records/callbacks/{id}/start"): {"version": 1},
    ("POST", "/api/records/callbacks/{id}/attempts"): {"version": 1, "outcome": "reached"},
    ("POST", "/api/records/callbacks/{id}/close"): {"version": 1, "summary": "案内済み"},
    ("POST", "/api/faq/gaps"): {"query": "犬の登録", "category": "くらし"},
    ("POST", "/api/faq/editor/drafts"): {"question": "問い", "answer": "答え", "category": "くらし",
                                         "keywords": ["犬"], "gap": {"kind": "search", "id": 1}},
    ("POST", "/api/faq/editor/synonyms"): {"words": ["学童", "放課後クラブ"]},
    ("POST", "/api/operator/calls/{call_id}/transfer"): {"department": "zeimu"},
    ("POST", "/api/operator/calls/{call_id}/consult"): {"department": "zeimu"},
    ("POST", "/api/seat"): {"interface": "Local/101@operator-phones"},
    ("POST", "/api/calendar/emergency"): {"active": False, "reason": "試験"},
    ("POST", "/api/calendar/overrides"): {"kind": "closure", "applies_to": "both", "start": FUTURE,
                                          "end": "2027-01-11T00:00:00+09:00", "reason": "試験"},
    ("DELETE", "/api/calendar/overrides"): {"id": 999_999},
    ("POST", "/api/department/callbacks/{id}/call"): {"extension": "202", "version": 1},
}
# Routes that read no body at all: the guard still refuses a malformed one (first round), but a
# well-formed one is simply not looked at, so they are left out of the second round.
BODILESS = {("POST", "/api/logout"), ("DELETE", "/api/seat"), ("POST", "/api/faq/editor/documents/reimport"),
            ("POST", "/api/operator/calls/{call_id}/consult/complete"),
            ("POST", "/api/operator/calls/{call_id}/consult/cancel"),
            ("POST", "/api/operator/calls/{call_id}/hold"), ("POST", "/api/operator/calls/{call_id}/resume")}
# Path ids: the seeded call and callback for records; ids that exist nowhere for the rest, so
# that a hostile body never publishes, retires or deletes anything real.
MISSING_ID = "999999"


def json_routes(env: Env) -> list[tuple[str, str]]:
    out = []
    for route in env.app.router.routes():
        if route.method not in BODY_METHODS:
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        out.append((route.method, str(info.get("path") or info.get("formatter"))))
    return sorted(out)


def concrete(path: str, call_id: str, callback_id: int) -> str:
    records = path.startswith(("/api/records/", "/api/department/"))
    path = path.replace("{call_id}", call_id if records else "no-such-call")
    path = path.replace("{id}", str(callback_id) if records else MISSING_ID)
    return path.replace("{version}", "1")


def mutations(template: dict[str, Any], rnd: random.Random) -> list[Any]:
    bodies: list[Any] = list(TOPS)
    for key in template:
        for value in HOSTILE_VALUES:
            bodies.append({**template, key: value})
        bodies.append({k: v for k, v in template.items() if k != key})
    bodies.append({**template, "unexpected": HOSTILE_PERSONAL})
    bodies.append({**template, HOSTILE_PERSONAL: 1})  # personal data as a key: not echoed either
    bodies.append({**template, "started_at": "0001-01-01T00:00:00+14:00", "caller_number": CALLER})
    keys_ = list(template) or ["unexpected"]
    for _ in range(RANDOM_ROUNDS):  # long mode: several hostile fields at once
        picked = rnd.sample(keys_, rnd.randint(1, len(keys_)))
        bodies.append({**template, **{k: rnd.choice(HOSTILE_VALUES) for k in picked}})
    return bodies


def table_digest(conn: sqlite3.Connection) -> dict[str, str]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                        " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%fts%'")]
    out = {}
    for name in sorted(set(names) - UNCHECKED_TABLES):
        rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()
        out[name] = hashlib.sha256(repr(sorted(tuple(r) for r in rows)).encode()).hexdigest()[:16] + f":{len(rows)}"
    return out


async def seed(env: Env) -> tuple[str, int]:
    """A call taken by op1 with consent and a callback for zeimu, handed over on Monday morning."""
    op = await env.browser("operator")
    call_id = "1764900000.42"
    await env.app[keys.RECORDS].call_taken(call_id, op.user_id, caller_number=CALLER)
    r = await op.client.post(f"/api/records/contacts/{call_id}/consent", json={"answer": "yes"}, headers=op.headers())
    assert r.status == 201, await r.text()
    r = await op.client.post(f"/api/records/contacts/{call_id}/callbacks", headers=op.headers(),
                             json={"name": NAME, "phone": PHONE, "question": QUESTION, "department": "zeimu"})
    assert r.status == 201, await r.text()
    callback_id = int((await r.json())["id"])
    env.clock.at = datetime(2026, 12, 7, 9, 0, tzinfo=TOKYO)
    await env.app[keys.RECORDS].hand_over_due()
    await op.close()
    return call_id, callback_id


def problems_of(status: int, text: str, kind: str, path: str) -> list[str]:
    """What is wrong with one answer (empty: nothing)."""
    if status >= 500 and not any(p == path and s == status and f'"{c}"' in text for p, s, c in ALLOWED_5XX):
        return [f"{status} server error: {text[:120]!r}"]
    if status < 400:
        return [f"{status}: a {kind} body was accepted"] if kind == "malformed" else []
    out = []
    try:
        body = json.loads(text)
        error = body["error"]
        assert isinstance(error["code"], str)
        assert set(body) - {"error", "errors"} <= EXTRA_KEYS.get(error["code"], set())
        assert isinstance(error["message"], str) and set(error) <= {"code", "message", "field"}
        listed = body.get("errors", [])  # every field error at once (the callback form), each in the envelope's shape
        assert isinstance(listed, list) and all(set(e) <= {"code", "message", "field"} for e in listed)
        assert all(JAPANESE.search(e["message"]) for e in listed)
    except (ValueError, KeyError, TypeError, AssertionError):
        return [f"{status}: not the error envelope: {text[:120]!r}"]
    if not JAPANESE.search(error["message"]):
        out.append(f"{status}: message not in Japanese: {error['message']!r}")
    if kind == "malformed" and error["code"] not in GUARD_CODES | ACCESS_CODES and status != 429:
        out.append(f"{status}: unexpected code {error['code']!r} for a malformed body")
    out += [f"{status}: personal data echoed: {p}" for p in PERSONAL if p in text]
    return out


async def test_hostile_bodies_on_every_json_route_as_every_role(tmp_path: Path) -> None:
    started = time.monotonic()
    rnd = random.Random(14)
    statuses: dict[int, int] = {}
    codes: dict[str, int] = {}
    failures: list[str] = []
    accepted: set[str] = set()
    sent = 0
    async with running_app(tmp_path) as env:
        call_id, callback_id = await seed(env)
        db = env.app[keys.DATABASE]
        routes = json_routes(env)
        assert len(routes) >= 20 and ("POST", "/api/login") in routes
        browsers: dict[str, Browser] = {role: await env.browser(None if role == "anonymous" else role)
                                        for role in ROLES}
        digest = await db.read(table_digest)

        async def send(browser: Browser, method: str, path: str, url: str, kind: str, what: str,
                       **kwargs: Any) -> int:
            nonlocal sent, digest
            resp = await browser.client.request(method, url, headers={**browser.headers(), **kwargs.pop("headers", {})},
                                                allow_redirects=False, **kwargs)
            text = await resp.text()
            sent += 1
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            where = f"{browser.label} {method} {url} [{kind}: {what}]"
            failures.extend(f"{where}: {p}" for p in problems_of(resp.status, text, kind, path))
            if resp.status >= 400:
                try:
                    code = str(json.loads(text)["error"]["code"])
                    codes[code] = codes.get(code, 0) + 1
                except (ValueError, KeyError, TypeError):
                    pass
            after = await db.read(table_digest)
            if after != digest:
                if resp.status >= 400:
                    changed = sorted(k for k in after if after[k] != digest.get(k))
                    failures.append(f"{where}: refused with {resp.status} but changed {changed}")
                else:
                    accepted.add(f"{method} {url}")
                digest = after
            return resp.status

        for method, path in routes:
            url = concrete(path, call_id, callback_id)
            for role in ROLES:
                browser = browsers[role]
                for name, raw in MALFORMED.items():
                    if name == "empty" and (method, path) in BODILESS:
                        continue  # no body at all is what these routes expect
                    kind = "wrong" if name == "empty" else "malformed"  # no body: the handler's own 4xx
                    await send(browser, method, path, url, kind, name, data=raw,
                               headers={"Content-Type": "application/json"})
                if (method, path) in BODILESS:
                    continue
                template = VALID.get((method, path), {})
                # the valid body first: a role the middleware refuses never gets its body read
                probe = await send(browser, method, path, url, "wrong", "valid template", json=template)
                if (probe in (401, 403) and role != "anonymous") or (role == "anonymous" and path != "/api/login"):
                    continue
                for body in mutations(template, rnd):
                    await send(browser, method, path, url, "wrong", json.dumps(body, ensure_ascii=False)[:80],
                               data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        # the app still answers normally afterwards
        op = browsers["operator"]
        assert (await op.client.get("/healthz")).status == 200
        assert (await op.client.get("/api/me", headers=op.headers())).status == 200
        for browser in browsers.values():
            await browser.close()
    elapsed = round(time.monotonic() - started, 1)
    figures("fuzz_hostile_bodies", json_routes=len(routes), roles=len(ROLES), malformed_kinds=len(MALFORMED),
            hostile_values=len(HOSTILE_VALUES), requests_sent=sent,
            server_errors=sum("server error" in f for f in failures),
            statuses={str(k): v for k, v in sorted(statuses.items())},
            codes=dict(sorted(codes.items())), accepted_and_changed=sorted(accepted), problems=len(failures),
            seconds=elapsed)
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:40])
    assert sent >= len(routes) * len(ROLES) * len(MALFORMED)
