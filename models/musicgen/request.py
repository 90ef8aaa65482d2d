"""What one MusicGen call makes, and what it gives back: ``MusicRequest`` (checked once, when it is built, by the page,
the API or the command line alike) and ``MusicResult``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.musicgen.inputs import (
    MIN_MELODY_SECONDS,
    Clip,
    Melody,
    SamplingParams,
    check_prompt,
    check_variants,
)
from models.musicgen.windows import Window
from models.separator import check_melody_source


@dataclass(frozen=True, eq=False)
class MusicRequest:
    """One piece to make, its inputs checked when it is built (``ValueError`` says what is wrong).

    Attributes:
        prompt: the text description; may be empty when the piece follows a melody or continues audio.
        params: sampling settings (duration in seconds, seed None = random).
        variants: 1..MAX_VARIANTS different pieces from the same inputs.
        melody: a melody to follow (MusicGen-Melody), mono float32 [T].
        melody_source: "separated" (its vocals + other stems) or "mix"; None with no melody.
        clip: audio to continue (re-encoded by the model's codec first).
        codes: an earlier result's codes [variants or 1, codebooks, frames] to extend.
        prompt_english: the English to make the piece from instead of translating the prompt (a parameters file's),
            for this request only.
    """

    prompt: str = ""
    params: SamplingParams = SamplingParams()
    variants: int = 1
    melody: Melody | None = None
    melody_source: str | None = None
    clip: Clip | None = None
    codes: np.ndarray | None = None
    prompt_english: str | None = None

    def __post_init__(self) -> None:
        if self.clip is not None and self.codes is not None:
            raise ValueError("Continue a clip or extend a result, not both at once.")
        starts_from_audio = self.clip is not None or self.codes is not None
        checked = {
            "params": self.params.validated(),
            "prompt": check_prompt(self.prompt, required=self.melody is None and not starts_from_audio),
            "variants": check_variants(self.variants),
            "melody_source": check_melody_source(self.melody_source) if self.melody is not None else None,
            "prompt_english": (self.prompt_english or "").strip() or None,
        }
        if self.melody is not None and self.melody.duration < MIN_MELODY_SECONDS:
            raise ValueError(f"The melody is too short; use at least {MIN_MELODY_SECONDS:.0f} second of it.")
        for name, value in checked.items():  # the checked (normalised) values, on a frozen object
            object.__setattr__(self, name, value)


@dataclass
class MusicResult:
    """Generated music.

    Attributes:
        audio: float32 [variants, channels, T] in [-1, 1].
        sample_rate: Hz (32 kHz for MusicGen).
        seed: the seed used; the same seed, model, prompt and settings give the same audio.
        params: everything needed to reproduce the result, JSON-serialisable.
        chroma: the melody's one-hot chroma [frames, 12] that conditioned the model (first window), or None.
        notes: remarks for the user (e.g. prompt parts the model cannot read, a stop).
        codes: the audio codes [variants, codebooks, frames], to extend the piece later.
        windows: how the piece was made, window by window.
        stopped: True when the user stopped it; ``audio`` holds what was finished.
        chroma_rate: frames a second of ``chroma`` (None without one).
        prompt_english: the English the model was given for a prompt in another language, or None.
    """

    audio: np.ndarray
    sample_rate: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    chroma: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    codes: np.ndarray | None = None
    windows: list[Window] = field(default_factory=list)
    stopped: bool = False
    chroma_rate: float | None = None
    prompt_english: str | None = None

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate
