"""Phone numbers shown as people read them (records/phones.py): the split follows the area code's
length, which a rule of thumb gets wrong outside Tokyo and Osaka."""

from __future__ import annotations

import pytest

from records.phones import display_phone


@pytest.mark.parametrize(
    ("digits", "shown"),
    [
        ("0312345678", "03-1234-5678"),  # Tokyo 23 wards: 2-digit area code
        ("0665551234", "06-6555-1234"),  # Osaka
        ("0422515131", "0422-51-5131"),  # Musashino: 4-digit area code (the rule of thumb said 042-251-5131)
        ("0426261111", "042-626-1111"),  # Hachioji: 3-digit, although it also starts with 042
        ("0466221111", "0466-22-1111"),  # Fujisawa
        ("0112345678", "011-234-5678"),  # Sapporo
        ("09012345678", "090-1234-5678"),  # mobile
        ("05012345678", "050-1234-5678"),  # IP phone
    ],
)
def test_numbers_are_split_where_people_split_them(digits: str, shown: str) -> None:
    assert display_phone(digits) == shown


@pytest.mark.parametrize("raw", ["", None, "123", "anonymous", "0501234567", "+1 202 555 0100"])
def test_what_is_not_a_japanese_number_is_shown_as_it_came(raw: str | None) -> None:
    assert display_phone(raw) == raw
