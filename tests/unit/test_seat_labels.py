"""Seats as people say them (席101 / 内線101), and seats checked against the queue's members."""

from __future__ import annotations

import pytest

from screenpop.seats import SeatError, SeatMap, SeatUnknown, seat_label, seat_number

MEMBERS = ["PJSIP/101", "PJSIP/102", "PJSIP/103"]


@pytest.mark.parametrize(("interface", "label"), [
    ("PJSIP/101", "席101（内線101）"),
    ("Local/102@operator-phones", "席102（内線102）"),
    ("PJSIP/op103", "席103（内線103）"),
    ("PJSIP/reception", "PJSIP/reception"),
])
def test_labels(interface: str, label: str) -> None:
    assert seat_label(interface) == label


def test_the_context_of_a_local_channel_is_not_the_number() -> None:
    assert seat_number("Local/101@operator2-phones") == "101"


def test_a_known_member_is_taken() -> None:
    seats = SeatMap(known=lambda: MEMBERS)
    assert seats.take("op1", "PJSIP/101") == "PJSIP/101"
    assert seats.user_at("PJSIP/101") == "op1"


def test_an_unknown_interface_is_refused_naming_the_seats_that_exist() -> None:
    seats = SeatMap(known=lambda: MEMBERS)
    with pytest.raises(SeatUnknown) as caught:
        seats.take("op1", "PJSIP/op101")  # the old documentation's example: no such member
    message = str(caught.value)
    assert "PJSIP/op101" in message
    for member, label in zip(MEMBERS, ["席101（内線101）", "席102（内線102）", "席103（内線103）"], strict=True):
        assert member in message and label in message
    assert caught.value.known == MEMBERS
    assert seats.snapshot() == {} and seats.seat_of("op1") is None  # nothing changed


@pytest.mark.parametrize("said", ["101", "席101", "内線101", " 101 "])
def test_a_seat_said_by_its_number(said: str) -> None:
    seats = SeatMap(known=lambda: MEMBERS)
    assert seats.take("op1", said) == "PJSIP/101"
    assert seats.seat_of("op1") == "PJSIP/101"


def test_a_number_no_member_has_is_refused() -> None:
    with pytest.raises(SeatError):
        SeatMap(known=lambda: MEMBERS).take("op1", "104")


def test_without_a_member_list_only_the_form_is_checked() -> None:
    """Before the AMI link has synced, the members are not known: any well-formed seat is taken."""
    seats = SeatMap(known=lambda: [])
    assert seats.take("op1", "PJSIP/101") == "PJSIP/101"
    with pytest.raises(SeatError):
        seats.take("op2", "PJSIP/101;rm")
    assert SeatMap().take("op3", "Local/102@operator-phones") == "Local/102@operator-phones"


def test_the_member_list_is_read_at_each_take() -> None:
    members: list[str] = []
    seats = SeatMap(known=lambda: members)
    seats.take("op1", "PJSIP/109")  # not known yet: accepted on form
    members.extend(MEMBERS)
    with pytest.raises(SeatUnknown):
        seats.take("op2", "PJSIP/110")
