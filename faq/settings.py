"""The FAQ's configuration (the `[faq]` section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FaqSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    import_on_start: str | None = Field(None, description="FAQ file imported at start if the FAQ is empty")
    documents_dir: str | None = Field(
        None, description="folder of the ward's other sources (faq/FORMAT.md), imported at start and from /faq/editor/"
    )
    suggestions: int = Field(5, ge=0, le=20)
    # IVR category code (koseki, zei, hoken, gomi, kosodate, other) -> the FAQ categories it covers;
    # codes given here replace those of the built-in mapping (faq/index.py DEFAULT_CATEGORY_MAP).
    category_map: dict[str, list[str]] | None = None
