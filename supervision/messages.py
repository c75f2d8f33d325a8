"""Websocket messages from the server to supervisor and department clients (no personal data)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class WallUpdate(BaseModel):
    type: Literal["wall"] = "wall"
    seq: int = 0
    state: dict[str, Any] = Field(default_factory=dict)


class AccessAlert(BaseModel):
    """A new access alert; `alert["id"]` is its stored id, so a client that already shows it replaces it."""

    type: Literal["access_alert"] = "access_alert"
    seq: int = 0
    alert: dict[str, Any] = Field(default_factory=dict)


class AlertAcknowledged(BaseModel):
    """A supervisor acknowledged the alert: every supervisor screen hides it."""

    type: Literal["alert_acknowledged"] = "alert_acknowledged"
    seq: int = 0
    id: int
    acknowledged_by: str
    acknowledged_at: str


class CallbackProgress(BaseModel):
    """A click-to-call's progress for the staff member who placed it (no phone number)."""

    type: Literal["callback_progress"] = "callback_progress"
    seq: int = 0
    callback_id: str
    event: str
    at: str
    outcome: str | None = None
    talk_s: float | None = None
