"""Configuration of the operator screen: the websocket hub (`[hub]`) and the operator desk (`[desk]`)."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class ScreenSettings:
    """The sections screenpop reads (screenpop.keys.SETTINGS), handed over by the composition root."""

    hub: HubSettings
    desk: DeskSettings
