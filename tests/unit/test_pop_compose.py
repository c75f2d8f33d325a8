"""Given a call and what is known about the caller, when the pop is composed, then the operator
sees the right fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cti.calendar.rules import Calendars, Status
from cti.config import CalendarSettings
from cti.core.clock import TOKYO
from faq.index import FaqEntry, FaqIndex, suggest
from screenpop.pop import CallSnapshot, Contact, FaqSuggestion, OpenCallback, compose_pop

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO)  # a Friday
OPEN = Status(open=True)
CLOSED = Status(open=False, reason_text="閉庁時間です")


def call(**kw: object) -> CallSnapshot:
    base: dict[str, object] = {
        "call_id": "c-1",
        "caller_number": "0312345678",
        "category": "gomi",
        "waited_seconds": 42.7,
    }
    base.update(kw)
    return CallSnapshot(**base)  # type: ignore[arg-type]


def test_basic_fields_and_labels() -> None:
    pop = compose_pop(call(), OPEN, [], [], [], now=NOW)
    data = pop.model_dump()
    assert data["call_id"] == "c-1"
    assert data["caller_number"] == "0312345678" and data["caller_withheld"] is False
    assert (data["category"], data["category_label"]) == ("gomi", "ごみ・リサイクル")
    assert data["waited_seconds"] == 42
    assert data["office_open"] is True and data["office_reason_text"] == ""
    assert data["history"] == [] and data["open_callbacks"] == [] and data["faq_suggestions"] == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("koseki", ("koseki", "戸籍・住民票")),
        ("ZEI", ("zei", "税")),
        ("hoken", ("hoken", "保険・年金")),
        ("kosodate", ("kosodate", "子育て")),
        ("other", ("other", "その他")),
        ("bogus", ("other", "その他")),
        (None, (None, "未選択")),
        ("", (None, "未選択")),
    ],
)
def test_category_codes_map_to_japanese_labels(code: str | None, expected: tuple[str | None, str]) -> None:
    pop = compose_pop(call(category=code), OPEN, [], [], [], now=NOW)
    assert (pop.category, pop.category_label) == expected


@pytest.mark.parametrize("number", [None, "", "anonymous", "Anonymous", " unknown "])
def test_withheld_numbers_are_flagged(number: str | None) -> None:
    pop = compose_pop(call(caller_number=number), OPEN, [], [], [], now=NOW)
    assert pop.caller_number is None and pop.caller_withheld is True


def test_closed_office_carries_its_reason_from_the_real_calendar() -> None:
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)
    status = Calendars.from_settings(CalendarSettings()).office(saturday)
    pop = compose_pop(call(), status, [], [], [], now=saturday)
    assert pop.office_open is False
    assert pop.office_reason_text == status.reason_text != ""
    assert compose_pop(call(), CLOSED, [], [], [], now=NOW).office_reason_text == "閉庁時間です"


def test_history_newest_first_capped_with_tokyo_dates() -> None:
    contacts = [
        Contact(NOW - timedelta(days=d), "zei" if d % 2 else "gomi", f"outcome-{d}") for d in (3, 1, 10, 7, 5, 20)
    ]
    # 2026-11-26T16:00Z is already the 27th in Tokyo
    contacts.append(Contact(datetime(2026, 11, 26, 16, 0, tzinfo=UTC), None, "utc"))
    pop = compose_pop(call(), OPEN, contacts, [], [], now=NOW, max_history=4)
    assert [h.outcome for h in pop.history] == ["utc", "outcome-1", "outcome-3", "outcome-5"]
    assert pop.history[0].date == "2026-11-27" and pop.history[0].category_label == "未選択"
    assert pop.history[1].category_label == "税"


def test_future_contacts_are_not_shown() -> None:
    pop = compose_pop(call(), OPEN, [Contact(NOW + timedelta(hours=1), "zei", "x")], [], [], now=NOW)
    assert pop.history == []


def test_open_callbacks_oldest_handover_first_with_department_names() -> None:
    callbacks = [
        OpenCallback(12, "zei", "received", "受付済み", date(2026, 11, 30)),
        OpenCallback(9, "kosodate", "handed_over", "引継ぎ済み", date(2026, 11, 27)),
        OpenCallback(3, "unknown-dept", "received", "受付済み", date(2026, 11, 30)),
    ]
    pop = compose_pop(call(), OPEN, [], callbacks, [], now=NOW, department_names={"kosodate": "子育て支援課"})
    assert [c.id for c in pop.open_callbacks] == [9, 3, 12]
    first = pop.model_dump()["open_callbacks"][0]
    assert first == {"id": 9, "department": "kosodate", "department_name": "子育て支援課", "status": "handed_over",
                     "status_text": "引継ぎ済み", "handover_date": "2026-11-27"}
    assert pop.open_callbacks[1].department_name == "unknown-dept"  # an unknown code is shown as it is


def test_faq_suggestions_deduplicated_capped_and_credited() -> None:
    faq = [FaqSuggestion(str(i), f"質問{i}") for i in (1, 2, 2, 3, 4, 5, 6)]
    pop = compose_pop(call(), OPEN, [], [], faq, now=NOW, faq_credit="出典：X", max_faq=3)
    assert [f.id for f in pop.faq_suggestions] == ["1", "2", "3"]
    assert pop.model_dump()["faq_suggestions"][0] == {"id": "1", "question": "質問1"}
    assert pop.faq_credit == "出典：X"
    assert compose_pop(call(), OPEN, [], [], [], now=NOW, faq_credit="出典：X").faq_credit == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"call_id": ""}, "call_id"),
        ({"waited_seconds": -1}, "waited_seconds"),
    ],
)
def test_bad_call_snapshot_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compose_pop(call(**kwargs), OPEN, [], [], [], now=NOW)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="now"):
        compose_pop(call(), OPEN, [], [], [], now=datetime(2026, 11, 27, 10, 0))
    with pytest.raises(ValueError, match="contacted_at"):
        compose_pop(call(), OPEN, [Contact(datetime(2026, 11, 1), "zei", "x")], [], [], now=NOW)


def test_suggestions_from_the_faq_index_feed_the_pop() -> None:
    index = FaqIndex(
        [FaqEntry("g1", "粗大ごみの出し方", "電話で", "ごみ・リサイクル"), FaqEntry("z1", "住民税", "x", "税金")]
    )
    faq = [FaqSuggestion(e.id, e.question) for e in suggest(index, "gomi", [], 5)]
    pop = compose_pop(call(), OPEN, [], [], faq, now=NOW, faq_credit="出典：X")
    assert pop.model_dump()["faq_suggestions"] == [{"id": "g1", "question": "粗大ごみの出し方"}]
