"""Configuration of the telephony adapters (AMI link, FastAGI server, call control)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class AmiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "cti"
    secret: SecretStr = SecretStr("")
    ping_interval: float = Field(10.0, gt=0, description="seconds between pings; 2 missed = half-open")
    action_timeout: float = Field(5.0, gt=0)
    reconnect_initial: float = Field(0.5, gt=0)
    reconnect_max: float = Field(30.0, gt=0)
    queue: str = "operators"


class AgiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(4573, ge=1, le=65535)
    backlog: int = Field(1024, ge=1, description="listen backlog; 100 gives ~1 s tails at 200 concurrent")
    request_timeout: float = Field(2.0, gt=0, description="a client that sends no headers in time is closed")


class CallControlSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callback_context: str = "outbound-callback"
    transfer_context: str = "departments"
    consult_context: str = "consult"  # where a consult (attended) transfer dials the department
    ward_caller_id: str = "0301110000"
    originate_timeout_ms: int = Field(30000, ge=1000)


@dataclass(frozen=True)
class TelephonySettings:
    """The sections telephony reads (telephony.keys.SETTINGS), handed over by the composition root."""

    ami: AmiSettings
    agi: AgiSettings
    call_control: CallControlSettings
