"""Subcommands of this package for the `cti` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from cti.core.cli import add_config_option, print_json

EXIT_FAILED = 1
EXIT_USAGE = 2


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this package's subcommands."""
    register_faq(sub)
    register_users(sub)


def register_users(sub: argparse._SubParsersAction[Any]) -> None:
    """`cti user ...` (accounts; implemented in access/cli.py)."""
    from access.cli import register_users as register

    register(sub)


# ---------------------------------------------------------------------------------------------
# cti faq ...


def register_faq(sub: argparse._SubParsersAction[Any]) -> None:
    faq = sub.add_parser("faq", help="import and search the FAQ shown to operators")
    faq_sub = faq.add_subparsers(dest="faq_command", required=True, metavar="ACTION")

    imp = faq_sub.add_parser("import", help="import a FAQ file (JSON or CSV, see faq/FORMAT.md)")
    imp.add_argument("file", metavar="FILE", help="the FAQ file (.json or .csv)")
    imp.add_argument("--source", help="where the data comes from (default: detected, else the file name)")
    imp.add_argument("--credit", help="attribution line shown with every result (default: detected, else none)")
    imp.add_argument(
        "--keywords", metavar="KEYWORDS", help="the editors' keywords to add to the entries (JSON lines, faq/FORMAT.md)"
    )
    _db_options(imp)
    imp.set_defaults(func=_faq_import)

    search = faq_sub.add_parser("search", help="search the FAQ as an operator would")
    search.add_argument("query", metavar="QUERY", help="words to search for, e.g. ごみ or 児童手当 振込")
    search.add_argument("--limit", type=int, default=5, help="number of results (1-50, default 5)")
    search.add_argument("--json", action="store_true", help="machine-readable output")
    _db_options(search)
    search.set_defaults(func=_faq_search)

    docs = faq_sub.add_parser(
        "import-docs", help="import the ward's other sources: a folder of saved web pages, Markdown and PDF files"
    )
    docs.add_argument(
        "folder", metavar="FOLDER", help="one subfolder per source (website, 広報, 暮らしのガイド), see faq/FORMAT.md"
    )
    _db_options(docs)
    docs.set_defaults(func=_faq_import_docs)

    exp = faq_sub.add_parser("export", help="write the live FAQ (imports and editors' entries) as a JSON file")
    exp.add_argument("file", metavar="FILE", help="the JSON file to write (generic format, importable again)")
    _db_options(exp)
    exp.set_defaults(func=_faq_export)

    show = faq_sub.add_parser("show", help="print one FAQ entry by its id")
    show.add_argument("id", metavar="ID", help="the source's FAQ id")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    _db_options(show)
    show.set_defaults(func=_faq_show)


def _db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH",
                        help="SQLite database or postgresql:// URL (default: the configuration's store.url, else"
                             " store.path)")
    add_config_option(parser)


def _db_path(args: argparse.Namespace) -> Path | str:
    if args.db:
        return str(args.db)  # a SQLite file or a postgresql:// URL
    return args.load_settings().store.target  # type: ignore[no-any-return]


def _faq_import(args: argparse.Namespace) -> int:
    from cti.core.clock import system_clock
    from faq.parsing import FaqFormatError, add_keywords, parse_faq

    path = Path(args.file)
    keywords_path = Path(args.keywords) if args.keywords else None
    try:
        data = path.read_bytes()
        keywords = (keywords_path.name, keywords_path.read_bytes()) if keywords_path else None
    except OSError as exc:
        print(f"cti faq import: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    try:
        parsed = parse_faq(data, path.name, source=args.source, credit=args.credit)
        if keywords is not None:
            parsed = add_keywords(parsed, keywords[1], keywords[0])
    except FaqFormatError as exc:
        print(f"cti faq import: {exc}", file=sys.stderr)
        return EXIT_FAILED
    db_path = _db_path(args)
    interactive = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if interactive:
            print(f"\r取り込み中 {done}/{total}", end="", file=sys.stderr, flush=True)

    async def run() -> Any:
        from faq.store import import_faq

        db = await _open(args, db_path)
        try:
            now = system_clock()
            return await db.write(lambda conn: import_faq(conn, parsed, now, progress))
        finally:
            await db.close()

    counts = asyncio.run(run())
    if interactive:
        print(file=sys.stderr)
    print(
        f"取り込み完了: 追加 {counts.added} 件, 更新 {counts.updated} 件, 削除 {counts.removed} 件, "
        f"変更なし {counts.unchanged} 件（計 {counts.total} 件, {args.shown_store(db_path)}）"
    )
    if parsed.credit:
        print(parsed.credit)
    return 0


async def _open(args: argparse.Namespace, db_path: Path | str) -> Any:
    """The store on either engine: cti.cli hands ``args.open_store`` over (SQLite file or PostgreSQL URL)."""
    from faq.store import COMPONENT, MIGRATIONS

    return await args.open_store(db_path, {COMPONENT: MIGRATIONS})


async def _load_service(args: argparse.Namespace, db_path: Path | str) -> Any:
    from cti.core.clock import system_clock
    from faq.service import FaqService

    db = await _open(args, db_path)
    try:
        service = FaqService(db, system_clock)
        await service.load()
    finally:
        await db.close()
    return service


def _faq_import_docs(args: argparse.Namespace) -> int:
    from cti.core.clock import system_clock
    from faq.documents import DocumentError
    from faq.folder import read_folder
    from faq.store import import_documents

    try:
        sources = read_folder(Path(args.folder))
    except (DocumentError, OSError) as exc:
        print(f"cti faq import-docs: {exc}", file=sys.stderr)
        return EXIT_FAILED
    db_path = _db_path(args)

    async def run() -> list[Any]:
        db = await _open(args, db_path)
        try:
            now = system_clock()
            return [
                (info, await db.write(lambda conn, i=info, s=sections: import_documents(conn, i, s, now)))
                for info, sections in sources
            ]
        finally:
            await db.close()

    for info, counts in asyncio.run(run()):
        print(
            f"{info.label}（{info.key}）: 追加 {counts.added} 件, 更新 {counts.updated} 件, "
            f"削除 {counts.removed} 件, 変更なし {counts.unchanged} 件（計 {counts.total} 節）"
        )
    print("稼働中のサーバーには再起動後に反映されます。")
    return 0


def _faq_export(args: argparse.Namespace) -> int:
    import json

    service = asyncio.run(_load_service(args, _db_path(args)))
    doc = service.export_document()
    Path(args.file).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"書き出し完了: {len(doc['entries'])} 件 -> {args.file}")
    return 0


def _faq_search(args: argparse.Namespace) -> int:
    from faq.entries import MAX_LIMIT
    from faq.snippets import render_highlights

    if not 1 <= args.limit <= MAX_LIMIT:
        print(f"cti faq search: --limit must be between 1 and {MAX_LIMIT}", file=sys.stderr)
        return EXIT_USAGE
    service = asyncio.run(_load_service(args, _db_path(args)))
    if service.size == 0:
        print("cti faq search: FAQが空です。先に `cti faq import FILE` を実行してください。", file=sys.stderr)
        return EXIT_FAILED
    try:
        hits = service.search(args.query, args.limit)
        documents = service.search_documents(args.query, 3)
    except ValueError as exc:
        print(f"cti faq search: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print_json([{**hit.as_dict(), "credit": service.credit} for hit in hits])
        return 0
    from faq.service import is_weak

    if not hits:
        print(f"「{args.query}」に一致するFAQはありません。")
    elif is_weak(hits):
        print("近い回答が見つかりません（参考までに表示します）")
    for rank, hit in enumerate(hits, start=1):
        entry = hit.entry
        print(f"{rank}. [{entry.id}] {render_highlights(entry.question, hit.question_highlights)}")
        category = entry.category + (f" / {entry.subcategory}" if entry.subcategory else "")
        print(f"   {category}  score {hit.score:.2f}")
        print(f"   {render_highlights(hit.snippet, hit.snippet_highlights)}")
    if service.credit:
        print(service.credit)
    for doc in documents:
        print(f"[{doc.section.source_label}] {doc.section.title}  {doc.section.url}")
        print(f"   {render_highlights(doc.hit.snippet, doc.hit.snippet_highlights)}")
    return 0


def _faq_show(args: argparse.Namespace) -> int:
    service = asyncio.run(_load_service(args, _db_path(args)))
    entry = service.get(args.id)
    if entry is None:
        print(f"cti faq show: no FAQ entry with id {args.id!r}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print_json(
            {
                "id": entry.id,
                "question": entry.question,
                "answer": entry.answer,
                "category": entry.category,
                "subcategory": entry.subcategory,
                "keywords": list(entry.keywords),
                "credit": service.credit,
            }
        )
        return 0
    print(f"[{entry.id}] {entry.question}")
    print(entry.category + (f" / {entry.subcategory}" if entry.subcategory else ""))
    print()
    print(entry.answer)
    if service.credit:
        print()
        print(service.credit)
    return 0
