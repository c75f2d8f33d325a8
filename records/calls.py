"""Which calls an operator may read right now: pure, in memory, fed from the tracker's events.

An operator reads a call's records (its contact, consents, callback requests with personal data)
only while the call is theirs and live, or during its after-call work: from the hangup until their
next call connects, at most `records.after_call_minutes`. Nothing here survives a restart, which
fails closed (after a restart nobody re-reads an earlier call through the operator screen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(slots=True)
class _Open:
    operator: str
    ended_at: datetime | None = None


class OpenCalls:
    def __init__(self, after_call: timedelta) -> None:
        self.after_call = after_call
        self._calls: dict[str, _Open] = {}

    def connected(self, call_id: str, operator: str) -> None:
        """`operator` answered `call_id`: their earlier calls' after-call work is over."""
        for done in [cid for cid, c in self._calls.items() if c.operator == operator and c.ended_at is not None]:
            del self._calls[done]
        self._calls[call_id] = _Open(operator)

    def ended(self, call_id: str, at: datetime) -> None:
        self._expire(at)
        call = self._calls.get(call_id)
        if call is not None and call.ended_at is None:
            call.ended_at = at

    def is_live(self, call_id: str) -> bool:
        call = self._calls.get(call_id)
        return call is not None and call.ended_at is None

    def live_ids(self) -> frozenset[str]:
        return frozenset(cid for cid, c in self._calls.items() if c.ended_at is None)

    def may_read(self, call_id: str, operator: str, now: datetime) -> bool:
        """Live and theirs, or theirs in after-call work."""
        self._expire(now)
        call = self._calls.get(call_id)
        return call is not None and call.operator == operator

    def _expire(self, now: datetime) -> None:
        for cid in [cid for cid, c in self._calls.items()
                    if c.ended_at is not None and now - c.ended_at > self.after_call]:
            del self._calls[cid]
