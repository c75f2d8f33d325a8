"""Issue 13, item 4: tracker fixes, each over a real Asterisk 22 capture recorded with the lab PBX
(tests/ami_capture_recorder.py; the files are tests/fixtures/ami/11-16-*.txt).

Every test here fails on the tracker before the fix (telephony/tracker.py as of 88f1bc8).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import pytest

from cti.core.clock import TOKYO
from telephony.ami.filters import adapter_keeps as ami_adapter_keeps
from telephony.events import CallEnded, CallTransferred, DomainEvent, OperatorConnected
from telephony.frames import read_capture
from telephony.tracker import CallTracker, TrackerConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
OP101, OP102 = "Local/101@operator-phones", "Local/102@operator-phones"


def adapter_keeps(frame: Mapping[str, str]) -> bool:
    config = TrackerConfig()
    return ami_adapter_keeps(frame, newexten_contexts=config.callback_contexts | config.transfer_contexts)


KEEPS = {"full stream": None, "adapter-filtered stream": adapter_keeps}


class Replay:
    """Feeds a capture frame by frame (the clock is each frame's rx time); `after` is called after
    every frame with the frame and the domain events it caused."""

    def __init__(self, name: str, keep: Callable[[Mapping[str, str]], bool] | None) -> None:
        self.frames = read_capture(FIXTURES / name)
        self.now = datetime.fromtimestamp(self.frames[0].rx or 0.0, TOKYO)
        self.tracker = CallTracker(lambda: self.now)
        self.keep = keep

    def run(self, after: Callable[[Mapping[str, str], list[DomainEvent]], None] | None = None) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for item in self.frames:
            if item.rx is not None:
                self.now = datetime.fromtimestamp(item.rx, TOKYO)
            if self.keep is not None and not self.keep(item.frame):
                continue
            out = self.tracker.feed(item.frame)
            events += out
            if after is not None:
                after(item.frame, out)
        return events


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_requeued_call_connects_to_the_second_operator(keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    """11: 101 answers, the citizen is sent back into the queue, 102 answers the second round."""
    replay = Replay("11-requeue-second-operator.txt", keep)
    queued = 0
    owner_after_requeue: list[object] = []

    def after(frame: Mapping[str, str], out: list[DomainEvent]) -> None:
        nonlocal queued
        queued += [e.type for e in out].count("call_queued")
        if queued == 2 and not owner_after_requeue:  # the frame that put it back into the queue
            owner_after_requeue.extend([replay.tracker.call_for_interface(OP101),
                                        replay.tracker.live_calls()[0].interface])

    events = replay.run(after)
    connected = [e for e in events if isinstance(e, OperatorConnected)]
    assert [(e.interface, e.member_name) for e in connected] == [(OP101, "Operator 101"), (OP102, "Operator 102")]
    assert connected[1].queue == "operators" and connected[1].hold_time == 1
    # When the call went back into the queue, 101 stopped owning it.
    assert owner_after_requeue == [None, None]
    [ended] = [e for e in events if isinstance(e, CallEnded)]
    # 102 hung up after its talk; 101's late AgentComplete (Reason: caller) does not speak for 102.
    assert (ended.interface, ended.last_state, ended.hung_up_by, ended.reason) == (OP102, "connected", "operator",
                                                                                    "answered")
    assert "operator_missed" not in [e.type for e in events]  # 102 answered: it did not miss the call


@pytest.mark.parametrize("capture", ["12-transfer-citizen-hangs-up.txt", "13-blind-transfer-key.txt",
                                     "15-blind-transfer-phone-context.txt"])
@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_citizen_hanging_up_on_the_department_is_the_citizen(
        capture: str, keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    """12 (Redirect by call control), 13 and 15 (the phone's blind transfer): after the transfer the
    operator's legs are hung up by Asterisk, then the citizen hangs up on department 201."""
    events = Replay(capture, keep).run()
    [ended] = [e for e in events if isinstance(e, CallEnded)]
    assert (ended.last_state, ended.reason, ended.hung_up_by) == ("transferred", "answered", "citizen")


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_one_blind_transfer_is_one_call_transferred(keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    """15: the phone's transfer context (phone-transfer) Goto()s departments: Asterisk reports the
    transfer as BlindTransfer to 201@phone-transfer AND as the citizen's leg entering 201@departments."""
    replay = Replay("15-blind-transfer-phone-context.txt", keep)
    targets: list[str | None] = []

    def after(frame: Mapping[str, str], out: list[DomainEvent]) -> None:
        if frame.get("Event") == "DialBegin":
            snap = replay.tracker.live_calls()[0]
            targets.append(snap.transferred_to)

    events = replay.run(after)
    transferred = [e for e in events if isinstance(e, CallTransferred)]
    assert [(e.target, e.method, e.interface) for e in transferred] == [("201@phone-transfer", "blind", OP101)]
    assert targets[-1] == "201@departments"  # where the citizen's leg actually went


@pytest.mark.parametrize("capture", ["13-blind-transfer-key.txt", "12-transfer-citizen-hangs-up.txt"])
def test_single_report_transfers_stay_one_event(capture: str) -> None:
    events = Replay(capture, None).run()
    assert [e.type for e in events].count("call_transferred") == 1


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_consult_leg_is_not_a_live_inbound_call(keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    """14: operator 102's phone calls department 201 (neither inbound nor callback). cti/app.py's
    cti_calls gauge counts live calls by state: the consult leg must never be an arriving call."""
    replay = Replay("14-consult-call.txt", keep)
    gauges: list[Counter[str]] = []
    kinds: set[str] = set()

    def after(frame: Mapping[str, str], out: list[DomainEvent]) -> None:
        live = replay.tracker.live_calls()
        gauges.append(Counter(call.state for call in live))
        kinds.update(call.kind for call in live)

    events = replay.run(after)
    assert events == []  # no call_arrived, no call_ended: it is no inbound call
    assert max(g["other"] for g in gauges) == 1  # tracked (its channels), in a state of its own
    assert all(g["arriving"] == 0 for g in gauges)
    assert kinds == {"unknown"}
    assert len(replay.tracker) == 0  # and gone when it ends


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_department_hanging_up_after_a_transfer_is_the_department(
        keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    """16: the department 201 hangs up on the transferred citizen (its leg was dialled from the
    citizen's leg in the transfer context)."""
    events = Replay("16-transfer-department-hangs-up.txt", keep).run()
    [ended] = [e for e in events if isinstance(e, CallEnded)]
    assert (ended.last_state, ended.reason, ended.hung_up_by) == ("transferred", "answered", "department")
