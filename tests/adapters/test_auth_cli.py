"""`cti user ...` against a temp SQLite database, through the real `cti` entry point."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from access.accounts import MIGRATIONS, AccountStore
from cti.cli import main
from cti.core.clock import system_clock
from cti.store_backend import open_store


def run(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(argv)


def authenticate(db: Path | str, user_id: str, password: str) -> str:
    async def go() -> str:
        gateway = await open_store(db, MIGRATIONS)
        try:
            return (await AccountStore(gateway, system_clock).authenticate(user_id, password)).outcome
        finally:
            await gateway.close()

    return asyncio.run(go())


def test_add_list_disable_enable_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store_target: str
) -> None:
    """On both engines: `--db` takes a SQLite file or a PostgreSQL URL."""
    db = store_target
    monkeypatch.chdir(tmp_path)
    base = ["--db", db]
    assert (
        run(
            monkeypatch,
            ["user", "add", "op1", "--role", "operator", "--name", "山田", "--password-stdin", *base],
            "first password 1\n",
        )
        == 0
    )
    assert (
        run(
            monkeypatch,
            ["user", "add", "tax1", "--role", "department", "--department", "zeimu", "--password-stdin", *base],
            "tax password 1\n",
        )
        == 0
    )
    capsys.readouterr()
    assert run(monkeypatch, ["user", "list", "--json", *base]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["user_id"], r["role"], r["department"], r["disabled"]) for r in rows] == [
        ("op1", "operator", None, False),
        ("tax1", "department", "zeimu", False),
    ]
    assert authenticate(db, "op1", "first password 1") == "ok"

    assert run(monkeypatch, ["user", "disable", "op1", *base]) == 0
    assert authenticate(db, "op1", "first password 1") == "disabled"
    assert run(monkeypatch, ["user", "enable", "op1", *base]) == 0
    assert run(monkeypatch, ["user", "reset-password", "op1", "--password-stdin", *base], "second password 2\n") == 0
    assert authenticate(db, "op1", "first password 1") == "wrong_password"
    assert authenticate(db, "op1", "second password 2") == "ok"


def test_stored_hashes_are_argon2id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "cti.sqlite3"
    monkeypatch.chdir(tmp_path)
    assert (
        run(
            monkeypatch,
            ["user", "add", "op1", "--role", "operator", "--password-stdin", "--db", str(db)],
            "first password 1\n",
        )
        == 0
    )
    import sqlite3

    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$") and "first password" not in stored


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["user", "add", "Bad Id", "--role", "operator", "--password-stdin"], "long enough pw\n", "IDが不正"),
        (["user", "add", "k1", "--role", "department", "--password-stdin"], "long enough pw\n", "担当課の指定"),
        (
            ["user", "add", "k1", "--role", "department", "--department", "nope", "--password-stdin"],
            "long enough pw\n",
            "担当課コードが不明です: 'nope'",
        ),
        (["user", "add", "op9", "--role", "operator", "--password-stdin"], "short\n", "パスワードが短すぎます"),
        (["user", "add", "op9", "--role", "operator", "--password-stdin"], "", "パスワードがありません"),
        (["user", "disable", "ghost"], "", "ユーザーが存在しません: 'ghost'"),
        (["user", "reset-password", "ghost", "--password-stdin"], "long enough pw\n", "存在しません: 'ghost'"),
    ],
)
def test_bad_input_is_named_and_changes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    db = tmp_path / "cti.sqlite3"
    monkeypatch.chdir(tmp_path)
    assert run(monkeypatch, [*argv, "--db", str(db)], stdin) != 0
    assert message in capsys.readouterr().err
    assert run(monkeypatch, ["user", "list", "--json", "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_duplicate_id_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cti.sqlite3"
    monkeypatch.chdir(tmp_path)
    argv = ["user", "add", "op1", "--role", "operator", "--password-stdin", "--db", str(db)]
    assert run(monkeypatch, argv, "first password 1\n") == 0
    assert run(monkeypatch, argv, "other password 2\n") == 1
    assert "ユーザーIDは登録済みです" in capsys.readouterr().err
    assert authenticate(db, "op1", "first password 1") == "ok"


@pytest.mark.parametrize("name", ["\u200b\u200b", "山田\x00", "tab\there"])
def test_add_refuses_invisible_or_control_character_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    db = tmp_path / "cti.sqlite3"
    monkeypatch.chdir(tmp_path)
    code = run(monkeypatch, ["user", "add", "op9", "--role", "operator", "--name", name, "--password-stdin",
                             "--db", str(db)], "first password 1\n")
    assert code == 2
    assert "表示名" in capsys.readouterr().err
    assert run(monkeypatch, ["user", "list", "--json", "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out) == []
