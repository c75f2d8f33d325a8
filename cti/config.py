"""Settings: one TOML file plus CTI_* environment overrides, validated before anything starts.

Environment overrides use a double underscore between levels, e.g. ``CTI_AMI__SECRET``.
Secrets may also come from a file: ``CTI_AMI__SECRET_FILE=/run/secrets/ami``.
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from access.settings import SecuritySettings
from cti.calendar.settings import CalendarSettings, HoursSettings, OverrideSettings
from faq.settings import FaqSettings
from records.settings import DepartmentScreenSettings, RecordsSettings
from screenpop.settings import DeskSettings, HubSettings
from supervision.settings import AlertSettings
from telephony.settings import AgiSettings, AmiSettings, CallControlSettings

SECRET_FILE_SUFFIX = "_FILE"
# The sections' classes live with the package that reads them; re-exported here for the callers of old.
__all__ = [
    "CalendarSettings", "ConfigError", "HoursSettings", "OverrideSettings", "Settings", "load_settings", "masked",
]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    # HTTPS: both PEM files, or neither (plain HTTP, e.g. behind a TLS-terminating proxy).
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return self


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = Path("var/cti.sqlite3")
    # PostgreSQL instead of the SQLite file (cti/pg_gateway.py): "postgresql://user@host:5432/cti".
    # Several cti nodes may share one PostgreSQL; None (the default) keeps the one-machine SQLite store.
    url: str | None = None

    @property
    def target(self) -> Path | str:
        """What the gateway opens: the PostgreSQL URL when set, else the SQLite file."""
        return self.url or self.path


class LoggingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = Field(True, alias="json")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CTI_", env_nested_delimiter="__", extra="forbid", populate_by_name=True
    )

    http: HttpSettings = Field(default_factory=HttpSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    ami: AmiSettings = Field(default_factory=AmiSettings)
    agi: AgiSettings = Field(default_factory=AgiSettings)
    call_control: CallControlSettings = Field(default_factory=CallControlSettings)
    records: RecordsSettings = Field(default_factory=RecordsSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    hub: HubSettings = Field(default_factory=HubSettings)
    desk: DeskSettings = Field(default_factory=DeskSettings)
    faq: FaqSettings = Field(default_factory=FaqSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    department_screen: DepartmentScreenSettings = Field(default_factory=DepartmentScreenSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (passed as init kwargs).
        return (env_settings, init_settings)


def load_settings(path: Path | str | None, environ: dict[str, str] | None = None) -> Settings:
    """Read, merge and validate; raise ConfigError naming the file and the key on any problem."""
    environ = dict(os.environ if environ is None else environ)
    source = str(path) if path else "(defaults)"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: configuration file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    _apply_secret_files(data, environ, source)
    saved = {k: v for k, v in os.environ.items() if k.startswith("CTI_")}
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update({k: v for k, v in environ.items() if k.startswith("CTI_") and not _is_file_key(k)})
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    finally:
        for key in [k for k in os.environ if k.startswith("CTI_")]:
            del os.environ[key]
        os.environ.update(saved)


def _is_file_key(key: str) -> bool:
    return key.endswith(SECRET_FILE_SUFFIX)


def _apply_secret_files(data: dict[str, Any], environ: dict[str, str], source: str) -> None:
    """CTI_SECTION__KEY_FILE=/path puts the file's first line into section.key."""
    for key, file_path in environ.items():
        if not (key.startswith("CTI_") and _is_file_key(key)):
            continue
        parts = key[len("CTI_") : -len(SECRET_FILE_SUFFIX)].lower().split("__")
        try:
            value = Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read secret file {file_path}: {exc.strerror}") from None
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration ({exc.error_count()} problem(s)):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(root)"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"  - {key}: {message}")
    return "\n".join(lines)


def masked(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, every secret masked."""
    plain: dict[str, Any] = _mask(settings.model_dump(mode="python", by_alias=True))
    return plain


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, (time, datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value
