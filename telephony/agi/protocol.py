"""FastAGI wire format, without I/O: the request header block, commands and responses.

Asterisk opens a TCP connection for ``AGI(agi://host:port/script,arg1,...)`` and sends
``agi_<name>: <value>`` lines ending with one empty line; the server then writes commands
(``SET VARIABLE NAME "value"``), each answered by a line like ``200 result=1``.
This module parses and formats those lines; telephony/agi/server.py does the socket work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Limits on what a request may look like; anything larger is not Asterisk talking to us.
MAX_LINE_BYTES = 4096
MAX_HEADER_LINES = 128

_HEADER_NAME = re.compile(r"agi_[a-z0-9_]+")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESPONSE = re.compile(r"(?P<code>\d{3})(?P<sep>[ -])(?P<rest>.*)")
_RESULT = re.compile(r"result=(?P<result>-?\S*)(?:\s+\((?P<data>.*)\))?(?:\s+endpos=\S+)?\s*$")


class AgiProtocolError(ValueError):
    """The peer did not speak FastAGI; the message says what was wrong (never the raw content)."""


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """One FastAGI request: the script name, its arguments and the other ``agi_*`` headers."""

    script: str
    args: tuple[str, ...]
    headers: Mapping[str, str] = field(repr=False)

    @property
    def uniqueid(self) -> str:
        return self.headers.get("agi_uniqueid", "")

    @property
    def context(self) -> str:
        return self.headers.get("agi_context", "")

    @property
    def extension(self) -> str:
        return self.headers.get("agi_extension", "")


@dataclass(frozen=True, slots=True)
class AgiResponse:
    """A response line: ``200 result=1``, ``510 Invalid or unknown command``, ``HANGUP``..."""

    code: int
    result: str | None
    data: str | None
    text: str

    @property
    def ok(self) -> bool:
        return self.code == 200


HANGUP = AgiResponse(code=511, result=None, data=None, text="HANGUP")


def decode_line(raw: bytes) -> str:
    """One line off the wire: bytes -> text without the line end. Rejects non-UTF-8 and NULs."""
    if len(raw) > MAX_LINE_BYTES:
        raise AgiProtocolError(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AgiProtocolError(f"line is not UTF-8 (byte {exc.start})") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if "\x00" in text:
        raise AgiProtocolError("line contains a NUL byte")
    return text


def parse_header_line(line: str) -> tuple[str, str]:
    """``agi_name: value`` -> (name, value). The value may be empty (``agi_accountcode: ``)."""
    name, sep, value = line.partition(":")
    if not sep:
        raise AgiProtocolError("header line without ':'")
    if not _HEADER_NAME.fullmatch(name):
        raise AgiProtocolError("header name is not agi_<name>")  # content is never echoed (logs)
    return name, value.removeprefix(" ")


def parse_request(lines: list[str]) -> AgiRequest:
    """The header block (without the final empty line) -> AgiRequest.

    The script is ``agi_network_script`` (Asterisk sends the URL path there), else the path of
    ``agi_request``. Arguments are ``agi_arg_1`` ... in order, stopping at the first gap.
    """
    if not lines:
        raise AgiProtocolError("empty request: no agi_* headers before the blank line")
    if len(lines) > MAX_HEADER_LINES:
        raise AgiProtocolError(f"more than {MAX_HEADER_LINES} header lines")
    headers: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        try:
            name, value = parse_header_line(line)
        except AgiProtocolError as exc:
            raise AgiProtocolError(f"header line {number}: {exc}") from None
        if name in headers:
            raise AgiProtocolError(f"header line {number}: {name} appears twice")
        headers[name] = value
    if "agi_request" not in headers:
        raise AgiProtocolError("agi_request header missing")
    script = headers.get("agi_network_script") or urlsplit(headers["agi_request"]).path
    script = script.split("?", 1)[0].strip("/")
    args: list[str] = []
    while f"agi_arg_{len(args) + 1}" in headers:
        args.append(headers[f"agi_arg_{len(args) + 1}"])
    return AgiRequest(script=script, args=tuple(args), headers=headers)


def quote(value: str) -> str:
    """A value as one double-quoted AGI argument (backslash and quote escaped)."""
    if any(c in value for c in "\r\n\x00"):
        raise ValueError("an AGI argument cannot contain line breaks or NUL")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_variable(name: str, value: str) -> bytes:
    """``SET VARIABLE NAME "value"`` as bytes ready to write."""
    if not _VARIABLE_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid channel variable name")
    return f"SET VARIABLE {name} {quote(value)}\n".encode()


_MSET_SAFE = re.compile(r"[^,\"\\\s|]*")


def set_variables_at_once(variables: Mapping[str, str]) -> bytes | None:
    """All variables in ONE command, ``EXEC MSet "A=1,B=2"``: one round trip instead of one per
    variable (each costs the caller a wait on Asterisk's side). None when a value cannot travel
    inside MSet's comma-separated argument; then set them one by one."""
    for name, value in variables.items():
        if not _VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid channel variable name")
        if not _MSET_SAFE.fullmatch(value):
            return None
    pairs = ",".join(f"{name}={value}" for name, value in variables.items())
    return f'EXEC MSet "{pairs}"\n'.encode()


def parse_response(line: str) -> AgiResponse:
    """One response line (``200 result=1``, ``510 ...``, ``HANGUP``)."""
    if line.strip() == "HANGUP":
        return HANGUP
    match = _RESPONSE.fullmatch(line)
    if match is None:
        raise AgiProtocolError("response is not '<code> <text>'")
    code, rest = int(match["code"]), match["rest"]
    result = _RESULT.match(rest) if code == 200 else None
    return AgiResponse(
        code=code,
        result=result["result"] if result else None,
        data=result["data"] if result else None,
        text=rest,
    )


def starts_usage_block(line: str) -> bool:
    """``520-...`` starts a multi-line usage text that ends with a ``520 ...`` line."""
    return line.startswith("520-")


def ends_usage_block(line: str) -> bool:
    return line.startswith("520 ")
