"""Websocket wire messages: parsing client frames, numbering, and the published schema."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from screenpop import messages as m


def test_client_messages_parse_by_type() -> None:
    assert m.parse_client_message('{"type": "resume", "last_seq": 7}') == m.Resume(last_seq=7)
    assert isinstance(m.parse_client_message('{"type": "ping"}'), m.Ping)
    got = m.parse_client_message('{"type": "presence_set", "state": "pause", "reason": "休憩"}')
    assert isinstance(got, m.PresenceSet) and got.reason == "休憩"
    assert m.parse_client_message('{"type": "faq_search", "q": "ごみ"}') == m.FaqSearch(q="ごみ")


@pytest.mark.parametrize(
    ("frame", "where"),
    [
        ("{not json", ""),
        ('{"type": "launch"}', "launch"),
        ('{"last_seq": 1}', "type"),
        ('{"type": "resume", "last_seq": -1}', "last_seq"),
        ('{"type": "resume", "last_seq": 1, "extra": true}', "extra"),
        ('{"type": "presence_set", "state": "asleep"}', "state"),
        ('{"type": "faq_search", "q": ""}', "q"),
    ],
)
def test_bad_client_messages_are_refused_naming_the_problem(frame: str, where: str) -> None:
    with pytest.raises(ValidationError) as info:
        m.parse_client_message(frame)
    assert where in str(info.value)


def test_server_messages_round_trip_with_their_type() -> None:
    pop = m.Pop(seq=3, call_id="c1", caller_number="0312345678", waited_seconds=12, office_open=False)
    text = pop.model_dump_json()
    assert json.loads(text)["type"] == "pop"
    assert m.Pop.model_validate_json(text) == pop


def test_ringing_carries_no_personal_data() -> None:
    # the IVR choice and the wait, never the number or the name
    assert set(m.Ringing.model_fields) == {
        "type", "seq", "call_id", "reference", "interface", "category", "category_label", "waited_seconds"}


def test_only_user_addressed_messages_take_sequence_numbers() -> None:
    for kind in ("ringing", "pop", "call_update", "presence", "wall_update"):
        assert m.is_sequenced(kind)
    for kind in ("hello", "snapshot", "error", "pong", "session_expired", "faq_results"):
        assert not m.is_sequenced(kind)


def test_schema_covers_both_directions_and_close_codes() -> None:
    schema = m.schema()
    json.dumps(schema)  # serialisable as published
    server = set(schema["server_to_client"]["discriminator"]["mapping"])
    client = set(schema["client_to_server"]["discriminator"]["mapping"])
    assert {"hello", "ringing", "pop", "call_update", "presence", "snapshot", "error", "session_expired"} <= server
    assert client == {"resume", "ping", "presence_set", "faq_search"}
    assert set(schema["close_codes"]) == {"1001", "1008", "1009", "4401"}
