"""Pure access rules: login throttle, operator-room networks, Origin, access decisions, seats."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from access.accounts import (
    AccountError,
    validate_display_name,
    validate_password,
    validate_role_department,
    validate_user_id,
)
from access.client_address import resolve
from access.rules import (
    BAD_ORIGIN,
    CSRF_FAILED,
    NOT_LOGGED_IN,
    OUTSIDE_ROOM,
    WRONG_ROLE,
    Access,
    LoginThrottle,
    Reservation,
    account_key,
    csrf_ok,
    decide,
    in_networks,
    ip_key,
    normalise_origin,
    origin_allowed,
    parse_networks,
)
from access.sessions import is_idle_expired, token_hash
from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from screenpop.seats import SeatError, SeatMap, SeatTaken

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=TOKYO)
DEPTS = ["kuseijoho", "zeimu"]


def who(role: Role, dept: str | None = None) -> Principal:
    return Principal("u1", role, dept, "192.0.2.1")


# --- throttle ---------------------------------------------------------------------------------


def test_throttle_allows_until_the_limit_then_names_the_wait() -> None:
    t = LoginThrottle(max_failures=3, window=timedelta(seconds=300))
    keys = [account_key("op1"), ip_key("192.0.2.1")]
    for i in range(3):
        assert t.retry_after(keys, T0 + timedelta(seconds=i)) is None
        t.record_failure(keys, T0 + timedelta(seconds=i))
    assert t.retry_after(keys, T0 + timedelta(seconds=10)) == 290  # until the first failure leaves
    assert t.retry_after(keys, T0 + timedelta(seconds=300)) is None


def test_throttle_keys_are_independent_and_case_folded() -> None:
    t = LoginThrottle(max_failures=2, window=timedelta(minutes=5))
    t.record_failure([account_key("OP1")], T0)
    t.record_failure([account_key("op1 ")], T0)
    assert t.retry_after([account_key("op1")], T0) is not None
    assert t.retry_after([account_key("op2")], T0) is None
    t.clear(account_key("op1"))
    assert t.retry_after([account_key("op1")], T0) is None


def test_throttle_memory_is_bounded() -> None:
    t = LoginThrottle(max_failures=1, window=timedelta(minutes=5), max_keys=10)
    for i in range(100):
        t.record_failure([ip_key(f"10.0.0.{i}")], T0)
    assert t.retry_after([ip_key("10.0.0.99")], T0) is not None
    assert t.retry_after([ip_key("10.0.0.0")], T0) is None  # forgotten, oldest first


def test_throttle_rejects_naive_times() -> None:
    t = LoginThrottle(max_failures=1, window=timedelta(minutes=5))
    with pytest.raises(ValueError, match="UTC offset"):
        t.record_failure(["k"], datetime(2026, 12, 1, 9, 0))


# --- networks and origins ----------------------------------------------------------------------


def test_operator_room_networks() -> None:
    nets = parse_networks(["10.20.0.0/16", "2001:db8::/32"])
    assert in_networks("10.20.3.4", nets)
    assert in_networks("::ffff:10.20.3.4", nets)  # IPv4-mapped
    assert in_networks("2001:db8::1", nets)
    assert not in_networks("10.21.0.1", nets)
    assert not in_networks("not-an-ip", nets)
    assert not in_networks(None, nets)


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.300/8"):
        parse_networks(["10.0.0.300/8"])


def test_origin_normalisation_and_check() -> None:
    assert normalise_origin("HTTPS://CTI.Example:443") == "https://cti.example"
    assert normalise_origin("http://cti.example:8080/") == "http://cti.example:8080"
    assert normalise_origin("null") is None
    allowed = ["https://cti.example"]
    assert origin_allowed("https://cti.example:443", allowed, require=True)
    assert not origin_allowed("https://cti.example.evil.test", allowed, require=True)
    assert not origin_allowed("http://cti.example", allowed, require=True)  # scheme matters
    assert not origin_allowed(None, allowed, require=True)
    assert origin_allowed(None, allowed, require=False)  # non-browser client, no Origin sent


def test_csrf_comparison() -> None:
    assert csrf_ok("abc", "abc")
    assert not csrf_ok("abc", "abd")
    assert not csrf_ok("abc", None)


# --- access decisions --------------------------------------------------------------------------


def test_public_routes_need_nothing_but_room_only_routes_need_the_room() -> None:
    assert decide(Access(public=True), None, from_operator_room=False) is None
    assert decide(Access(public=True, operator_room_only=True), None, from_operator_room=False) is OUTSIDE_ROOM


def test_login_and_role_checks() -> None:
    ops = Access(roles=frozenset({Role.OPERATOR, Role.SUPERVISOR}))
    assert decide(ops, None, from_operator_room=True) is NOT_LOGGED_IN
    assert decide(ops, who(Role.OPERATOR), from_operator_room=True) is None
    assert decide(ops, who(Role.DEPARTMENT, "zeimu"), from_operator_room=True) is WRONG_ROLE


def test_operators_and_supervisors_are_confined_to_the_room_department_staff_are_not() -> None:
    anyone = Access()
    assert decide(anyone, who(Role.OPERATOR), from_operator_room=False) is OUTSIDE_ROOM
    assert decide(anyone, who(Role.SUPERVISOR), from_operator_room=False) is OUTSIDE_ROOM
    assert decide(anyone, who(Role.DEPARTMENT, "zeimu"), from_operator_room=False) is None
    assert decide(anyone, who(Role.ADMIN), from_operator_room=False) is None


def test_denials_speak_japanese_only() -> None:
    for denial in (NOT_LOGGED_IN, WRONG_ROLE, OUTSIDE_ROOM, CSRF_FAILED, BAD_ORIGIN):
        assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in denial.message)
        assert not any("a" <= ch.lower() <= "z" for ch in denial.message)  # users see Japanese only


# --- sessions ------------------------------------------------------------------------------------


def test_idle_rule() -> None:
    idle = timedelta(minutes=30)
    assert not is_idle_expired(T0, T0 + timedelta(minutes=29, seconds=59), idle)
    assert is_idle_expired(T0, T0 + timedelta(minutes=30), idle)
    with pytest.raises(ValueError):
        is_idle_expired(datetime(2026, 12, 1), T0, idle)


def test_token_hash_is_a_keyed_hash_of_the_token() -> None:
    key = b"k" * 32
    assert token_hash("abc", key) != "abc" and len(token_hash("abc", key)) == 64
    assert token_hash("abc", key) != token_hash("abc", b"another key of thirty-two bytes!")


# --- accounts input -------------------------------------------------------------------------------


@pytest.mark.parametrize("user_id", ["op1", "yamada.t", "a-b_c", "x" * 32])
def test_good_user_ids(user_id: str) -> None:
    assert validate_user_id(user_id) == user_id


@pytest.mark.parametrize("user_id", ["", "a", "Op1", "op 1", "山田", "-op", "x" * 33])
def test_bad_user_ids_are_named(user_id: str) -> None:
    with pytest.raises(AccountError, match="ユーザーIDが不正です"):
        validate_user_id(user_id)


def test_password_length() -> None:
    with pytest.raises(AccountError, match="10文字以上"):
        validate_password("short")
    assert validate_password("long enough!")


def test_roles_and_departments() -> None:
    assert validate_role_department("department", "zeimu", DEPTS) == (Role.DEPARTMENT, "zeimu")
    assert validate_role_department("operator", None, DEPTS) == (Role.OPERATOR, None)
    with pytest.raises(AccountError, match="担当課の指定"):
        validate_role_department("department", None, DEPTS)
    with pytest.raises(AccountError, match="担当課コードが不明です: 'hoken'"):
        validate_role_department("department", "hoken", DEPTS)
    with pytest.raises(AccountError, match="役割 'department' にだけ"):
        validate_role_department("operator", "zeimu", DEPTS)
    with pytest.raises(AccountError, match="役割が不正です: 'boss'"):
        validate_role_department("boss", None, DEPTS)


# --- seats -------------------------------------------------------------------------------------------


def test_one_operator_per_seat() -> None:
    seats = SeatMap()
    seats.take("op1", "PJSIP/op101")
    with pytest.raises(SeatTaken) as info:
        seats.take("op2", "PJSIP/op101")
    assert info.value.holder == "op1" and "op1" in str(info.value)
    assert seats.user_at("PJSIP/op101") == "op1"  # the failed take changed nothing
    assert seats.seat_of("op2") is None


def test_moving_seats_frees_the_old_one_and_retaking_is_idempotent() -> None:
    seats = SeatMap()
    seats.take("op1", "PJSIP/op101")
    seats.take("op1", "PJSIP/op101")
    seats.take("op1", "Local/102@operator-phones")
    assert seats.user_at("PJSIP/op101") is None
    assert seats.snapshot() == {"Local/102@operator-phones": "op1"}
    assert seats.release_user("op1") == "Local/102@operator-phones"
    assert seats.release_user("op1") is None


@pytest.mark.parametrize("bad", ["op101", "PJSIP/", "PJSIP/op 101", "Foo/op101", "PJSIP/op101;rm"])
def test_bad_seat_interfaces_are_refused(bad: str) -> None:
    with pytest.raises(SeatError, match="席の指定が正しくありません"):
        SeatMap().take("op1", bad)


# --- the throttle reserves before the password is checked (issue 14.1) ------------------------------


def test_reservations_count_while_their_check_runs() -> None:
    t = LoginThrottle(max_failures=3, window=timedelta(seconds=300))
    keys = [account_key("op1"), ip_key("192.0.2.1")]
    held = [t.reserve(keys, T0) for _ in range(3)]  # three checks in flight, none finished
    assert all(isinstance(r, Reservation) for r in held)
    assert t.reserve(keys, T0) == 300  # the fourth waits, before any of them failed


def test_a_successful_attempt_is_uncounted_and_clears_the_account() -> None:
    t = LoginThrottle(max_failures=2, window=timedelta(seconds=300))
    first = t.reserve([account_key("op1"), ip_key("192.0.2.1")], T0)
    ok = t.reserve([account_key("op1"), ip_key("192.0.2.1")], T0)
    assert isinstance(first, Reservation) and isinstance(ok, Reservation)
    t.succeeded(ok, account_key("op1"))
    assert t.retry_after([account_key("op1")], T0) is None
    assert t.retry_after([ip_key("192.0.2.1")], T0) is None  # one failure left on the address, limit 2
    assert isinstance(t.reserve([ip_key("192.0.2.1")], T0), Reservation)
    assert t.reserve([ip_key("192.0.2.1")], T0) == 300


# --- client address behind proxies (issue 14.3) ---------------------------------------------------

TRUSTED = parse_networks(["10.0.0.1/32", "10.0.1.0/24"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("192.0.2.5", ["10.20.0.1"], "192.0.2.5"),  # not from a trusted proxy: the header is ignored
        ("10.0.0.1", [], "10.0.0.1"),  # the proxy itself
        ("10.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        ("10.0.0.1", ["1.1.1.1, 198.51.100.7"], "198.51.100.7"),  # rightmost untrusted hop
        ("10.0.0.1", ["1.1.1.1", "198.51.100.7, 10.0.1.9"], "198.51.100.7"),  # several headers, trusted chain
        ("10.0.0.1", ["10.0.1.8, 10.0.1.9"], "10.0.1.8"),  # all trusted: the leftmost
        ("10.0.0.1", ["garbage, 10.0.1.9"], ""),  # unknown: matches no allowlist
        ("10.0.0.1", ["[2001:db8::1]:4711"], "2001:db8::1"),
        ("10.0.0.1", ["198.51.100.7:5060"], "198.51.100.7"),
    ],
)
def test_client_address_resolution(peer: str, xff: list[str], expected: str) -> None:
    assert resolve(peer, xff, [], TRUSTED).address == expected


def test_forwarded_proto_is_believed_only_from_a_trusted_proxy() -> None:
    assert resolve("10.0.0.1", [], ["https"], TRUSTED).scheme == "https"
    assert resolve("192.0.2.5", [], ["https"], TRUSTED).scheme is None
    assert resolve("10.0.0.1", [], ["gopher"], TRUSTED).scheme is None
    assert resolve("10.0.0.1", ["198.51.100.7"], [], ()).address == "10.0.0.1"  # no trusted proxies at all


# --- display names (issue 14.4) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["\u200b", "\u200b\u200c\u200d\ufeff", "\u3000 ", "山田\x00", "a\x1bb", "x\ny", "\ud800"]
)
def test_invisible_or_control_character_names_are_refused(name: str) -> None:
    with pytest.raises(AccountError):
        validate_display_name(name)


@pytest.mark.parametrize("name", ["", "山田 太郎", "ＳＶ　佐藤", "O'Brien", "a\u200db"])
def test_ordinary_names_are_accepted(name: str) -> None:
    assert validate_display_name(name) == name
