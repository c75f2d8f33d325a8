"""screenpop/web/phone.js (the pages' phone formatter), run in Node (installed by scripts/setup)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "screenpop" / "web" / "phone.js"

CASES = {
    "0312345678": "03-1234-5678",
    "0612345678": "06-1234-5678",
    "09012345678": "090-1234-5678",
    "05012345678": "050-1234-5678",
    "0451234567": "045-123-4567",
    "": "",
    "110": "110",
    "abc": "abc",
}


@pytest.mark.parametrize(("digits", "shown"), CASES.items())
def test_format_phone(digits: str, shown: str) -> None:
    script = (f"import {{ formatPhone }} from {json.dumps(MODULE.as_uri())};"
              f"process.stdout.write(formatPhone({json.dumps(digits)}));")
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    assert out.stdout == shown
