"""Configuration of records: departments, consent scripts, callback rules, retention."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    name: str
    transfer_extension: str | None = None


class ConsentScript(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: int = Field(ge=1)
    text: str


def _default_departments() -> list[Department]:
    return [
        Department(code="kuseijoho", name="区政情報課"),
        Department(code="koseki", name="戸籍住民課", transfer_extension="201"),
        Department(code="zeimu", name="税務課", transfer_extension="202"),
        Department(code="hoken", name="保険年金課", transfer_extension="203"),
        Department(code="seiso", name="清掃リサイクル課", transfer_extension="204"),
        Department(code="kosodate", name="子育て支援課", transfer_extension="205"),
    ]


def _default_consent() -> ConsentScript:
    return ConsentScript(
        id="callback-consent",
        version=1,
        text=(
            "ただいま区役所の開庁時間外のため、担当課から折り返しお電話を差し上げることができます。"
            "そのために、お名前、日中つながる電話番号、ご質問の内容をお伺いし、記録してもよろしいでしょうか。"
            "記録は担当課への引き継ぎにのみ使い、1年後に削除します。"
        ),
    )


class RecordsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    departments: list[Department] = Field(default_factory=_default_departments)
    public_information_department: str = "kuseijoho"
    consent_script: ConsentScript = Field(default_factory=_default_consent)
    retention_days: int = Field(365, ge=1)
    max_question_chars: int = Field(2000, ge=10)
    max_callback_attempts: int = Field(3, ge=1)
    overdue_grace_hours: int = Field(0, ge=0)
    # The audit chain's HMAC key: kept OUTSIDE the database (config or CTI_RECORDS__AUDIT_KEY_FILE), so
    # someone holding only the database file cannot rebuild a chain that verifies.
    audit_key: SecretStr | None = None
    # Where `cti backup` writes; the daily retention task deletes backups older than backup_keep_days.
    backup_dir: str = "var/backups"
    backup_keep_days: int = Field(30, ge=1)
    # After a call ends its operator may still read it (after-call work) for this long, until their next call.
    after_call_minutes: int = Field(30, ge=0)

    @field_validator("audit_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("records.audit_key must have at least 16 characters")
        return value

    @model_validator(mode="after")
    def _backups_within_retention(self) -> RecordsSettings:
        if self.backup_keep_days > self.retention_days:
            raise ValueError("records.backup_keep_days must not exceed records.retention_days")
        return self

    def audit_key_bytes(self) -> bytes | None:
        return None if self.audit_key is None else self.audit_key.get_secret_value().strip().encode("utf-8")


class DepartmentScreenSettings(BaseModel):
    """The department screen (records/department_api.py): how a staff member's own phone is dialled."""

    model_config = ConfigDict(extra="forbid")

    staff_phone: str = Field(
        "PJSIP/{extension}", pattern=r"^[A-Za-z0-9_]+/[^\s]*\{extension\}[^\s]*$",
        description="dial string of the staff phone rung first on click-to-call; {extension} is the user's extension",
    )
