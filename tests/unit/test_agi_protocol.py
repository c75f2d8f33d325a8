"""FastAGI wire format and the routing decision (pure: no sockets, fixed instants)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from telephony.agi.protocol import (
    HANGUP,
    MAX_HEADER_LINES,
    AgiProtocolError,
    decode_line,
    parse_header_line,
    parse_request,
    parse_response,
    quote,
    set_variable,
)
from telephony.agi.route import ROUTE_VARIABLES, route_variables

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "agi" / "fastagi-request-example.txt"


def capture_header_lines() -> list[str]:
    """The Asterisk -> server header block of the real capture (without the blank line)."""
    text = CAPTURE.read_text(encoding="utf-8")
    block = text.split("# ---- asterisk->server at +0.000 ms ----\n", 1)[1]
    block = block.split("\n\n", 1)[0]
    return block.split("\n")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + "+09:00")


# ---- requests -------------------------------------------------------------------------------
def test_real_capture_parses() -> None:
    request = parse_request(capture_header_lines())
    assert request.script == "route"
    assert request.args == ("0301110000", "0312345678")
    assert request.uniqueid == "1795822517.1"
    assert request.context == "from-pstn"
    assert request.extension == "0301110000"
    assert request.headers["agi_accountcode"] == ""  # "agi_accountcode: " keeps its empty value
    assert request.headers["agi_calleridname"] == "Citizen Raw"


def test_script_from_request_url_when_network_script_missing() -> None:
    request = parse_request(["agi_request: agi://127.0.0.1:4573/route?x=1", "agi_arg_1: 1"])
    assert request.script == "route"
    assert request.args == ("1",)


def test_arguments_stop_at_first_gap() -> None:
    request = parse_request(["agi_request: agi://h/route", "agi_arg_1: a", "agi_arg_3: c"])
    assert request.args == ("a",)


def test_header_value_keeps_colons() -> None:
    assert parse_header_line("agi_request: agi://127.0.0.1:4573/route") == (
        "agi_request",
        "agi://127.0.0.1:4573/route",
    )


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ([], "empty request"),
        (["GET / HTTP/1.1"], "header line 1: header line without ':'"),
        (["Host: example"], "is not agi_<name>"),
        (["agi_network: yes"], "agi_request header missing"),
        (["agi_request: agi://h/route", "agi_request: agi://h/x"], "appears twice"),
        ([f"agi_x{i}: 1" for i in range(MAX_HEADER_LINES + 1)], "more than"),
    ],
)
def test_bad_requests_are_named(lines: list[str], problem: str) -> None:
    with pytest.raises(AgiProtocolError, match=problem):
        parse_request(lines)


def test_decode_line_rejects_binary_and_strips_line_ends() -> None:
    assert decode_line(b"agi_network: yes\r\n") == "agi_network: yes"
    with pytest.raises(AgiProtocolError, match="not UTF-8"):
        decode_line(b"\xff\xfe\n")
    with pytest.raises(AgiProtocolError, match="NUL"):
        decode_line(b"agi_x: \x00\n")


# ---- commands and responses -----------------------------------------------------------------
def test_set_variable_matches_the_capture() -> None:
    assert set_variable("CTI_ROUTE", "closed") == b'SET VARIABLE CTI_ROUTE "closed"\n'


def test_set_variable_escapes_and_validates() -> None:
    assert set_variable("X", 'a"b\\c') == b'SET VARIABLE X "a\\"b\\\\c"\n'
    assert set_variable("EMPTY", "") == b'SET VARIABLE EMPTY ""\n'
    with pytest.raises(ValueError, match="not a valid channel variable name"):
        set_variable("BAD NAME", "x")
    with pytest.raises(ValueError, match="line breaks"):
        quote("a\nSET VARIABLE X 1")


@pytest.mark.parametrize(
    ("line", "code", "result", "data"),
    [
        ("200 result=1", 200, "1", None),
        ("200 result=0 (timeout)", 200, "0", "timeout"),
        ("200 result=-1", 200, "-1", None),
        ("200 result=1 (some value) endpos=1234", 200, "1", "some value"),
        ("510 Invalid or unknown command", 510, None, None),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, None, None),
    ],
)
def test_parse_response(line: str, code: int, result: str | None, data: str | None) -> None:
    response = parse_response(line)
    assert (response.code, response.result, response.data) == (code, result, data)
    assert response.ok == (code == 200)


def test_hangup_and_garbage_responses() -> None:
    assert parse_response("HANGUP") is HANGUP
    with pytest.raises(AgiProtocolError, match="not '<code> <text>'"):
        parse_response("hello")


# ---- the routing decision -------------------------------------------------------------------
@pytest.fixture
def cal() -> Calendars:
    return Calendars.from_settings(CalendarSettings())


def test_open_weekday(cal: Calendars) -> None:
    variables = route_variables(cal, at("2026-12-28T10:00"))
    assert variables == {"CTI_ROUTE": "open", "CTI_OFFICE": "open"}  # two AGI round trips only


def test_night_closed_with_next_opening(cal: Calendars) -> None:
    variables = route_variables(cal, at("2026-12-28T23:30"))
    assert tuple(variables) == ROUTE_VARIABLES
    assert variables["CTI_ROUTE"] == "closed"
    assert variables["CTI_CLOSED_REASON"] == "night"
    assert variables["CTI_OFFICE"] == "closed"
    assert variables["CTI_NEXT_OPEN"] == "2026-12-29T08:00:00+09:00"
    assert int(variables["CTI_NEXT_OPEN_EPOCH"]) == int(at("2026-12-29T08:00").timestamp())


def test_call_center_open_while_office_closed_on_saturday(cal: Calendars) -> None:
    variables = route_variables(cal, at("2026-11-28T10:00"))  # a Saturday
    assert variables["CTI_ROUTE"] == "open"
    assert variables["CTI_OFFICE"] == "closed"


def test_year_end(cal: Calendars) -> None:
    variables = route_variables(cal, at("2027-01-02T12:00"))
    assert variables["CTI_ROUTE"] == "closed"
    assert variables["CTI_CLOSED_REASON"] == "year_end"
    assert variables["CTI_NEXT_OPEN"] == "2027-01-04T08:00:00+09:00"


def test_emergency_close_has_no_next_opening(cal: Calendars) -> None:
    cal.set_emergency("台風")
    variables = route_variables(cal, at("2026-12-28T10:00"))
    assert variables["CTI_ROUTE"] == "closed"
    assert variables["CTI_CLOSED_REASON"] == "emergency"
    assert "CTI_NEXT_OPEN" not in variables
    assert "CTI_NEXT_OPEN_EPOCH" not in variables


def test_naive_instant_rejected(cal: Calendars) -> None:
    with pytest.raises(ValueError, match="naive"):
        route_variables(cal, datetime(2026, 12, 28, 10, 0))
