"""Reading a folder of the ward's other sources from disk (the parsing itself is faq/documents.py)."""

from __future__ import annotations

from pathlib import Path

from faq.documents import SOURCE_FILE, SUFFIXES, DocSection, DocumentError, SourceInfo, sections_of, source_info


def read_folder(folder: Path) -> list[tuple[SourceInfo, list[DocSection]]]:
    """(source, sections) for each subfolder of `folder`; raises DocumentError (or OSError)."""
    if not folder.is_dir():
        raise DocumentError(f"{folder}: not a folder")
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        meta = sub / SOURCE_FILE
        info = source_info(sub.name, meta.read_bytes() if meta.is_file() else None)
        files = [
            (f.relative_to(sub).as_posix(), f.read_bytes())
            for f in sorted(sub.rglob("*"))
            if f.is_file() and f.suffix.lower() in SUFFIXES and not f.name.startswith((".", "_"))
        ]
        found.append((info, sections_of(files, info)))
    if not found:
        raise DocumentError(f"{folder}: no source subfolders (e.g. website/, kouhou/, guide/)")
    return found
