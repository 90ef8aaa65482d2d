"""Provenance: every file the app writes says it was made with AI, by which model, how, and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

APP_NAME = "Music demo"


def utc_now() -> str:
    """The current time as ISO 8601 in UTC, to the second (``2026-11-22T02:03:04Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Provenance:
    """Who made a file and how.

    Attributes:
        model: the checkpoint (hub id or folder), e.g. ``sweetcocoa/pop2piano``.
        settings: what steered it, e.g. ``style Arranger 7`` or ``prompt "lo-fi piano"``.
        title: a short title for players and score headers.
        created: when, ISO 8601 UTC.
    """

    model: str
    settings: str
    title: str = "AI music"
    created: str = field(default_factory=utc_now)

    def text(self) -> str:
        """One line for tags and meta events."""
        return f"Generated with AI ({APP_NAME}): model {self.model}, {self.settings}, {self.created}"

    def tags(self) -> dict[str, str]:
        """Tags for audio files and MP4 metadata: title, comment, software, date."""
        return {"title": self.title, "comment": self.text(), "software": f"{APP_NAME} (AI)", "date": self.created}
