"""Pure seat map: which operator sits at which queue member interface (one operator per seat).

A seat is a queue member interface as Asterisk names it (``PJSIP/101``, ``Local/101@operator-phones``).
The pop router asks ``user_at(interface)`` to find whose sockets get a pop. People say seats by their
number: ``PJSIP/101`` is 席101 (the phone's extension 内線101), see ``seat_label``. When the map knows the
queue's member interfaces (``known``), a seat outside them is refused with the list of seats: an
operator seated on a wrong interface would otherwise get no ringing and no pops, silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

INTERFACE_PATTERN = re.compile(r"^(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9][A-Za-z0-9@._+-]{0,79}$")
_NUMBER = re.compile(r"(\d+)(?!.*\d)")


class SeatError(ValueError):
    pass


class SeatTaken(SeatError):
    def __init__(self, interface: str, holder: str) -> None:
        super().__init__(f"この席（{seat_label(interface)}）は {holder} さんが使用中です。先に解放してください")
        self.interface = interface
        self.holder = holder


class SeatUnknown(SeatError):
    def __init__(self, interface: str, known: Collection[str]) -> None:
        listed = "、".join(f"{seat_label(k)} = {k}" for k in sorted(known))
        super().__init__(f"席「{interface}」は着信キューにありません。選べる席: {listed}")
        self.interface = interface
        self.known = sorted(known)


def seat_number(interface: str) -> str | None:
    """The number people use for a seat: the last digits of the endpoint's name (``PJSIP/101`` -> 101,
    ``Local/101@operator-phones`` -> 101); None when the name has none."""
    endpoint = interface.partition("/")[2].partition("@")[0]
    match = _NUMBER.search(endpoint)
    return match.group(1) if match else None


def seat_label(interface: str) -> str:
    """How the screens say a seat: 席101（内線101）, or the interface itself when it has no number."""
    number = seat_number(interface)
    return f"席{number}（内線{number}）" if number else interface


def validate_interface(interface: str) -> str:
    if not INTERFACE_PATTERN.match(interface):
        raise SeatError(f"席の指定が正しくありません（例: 101、席101、PJSIP/101）: {interface!r}")
    return interface


class SeatMap:
    """The in-memory index of seats. screenpop/desks.py ``DeskBook`` keeps it in step with the
    database; it sets ``on_release`` to hear of seats freed by code that does not go through it.

    ``known``: the queue's member interfaces right now (from the PBX); empty or absent while not known
    yet (no AMI link), when only the form of an interface is checked.
    """

    def __init__(self, known: Callable[[], Collection[str]] | None = None) -> None:
        self._by_seat: dict[str, str] = {}
        self._by_user: dict[str, str] = {}
        self.known: Callable[[], Collection[str]] | None = known
        self.on_release: Callable[[str, str], None] | None = None  # (user id, interface)

    def known_seats(self) -> list[str]:
        return sorted(self.known()) if self.known is not None else []

    def resolve(self, said: str) -> str:
        """A seat as people say it (101, 席101, 内線101) -> the known member interface with that number;
        anything else is returned as it is (and checked by `checked`)."""
        number = said.strip().removeprefix("席").removeprefix("内線").strip()
        if number.isdigit():
            matches = [k for k in self.known_seats() if seat_number(k) == number]
            if len(matches) == 1:
                return matches[0]
        return said

    def checked(self, said: str) -> str:
        """The interface of a seat as said by a person, or SeatError / SeatUnknown (listing the seats)."""
        interface = validate_interface(self.resolve(said))
        known = self.known_seats()
        if known and interface not in known:
            raise SeatUnknown(interface, known)
        return interface

    def take(self, user_id: str, said: str) -> str:
        """Seat `user_id` at a seat as said by a person (see `checked`); returns its interface. Moving
        to another seat releases the old one.

        Raises SeatTaken (naming the holder) when someone else has it, SeatUnknown (listing the seats)
        when it is not one of the queue's members; nothing changes then.
        """
        interface = self.checked(said)
        holder = self._by_seat.get(interface)
        if holder is not None and holder != user_id:
            raise SeatTaken(interface, holder)
        self.restore(user_id, interface)
        return interface

    def restore(self, user_id: str, interface: str) -> None:
        """Seat `user_id` at a seat the database already holds for them (at start; its form is checked)."""
        validate_interface(interface)
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
