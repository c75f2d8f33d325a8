"""`cti calendar at DATETIME [--json]`."""

from __future__ import annotations

import json

import pytest

from cti.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_shape_from_the_issue(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: object) -> None:
    monkeypatch.chdir(str(tmp_path))
    code, out, _ = run(capsys, "calendar", "at", "2026-12-28T18:00:00+09:00", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["at"] == "2026-12-28T18:00:00+09:00"
    assert report["call_center"]["open"] is True
    assert report["call_center"]["reason"] is None and report["call_center"]["next_open"] is None
    assert report["office"]["open"] is False
    assert report["office"]["reason"]
    assert report["office"]["next_open"] == "2027-01-04T08:30:00+09:00"
    assert report["handover_date"] == "2027-01-04"


def test_closed_call_center_and_holiday_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calendar", "at", "2026-05-06T10:00:00+09:00", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["office"]["reason"] == "holiday"
    assert report["office"]["holiday_name"] == "振替休日"
    _, out, _ = run(capsys, "calendar", "at", "2027-01-02T10:00:00+09:00", "--json")
    assert json.loads(out)["call_center"] == {
        "open": False, "reason": "year_end", "reason_text": "年末年始のため受付を休止しています",
        "holiday_name": None, "next_open": "2027-01-04T08:00:00+09:00",
    }


def test_plain_output_is_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calendar", "at", "2026-12-28T18:00:00+09:00")
    assert code == 0
    assert "コールセンター: 開いています" in out
    assert "引き継ぎ日: 2027-01-04" in out


@pytest.mark.parametrize("instant", ["2026-12-28T18:00:00", "yesterday", "2026-13-01T00:00:00+09:00"])
def test_bad_instants_exit_2_with_a_clear_message(capsys: pytest.CaptureFixture[str], instant: str) -> None:
    code, out, err = run(capsys, "calendar", "at", instant, "--json")
    assert code == 2
    assert out == ""
    assert "cti calendar at:" in err
