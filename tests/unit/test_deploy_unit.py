"""Issue 14.5: deploy/cti.service is a valid systemd unit (systemd-analyze verify), sandboxed
(systemd-analyze security --offline), runs as its own user, may write only the store and the
backups, and hands its secrets over as files that cti's configuration really reads."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cti.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "cti.service"
MAX_EXPOSURE = "20"  # systemd-analyze: 0 (locked down) .. 100 (no sandbox), shown as 0.0-10.0; the unit scores 14


def fields() -> dict[str, list[str]]:
    """Every `Key=value` of the [Service] section, repeated keys kept in order."""
    found: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@pytest.fixture
def installed_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's `cti` (verify checks the binary exists)."""
    cti = Path(sys.executable).with_name("cti")
    assert cti.is_file(), "the cti entry point is installed in the venv (uv sync)"
    text = UNIT.read_text(encoding="utf-8").replace("/opt/cti/.venv/bin/cti", str(cti))
    copy = tmp_path / "cti.service"
    copy.write_text(text, encoding="utf-8")
    return copy


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze is installed by scripts/setup (Debian package systemd)"
    return found


def test_systemd_analyze_verify_accepts_the_unit(installed_copy: Path) -> None:
    done = subprocess.run([systemd_analyze(), "verify", str(installed_copy)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cti.service" not in done.stderr, done.stderr  # no warnings about the unit either


def test_the_sandbox_exposure_stays_low(installed_copy: Path) -> None:
    done = subprocess.run([systemd_analyze(), "security", "--offline=yes", f"--threshold={MAX_EXPOSURE}",
                           "--no-pager", str(installed_copy)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


def test_it_runs_as_its_own_unprivileged_user_in_a_read_only_system() -> None:
    f = fields()
    assert f["User"] == ["cti"] and f["Group"] == ["cti"]
    assert f["ExecStart"][0].split()[1:3] == ["serve", "--config"]
    for key, value in {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
        "PrivateDevices": "yes", "RestrictSUIDSGID": "yes", "UMask": "0077",
    }.items():
        assert f[key] == [value], key
    assert f["CapabilityBoundingSet"] == [""] and f["AmbientCapabilities"] == [""]
    writable = [p for line in f["ReadWritePaths"] for p in line.split()]
    assert sorted(writable) == ["/var/lib/cti/backups", "/var/lib/cti/store"]
    sysusers = (ROOT / "deploy" / "cti.sysusers.conf").read_text(encoding="utf-8")
    assert "u cti " in sysusers and "nologin" in sysusers
    tmpfiles = (ROOT / "deploy" / "cti.tmpfiles.conf").read_text(encoding="utf-8")
    for directory in writable:
        assert f"d {directory} 0700 cti cti" in " ".join(tmpfiles.split()), directory


def test_secrets_come_from_credential_files_that_the_configuration_reads(tmp_path: Path) -> None:
    f = fields()
    credentials = dict(line.split(":", 1) for line in f["LoadCredential"])
    assert all(path.startswith("/etc/cti/") for path in credentials.values())
    environ: dict[str, str] = {}
    for line in f["Environment"]:
        key, _, value = line.partition("=")
        assert key.startswith("CTI_") and key.endswith("_FILE") and value.startswith("%d/")
        name = value.removeprefix("%d/")
        assert name in credentials, name
        (tmp_path / name).write_text(f"{name}-value-" + "x" * 40 + "\n", encoding="utf-8")
        environ[key] = str(tmp_path / name)
    settings = load_settings(None, environ)
    assert settings.security.session_key.get_secret_value() == "session_key-value-" + "x" * 40
    assert settings.ami.secret.get_secret_value() == "ami_secret-value-" + "x" * 40
    assert not any(key.startswith("CTI_") and not key.endswith("_FILE") for key in environ)


def test_the_deployment_guide_documents_the_unit() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    for needle in ("deploy/cti.service", "systemd-sysusers", "/etc/cti/secrets/session_key", "tls_cert",
                   "trusted_proxies", "/var/lib/cti/store"):
        assert needle in guide, needle
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    assert parser["Install"]["WantedBy"] == "multi-user.target"
