"""The FAQ search's memory (bench/memory.py measures it; these catch the regressions cheaply).

The Sudachi dictionary (system.dic, 193 MB) is mmapped. A server that loaded it once per thread
mapped it twice and carried ~200 MiB more RSS than a month earlier; one with an empty FAQ loaded it
at all; and an index build left the pages it touched resident.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from faq import morph
from faq.memory import mappings_of, resident_kb

ROOT = Path(__file__).resolve().parents[2]


def _dictionary_rss_kb() -> int:
    return resident_kb(morph.dictionary_file())


def test_threads_share_one_mapping_of_the_dictionary() -> None:
    morph.reading("申込み")  # this thread's tokenizer (reading() is not cached: the analyser runs)
    done: list[str] = []
    worker = threading.Thread(target=lambda: done.append(morph.reading("引越しの届出")))
    worker.start()
    worker.join()
    assert done == ["ひっこしのとどけで"]  # the worker's own tokenizer analyses as well
    maps = Path("/proc/self/maps").read_text()
    assert len(mappings_of(morph.dictionary_file(), maps)) == 1


def test_releasing_drops_the_pages_an_analysis_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(morph, "RELEASE_INTERVAL", 1e9)  # no periodic release racing the assertions
    for text in ["住民票の写しを取りたい", "保育園に入りたい", "粗大ごみの出し方", "国民健康保険の手続き"]:
        morph.reading(text)  # (not cached: the analyser runs)
    assert _dictionary_rss_kb() > 1024
    assert morph.release_pages() > 190 * 1024 * 1024  # the whole 193 MB mapping
    assert _dictionary_rss_kb() < 512
    assert morph.content_pieces("妊娠したらどうすればいいですか") == ("妊娠",)  # and it still analyses


def test_mappings_are_read_from_proc_maps() -> None:
    maps = textwrap.dedent("""\
        7fa7ffe00000-7fa80bedf000 r--s 00000000 fe:00 16066763                   /x/resources/system.dic
        7fa813e00000-7fa81fedf000 r--s 00000000 fe:00 16066763                   /y/resources/system.dic
        7fa820000000-7fa820021000 rw-p 00000000 00:00 0
        """)
    assert mappings_of(Path("/x/resources/system.dic"), maps) == [(0x7FA7FFE00000, 0x7FA80BEDF000)]
    assert mappings_of(Path("/z/system.dic"), maps) == []


def test_a_server_without_faq_entries_never_loads_the_dictionary() -> None:
    # A fresh interpreter: this test process has loaded it already.
    script = textwrap.dedent("""
        import asyncio, sys
        from faq import morph
        from faq.index import FaqIndex
        from faq.service import FaqService
        from faq.synonyms import DEFAULT_RULES, synonym_table

        service = FaqService(db=None, clock=None)  # type: ignore[arg-type]  # (its empty indexes only)
        assert service.search("住民票を取りたい", 10) == []
        assert service.search_documents("住民票を取りたい", 3) == []
        index = FaqIndex([]).with_synonyms(synonym_table(DEFAULT_RULES))
        assert index.search("いんかん", 10) == []
        assert not morph.is_loaded() and "sudachipy" not in sys.modules, "loaded for an empty FAQ"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
