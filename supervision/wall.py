"""The supervisors' live wall, as a pure model: calls waiting, operators, calls in progress, overdue callbacks.

Inputs are plain method calls (the adapter in supervision/service.py maps tracker domain
events and presence changes onto them); the output is a snapshot dict with counts, operator ids,
call ids and waits only - never a caller number or a name. Time comes from the instants passed in
(no clock of its own); every instant must carry a UTC offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cti.core.clock import require_aware


class OperatorState(StrEnum):
    READY = "ready"
    PAUSED = "paused"
    RINGING = "ringing"
    TALKING = "talking"
    OFFLINE = "offline"


STATE_TEXT: dict[OperatorState, str] = {
    OperatorState.READY: "受付可",
    OperatorState.PAUSED: "離席",
    OperatorState.RINGING: "呼出中",
    OperatorState.TALKING: "通話中",
    OperatorState.OFFLINE: "ログオフ",
}


@dataclass(slots=True)
class _Operator:
    operator_id: str
    presence: OperatorState = OperatorState.OFFLINE  # ready / paused / offline (from presence)
    pause_reason: str | None = None
    since: datetime | None = None
    ringing_call: str | None = None
    talking_call: str | None = None

    def state(self) -> OperatorState:
        if self.talking_call is not None:
            return OperatorState.TALKING
        if self.ringing_call is not None:
            return OperatorState.RINGING
        return self.presence


@dataclass(slots=True)
class _Waiting:
    call_id: str
    since: datetime
    category: str | None


@dataclass(slots=True)
class _InProgress:
    call_id: str
    operator_id: str | None
    since: datetime
    on_hold: bool = False  # Asterisk reported the citizen on hold (Hold / MusicOnHoldStart)


@dataclass
class Wall:
    """Live state of the call center for the supervisors' screen."""

    waiting: dict[str, _Waiting] = field(default_factory=dict)
    operators: dict[str, _Operator] = field(default_factory=dict)
    in_progress: dict[str, _InProgress] = field(default_factory=dict)
    overdue_callbacks: int = 0
    version: int = 0

    # ---- calls -------------------------------------------------------------------------------

    def call_waiting(self, call_id: str, at: datetime, category: str | None = None) -> None:
        """A call entered the queue (waiting for an operator)."""
        require_aware(at, "at")
        _require_id(call_id, "call_id")
        if call_id not in self.waiting:
            self.waiting[call_id] = _Waiting(call_id, at, category)
            self.version += 1

    def call_ringing(self, call_id: str, operator_id: str) -> None:
        """The queue offers the call to an operator (the operator's phone rings)."""
        _require_id(call_id, "call_id")
        op = self._operator(operator_id)
        op.ringing_call = call_id
        self.version += 1

    def ringing_stopped(self, operator_id: str, call_id: str | None = None) -> None:
        op = self.operators.get(operator_id)
        if op is not None and op.ringing_call is not None and call_id in (None, op.ringing_call):
            op.ringing_call = None
            self.version += 1

    def call_answered(self, call_id: str, operator_id: str | None, at: datetime) -> None:
        """An operator took the call: it leaves the queue and is in progress."""
        require_aware(at, "at")
        _require_id(call_id, "call_id")
        self.waiting.pop(call_id, None)
        self.in_progress[call_id] = _InProgress(call_id, operator_id, at)
        if operator_id is not None:
            for other in self.operators.values():
                if other.ringing_call == call_id:
                    other.ringing_call = None
            op = self._operator(operator_id)
            op.ringing_call = None
            op.talking_call = call_id
        self.version += 1

    def call_hold(self, call_id: str, on_hold: bool) -> None:
        """The citizen of a call in progress was put on hold (or taken off it)."""
        call = self.in_progress.get(call_id)
        if call is not None and call.on_hold != on_hold:
            call.on_hold = on_hold
            self.version += 1

    def call_left_queue(self, call_id: str) -> None:
        """The caller hung up (or was sent elsewhere) while waiting."""
        if self.waiting.pop(call_id, None) is not None:
            self.version += 1
        for op in self.operators.values():
            if op.ringing_call == call_id:
                op.ringing_call = None

    def call_ended(self, call_id: str) -> None:
        """The call is over, wherever it was."""
        changed = self.waiting.pop(call_id, None) is not None
        changed |= self.in_progress.pop(call_id, None) is not None
        for op in self.operators.values():
            if op.ringing_call == call_id:
                op.ringing_call = None
                changed = True
            if op.talking_call == call_id:
                op.talking_call = None
                changed = True
        if changed:
            self.version += 1

    # ---- operators ------------------------------------------------------------------------------

    def operator_presence(
        self, operator_id: str, state: OperatorState | str, at: datetime, reason: str | None = None
    ) -> None:
        """Queue-member presence: ready, paused (with a reason code) or offline."""
        require_aware(at, "at")
        presence = OperatorState(state)
        if presence in (OperatorState.RINGING, OperatorState.TALKING):
            raise ValueError(
                f"presence must be ready, paused or offline, not {presence.value!r} (that comes from calls)"
            )
        op = self._operator(operator_id)
        new_reason = reason if presence is OperatorState.PAUSED else None
        if op.presence is not presence or op.pause_reason != new_reason:
            op.presence = presence
            op.pause_reason = new_reason
            op.since = at
            self.version += 1

    def set_overdue_callbacks(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"overdue callbacks must be >= 0, got {count}")
        if count != self.overdue_callbacks:
            self.overdue_callbacks = count
            self.version += 1

    def _operator(self, operator_id: str) -> _Operator:
        _require_id(operator_id, "operator_id")
        op = self.operators.get(operator_id)
        if op is None:
            op = self.operators[operator_id] = _Operator(operator_id)
        return op

    # ---- output ------------------------------------------------------------------------------------

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """The wall as JSON-ready data: counts, ids and seconds only (no personal data)."""
        require_aware(now, "now")
        waits: list[dict[str, Any]] = sorted(
            ({"call_id": w.call_id, "category": w.category, "wait_seconds": _seconds(now, w.since)}
             for w in self.waiting.values()),
            key=lambda w: -int(w["wait_seconds"]),
        )
        operators = []
        counts = {s.value: 0 for s in OperatorState}
        for op in sorted(self.operators.values(), key=lambda o: o.operator_id):
            state = op.state()
            counts[state.value] += 1
            talking = self.in_progress.get(op.talking_call) if op.talking_call is not None else None
            held = state is OperatorState.TALKING and talking is not None and talking.on_hold
            operators.append({
                "operator_id": op.operator_id,
                "state": state.value,
                "state_text": f"{STATE_TEXT[state]}（保留中）" if held else STATE_TEXT[state],
                "on_hold": held,
                "pause_reason": op.pause_reason if state is OperatorState.PAUSED else None,
                "call_id": op.talking_call or op.ringing_call,
                "state_seconds": _seconds(now, op.since) if op.since is not None else None,
            })
        calls = sorted(
            ({"call_id": c.call_id, "operator_id": c.operator_id, "talk_seconds": _seconds(now, c.since),
              "on_hold": c.on_hold}
             for c in self.in_progress.values()),
            key=lambda c: str(c["call_id"]),
        )
        return {
            "at": now.isoformat(),
            "version": self.version,
            "waiting": len(waits),
            "longest_wait_seconds": waits[0]["wait_seconds"] if waits else 0,
            "waiting_calls": waits,
            "operators": operators,
            "operator_counts": counts,
            "in_progress": len(calls),
            "calls": calls,
            "overdue_callbacks": self.overdue_callbacks,
        }


def _seconds(now: datetime, since: datetime) -> int:
    return max(0, int((now - since).total_seconds()))


def _require_id(value: str, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty id")
