"""Pure seat map: which operator sits at which queue member interface (one operator per seat).

A seat is a queue member interface as Asterisk names it (``PJSIP/op101``, ``Local/101@operator-phones``).
The pop router asks ``user_at(interface)`` to find whose sockets get a pop.
"""

from __future__ import annotations

import re
from collections.abc import Callable

INTERFACE_PATTERN = re.compile(r"^(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9][A-Za-z0-9@._+-]{0,79}$")


class SeatError(ValueError):
    pass


class SeatTaken(SeatError):
    def __init__(self, interface: str, holder: str) -> None:
        super().__init__(
            f"この席（{interface}）は {holder} さんが使用中です。先に解放してください / "
            f"seat {interface} is taken by {holder}; it must be released first"
        )
        self.interface = interface
        self.holder = holder


def validate_interface(interface: str) -> str:
    if not INTERFACE_PATTERN.match(interface):
        raise SeatError(
            f"席（キューメンバーのインターフェース）が不正です / invalid seat interface {interface!r}: "
            "expected e.g. PJSIP/op101 or Local/101@operator-phones"
        )
    return interface


class SeatMap:
    """The in-memory index of seats. screenpop/desks.py ``DeskBook`` keeps it in step with the
    database; it sets ``on_release`` to hear of seats freed by code that does not go through it."""

    def __init__(self) -> None:
        self._by_seat: dict[str, str] = {}
        self._by_user: dict[str, str] = {}
        self.on_release: Callable[[str, str], None] | None = None  # (user id, interface)

    def take(self, user_id: str, interface: str) -> None:
        """Seat `user_id` at `interface`. Moving to another seat releases the old one.

        Raises SeatTaken (naming the holder) when someone else has it; nothing changes then.
        """
        validate_interface(interface)
        holder = self._by_seat.get(interface)
        if holder is not None and holder != user_id:
            raise SeatTaken(interface, holder)
        self.release_user(user_id, notify=False)  # a move, not a release
        self._by_seat[interface] = user_id
        self._by_user[user_id] = interface

    def release_user(self, user_id: str, *, notify: bool = True) -> str | None:
        """Free the user's seat; returns the interface it held, if any."""
        interface = self._by_user.pop(user_id, None)
        if interface is not None:
            self._by_seat.pop(interface, None)
            if notify and self.on_release is not None:
                self.on_release(user_id, interface)
        return interface

    def user_at(self, interface: str) -> str | None:
        return self._by_seat.get(interface)

    def seat_of(self, user_id: str) -> str | None:
        return self._by_user.get(user_id)

    def snapshot(self) -> dict[str, str]:
        """interface -> user id, sorted by interface."""
        return dict(sorted(self._by_seat.items()))
