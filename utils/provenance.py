"""Provenance: every file the app writes says it was made with AI, by which model, how, and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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

    @property
    def model_label(self) -> str:
        """The model as credited: a hub id as it is, a local folder by its name (not the machine's path)."""
        local = self.model.startswith(("/", ".", "~")) or self.model.count("/") > 1
        return f"{Path(self.model).name} (local folder)" if local else self.model

    def text(self) -> str:
        """One line for tags and meta events."""
        return f"Generated with AI ({APP_NAME}): model {self.model_label}, {self.settings}, {self.created}"

    def short(self) -> str:
        """The credit in a few words, for a page's foot: "Generated with AI (Music demo) · model · date"."""
        return f"Generated with AI ({APP_NAME}) · {self.model_label} · {self.created[:10]}"

    def tags(self) -> dict[str, str]:
        """Tags for audio files and MP4 metadata: title, comment, software, date."""
        return {"title": self.title, "comment": self.text(), "software": f"{APP_NAME} (AI)", "date": self.created}


def music_provenance(params: dict, seed: int) -> Provenance:
    """Provenance of a MusicGen result from its parameters (model, task, prompt)."""
    prompt = str(params.get("prompt", ""))
    task = str(params.get("task", "music")).replace("_", " ")
    return Provenance(str(params.get("model", "MusicGen")), f'{task}, prompt "{prompt}", seed {seed}',
                      prompt[:60] or task)


def song_provenance(params: dict, seed: int) -> Provenance:
    """Provenance of a song with lyrics (ACE-Step 1.5): the model family, which checkpoint, the style, the seed."""
    style = str(params.get("style", "")) or "instrumental"
    what = {"song_edit": "song, a part made again", "song_extend": "song, extended"}.get(str(params.get("task")),
                                                                                         "song with lyrics")
    return Provenance(str(params.get("model", "ACE-Step 1.5")), f'ACE-Step 1.5 {what}, style "{style}", seed {seed}',
                      style[:60] or "AI song")
