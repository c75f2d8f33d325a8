"""The routing decision for an inbound call, as the channel variables the dialplan reads.

Pure: the calendars and the instant come in, a mapping of variable -> value goes out.
dialplan/extensions.conf documents how each variable is used.
"""

from __future__ import annotations

from datetime import datetime

from cti.calendar.rules import Calendars
from cti.core.clock import require_aware

ROUTE_VARIABLES = ("CTI_ROUTE", "CTI_OFFICE", "CTI_CLOSED_REASON", "CTI_NEXT_OPEN", "CTI_NEXT_OPEN_EPOCH")


def route_variables(calendars: Calendars, at: datetime) -> dict[str, str]:
    """Open/closed for the call center at `at`, why, whether the office is open, next opening.

    Only meaningful variables are returned: an open call center gives CTI_ROUTE and CTI_OFFICE
    (two AGI round trips, the common case); a closed one adds CTI_CLOSED_REASON and, unless the
    next opening is unknown (emergency close), CTI_NEXT_OPEN and CTI_NEXT_OPEN_EPOCH. In the
    dialplan an unset variable reads as empty, exactly like an empty one.
    """
    require_aware(at, "at")
    center = calendars.call_center(at)
    office = calendars.office(at)
    variables = {
        "CTI_ROUTE": "open" if center.open else "closed",
        "CTI_OFFICE": "open" if office.open else "closed",
    }
    if not center.open:
        variables["CTI_CLOSED_REASON"] = center.reason.value if center.reason is not None else "closure"
        if center.next_open is not None:
            variables["CTI_NEXT_OPEN"] = center.next_open.isoformat()
            variables["CTI_NEXT_OPEN_EPOCH"] = str(int(center.next_open.timestamp()))
    return variables
