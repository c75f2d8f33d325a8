"""Configuration: TOML + environment, clear errors naming key and file, secrets masked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from cti.cli import main
from cti.config import ConfigError, Settings, load_settings, masked

EXAMPLE = Path(__file__).resolve().parents[2] / "cti.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cti.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_states_the_defaults() -> None:
    assert load_settings(EXAMPLE, {}) == Settings()


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths += _field_paths(annotation, f"{prefix}{key}.")
        else:
            paths.append(prefix + key)
    return paths


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    def documented(path: str) -> bool:
        leaf = re.escape(path.rsplit(".", 1)[-1])
        return re.search(rf"^#?\s*({leaf}\s*=|\[\[{re.escape(path)}\]\])", text, re.MULTILINE) is not None

    missing = [path for path in _field_paths(Settings) if not documented(path)]
    assert missing == []


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = 9001\nhost = '0.0.0.0'\n")
    settings = load_settings(path, {"CTI_HTTP__PORT": "9002"})
    assert settings.http.port == 9002
    assert settings.http.host == "0.0.0.0"  # the rest of the section still comes from the file


def test_secret_from_file_and_masked_everywhere(tmp_path: Path) -> None:
    secret_file = tmp_path / "ami-secret"
    secret_file.write_text("s3cret-value\n", encoding="utf-8")
    settings = load_settings(None, {"CTI_AMI__SECRET_FILE": str(secret_file)})
    assert settings.ami.secret.get_secret_value() == "s3cret-value"
    dumped = json.dumps(masked(settings))
    assert "s3cret-value" not in dumped
    assert masked(settings)["ami"]["secret"] == "********"
    assert "s3cret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[http]\nprot = 1\n", "http.prot: unknown key"),
        ("[http]\nport = 'eighty'\n", "http.port:"),
        ("[calendar.call_center]\nopens = '23:00'\ncloses = '22:00'\n", "calendar.call_center:"),
        ("[calendar.office]\nclosed_month_days = ['13-01']\n", "calendar.office.closed_month_days"),
        ("[[calendar.overrides]]\nkind='closure'\nstart=2027-01-01T00:00:00\nend=2027-01-02T00:00:00+09:00\n"
         "reason='x'\n", "UTC offset"),
        ("[http\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", {})


def test_load_settings_leaves_the_process_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTI_HTTP__PORT", "7000")
    assert load_settings(None, {"CTI_HTTP__PORT": "7001"}).http.port == 7001
    import os

    assert os.environ["CTI_HTTP__PORT"] == "7000"


def test_check_config_cli_masks_secrets_and_exits_2_on_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[ami]\nsecret = 'do-not-print'\n")
    assert main(["check-config", str(path)]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert out["ami"]["secret"] == "********"
    bad = write(tmp_path, "[ami]\nport = 0\n")
    with pytest.raises(SystemExit) as info:
        main(["check-config", str(bad)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "ami.port" in err and str(bad) in err
