"""Pure rules of the records domain: no I/O, no clock of its own, driven directly by tests.

- phone numbers: Japanese fixed, mobile and IP-phone (050) numbers, validated and normalised
- the consent gate: no personal data without a "yes" consent on the same call
- optional fields that each need a reason (address, e-mail, fax)
- the callback status machine, as a transition table
- retention cutoff, handover and overdue instants
- role and department scoping (the ONE place that decides who sees what)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from cti.core.clock import TOKYO, require_aware

if TYPE_CHECKING:  # cti.core.principal imports aiohttp; this module stays pure
    from cti.core.principal import Principal

# Role values of cti.core.principal.Role (a StrEnum, so they compare equal to these strings).
OPERATOR, SUPERVISOR, DEPARTMENT, ADMIN = "operator", "supervisor", "department", "admin"


class RecordsError(Exception):
    """A refused request: an HTTP status, a machine-readable code, the field, a Japanese message."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 others: Sequence[RecordsError] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.others = tuple(others)  # further field errors of the same form (all shown at once)

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        answer: dict[str, object] = {"error": body}
        if self.status == 422:
            answer["errors"] = [{"field": e.field, "code": e.code, "message": e.message} for e in (self, *self.others)]
        return answer


def invalid(code: str, field: str, message: str) -> RecordsError:
    return RecordsError(422, code, message, field)


# ---- phone numbers ----------------------------------------------------------------------------

FIELD_LABELS: Mapping[str, str] = {
    "phone": "日中の連絡先電話番号",
    "fax": "FAX番号",
    "name": "お名前",
    "furigana": "ふりがな",
    "question": "ご質問の内容",
    "department": "担当課",
    "address": "住所",
    "email": "メールアドレス",
    "caller_number": "発信者番号",
}

# Separators people type between digit groups, after NFKC (which maps full-width digits and the
# full-width hyphen to ASCII): hyphen variants, the katakana long-vowel mark, spaces, brackets.
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−ー()]")
# Non-geographic 0AB0 / 0ABC prefixes that are not a subscriber's own line.
_SERVICE_PREFIXES = ("0120", "0180", "0570", "0800", "0990")


class PhoneKind(StrEnum):
    FIXED = "fixed"
    MOBILE = "mobile"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class Phone:
    digits: str  # normalised: ASCII digits only, national format (leading 0)
    kind: PhoneKind


def normalise_phone(raw: str, field: str = "phone") -> Phone:
    """Validate a Japanese fixed, mobile or 050 IP-phone number; return it as national digits.

    Accepts full-width digits, hyphens (any width), spaces, brackets and a +81 prefix.
    """
    label = FIELD_LABELS.get(field, field)
    text = unicodedata.normalize("NFKC", raw or "").strip()
    text = _SEPARATORS.sub("", text)
    if not text:
        raise invalid("missing_field", field, f"{label}を入力してください")
    if text.startswith("+81"):
        text = "0" + text[3:]
    elif text.startswith("81") and len(text) in (11, 12):
        text = "0" + text[2:]
    if not text.isascii() or not text.isdigit():
        raise invalid("invalid_phone", field, f"{label}に数字以外の文字が含まれています")
    if not text.startswith("0"):
        raise invalid("invalid_phone", field, f"{label}は0から始まる番号を入力してください（市外局番から）")
    if len(text) < 10:
        raise invalid(
            "invalid_phone", field, f"{label}の桁数が足りません（入力は{len(text)}桁、市外局番から10桁または11桁）"
        )
    if text.startswith(_SERVICE_PREFIXES):
        raise invalid(
            "invalid_phone", field, f"{label}にフリーダイヤル等のサービス番号は使えません（固定・携帯・IP電話の番号）"
        )
    if text[:3] in ("070", "080", "090"):
        kind, expected = PhoneKind.MOBILE, 11
    elif text[:3] == "050":
        kind, expected = PhoneKind.IP, 11
    elif text[2] != "0" and text[1] != "0":
        kind, expected = PhoneKind.FIXED, 10
    else:
        raise invalid(
            "invalid_phone", field, f"{label}の番号（{text[:3]}から始まる番号）は受け付けられません"
        )
    if len(text) != expected:
        raise invalid(
            "invalid_phone",
            field,
            f"{label}の桁数が正しくありません（{_KIND_TEXT[kind]}は{expected}桁、入力は{len(text)}桁）",
        )
    return Phone(text, kind)


_KIND_TEXT = {PhoneKind.FIXED: "固定電話", PhoneKind.MOBILE: "携帯電話", PhoneKind.IP: "IP電話（050）"}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw).strip()
    if len(text) > 254 or not _EMAIL.match(text):
        raise invalid("invalid_email", "email", "メールアドレスの形式が正しくありません")
    return text


# ---- callback fields: records.callback_fields (validate_callback) --------------------------------

MAX_SUMMARY_CHARS = 4000


# ---- consent --------------------------------------------------------------------------------------


class ConsentAnswer(StrEnum):
    YES = "yes"
    NO = "no"


def consent_gate(latest_answer: str | None) -> None:
    """Personal data may be saved only after the caller said yes on this call."""
    if latest_answer is None:
        raise RecordsError(
            409, "consent_missing", "この通話には同意の記録がありません。先に同意を確認してください", "consent"
        )
    if latest_answer != ConsentAnswer.YES:
        raise RecordsError(
            409, "consent_refused", "お客様が記録に同意していないため、個人情報は保存できません", "consent"
        )


def office_closed_gate(office_open: bool, principal: Principal, override_reason: str | None) -> str | None:
    """Callback requests are taken while the office is closed; a supervisor may override with a reason."""
    if not office_open:
        return None
    reason = (override_reason or "").strip()
    if principal.role not in (SUPERVISOR, ADMIN):
        raise RecordsError(
            409, "office_open", "開庁時間中は担当課へ転送してください（折り返し依頼は閉庁時間のみ）", "override_reason"
        )
    if not reason:
        raise invalid("reason_required", "override_reason", "開庁時間中に受け付ける理由を入力してください")
    return reason


# ---- status machine --------------------------------------------------------------------------------


class Status(StrEnum):
    RECEIVED = "received"
    HANDED_OVER = "handed_over"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"
    CLOSED_UNREACHED = "closed_unreached"


class Action(StrEnum):
    HAND_OVER = "hand_over"
    START = "start"
    ATTEMPT_REACHED = "attempt_reached"
    ATTEMPT_NOT_REACHED = "attempt_not_reached"
    CLOSE = "close"


CLOSED_STATES = frozenset({Status.CLOSED, Status.CLOSED_UNREACHED})

# (state, action) -> next state. ATTEMPT_NOT_REACHED goes to CLOSED_UNREACHED once the limit is hit.
TRANSITIONS: Mapping[tuple[Status, Action], Status] = {
    (Status.RECEIVED, Action.HAND_OVER): Status.HANDED_OVER,
    (Status.HANDED_OVER, Action.START): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Action.ATTEMPT_REACHED): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Action.ATTEMPT_NOT_REACHED): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Action.CLOSE): Status.CLOSED,
}

STATUS_TEXT: Mapping[Status, str] = {
    Status.RECEIVED: "受付済み",
    Status.HANDED_OVER: "引き継ぎ済み",
    Status.IN_PROGRESS: "対応中",
    Status.CLOSED: "完了",
    Status.CLOSED_UNREACHED: "完了（連絡つかず）",
}
ACTION_TEXT: Mapping[Action, str] = {
    Action.HAND_OVER: "引き継ぎ",
    Action.START: "対応開始",
    Action.ATTEMPT_REACHED: "折り返し（つながった）",
    Action.ATTEMPT_NOT_REACHED: "折り返し（つながらない）",
    Action.CLOSE: "完了",
}


def transition(state: str, action: Action, *, failed_attempts: int = 0, max_attempts: int = 3) -> Status:
    """The next state, or RecordsError 409 naming the state and the refused action.

    `failed_attempts` counts earlier not-reached attempts (this one excluded).
    """
    try:
        current = Status(state)
    except ValueError:
        raise RecordsError(409, "invalid_state", f"不明な状態です: {state}", "status") from None
    nxt = TRANSITIONS.get((current, action))
    if nxt is None:
        raise RecordsError(
            409,
            "invalid_transition",
            f"「{STATUS_TEXT[current]}」の依頼に「{ACTION_TEXT[action]}」はできません",
            "status",
        )
    if action is Action.ATTEMPT_NOT_REACHED and failed_attempts + 1 >= max_attempts:
        return Status.CLOSED_UNREACHED
    return nxt


# ---- time rules --------------------------------------------------------------------------------------


def iso(at: datetime) -> str:
    """The stored form of an instant: Asia/Tokyo with offset, so text order is time order."""
    return require_aware(at).astimezone(TOKYO).isoformat(timespec="microseconds")


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Personal data collected at or before this instant must be deleted."""
    return require_aware(now, "now") - timedelta(days=retention_days)


def overdue_deadline(handover_date: date, office_closes: time, grace_hours: int) -> datetime:
    """A callback not closed by the office's closing time on its handover day (+ grace) is overdue."""
    return datetime.combine(handover_date, office_closes, TOKYO) + timedelta(hours=grace_hours)


def is_overdue(status: str, deadline: datetime, now: datetime) -> bool:
    return Status(status) not in CLOSED_STATES and require_aware(now, "now") > deadline


# ---- scoping ---------------------------------------------------------------------------------------


class Access(StrEnum):
    CREATE = "create"  # a contact for the call being taken
    WRITE_CALL = "write_call"  # consent, callback, outcome on an existing call (operators: their own call)
    READ_CALL = "read_call"  # the records of one call (operators: only their own call)
    LIST = "list"  # list / view / export callback requests
    UPDATE = "update"  # start, attempt, close
    FAQ_GAPS = "faq_gaps"  # the "could not answer" list for the FAQ authors


def require_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise RecordsError(401, "unauthenticated", "ログインしてください")
    return principal


def sees_all(principal: Principal, public_information_department: str) -> bool:
    return principal.role == ADMIN or (
        principal.role == DEPARTMENT and principal.department == public_information_department
    )


def authorize(
    principal: Principal | None,
    access: Access,
    *,
    public_information_department: str,
    record_department: str | None = None,
    record_status: str | None = None,
    call_operator: str | None = None,
    call_open: bool = True,
) -> Principal:
    """The ONE place that decides access to records. Returns the principal or raises 401/403."""
    who = require_principal(principal)
    if access is Access.CREATE:
        if who.role in (OPERATOR, SUPERVISOR, ADMIN):
            return who
        raise RecordsError(403, "forbidden", "記録の作成はオペレーターのみ行えます")
    if access is Access.WRITE_CALL:
        if who.role in (SUPERVISOR, ADMIN) or (who.role == OPERATOR and call_operator == who.user_id):
            return who
        if who.role == OPERATOR:
            raise RecordsError(403, "forbidden", "他のオペレーターの通話には記録できません", "call_id")
        raise RecordsError(403, "forbidden", "記録の作成はオペレーターのみ行えます")
    if access is Access.READ_CALL:
        if who.role == ADMIN:
            return who
        if who.role in (OPERATOR, SUPERVISOR) and call_operator == who.user_id:
            if call_open:
                return who
            raise RecordsError(403, "call_closed", "この通話の記録はもう参照できません。参照できるのは、"
                               "ご自身が対応中の通話と、終話後の後処理中（次の通話まで）の通話だけです")
        raise RecordsError(403, "forbidden", "この通話の記録は参照できません（ご自身が対応中の通話のみ）")
    if access is Access.FAQ_GAPS:
        if who.role in (SUPERVISOR, ADMIN) or sees_all(who, public_information_department):
            return who
        raise RecordsError(403, "forbidden", "FAQ不足の一覧はスーパーバイザーと区政情報課のみ参照できます")
    # LIST / UPDATE: department staff and admins
    if who.role not in (DEPARTMENT, ADMIN) or (who.role == DEPARTMENT and not who.department):
        raise RecordsError(403, "forbidden", "折り返し依頼の一覧・参照は担当課の職員のみ行えます")
    if sees_all(who, public_information_department) or record_department is None:
        return who
    if record_department != who.department:
        raise RecordsError(403, "forbidden", "他の課の折り返し依頼は参照できません")
    if record_status == Status.RECEIVED:
        raise RecordsError(403, "not_handed_over", "この依頼はまだ引き継がれていません")
    return who


SQLITE_MAX_ROWID = 2**63 - 1


def parse_record_id(text: str) -> int | None:
    """A record id from a URL: a positive integer SQLite can hold, else None (not found)."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 1 <= value <= SQLITE_MAX_ROWID else None
