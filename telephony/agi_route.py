"""The routing decision for an inbound call, as the channel variables the dialplan reads.

Pure: the calendars and the instant come in, a mapping of variable -> value goes out.
dialplan/extensions.conf documents how each variable is used.
"""

from __future__ import annotations

from datetime import datetime

from cti.calendar import Calendars
from cti.clock import require_aware

ROUTE_VARIABLES = ("CTI_ROUTE", "CTI_CLOSED_REASON", "CTI_OFFICE", "CTI_NEXT_OPEN", "CTI_NEXT_OPEN_EPOCH")


def route_variables(calendars: Calendars, at: datetime) -> dict[str, str]:
    """Open/closed for the call center at `at`, why, whether the office is open, next opening.

    Every variable is always set (empty when not applicable), so a value left over from an
    earlier AGI run on the same channel can never leak into this decision.
    """
    require_aware(at, "at")
    center = calendars.call_center(at)
    office = calendars.office(at)
    next_open = center.next_open if not center.open else None
    return {
        "CTI_ROUTE": "open" if center.open else "closed",
        "CTI_CLOSED_REASON": center.reason.value if center.reason is not None else "",
        "CTI_OFFICE": "open" if office.open else "closed",
        "CTI_NEXT_OPEN": next_open.isoformat() if next_open is not None else "",
        "CTI_NEXT_OPEN_EPOCH": str(int(next_open.timestamp())) if next_open is not None else "",
    }
