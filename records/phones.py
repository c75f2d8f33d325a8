"""Phone numbers as people read them: 03-1234-5678, 0422-51-5131, 042-626-1111, 090-1234-5678.

Japan's area codes are one to four digits after the 0 and the split depends on the number's range
(0422 Musashino but 042-6 Hachioji), so hyphens cannot be placed by a rule of thumb. The MIC's
numbering plan is carried by libphonenumber's metadata (the `phonenumbers` package, kept up to date
by Google's project); we keep no table of our own. Display only: what is stored and dialled is the
national digits (records.rules.normalise_phone).
"""

from __future__ import annotations

import phonenumbers


def display_phone(digits: str | None) -> str | None:
    """National digits with hyphens where people put them; anything that is not a Japanese number
    libphonenumber knows is returned as it came (None stays None)."""
    if not digits:
        return digits
    try:
        number = phonenumbers.parse(digits, "JP")
    except phonenumbers.NumberParseException:
        return digits
    if not phonenumbers.is_valid_number_for_region(number, "JP"):
        return digits
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
