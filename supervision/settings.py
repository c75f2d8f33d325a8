"""Supervision's configuration: the access alerts (the `[alerts]` section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AlertSettings(BaseModel):
    """Access alerts (supervision/alerts.py): thresholds for incident reporting."""

    model_config = ConfigDict(extra="forbid")

    reads_per_hour: int = Field(100, ge=1, description="records one account may read within an hour")
    off_hours_department_reads: bool = Field(True, description="alert when department staff read while closed")
    failed_logins: int = Field(10, ge=1, description="failed logins (any account) that make a burst")
    failed_login_window_seconds: int = Field(300, ge=1)
    cooldown_seconds: int = Field(3600, ge=0, description="the same alert for the same account at most this often")
    poll_seconds: float = Field(2.0, gt=0, description="how often the audit trail is read")
