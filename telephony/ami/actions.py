"""AMI actions: how one is written to the wire, what an answer is, and the errors an action can end
with. Pure (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

ActionValue = str | Sequence[str]


class AmiError(Exception):
    """Base of every AMI link error."""


class AmiActionError(AmiError):
    """Asterisk answered an action with an error; `message` is Asterisk's own text."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI action {action} failed: {message}")
        self.action = action
        self.message = message


class AmiTimeout(AmiActionError):
    """No complete answer within the action timeout; the action may or may not have run."""


class AmiNotConnected(AmiActionError):
    """The link is not up; the action was not sent."""


class AmiConnectionLost(AmiActionError):
    """The link dropped while the action was pending; its outcome is unknown and it is not re-sent."""


@dataclass(frozen=True)
class AmiResponse:
    """An action's Response headers plus, for list actions, the list's events (Complete included)."""

    headers: dict[str, str]
    events: list[dict[str, str]] = field(default_factory=list)


def encode_action(action: Mapping[str, ActionValue]) -> bytes:
    """Serialise an action; a CR or LF inside a value (an injected extra header) is refused."""
    lines: list[str] = []
    for key, value in action.items():
        values = [value] if isinstance(value, str) else list(value)
        for item in values:
            if not isinstance(item, str):
                raise TypeError(f"AMI header {key!r}: value must be str, got {type(item).__name__}")
            if "\r" in item or "\n" in item or "\r" in key or "\n" in key:
                raise ValueError(f"AMI header {key!r}: line breaks are not allowed in values")
            lines.append(f"{key}: {item}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def action_name(action: Mapping[str, ActionValue]) -> str:
    value = action.get("Action", "?")
    return value if isinstance(value, str) else "?"
