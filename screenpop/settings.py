"""Configuration of the operator-facing side: web sessions, network allowlist, websocket hub, FAQ."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class SecuritySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_key: SecretStr = SecretStr("")
    session_idle_minutes: int = Field(30, ge=1)
    operator_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    allowed_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8080", "http://localhost:8080"])
    login_max_failures: int = Field(5, ge=1)
    login_window_seconds: int = Field(300, ge=1)


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_queue_size: int = Field(256, ge=1)
    replay_window: int = Field(1000, ge=0)
    heartbeat_seconds: float = Field(15.0, gt=0)
    max_message_bytes: int = Field(65536, ge=1024)


class FaqSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    import_on_start: str | None = Field(None, description="FAQ file imported at start if the FAQ is empty")
    documents_dir: str | None = Field(
        None, description="folder of the ward's other sources (faq/FORMAT.md), imported at start and from /faq/editor/"
    )
    suggestions: int = Field(5, ge=0, le=20)
    # IVR category code (koseki, zei, hoken, gomi, kosodate, other) -> the FAQ categories it covers;
    # codes given here replace those of the built-in mapping (faq/index.py DEFAULT_CATEGORY_MAP).
    category_map: dict[str, list[str]] | None = None


class AlertSettings(BaseModel):
    """Access alerts (supervision/alerts.py): thresholds for incident reporting."""

    model_config = ConfigDict(extra="forbid")

    reads_per_hour: int = Field(100, ge=1, description="records one account may read within an hour")
    off_hours_department_reads: bool = Field(True, description="alert when department staff read while closed")
    failed_logins: int = Field(10, ge=1, description="failed logins (any account) that make a burst")
    failed_login_window_seconds: int = Field(300, ge=1)
    cooldown_seconds: int = Field(3600, ge=0, description="the same alert for the same account at most this often")
    poll_seconds: float = Field(2.0, gt=0, description="how often the audit trail is read")


class DepartmentScreenSettings(BaseModel):
    """The department screen (records/department_api.py): how a staff member's own phone is dialled."""

    model_config = ConfigDict(extra="forbid")

    staff_phone: str = Field(
        "PJSIP/{extension}", pattern=r"^[A-Za-z0-9_]+/[^\s]*\{extension\}[^\s]*$",
        description="dial string of the staff phone rung first on click-to-call; {extension} is the user's extension",
    )
