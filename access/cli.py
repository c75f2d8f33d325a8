"""`cti user ...`: staff accounts, pre-registered by an admin (no self sign-up).

cti user add ID --role R [--department D] [--name N] [--password-stdin]
cti user disable ID
cti user enable ID
cti user reset-password ID [--password-stdin]
cti user list [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cti.core.cli import add_config_option, print_json
from cti.core.principal import Role

EXIT_FAILED = 1
EXIT_USAGE = 2

T = TypeVar("T")


def register_users(sub: argparse._SubParsersAction[Any]) -> None:
    user = sub.add_parser("user", help="staff accounts (operators, supervisors, department staff, admins)")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    add = user_sub.add_parser("add", help="register an account (the password is asked twice)")
    add.add_argument("user_id", metavar="ID", help="login id: 2-32 of a-z 0-9 . _ -")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--department", metavar="CODE", help="department code (records.departments), role department")
    add.add_argument("--name", default="", metavar="NAME", help="display name shown on screens")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _common(add)
    add.set_defaults(func=_add)

    disable = user_sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("user_id", metavar="ID")
    _common(disable)
    disable.set_defaults(func=_disable)

    enable = user_sub.add_parser("enable", help="re-enable a disabled account")
    enable.add_argument("user_id", metavar="ID")
    _common(enable)
    enable.set_defaults(func=_enable)

    reset = user_sub.add_parser("reset-password", help="set a new password and end the account's sessions")
    reset.add_argument("user_id", metavar="ID")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _common(reset)
    reset.set_defaults(func=_reset)

    lst = user_sub.add_parser("list", help="list accounts")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    _common(lst)
    lst.set_defaults(func=_list)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH",
                        help="SQLite database or postgresql:// URL (default: the configuration's store.url, else"
                             " store.path)")
    add_config_option(parser)


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n") or None
    first = getpass.getpass("パスワード: ")
    second = getpass.getpass("もう一度: ")
    if first != second:
        print("cti user: パスワードが一致しません", file=sys.stderr)
        return None
    return first


def _run(args: argparse.Namespace, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(AccountStore)` against the database gateway (the same units of work as the server)."""
    from access.accounts import MIGRATIONS, AccountStore
    from cti.core.clock import system_clock

    db_path = args.db or args.load_settings().store.target  # --db: a SQLite file or a PostgreSQL URL

    async def main() -> T:
        # cti.cli hands the store's opener over: the SQLite file or PostgreSQL (store.url)
        db = await args.open_store(db_path, MIGRATIONS)
        try:
            return await work(AccountStore(db, system_clock))
        finally:
            await db.close()

    return asyncio.run(main())


def _fail(command: str, exc: Exception) -> int:
    print(f"cti user {command}: {exc}", file=sys.stderr)
    return EXIT_FAILED


def _add(args: argparse.Namespace) -> int:
    from access.accounts import AccountError, validate_display_name, validate_role_department, validate_user_id

    settings = args.load_settings()
    departments = [d.code for d in settings.records.departments]
    try:  # check what we can before asking for a password
        validate_user_id(args.user_id)
        validate_display_name(args.name)
        validate_role_department(args.role, args.department, departments)
    except AccountError as exc:
        print(f"cti user add: {exc}", file=sys.stderr)
        return EXIT_USAGE
    password = _read_password(args)
    if password is None:
        print("cti user add: パスワードがありません", file=sys.stderr)
        return EXIT_USAGE
    try:
        user = _run(
            args,
            lambda store: store.add(
                args.user_id,
                args.role,
                password,
                department=args.department,
                display_name=args.name,
                known_departments=departments,
            ),
        )
    except AccountError as exc:
        return _fail("add", exc)
    dept = f", {user.department}" if user.department else ""
    print(f"登録しました: {user.user_id}（{user.role.value}{dept}）")
    return 0


def _disable(args: argparse.Namespace) -> int:
    return _set_disabled(args, True)


def _enable(args: argparse.Namespace) -> int:
    return _set_disabled(args, False)


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    from access.accounts import AccountError

    try:
        _run(args, lambda store: store.set_disabled(args.user_id, disabled))
    except AccountError as exc:
        return _fail("disable" if disabled else "enable", exc)
    if disabled:
        print(f"無効にしました（ログイン中のセッションも終了）: {args.user_id}")
    else:
        print(f"有効にしました: {args.user_id}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    from access.accounts import AccountError, validate_user_id

    try:
        validate_user_id(args.user_id)
    except AccountError as exc:
        print(f"cti user reset-password: {exc}", file=sys.stderr)
        return EXIT_USAGE
    password = _read_password(args)
    if password is None:
        print("cti user reset-password: パスワードがありません", file=sys.stderr)
        return EXIT_USAGE
    try:
        _run(args, lambda store: store.reset_password(args.user_id, password))
    except AccountError as exc:
        return _fail("reset-password", exc)
    print(f"パスワードを変更しました（セッションは終了）: {args.user_id}")
    return 0


def _list(args: argparse.Namespace) -> int:
    users = _run(args, lambda store: store.all_users())
    rows = [
        {
            "user_id": u.user_id,
            "role": u.role.value,
            "department": u.department,
            "display_name": u.display_name,
            "disabled": u.disabled,
            "created_at": u.created_at,
        }
        for u in users
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("アカウントはありません")
    for r in rows:
        state = "無効" if r["disabled"] else "有効"
        dept = f" [{r['department']}]" if r["department"] else ""
        print(f"{r['user_id']:<20} {r['role']:<10}{dept} {state} {r['display_name']}")
    return 0
