"""The operator page reads only what the published wire model has: every pop / ringing field the
call card (screenpop/web/pop_panel.js) reads is a property of screenpop.messages' schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from screenpop import messages as m

PANEL = Path(__file__).resolve().parents[2] / "screenpop" / "web" / "pop_panel.js"
# the page's own flags on the current call (its 状態 text, still up, 相談中 from call updates), not wire data
PAGE_ONLY = {"status", "live", "consult"}


def properties(schema: dict[str, Any], name: str) -> set[str]:
    return set(schema["$defs"][name]["properties"])


def read_fields(source: str, variable: str) -> set[str]:
    return set(re.findall(rf"\b{variable}\.([a-z_]+)\b", source))


def test_every_field_the_call_card_reads_is_in_the_schema() -> None:
    source = PANEL.read_text(encoding="utf-8")
    schema = m.schema()["server_to_client"]
    call_fields = read_fields(source, "call") - PAGE_ONLY
    assert call_fields and call_fields <= properties(schema, "Pop"), call_fields - properties(schema, "Pop")
    for variable, model in (("h", "PopHistoryItem"), ("c", "PopCallback"), ("f", "PopFaq"), ("msg", "Ringing")):
        fields = read_fields(source, variable)
        assert fields, variable  # the panel does read them (the regex still matches the code)
        assert fields <= properties(schema, model), (model, fields - properties(schema, model))


def test_the_pop_schema_forbids_fields_it_does_not_describe() -> None:
    schema = m.schema()["server_to_client"]
    for name in ("Pop", "PopHistoryItem", "PopCallback", "PopFaq", "Ringing", "Presence", "DeskState"):
        assert schema["$defs"][name]["additionalProperties"] is False, name
