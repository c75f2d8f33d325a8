"""Configuration of the operator-facing side: websocket hub, FAQ, alerts, department screen (the
`[security]` section lives in access/settings.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_queue_size: int = Field(256, ge=1)
    replay_window: int = Field(1000, ge=0)
    heartbeat_seconds: float = Field(15.0, gt=0)
    max_message_bytes: int = Field(65536, ge=1024)


class DeskSettings(BaseModel):
    """The operator desk (screenpop/desks.py): after-call work and missed rings."""

    model_config = ConfigDict(extra="forbid")

    wrapup_seconds: int = Field(
        60, ge=0, le=3600,
        description="後処理 after each answered call: the operator stays paused this long at most "
        "(ended earlier by 結果を記録 or by hand); 0 = no after-call work",
    )
    away_on_missed_ring: bool = Field(True, description="a ring not answered sets the operator 離席（不在着信）")


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
