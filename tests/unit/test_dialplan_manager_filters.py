"""The shipped manager.conf carries exactly the event filters the AMI adapter relies on."""

from __future__ import annotations

from pathlib import Path

from telephony.ami.filters import manager_conf_eventfilters

MANAGER_CONF = Path(__file__).resolve().parents[2] / "dialplan" / "manager.conf"


def cti_section_lines() -> list[str]:
    lines, inside = [], False
    for raw in MANAGER_CONF.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("["):
            inside = line == "[cti]"
        elif inside and line and not line.startswith(";"):
            lines.append(line)
    return lines


def test_cti_user_has_the_adapters_event_filters() -> None:
    shipped = [line for line in cti_section_lines() if line.startswith("eventfilter")]
    assert shipped == list(manager_conf_eventfilters())
    assert any("VarSet" in line and "^_{0,2}CTI_" in line for line in shipped)


def test_cti_user_has_least_privilege() -> None:
    settings = dict(line.split("=", 1) for line in cti_section_lines() if not line.startswith("eventfilter"))
    settings = {k.strip(): v.strip() for k, v in settings.items()}
    assert "system" not in settings["write"].split(",") and "command" not in settings["write"].split(",")
    assert int(settings["writetimeout"]) >= 1000


def test_inherited_cti_variables_pass_the_filter() -> None:
    from telephony.ami.filters import adapter_keeps

    for variable in ("CTI_ROUTE", "__CTI_CATEGORY", "_CTI_CALLBACK_ID"):
        assert adapter_keeps({"Event": "VarSet", "Variable": variable})
    for variable in ("___CTI_X", "XCTI_", "MEMBERINTERFACE"):
        assert not adapter_keeps({"Event": "VarSet", "Variable": variable})
