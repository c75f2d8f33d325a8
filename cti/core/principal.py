"""Who is making a request: set by the auth middleware, read by every scoped handler. Pure (no aiohttp)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    DEPARTMENT = "department"  # department staff; `department` says which
    ADMIN = "admin"
    FAQ_EDITOR = "faq_editor"  # writes the FAQ in the browser (/faq/editor/); nothing else


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: Role
    department: str | None  # department code for DEPARTMENT staff (and 区政情報課 users)
    client_ip: str
    display_name: str = ""
