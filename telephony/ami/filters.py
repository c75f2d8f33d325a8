"""Which AMI events cti receives: the login event mask, the per-session ``Filter`` actions, the same
filters as manager.conf ``eventfilter`` lines, and their Python mirror for replays. Pure (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Login event classes (least privilege): call/agent for channels and queues, dialplan for the
# VarSet of CTI_* variables, system for FullyBooted/Shutdown. No reporting/dtmf/cdr/security...
LOGIN_EVENT_MASK = "call,agent,dialplan,system"

# Events the tracker, call control and presence use; everything else is filtered out by
# Asterisk itself (Newexten and non-CTI VarSet are most of the traffic of a call).
DEFAULT_EVENT_NAMES: tuple[str, ...] = (
    "Newchannel",
    "Newstate",
    "NewCallerid",
    "NewConnectedLine",
    "Hangup",
    "HangupRequest",
    "Rename",
    "BlindTransfer",
    "AttendedTransfer",
    "Hold",
    "Unhold",
    "MusicOnHoldStart",
    "MusicOnHoldStop",
    "DialBegin",
    "DialEnd",
    "DialState",
    "BridgeCreate",
    "BridgeDestroy",
    "BridgeEnter",
    "BridgeLeave",
    "LocalBridge",
    "AGIExecStart",
    "AGIExecEnd",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "AgentDump",
    "QueueMemberStatus",
    "QueueMemberPause",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberRinginuse",
    "OriginateResponse",
    "FullyBooted",
    "Shutdown",
)
# VarSet is let through only for our own variables (CTI_CATEGORY, CTI_ROUTE, CTI_CALLBACK_ID...).
# The dialplan sets inherited variables (`Set(__CTI_CATEGORY=...)`), which Asterisk reports with
# their underscores (`Variable: __CTI_CATEGORY`): zero to two leading underscores are ours too.
VARSET_PREFIX = "CTI_"
VARSET_REGEX = f"^_{{0,2}}{VARSET_PREFIX}"
_OUR_VARIABLE = re.compile(VARSET_REGEX)
DEFAULT_NEWEXTEN_CONTEXTS = ("departments", "outbound-callback")  # tracker: callback + transfer contexts
_CONTEXT = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def event_filters(names: Iterable[str], newexten_contexts: Iterable[str] = ()) -> list[dict[str, str]]:
    """Per-session include filters (Asterisk's advanced filter syntax, Asterisk 20.12/21.7/22.2+).

    Newexten (a third of a call's events) passes only where the tracker reads it: in
    `newexten_contexts` (callback and transfer contexts) and for the Hangup application.
    """
    filters = [
        {"Action": "Filter", "Operation": "Add", "MatchCriteria": f"action(include),name({name})"} for name in names
    ]
    filters.append(
        {
            "Action": "Filter",
            "Operation": "Add",
            "MatchCriteria": "action(include),name(VarSet),header(Variable),method(regex)",
            "Filter": VARSET_REGEX,
        }
    )
    filters.append(
        {
            "Action": "Filter",
            "Operation": "Add",
            "MatchCriteria": "action(include),name(Newexten),header(Application),method(regex)",
            "Filter": "^Hangup$",
        }
    )
    contexts = sorted(set(newexten_contexts))
    for context in contexts:
        if not _CONTEXT.fullmatch(context):
            raise ValueError(f"dialplan context {context!r}: only letters, digits, '_' and '-' are allowed")
    if contexts:
        filters.append(
            {
                "Action": "Filter",
                "Operation": "Add",
                "MatchCriteria": "action(include),name(Newexten),header(Context),method(regex)",
                "Filter": "^(" + "|".join(contexts) + ")$",  # '-' is literal in POSIX ERE
            }
        )
    return filters


def adapter_keeps(
    event: Mapping[str, str],
    event_names: Iterable[str] = DEFAULT_EVENT_NAMES,
    newexten_contexts: Iterable[str] = DEFAULT_NEWEXTEN_CONTEXTS,
) -> bool:
    """Python mirror of `event_filters`: would Asterisk send us this event (e.g. for replays)?"""
    name = event.get("Event", "")
    if name == "VarSet":
        return _OUR_VARIABLE.match(event.get("Variable", "")) is not None
    if name == "Newexten":
        return event.get("Application") == "Hangup" or event.get("Context", "") in set(newexten_contexts)
    return name in set(event_names)


def manager_conf_eventfilters(
    event_names: Iterable[str] = DEFAULT_EVENT_NAMES,
    newexten_contexts: Iterable[str] = DEFAULT_NEWEXTEN_CONTEXTS,
) -> list[str]:
    """The same filters as manager.conf lines for the cti user: the `Filter` action needs
    write=system, which the least-privileged user does not have, so production filters there."""
    lines = []
    for action in event_filters(event_names, newexten_contexts):
        lines.append(f"eventfilter({action['MatchCriteria']}) = {action.get('Filter', '')}".rstrip())
    return lines
