"""The live wall: given calls and presence changes, when a snapshot is taken, then counts and waits are right."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from cti.core.clock import TOKYO
from supervision.wall import OperatorState, Wall

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_waiting_calls_and_longest_wait() -> None:
    wall = Wall()
    wall.call_waiting("c1", at(0), "koseki")
    wall.call_waiting("c2", at(30))
    snap = wall.snapshot(at(90))
    assert snap["waiting"] == 2
    assert snap["longest_wait_seconds"] == 90
    assert [w["call_id"] for w in snap["waiting_calls"]] == ["c1", "c2"]
    assert snap["waiting_calls"][1]["wait_seconds"] == 60


def test_operator_states_follow_presence_ringing_and_talking() -> None:
    wall = Wall()
    wall.operator_presence("op1", "ready", at(0))
    wall.operator_presence("op2", OperatorState.PAUSED, at(0), reason="break")
    wall.call_waiting("c1", at(5))
    wall.call_ringing("c1", "op1")
    states = {o["operator_id"]: o for o in wall.snapshot(at(6))["operators"]}
    assert states["op1"]["state"] == "ringing"
    assert states["op1"]["call_id"] == "c1"
    assert states["op2"]["state"] == "paused"
    assert states["op2"]["pause_reason"] == "break"
    wall.call_answered("c1", "op1", at(10))
    snap = wall.snapshot(at(70))
    states = {o["operator_id"]: o for o in snap["operators"]}
    assert states["op1"]["state"] == "talking"
    assert snap["waiting"] == 0
    assert snap["in_progress"] == 1
    assert snap["calls"] == [{"call_id": "c1", "operator_id": "op1", "talk_seconds": 60, "on_hold": False}]
    assert snap["operator_counts"]["talking"] == 1
    assert snap["operator_counts"]["paused"] == 1
    wall.call_ended("c1")
    snap = wall.snapshot(at(80))
    assert snap["in_progress"] == 0
    assert {o["operator_id"]: o["state"] for o in snap["operators"]} == {"op1": "ready", "op2": "paused"}


def test_abandoned_call_leaves_the_queue_and_stops_ringing() -> None:
    wall = Wall()
    wall.operator_presence("op1", "ready", at(0))
    wall.call_waiting("c1", at(0))
    wall.call_ringing("c1", "op1")
    wall.call_left_queue("c1")
    snap = wall.snapshot(at(20))
    assert snap["waiting"] == 0
    assert snap["longest_wait_seconds"] == 0
    assert snap["operators"][0]["state"] == "ready"


def test_version_changes_only_when_something_changes() -> None:
    wall = Wall()
    wall.operator_presence("op1", "ready", at(0))
    v = wall.version
    wall.operator_presence("op1", "ready", at(5))
    wall.call_ended("unknown")
    wall.set_overdue_callbacks(0)
    assert wall.version == v
    wall.set_overdue_callbacks(3)
    assert wall.version == v + 1
    assert wall.snapshot(at(5))["overdue_callbacks"] == 3


def test_bad_input_is_refused() -> None:
    wall = Wall()
    with pytest.raises(ValueError, match="must carry a UTC offset"):
        wall.call_waiting("c1", datetime(2026, 11, 27, 10, 0))
    with pytest.raises(ValueError, match="call_id"):
        wall.call_waiting(" ", at(0))
    with pytest.raises(ValueError, match="presence must be"):
        wall.operator_presence("op1", "talking", at(0))
    with pytest.raises(ValueError):
        wall.operator_presence("op1", "sleeping", at(0))
    with pytest.raises(ValueError, match=">= 0"):
        wall.set_overdue_callbacks(-1)
    assert wall.version == 0


def test_snapshot_is_json_and_carries_only_ids_and_numbers() -> None:
    wall = Wall()
    wall.operator_presence("op1", "ready", at(0))
    wall.call_waiting("1732700000.11", at(0), "zei")
    text = json.dumps(wall.snapshot(at(3)), ensure_ascii=False)
    allowed = {"at", "version", "waiting", "longest_wait_seconds", "waiting_calls", "operators", "operator_counts",
               "in_progress", "calls", "overdue_callbacks"}
    assert set(json.loads(text)) == allowed


def test_the_screen_shows_the_reference_people_read_not_the_call_id() -> None:
    from supervision.wall_view import present

    class Seats:
        def user_at(self, interface: str) -> str | None:
            return {"Local/101@operator-phones": "tanaka"}.get(interface)

    class References:
        def known(self, call_id: str) -> str | None:
            return {"1796172958.4": "20261127-0007"}.get(call_id)

    wall = Wall()
    wall.operator_presence("Local/101@operator-phones", "ready", at(0))
    wall.call_waiting("1796172958.4", at(0), "zei")
    wall.call_waiting("1796172958.9", at(1))
    wall.call_ringing("1796172958.4", "Local/101@operator-phones")
    view = present(wall.snapshot(at(5)), Seats(), {"zei": "税"}, References())
    assert [(w["reference"], w["category_label"]) for w in view["waiting_calls"]] == [
        ("20261127-0007", "税"), (None, "未分類")]  # the second has not rung anyone yet
    assert view["operators"][0]["operator_id"] == "tanaka" and view["operators"][0]["reference"] == "20261127-0007"
    assert present(wall.snapshot(at(5)), Seats(), {})["waiting_calls"][0]["reference"] is None


def test_a_call_on_hold_shows_on_the_operator_and_the_call() -> None:
    wall = Wall()
    wall.operator_presence("op1", "ready", at(0))
    wall.call_waiting("c1", at(0))
    wall.call_answered("c1", "op1", at(5))
    version = wall.version
    wall.call_hold("c1", True)
    assert wall.version == version + 1
    wall.call_hold("c1", True)  # the same again (Hold and MusicOnHoldStart): no change
    assert wall.version == version + 1
    snap = wall.snapshot(at(10))
    [op] = snap["operators"]
    assert (op["state"], op["state_text"], op["on_hold"]) == ("talking", "通話中（保留中）", True)
    assert snap["calls"][0]["on_hold"] is True
    wall.call_hold("c1", False)
    [op] = wall.snapshot(at(12))["operators"]
    assert (op["state_text"], op["on_hold"]) == ("通話中", False)
    wall.call_hold("gone", True)  # a call not in progress: nothing to show
    assert "gone" not in json.dumps(wall.snapshot(at(12)))
