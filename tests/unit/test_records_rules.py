"""Pure rules of records: phone numbers, field reasons, consent gate, status machine, scoping, chain."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from records import rules
from records.audit import GENESIS, Anchor, parse_anchor, row_hash, verify_chain
from records.rules import Access, Action, PhoneKind, RecordsError, Status

DEPTS = {"kuseijoho": "区政情報課", "zeimu": "税務課", "koseki": "戸籍住民課"}


@pytest.mark.parametrize(
    ("raw", "digits", "kind"),
    [
        ("03-1234-5678", "0312345678", PhoneKind.FIXED),
        ("０３－１２３４－５６７８", "0312345678", PhoneKind.FIXED),
        ("0467(12)3456", "0467123456", PhoneKind.FIXED),
        ("090 1234 5678", "09012345678", PhoneKind.MOBILE),
        ("０８０ー１２３４ー５６７８", "08012345678", PhoneKind.MOBILE),
        ("070-1234-5678", "07012345678", PhoneKind.MOBILE),
        ("050-1234-5678", "05012345678", PhoneKind.IP),
        ("+81 90-1234-5678", "09012345678", PhoneKind.MOBILE),
        ("+81-3-1234-5678", "0312345678", PhoneKind.FIXED),
    ],
)
def test_valid_phone_numbers_are_normalised(raw: str, digits: str, kind: PhoneKind) -> None:
    phone = rules.normalise_phone(raw)
    assert (phone.digits, phone.kind) == (digits, kind)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("03-1234-567", "桁数"),  # 9 digits
        ("03-1234-56789", "桁数"),  # 11-digit fixed
        ("090-1234-567", "桁数"),  # 10-digit mobile
        ("050-1234-56789", "桁数"),
        ("0120-123-456", "フリーダイヤル"),
        ("0570-000-111", "サービス番号"),
        ("0800-123-4567", "サービス番号"),  # free dial, 11 digits like a mobile
        ("020-1234-5678", "020"),  # pager / M2M
        ("3-1234-5678", "0から始まる"),
        ("03-1234-567a", "数字以外"),
        ("", "入力してください"),
    ],
)
def test_bad_phone_numbers_are_refused_naming_the_field(raw: str, fragment: str) -> None:
    with pytest.raises(RecordsError) as err:
        rules.normalise_phone(raw, "phone")
    assert err.value.field == "phone"
    assert err.value.status == 422
    assert "日中の連絡先電話番号" in err.value.message
    assert fragment in err.value.message


def fields(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "山田", "phone": "03-1234-5678", "question": "質問", "department": "zeimu"}
    base.update(over)
    return base


def test_callback_fields_validated_and_normalised() -> None:
    got = rules.validate_callback(
        fields(email="ｔａｒｏ@example.jp", email_reason="資料を送るため", fax="03-9876-5432", fax_reason="FAX希望"),
        departments=DEPTS, max_question_chars=10,
    )
    assert got.phone == "0312345678"
    assert got.email == "taro@example.jp"
    assert got.fax == "0398765432"
    assert got.address is None and got.address_reason is None


@pytest.mark.parametrize(
    ("over", "code", "field"),
    [
        ({"address": "中央区1-1"}, "reason_required", "address_reason"),
        ({"address_reason": "郵送のため"}, "reason_without_value", "address_reason"),
        ({"fax": "0120-111-222", "fax_reason": "x"}, "invalid_phone", "fax"),
        ({"department": "unknown"}, "unknown_department", "department"),
        ({"department": ""}, "missing_field", "department"),
        ({"question": "あ" * 11}, "too_long", "question"),
        ({"question": None}, "missing_field", "question"),
        ({"name": "x" * 101}, "too_long", "name"),
    ],
)
def test_callback_field_errors(over: dict[str, Any], code: str, field: str) -> None:
    with pytest.raises(RecordsError) as err:
        rules.validate_callback(fields(**over), departments=DEPTS, max_question_chars=10)
    assert (err.value.code, err.value.field) == (code, field)
    assert err.value.message


def test_consent_gate() -> None:
    rules.consent_gate("yes")
    for answer, code in ((None, "consent_missing"), ("no", "consent_refused")):
        with pytest.raises(RecordsError) as err:
            rules.consent_gate(answer)
        assert err.value.code == code


OP = Principal("op", Role.OPERATOR, None, "10.0.0.1")
SV = Principal("sv", Role.SUPERVISOR, None, "10.0.0.2")


def test_office_closed_gate() -> None:
    assert rules.office_closed_gate(False, OP, None) is None
    with pytest.raises(RecordsError, match="office_open"):
        rules.office_closed_gate(True, OP, "理由")
    with pytest.raises(RecordsError, match="reason_required"):
        rules.office_closed_gate(True, SV, "  ")
    assert rules.office_closed_gate(True, SV, " 担当不在 ") == "担当不在"


def test_every_transition_outside_the_table_is_refused() -> None:
    for state in Status:
        for action in Action:
            if (state, action) in rules.TRANSITIONS:
                assert rules.transition(state, action) == rules.TRANSITIONS[(state, action)]
            else:
                with pytest.raises(RecordsError) as err:
                    rules.transition(state, action)
                assert (err.value.status, err.value.code) == (409, "invalid_transition")
                assert rules.STATUS_TEXT[state] in err.value.message


def test_failed_attempts_close_unreached_at_the_limit() -> None:
    s = Status.IN_PROGRESS
    assert rules.transition(s, Action.ATTEMPT_NOT_REACHED, failed_attempts=1, max_attempts=3) == s
    assert rules.transition(s, Action.ATTEMPT_NOT_REACHED, failed_attempts=2, max_attempts=3) == \
        Status.CLOSED_UNREACHED
    assert rules.transition(s, Action.ATTEMPT_REACHED, failed_attempts=2, max_attempts=3) == s


def test_retention_cutoff_and_overdue() -> None:
    now = datetime(2027, 12, 4, 19, 0, tzinfo=TOKYO)
    assert rules.retention_cutoff(now, 365) == datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)
    with pytest.raises(ValueError, match="naive"):
        rules.retention_cutoff(datetime(2027, 1, 1), 365)
    deadline = rules.overdue_deadline(date(2026, 12, 7), time(17, 15), 2)
    assert deadline == datetime(2026, 12, 7, 19, 15, tzinfo=TOKYO)
    assert not rules.is_overdue("in_progress", deadline, deadline)
    assert rules.is_overdue("handed_over", deadline, deadline + timedelta(seconds=1))
    assert not rules.is_overdue("closed", deadline, deadline + timedelta(days=9))


def test_iso_is_tokyo_text_that_sorts_as_time() -> None:
    assert rules.iso(datetime(2026, 12, 4, 10, 0, tzinfo=TOKYO)).endswith("+09:00")
    assert rules.iso(datetime.fromisoformat("2026-12-04T01:00:00+00:00")) == "2026-12-04T10:00:00.000000+09:00"


ZEIMU = Principal("t", Role.DEPARTMENT, "zeimu", "1.1.1.1")
KUSEI = Principal("k", Role.DEPARTMENT, "kuseijoho", "1.1.1.2")
ADMIN = Principal("a", Role.ADMIN, None, "1.1.1.3")


def auth(who: Principal | None, access: Access, **kw: Any) -> int:
    try:
        rules.authorize(who, access, public_information_department="kuseijoho", **kw)
    except RecordsError as err:
        return err.status
    return 200


def test_scoping_matrix() -> None:
    assert auth(None, Access.CREATE) == 401
    assert auth(None, Access.LIST) == 401
    assert auth(OP, Access.CREATE) == 200
    assert auth(ZEIMU, Access.CREATE) == 403
    assert auth(OP, Access.LIST) == 403
    assert auth(SV, Access.LIST) == 403
    assert auth(OP, Access.READ_CALL, call_operator="op") == 200
    assert auth(OP, Access.READ_CALL, call_operator="other") == 403
    assert auth(ZEIMU, Access.READ_CALL, call_operator="t") == 403
    with pytest.raises(RecordsError) as closed:  # their own call, but no longer live nor in after-call work
        rules.authorize(OP, Access.READ_CALL, public_information_department="kuseijoho", call_operator="op",
                        call_open=False)
    assert closed.value.code == "call_closed" and "後処理中" in closed.value.message
    handed = "handed_over"
    assert auth(ZEIMU, Access.LIST, record_department="zeimu", record_status=handed) == 200
    assert auth(ZEIMU, Access.LIST, record_department="koseki", record_status=handed) == 403
    assert auth(ZEIMU, Access.LIST, record_department="zeimu", record_status="received") == 403
    assert auth(KUSEI, Access.LIST, record_department="koseki", record_status="received") == 200
    assert auth(ADMIN, Access.UPDATE, record_department="koseki", record_status=handed) == 200
    assert auth(Principal("x", Role.DEPARTMENT, None, "1"), Access.LIST) == 403


def chain(n: int, key: bytes | None = None) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        row: dict[str, Any] = {"seq": seq, "at": f"t{seq}", "actor": "u", "role": "admin", "department": None,
                               "client_ip": "1", "action": "read", "record_type": "callback",
                               "record_id": str(seq), "outcome": "ok", "detail": "{}", "prev_hash": prev}
        row["hash"] = row_hash(prev, row, key)
        prev = row["hash"]
        rows.append(row)
    return rows


def test_chain_verification_names_rows() -> None:
    assert verify_chain(chain(5), high_water=5) == []
    edited = chain(5)
    edited[2]["actor"] = "mallory"
    assert [(p.seq, p.kind) for p in verify_chain(edited)] == [(3, "edited")]
    deleted = chain(5)
    del deleted[1]
    assert [(p.seq, p.kind) for p in verify_chain(deleted)] == [(3, "missing_before"), (3, "broken_link")]
    swapped = chain(5)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    swapped[1]["seq"], swapped[2]["seq"] = 2, 3  # renumbered to hide the swap
    kinds = {(p.seq, p.kind) for p in verify_chain(swapped)}
    assert {(2, "broken_link"), (3, "broken_link"), (4, "broken_link")} <= kinds
    assert [(p.seq, p.kind) for p in verify_chain(chain(4), high_water=5)] == [(5, "tail_deleted")]


def test_a_keyed_chain_and_its_anchor() -> None:
    key = b"k" * 32
    assert verify_chain(chain(5, key), high_water=5, key=key) == []
    # recomputed without the key (all one holding only the database can do): every row is "edited"
    assert {p.kind for p in verify_chain(chain(5), key=key)} == {"edited"}
    head = Anchor(5, chain(5, key)[-1]["hash"])
    assert verify_chain(chain(5, key), key=key, anchor=head) == []
    # the tail deleted and the AUTOINCREMENT counter lowered: only the anchor still knows
    assert [(p.seq, p.kind) for p in verify_chain(chain(3, key), high_water=3, key=key, anchor=head)] == [
        (5, "anchor_missing")]
    other = chain(5, b"x" * 32)
    assert [(p.seq, p.kind) for p in verify_chain(other, key=b"x" * 32, anchor=head)] == [(5, "anchor_mismatch")]
    assert parse_anchor(f" {head} ") == head
    for bad in ("5", "0:" + "a" * 64, "5:" + "a" * 63, "5:" + "g" * 64):
        with pytest.raises(ValueError):
            parse_anchor(bad)


def test_open_calls_live_after_call_work_and_next_call() -> None:
    from records.calls import OpenCalls

    t0 = datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)
    calls = OpenCalls(timedelta(minutes=30))
    calls.connected("c1", "op")
    assert calls.may_read("c1", "op", t0) and not calls.may_read("c1", "other", t0)
    assert calls.live_ids() == {"c1"}
    calls.ended("c1", t0)
    assert calls.live_ids() == frozenset() and calls.may_read("c1", "op", t0 + timedelta(minutes=30))
    assert not calls.may_read("c1", "op", t0 + timedelta(minutes=31))  # after-call work timed out
    calls.connected("c2", "op")
    calls.ended("c2", t0)
    calls.connected("c3", "op")  # the next call ends the previous one's after-call work
    assert not calls.may_read("c2", "op", t0) and calls.may_read("c3", "op", t0)


def test_operators_write_only_to_their_own_call() -> None:
    assert auth(OP, Access.WRITE_CALL, call_operator="op") == 200
    assert auth(OP, Access.WRITE_CALL, call_operator="other") == 403
    assert auth(SV, Access.WRITE_CALL, call_operator="other") == 200
    assert auth(ZEIMU, Access.WRITE_CALL, call_operator="t") == 403
    assert auth(None, Access.WRITE_CALL, call_operator="op") == 401


from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FULLWIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


@given(
    prefix=st.sampled_from(["090", "080", "070", "050"]),
    body=st.text(alphabet="0123456789", min_size=8, max_size=8),
    fullwidth=st.booleans(),
    hyphens=st.booleans(),
)
def test_any_mobile_or_ip_number_normalises_to_its_digits(prefix: str, body: str, fullwidth: bool,
                                                          hyphens: bool) -> None:
    assume(not (prefix + body).startswith("0800"))  # 0800 is free dial, not a mobile range
    text = f"{prefix}-{body[:4]}-{body[4:]}" if hyphens else prefix + body
    if fullwidth:
        text = text.translate(_FULLWIDTH)
    assert rules.normalise_phone(text).digits == prefix + body


@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=14))
def test_phone_validation_never_accepts_a_wrong_length(digits: str) -> None:
    try:
        phone = rules.normalise_phone(digits)
    except RecordsError as err:
        assert err.field == "phone" and err.code in ("invalid_phone", "missing_field")
        return
    expected = 10 if phone.kind is PhoneKind.FIXED else 11
    assert len(phone.digits) == expected and phone.digits.startswith("0")


def test_faq_gaps_are_for_supervisors_and_public_information() -> None:
    assert auth(SV, Access.FAQ_GAPS) == 200
    assert auth(KUSEI, Access.FAQ_GAPS) == 200
    assert auth(ADMIN, Access.FAQ_GAPS) == 200
    assert auth(OP, Access.FAQ_GAPS) == 403
    assert auth(ZEIMU, Access.FAQ_GAPS) == 403


def test_record_ids_from_urls_are_positive_and_fit_sqlite() -> None:
    from records.rules import parse_record_id

    assert parse_record_id("42") == 42
    assert parse_record_id(str(2**63 - 1)) == 2**63 - 1
    for bad in ("0", "-1", str(2**63), "1e3", "abc", ""):
        assert parse_record_id(bad) is None, bad
