"""Privacy: no personal data in the logs of a realistic flow, and none left in the database file
(main file, WAL, FTS) after ``cti purge``.

The flow runs on the whole app (create_app) with logging configured as in production
(cti.core.logs.configure_logging, JSON lines, here at DEBUG: stricter than production's INFO) written
to a file: a real captured inbound call (tests/fixtures/ami/01-inbound-queue-answered.txt) is
replayed over AMI, pops on the operator's screen over the websocket, the operator searches the FAQ
with the citizen's words, records the contact, the consent and a callback request, logs in wrong
once, the department reads the request; then ``cti purge`` runs as a subprocess a year later.
The log file is scanned for every piece of the test's personal data.

The records package's own byte-level purge test is tests/adapters/test_records_store.py
(test_purge_removes_personal_bytes_after_one_year) and tests/adapters/test_records_cli.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import aiohttp
from rel_app import ORIGIN, Clock, running_app, settings_for
from reliability_support import ROOT, figures

from cti import keys
from cti.core.clock import TOKYO
from cti.core.logs import configure_logging

sys.path.insert(0, str(ROOT / "tests" / "adapters"))
from ami_replay_server import AmiReplayServer, load_capture

# A Friday evening more than a year before any run of this test: `cti purge` (system clock) purges it.
COLLECTED = datetime(2025, 11, 14, 19, 0, tzinfo=TOKYO)
CAPTURE = "01-inbound-queue-answered.txt"
CALLER_NUMBER, CALLER_NAME = "0312345678", "Citizen One"  # from the capture
NAME, FURIGANA = "渡辺真理子", "ワタナベマリコ"
PHONE = "080-2468-1357"
QUESTION = "保育園の入園申込みの締切はいつですか、きょうだい加点について"
SEAT = "Local/101@operator-phones"


def needles() -> dict[str, bytes]:
    digits = PHONE.replace("-", "")
    values = {"name": NAME, "furigana": FURIGANA, "phone": digits, "phone_dashed": PHONE,
              "question": QUESTION, "question_start": QUESTION[:8], "caller_number": CALLER_NUMBER,
              "caller_number_dashed": "03-1234-5678", "caller_name": CALLER_NAME}
    return {k: v.encode() for k, v in values.items()}


def db_bytes(path: Path) -> bytes:
    blob = path.read_bytes()
    for suffix in ("-wal", "-shm", "-journal"):
        extra = Path(f"{path}{suffix}")
        if extra.exists():
            blob += extra.read_bytes()
    return blob


async def test_logs_of_a_full_flow_and_the_purged_database_hold_no_personal_data(tmp_path: Path) -> None:
    log_file = tmp_path / "cti.log"
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("DEBUG", json_lines=True)
    handler = root.handlers[0]
    stream = log_file.open("w", encoding="utf-8")
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    replay = AmiReplayServer()
    await replay.start()
    steps: list[str] = []
    try:
        settings = settings_for(tmp_path, CTI_AMI__ENABLED="true", CTI_AMI__HOST="127.0.0.1",
                                CTI_AMI__PORT=str(replay.port), CTI_AMI__USERNAME="cti",
                                CTI_AMI__SECRET="s3cret", CTI_AMI__RECONNECT_INITIAL="0.05")
        async with running_app(tmp_path, settings=settings, clock=Clock(COLLECTED)) as env:
            await env.app[keys.AMI].client.wait_connected(5)
            op = await env.browser("operator")
            r = await op.client.post("/api/seat", json={"interface": SEAT}, headers=op.headers())
            assert r.status == 200, await r.text()
            ws = await op.client.ws_connect("/ws", headers={"Origin": ORIGIN})
            hello = json.loads((await ws.receive(timeout=5)).data)
            await ws.send_str(json.dumps({"type": "resume", "last_seq": 0, "epoch": hello["epoch"]}))
            capture = load_capture(CAPTURE)
            await replay.push(capture.frames)
            pop = None
            deadline = time.monotonic() + 10
            while pop is None:
                assert time.monotonic() < deadline, "no pop"
                msg = await ws.receive(timeout=10)
                assert msg.type == aiohttp.WSMsgType.TEXT
                data = json.loads(msg.data)
                if data["type"] == "pop":
                    pop = data
            assert pop["caller_number"] == CALLER_NUMBER  # the screen shows it; the logs must not
            call_id = pop["call_id"]
            steps.append("call replayed over AMI and popped")
            await ws.send_str(json.dumps({"type": "faq_search", "q": QUESTION}))
            while True:
                data = json.loads((await ws.receive(timeout=5)).data)
                if data["type"] == "faq_results":
                    break
            steps.append("FAQ searched with the citizen's words")
            # the contact: created by the server when the tracker saw op answer (no browser request)
            r = await op.client.post(f"/api/records/contacts/{call_id}/consent", json={"answer": "yes"},
                                     headers=op.headers())
            assert r.status == 201, await r.text()
            r = await op.client.post(f"/api/records/contacts/{call_id}/callbacks", headers=op.headers(),
                                     json={"name": NAME, "furigana": FURIGANA, "phone": PHONE,
                                           "question": QUESTION, "department": "kosodate"})
            assert r.status == 201, await r.text()
            callback_id = (await r.json())["id"]
            # a refused input that echoes nothing personal either
            r = await op.client.post(f"/api/records/contacts/{call_id}/callbacks", headers=op.headers(),
                                     json={"name": NAME, "phone": "03-12", "question": QUESTION,
                                           "department": "kosodate"})
            assert r.status in (409, 422)
            steps.append("contact, consent and callback recorded (and one refused)")
            bad = await env.browser(None)
            r = await bad.client.post("/api/login", json={"user_id": NAME, "password": PHONE})
            assert r.status in (400, 401)
            steps.append("a login attempt with personal data as the user id")
            await ws.close()
            for b in (op, bad):
                await b.close()
            # the department reads it after the handover
            env.clock.at = datetime(2025, 11, 17, 9, 0, tzinfo=TOKYO)
            await env.app[keys.RECORDS].hand_over_due()
            admin = await env.browser("admin")
            r = await admin.client.get(f"/api/records/callbacks/{callback_id}", headers=admin.headers())
            assert r.status == 200 and (await r.json())["name"] == NAME
            await admin.close()
            steps.append("handed over and read")
        db = tmp_path / "cti.sqlite3"
        assert NAME.encode() in db_bytes(db)  # the data was there before the purge
    finally:
        await replay.close()
        stream.flush()
        root.handlers[:], root.level = saved
        stream.close()
    # a year later: cti purge, as production runs it
    config = tmp_path / "cti.toml"
    config.write_text(f'[store]\npath = "{db}"\n', encoding="utf-8")
    purge = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cti", "purge", "--config", str(config)],
                                    capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert purge.returncode == 0, purge.stderr
    steps.append("cti purge")
    cli_leaks = [k for k, v in needles().items() if v in (purge.stdout + purge.stderr).encode()]
    assert not cli_leaks, f"personal data in cti purge's output: {cli_leaks}"
    blob = db_bytes(db)
    in_db = [k for k, v in needles().items() if k not in ("caller_name",) and v in blob]
    assert not in_db, f"personal data left in the database file after purge: {in_db}"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    log_text = log_file.read_bytes()
    lines = log_text.splitlines()
    for line in lines:
        json.loads(line)  # every line is one JSON object
    in_log = {k: sum(v in line for line in lines) for k, v in needles().items()}
    leaks = {k: n for k, n in in_log.items() if n}
    assert call_id.encode() in log_text  # the logs do name the call, by id
    assert len(lines) > 20
    events = sorted({json.loads(line)["event"] for line in lines})
    figures("privacy", flow_steps=steps, log_events_seen=events, log_lines_scanned=len(lines),
            personal_values_searched=len(needles()),
            leaks_in_logs=leaks, left_in_db_after_purge=in_db)
    assert not leaks, f"personal data in the logs: {leaks}"
