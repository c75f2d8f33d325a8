"""`cti faq import/search/show` against a temporary SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cti.cli import main

FIXTURE = Path(__file__).parent.parent / "fixtures" / "faq" / "kosodate_opendata_faq_corpus.json"
CREDIT = "出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）"


def test_import_then_search_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cti.sqlite3")
    assert main(["faq", "import", str(FIXTURE), "--db", db]) == 0
    out = capsys.readouterr()
    assert "追加 661 件" in out.out and CREDIT in out.out
    assert "取り込み中" not in out.err  # not a terminal: no progress

    assert main(["faq", "import", str(FIXTURE), "--db", db]) == 0
    assert "追加 0 件, 更新 0 件, 削除 0 件, 変更なし 661 件" in capsys.readouterr().out

    assert main(["faq", "search", "税金", "--db", db, "--json", "--limit", "3"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3
    assert {"id", "question", "score", "category", "snippet", "credit"} <= set(results[0])
    assert results[0]["category"] == "税金" and results[0]["credit"] == CREDIT
    assert results[0]["score"] >= results[1]["score"] >= results[2]["score"]

    assert main(["faq", "search", "印鑑", "--db", db]) == 0
    text = capsys.readouterr().out
    assert "【印鑑】" in text and text.rstrip().endswith(CREDIT)

    assert main(["faq", "show", "1100", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["question"].startswith("印鑑登録")


def test_errors_are_clear_and_change_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cti.sqlite3")
    assert main(["faq", "search", "ごみ", "--db", db]) == 1
    assert "FAQが空です" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": 1, "question": "q", "answer": "a"}]', encoding="utf-8")
    assert main(["faq", "import", str(bad), "--db", db]) == 1
    assert "entry 1: missing field 'category'" in capsys.readouterr().err
    assert main(["faq", "import", str(tmp_path / "missing.csv"), "--db", db]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["faq", "import", str(FIXTURE), "--db", db]) == 0
    capsys.readouterr()
    assert main(["faq", "search", "ごみ", "--db", db, "--limit", "0"]) == 2
    assert main(["faq", "search", "  ", "--db", db]) == 2
    assert "query is empty" in capsys.readouterr().err
    assert main(["faq", "show", "nope", "--db", db]) == 1


KEYWORDS = FIXTURE.parent / "kosodate_faq_keywords.jsonl"


def test_import_with_the_editors_keywords(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cti.sqlite3")
    assert main(["faq", "import", str(FIXTURE), "--db", db]) == 0
    capsys.readouterr()
    assert main(["faq", "import", str(FIXTURE), "--keywords", str(KEYWORDS), "--db", db]) == 0
    assert "更新 661 件" in capsys.readouterr().out  # every entry got its keywords
    assert main(["faq", "show", "1", "--db", db, "--json"]) == 0
    keywords = json.loads(capsys.readouterr().out)["keywords"]
    assert keywords[0] == "妊娠の届出・母子健康手帳の交付" and "母子手帳 もらうには" in keywords  # service_name first
    assert main(["faq", "import", str(FIXTURE), "--keywords", str(KEYWORDS), "--db", db]) == 0
    assert "変更なし 661 件" in capsys.readouterr().out  # re-import: idempotent

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "keywords": ["ok"]}\n{"id": "no-such", "keywords": ["x"]}\n', encoding="utf-8")
    assert main(["faq", "import", str(FIXTURE), "--keywords", str(bad), "--db", db]) == 1
    assert "bad.jsonl: line 2: no FAQ entry has id 'no-such'" in capsys.readouterr().err
    assert main(["faq", "show", "1", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["keywords"] == keywords  # nothing changed
    assert main(["faq", "import", str(FIXTURE), "--keywords", str(tmp_path / "none.jsonl"), "--db", db]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "none.jsonl" in err


def test_database_defaults_to_the_configured_store(tmp_path: Path) -> None:
    config = tmp_path / "cti.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "configured.sqlite3"}"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "cti", "faq", "import", str(FIXTURE), "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "configured.sqlite3").exists()
    assert result.stderr == ""  # piped: quiet


def test_documents_import_twice_then_export_and_reimport(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cti.sqlite3")
    docs = FIXTURE.parent / "ward-docs"
    assert main(["faq", "import", str(FIXTURE), "--db", db]) == 0
    assert main(["faq", "import-docs", str(docs), "--db", db]) == 0
    first = capsys.readouterr().out
    assert "さくら区ホームページ（website）: 追加 6 件" in first and "広報さくら 2026年12月1日号" in first
    assert main(["faq", "import-docs", str(docs), "--db", db]) == 0
    assert capsys.readouterr().out.count("追加 0 件, 更新 0 件, 削除 0 件") == 3  # idempotent
    assert main(["faq", "search", "期日前投票", "--db", db]) == 0
    text = capsys.readouterr().out
    assert "近い回答が見つかりません" in text  # the FAQ has nothing close ...
    assert "[さくら区 暮らしのガイド 2026]" in text and "https://www.city.sakura.example.lg.jp/guide/" in text  # ...
    assert main(["faq", "import-docs", str(tmp_path / "none"), "--db", db]) == 1
    assert "not a folder" in capsys.readouterr().err

    exported = tmp_path / "faq-export.json"
    assert main(["faq", "export", str(exported), "--db", db]) == 0
    assert "661 件" in capsys.readouterr().out
    assert main(["faq", "import", str(exported), "--db", db]) == 0
    assert "変更なし 661 件" in capsys.readouterr().out  # the export is the same FAQ
