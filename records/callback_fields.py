"""The fields of a callback request, checked all at once (pure): every bad field is reported in one
RecordsError (the first, carrying the others), so the operator's form marks them all after one submit."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from records.rules import FIELD_LABELS, RecordsError, invalid, normalise_email, normalise_phone

T = TypeVar("T")

REASON_FIELDS: tuple[str, ...] = ("address", "email", "fax")
MAX_NAME_CHARS = 100
MAX_ADDRESS_CHARS = 200
MAX_REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class CallbackFields:
    """Validated, normalised personal data of one callback request."""

    name: str
    furigana: str | None
    phone: str
    question: str
    department: str
    address: str | None = None
    address_reason: str | None = None
    email: str | None = None
    email_reason: str | None = None
    fax: str | None = None
    fax_reason: str | None = None


def _text(value: str | None, field: str, limit: int, *, required: bool) -> str | None:
    label = FIELD_LABELS.get(field, field)
    text = unicodedata.normalize("NFC", value).strip() if value is not None else ""
    if not text:
        if required:
            raise invalid("missing_field", field, f"{label}を入力してください")
        return None
    if len(text) > limit:
        raise invalid("too_long", field, f"{label}が長すぎます（{limit}文字以内、入力は{len(text)}文字）")
    return text


def validate_callback(
    values: Mapping[str, str | None],
    *,
    departments: Mapping[str, str],
    max_question_chars: int,
) -> CallbackFields:
    """Check every field of a callback request; raise one RecordsError for the first bad field that
    carries every other bad field too (the form marks them all at once)."""
    errors: list[RecordsError] = []

    def check(fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except RecordsError as err:
            errors.append(err)
            return None

    name = check(lambda: _text(values.get("name"), "name", MAX_NAME_CHARS, required=True))
    furigana = check(lambda: _text(values.get("furigana"), "furigana", MAX_NAME_CHARS, required=False))
    phone = check(lambda: normalise_phone(values.get("phone") or "", "phone").digits)
    question = check(lambda: _text(values.get("question"), "question", max_question_chars, required=True))
    department = (values.get("department") or "").strip()
    if not department:
        errors.append(invalid("missing_field", "department", "担当課を選んでください"))
    elif department not in departments:
        errors.append(invalid("unknown_department", "department", "選ばれた担当課は登録されていません"))
    optional: dict[str, str | None] = {}
    for field in REASON_FIELDS:
        optional.update(check(partial(_optional_field, values, field)) or {})
    if errors:
        first, *others = errors
        raise RecordsError(first.status, first.code, first.message, first.field, others)
    assert name is not None and question is not None and phone is not None
    return CallbackFields(name=name, furigana=furigana, phone=phone, question=question, department=department,
                          **optional)


def _optional_field(values: Mapping[str, str | None], field: str) -> dict[str, str | None]:
    raw = values.get(field)
    reason = _text(values.get(f"{field}_reason"), f"{field}_reason", MAX_REASON_CHARS, required=False)
    label = FIELD_LABELS[field]
    if raw is None or not raw.strip():
        if reason:
            raise invalid("reason_without_value", f"{field}_reason", f"{label}が空なのに理由が入力されています")
        return {field: None, f"{field}_reason": None}
    if not reason:
        raise invalid("reason_required", f"{field}_reason", f"{label}を記録する場合は、必要な理由を入力してください")
    if field == "fax":
        value: str | None = normalise_phone(raw, "fax").digits
    elif field == "email":
        value = normalise_email(raw)
    else:
        value = _text(raw, field, MAX_ADDRESS_CHARS, required=True)
    return {field: value, f"{field}_reason": reason}


