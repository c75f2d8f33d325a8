"""The calendars' configuration (the `[calendar]` section): opening hours of the call center and the
ward office, and the configured closures and openings (runtime ones are stored, see supervision)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class HoursSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opens: time
    closes: time
    closed_month_days: list[str] = Field(default_factory=list, description="MM-DD, closed every year")

    @field_validator("closed_month_days")
    @classmethod
    def _month_days(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                datetime.strptime(f"2000-{value}", "%Y-%m-%d")
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a MM-DD day") from exc
        return values

    @model_validator(mode="after")
    def _order(self) -> HoursSettings:
        if self.closes <= self.opens:
            raise ValueError(f"closes ({self.closes}) must be after opens ({self.opens})")
        return self


def _call_center_hours() -> HoursSettings:
    return HoursSettings(opens=time(8, 0), closes=time(22, 0), closed_month_days=["01-01", "01-02", "01-03"])


def _office_hours() -> HoursSettings:
    return HoursSettings(
        opens=time(8, 30),
        closes=time(17, 15),
        closed_month_days=["12-29", "12-30", "12-31", "01-01", "01-02", "01-03"],
    )


class OverrideSettings(BaseModel):
    """A configured exception to the base rules: a closure or an extra opening, for a period."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["closure", "opening"]
    applies_to: Literal["call_center", "office", "both"] = "both"
    start: datetime
    end: datetime
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> OverrideSettings:
        for name in ("start", "end"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} must carry a UTC offset, e.g. 2027-03-07T09:00:00+09:00")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class CalendarSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Tokyo"
    call_center: HoursSettings = Field(default_factory=_call_center_hours)
    office: HoursSettings = Field(default_factory=_office_hours)
    overrides: list[OverrideSettings] = Field(default_factory=list)
