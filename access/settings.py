"""The `[security]` section: sessions, the operator room, origins, the login throttle, proxies."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

MIN_SESSION_KEY_CHARS = 32


class SecuritySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # HMAC key of the session tokens kept in the database (access/sessions.py); random per start
    # when empty (then a restart ends every session).
    session_key: SecretStr = SecretStr("")
    session_idle_minutes: int = Field(30, ge=1)
    operator_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    allowed_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8080", "http://localhost:8080"])
    login_max_failures: int = Field(5, ge=1)
    login_window_seconds: int = Field(300, ge=1)
    # Reverse proxies (CIDR) whose X-Forwarded-For / X-Forwarded-Proto are believed; empty: none.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("session_key")
    @classmethod
    def _key_length(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if secret and len(secret) < MIN_SESSION_KEY_CHARS:
            raise ValueError(
                f"must be empty or at least {MIN_SESSION_KEY_CHARS} characters (e.g. openssl rand -hex 32)"
            )
        return value

    @field_validator("operator_networks", "trusted_proxies")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for text in values:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError as exc:
                raise ValueError(f"{text!r} is not a CIDR network: {exc}") from None
        return values


@dataclass(frozen=True)
class AccessSettings:
    """What access reads of the configuration (access.keys.SETTINGS), handed over by the composition root:
    the `[security]` section, whether cti serves HTTPS itself, and the department codes accounts may carry."""

    security: SecuritySettings
    tls: bool = False  # cti itself serves HTTPS: cookies are Secure whatever the request says
    known_departments: tuple[str, ...] = ()
