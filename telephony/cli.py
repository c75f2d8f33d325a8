"""Subcommands of this package for the `cti` command.

``cti replay FILE [--json] [--filtered]``: reads a recorded AMI session (the format of
tests/fixtures/ami/*.txt, or raw AMI text) through the same frame parser and call tracker the
server uses, and prints the domain events. The tracker's clock is the capture's ``# rx=`` time of
each frame when present. Output carries caller numbers (it is the data); nothing is logged.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cti.core.clock import TOKYO, system_clock
from telephony.ami.filters import adapter_keeps
from telephony.events import DomainEvent, describe
from telephony.frames import FrameParser, capture_wire_bytes, read_capture_text
from telephony.tracker import CallSnapshot, CallTracker, TrackerConfig

EXIT_USAGE = 2


@dataclass
class ReplayResult:
    frames: int
    events: list[DomainEvent]
    live: list[CallSnapshot]
    connections: int = 1


def replay_text(
    text: str,
    event_filter: Callable[[Mapping[str, str]], bool] | None = None,
    on_event: Callable[[DomainEvent], None] | None = None,
) -> ReplayResult:
    """Replay a capture's text: each frame's wire bytes go through `FrameParser` and `CallTracker`."""
    now: list[datetime] = [system_clock()]
    tracker = CallTracker(lambda: now[0])
    parser = FrameParser()
    events: list[DomainEvent] = []
    frames = 0
    connections = 1
    captured = list(read_capture_text(text))
    # The banner first, then every frame exactly as it was on the wire (CRLF, extra CRLFs).
    parser.feed(capture_wire_bytes([], banner="Asterisk Call Manager/11.0.0"))
    for item in captured:
        if item.new_connection:  # Asterisk restarted / the link dropped: a new banner, a fresh parser
            parser.reset()
            parser.feed(capture_wire_bytes([], banner="Asterisk Call Manager/11.0.0"))
            connections += 1
        if item.rx is not None:
            now[0] = datetime.fromtimestamp(item.rx, TOKYO)
        for frame in parser.feed(capture_wire_bytes([item], banner="")):
            frames += 1
            if event_filter is not None and not event_filter(frame):
                continue
            for event in tracker.feed(frame):
                events.append(event)
                if on_event is not None:
                    on_event(event)
    return ReplayResult(frames, events, tracker.live_calls(), connections)


def adapter_filter() -> Callable[[Mapping[str, str]], bool]:
    """What the AMI adapter lets through (its per-session filters), to replay as production sees it."""
    config = TrackerConfig()
    contexts = config.callback_contexts | config.transfer_contexts

    def keep(frame: Mapping[str, str]) -> bool:
        return adapter_keeps(frame, newexten_contexts=contexts)

    return keep


def register(sub: argparse._SubParsersAction[Any]) -> None:
    replay = sub.add_parser(
        "replay",
        help="replay a recorded AMI session through the call tracker and print the domain events",
    )
    replay.add_argument("file", metavar="FILE", help="AMI capture (tests/fixtures/ami/*.txt format)")
    replay.add_argument("--json", action="store_true", help="one JSON object per line")
    replay.add_argument(
        "--filtered",
        action="store_true",
        help="drop the events the AMI adapter filters out (as the server sees the stream)",
    )
    replay.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cti replay: cannot read {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    event_filter = adapter_filter() if args.filtered else None

    def emit(event: DomainEvent) -> None:
        print(event.to_json() if args.json else describe(event))

    result = replay_text(text, event_filter, emit)
    print(
        f"cti replay: {result.frames} frames, {len(result.events)} domain events, "
        f"{len(result.live)} calls still live, {result.connections} AMI connection(s)",
        file=sys.stderr,
    )
    return 0
