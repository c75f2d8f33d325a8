"""Queue member presence, pure: AMI event dicts in, member states out (no I/O).

Sources: the QueueMember items of a QueueStatus (resync), then QueueMemberStatus,
QueueMemberPause, QueueMemberAdded/Removed (log in/out), and AgentCalled ... DialEnd/Agent* for
ringing (a Local-channel member shows Status 2 "in use" while it rings, so the device state alone
cannot tell ringing from talking).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum


class DeviceStatus(IntEnum):
    """Asterisk's queue member device status codes (the `Status:` header)."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


class Activity(StrEnum):
    LOGGED_OUT = "logged_out"
    PAUSED = "paused"
    RINGING = "ringing"
    IN_USE = "in_use"
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


ACTIVITY_TEXT = {
    Activity.LOGGED_OUT: "ログアウト",
    Activity.PAUSED: "離席中",
    Activity.RINGING: "呼出中",
    Activity.IN_USE: "通話中",
    Activity.AVAILABLE: "受付可",
    Activity.UNAVAILABLE: "利用不可",
}


@dataclass(frozen=True)
class MemberPresence:
    queue: str
    interface: str
    name: str
    logged_in: bool
    paused: bool
    pause_reason: str
    status: DeviceStatus
    ringing: bool
    calls_taken: int

    @property
    def activity(self) -> Activity:
        if not self.logged_in:
            return Activity.LOGGED_OUT
        if self.ringing or self.status in (DeviceStatus.RINGING, DeviceStatus.RINGINUSE):
            return Activity.RINGING
        if self.status in (DeviceStatus.INUSE, DeviceStatus.BUSY, DeviceStatus.ONHOLD):
            return Activity.IN_USE
        if self.paused:
            return Activity.PAUSED
        if self.status in (DeviceStatus.UNAVAILABLE, DeviceStatus.INVALID):
            return Activity.UNAVAILABLE
        return Activity.AVAILABLE

    @property
    def activity_text(self) -> str:
        return ACTIVITY_TEXT[self.activity]


def _status(value: str | None) -> DeviceStatus:
    try:
        return DeviceStatus(int(value or "0"))
    except ValueError:
        return DeviceStatus.UNKNOWN


def _int(value: str | None) -> int:
    try:
        return int(value or "0")
    except ValueError:
        return 0


class PresenceBoard:
    """Every queue member's presence, keyed by (queue, interface)."""

    def __init__(self) -> None:
        self._members: dict[tuple[str, str], MemberPresence] = {}
        self._ringing_legs: dict[str, tuple[str, str]] = {}  # DestChannel -> member key

    def members(self, queue: str | None = None) -> list[MemberPresence]:
        return sorted(
            (m for m in self._members.values() if queue is None or m.queue == queue),
            key=lambda m: (m.queue, m.interface),
        )

    def get(self, queue: str, interface: str) -> MemberPresence | None:
        return self._members.get((queue, interface))

    def resync(self, members: Sequence[Mapping[str, str]]) -> list[MemberPresence]:
        """Replace everything with a QueueStatus's QueueMember items."""
        self._members = {}
        self._ringing_legs = {}
        for item in members:
            member = self._from_fields(item, logged_in=True)
            if member is not None:
                self._members[(member.queue, member.interface)] = member
        return self.members()

    def apply(self, event: Mapping[str, str]) -> MemberPresence | None:
        """Apply one event; return the member it changed (None if it changed nothing)."""
        name = event.get("Event", "")
        if name in ("QueueMemberStatus", "QueueMemberPause", "QueueMemberAdded", "QueueMember"):
            member = self._from_fields(event, logged_in=True)
            if member is None:
                return None
            key = (member.queue, member.interface)
            old = self._members.get(key)
            if old is not None:
                member = replace(member, ringing=old.ringing)
            return self._store(key, member)
        if name == "QueueMemberRemoved":
            key = (event.get("Queue", ""), _interface(event))
            old = self._members.get(key)
            if old is None:
                return None
            return self._store(key, replace(old, logged_in=False, ringing=False))
        if name == "AgentCalled":
            key = (event.get("Queue", ""), _interface(event))
            old = self._members.get(key)
            if old is None:
                return None
            self._ringing_legs[event.get("DestChannel", "")] = key
            return self._store(key, replace(old, ringing=True))
        if name in ("DialEnd", "AgentConnect", "AgentRingNoAnswer", "AgentDump", "AgentComplete"):
            key_or_none = self._ringing_legs.pop(event.get("DestChannel", ""), None)
            if key_or_none is None or key_or_none not in self._members:
                return None
            return self._store(key_or_none, replace(self._members[key_or_none], ringing=False))
        return None

    def _store(self, key: tuple[str, str], member: MemberPresence) -> MemberPresence | None:
        if self._members.get(key) == member:
            return None
        self._members[key] = member
        return member

    @staticmethod
    def _from_fields(fields: Mapping[str, str], *, logged_in: bool) -> MemberPresence | None:
        queue = fields.get("Queue", "")
        interface = _interface(fields)
        if not queue or not interface:
            return None
        return MemberPresence(
            queue=queue,
            interface=interface,
            name=fields.get("MemberName") or fields.get("Name") or interface,
            logged_in=logged_in,
            paused=fields.get("Paused", "0") in ("1", "true", "yes"),
            pause_reason=fields.get("PausedReason") or fields.get("Reason") or "",
            status=_status(fields.get("Status")),
            ringing=False,
            calls_taken=_int(fields.get("CallsTaken")),
        )


def _interface(fields: Mapping[str, str]) -> str:
    # QueueMember (QueueStatus list) says Location; the events say Interface.
    return fields.get("Interface") or fields.get("Location") or ""
