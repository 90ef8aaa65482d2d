"""What a MusicGen request is made of, checked: the settings and their ranges, the prompt, the seed, the sampling
parameters, and the audio it may start from (a melody to follow, a clip to continue)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from utils.audio import audio_duration, check_not_silent, load_audio, trim

# Generation settings: the official demo's defaults and ranges.
MIN_DURATION_S = 1.0
MAX_DURATION_S = 300.0  # past the model's 30 s window, the piece is extended window by window (audiocraft's way)
DEFAULT_DURATION_S = 10.0
WINDOW_S = 30.0  # the model's context: one window of codes (MusicGen was trained on 30 s)
DEFAULT_STRIDE_S = 18.0  # each window after the first adds this much; it keeps WINDOW_S - stride as its prompt
MIN_STRIDE_S = 10.0
MAX_STRIDE_S = 25.0
MIN_CLIP_SECONDS = 1.0  # a clip to continue: at least this long
MAX_CLIP_SECONDS = 25.0  # ... and short enough to leave the window room for new music
DEFAULT_TOP_K = 250
MAX_TOP_K = 2048  # the codebook size
DEFAULT_TOP_P = 0.0  # 0 = off, as in audiocraft
DEFAULT_TEMPERATURE = 1.0
DEFAULT_GUIDANCE_SCALE = 3.0
MAX_GUIDANCE_SCALE = 15.0
MAX_VARIANTS = 4
MAX_PROMPT_CHARS = 1000
MAX_SEED = 2**31 - 1
MIN_MELODY_SECONDS = 1.0  # shorter than this gives too few chroma frames to follow
MAX_MELODY_SECONDS = 30.0  # the chroma covers at most 30 s (the extractor's chunk_length)
MAX_MELODY_FILE_SECONDS = 600.0  # longer uploads are refused before decoding


def check_prompt(prompt: str | None, required: bool = True) -> str:
    """Strip and check a text prompt; raises ValueError when empty (if ``required``) or too long."""
    text = (prompt or "").strip()
    if required and not text:
        raise ValueError("Please describe the music you want, e.g. “lo-fi hip hop with warm piano, 80 bpm”.")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"The prompt is {len(text)} characters long; keep it under {MAX_PROMPT_CHARS}.")
    return text


MAX_UNKNOWN_PARTS_SHOWN = 8


def unknown_prompt_parts(tokenizer: Any, prompt: str) -> list[str]:
    """The parts of ``prompt`` that ``tokenizer`` maps to its unknown token, in order, each once.

    MusicGen's T5 vocabulary predates byte fallback: most CJK characters, accents and some symbols become
    ``<unk>``, which the model cannot tell apart. Adjacent unknown pieces are merged ("雨天的钢琴" is one part).
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or not prompt:
        return []
    try:
        encoded = tokenizer(prompt, return_offsets_mapping=True, add_special_tokens=False)
        pieces = list(zip(encoded["input_ids"], encoded["offset_mapping"]))
    except (NotImplementedError, ValueError, TypeError):  # a tokenizer without offsets: judge word by word
        pieces, position = [], 0
        for word in prompt.split():
            start = prompt.index(word, position)
            position = start + len(word)
            ids = tokenizer(word, add_special_tokens=False)["input_ids"]
            pieces.append((unk if unk in ids else -1, (start, position)))
    spans: list[list[int]] = []
    for token, (start, end) in pieces:
        if token != unk or end <= start:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    parts: list[str] = []
    for start, end in spans:
        part = prompt[start:end].strip()
        if part and part not in parts:
            parts.append(part)
    return parts


def unknown_prompt_note(parts: list[str]) -> str:
    """A note for the page about the words of a prompt the model cannot read ("" when there are none). A sign it
    cannot read ("<", "{") is only left out: it is not worth a musician's attention."""
    words = [p for p in parts if any(c.isalnum() for c in p)]
    if not words:
        return ""
    shown = ", ".join(f"“{p}”" for p in words[:MAX_UNKNOWN_PARTS_SHOWN])
    more = " …" if len(words) > MAX_UNKNOWN_PARTS_SHOWN else ""
    return f"The model has no word for {shown}{more}, so it leaves it out: describe the music in English words."


def parse_seed(seed: str | int | float | None) -> int | None:
    """A seed from a text box: empty means None (pick one at random); otherwise an integer in [0, 2**31)."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return None
    try:
        value = float(seed)
    except (TypeError, ValueError) as e:
        raise ValueError(f"The seed must be a whole number, got {seed!r}.") from e
    if not value.is_integer() or not 0 <= value <= MAX_SEED:
        raise ValueError(f"The seed must be a whole number between 0 and {MAX_SEED}, got {seed!r}.")
    return int(value)


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``top_p`` 0 turns nucleus sampling off; ``seed`` None picks one at random."""

    duration: float = DEFAULT_DURATION_S
    top_k: int = DEFAULT_TOP_K
    top_p: float = DEFAULT_TOP_P
    temperature: float = DEFAULT_TEMPERATURE
    guidance_scale: float = DEFAULT_GUIDANCE_SCALE
    seed: int | None = None
    stride: float = DEFAULT_STRIDE_S

    def validated(self) -> SamplingParams:
        """Return self after checking every value; raises ValueError with what is wrong."""
        if not MIN_DURATION_S <= self.duration <= MAX_DURATION_S:
            raise ValueError(
                f"The duration must lie between {MIN_DURATION_S:.0f} and {MAX_DURATION_S:.0f} seconds, "
                f"got {self.duration:g}."
            )
        if not 0 <= int(self.top_k) <= MAX_TOP_K or int(self.top_k) != self.top_k:
            raise ValueError(f"Top-k must be a whole number between 0 and {MAX_TOP_K}, got {self.top_k}.")
        if not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"Top-p must lie between 0 and 1, got {self.top_p}.")
        if not 0.0 < self.temperature <= 10.0:
            raise ValueError(f"The temperature must be above 0 and at most 10, got {self.temperature}.")
        if not 1.0 <= self.guidance_scale <= MAX_GUIDANCE_SCALE:
            raise ValueError(f"The guidance scale must lie between 1 and {MAX_GUIDANCE_SCALE:g}, got {self.guidance_scale}.")
        if self.seed is not None:
            parse_seed(self.seed)
        if not MIN_STRIDE_S <= self.stride <= MAX_STRIDE_S:
            raise ValueError(
                f"The window stride must lie between {MIN_STRIDE_S:.0f} and {MAX_STRIDE_S:.0f} seconds, "
                f"got {self.stride:g}."
            )
        return self

    @classmethod
    def from_record(cls, record: dict[str, Any], **changes: Any) -> SamplingParams:
        """The settings a result was made with (its parameters record, or a batch row), with ``changes`` applied,
        checked. Keys the record lacks take their defaults; a seed given as text is parsed.

        Raises:
            ValueError: a value is missing its type or out of range.
        """
        values = {name: record[name] for name in cls.__dataclass_fields__ if record.get(name) not in (None, "")}
        values |= changes
        try:
            params = cls(
                duration=float(values.get("duration", DEFAULT_DURATION_S)),
                top_k=_whole(values.get("top_k", DEFAULT_TOP_K), "Top-k"),
                top_p=float(values.get("top_p", DEFAULT_TOP_P)),
                temperature=float(values.get("temperature", DEFAULT_TEMPERATURE)),
                guidance_scale=float(values.get("guidance_scale", DEFAULT_GUIDANCE_SCALE)),
                seed=parse_seed(values.get("seed")),
                stride=float(values.get("stride", DEFAULT_STRIDE_S)),
            )
        except TypeError as e:
            raise ValueError(f"A sampling setting has the wrong type: {e}") from e
        return params.validated()


def _whole(value: Any, name: str) -> int:
    """An integer from a number box or a record; raises ValueError for 2.5 and the like."""
    try:
        number = float(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a whole number, got {value!r}.") from e
    if not number.is_integer():
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    return int(number)


def check_variants(variants: Any) -> int:
    """The number of variants (1..MAX_VARIANTS) as an integer; raises ValueError otherwise."""
    n = _whole(variants, "The number of variants")
    if not 1 <= n <= MAX_VARIANTS:
        raise ValueError(f"Ask for 1 to {MAX_VARIANTS} variants, got {n}.")
    return n


@dataclass
class TrimmedAudio:
    """Audio read from a file and trimmed: float32 [..., T] at ``sample_rate`` Hz; ``trim`` is the part of the
    file used, in seconds (end None = to the end)."""

    audio: np.ndarray
    sample_rate: int
    trim: tuple[float, float | None] = (0.0, None)

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate

    @staticmethod
    def trim_of(start: float | None, end: float | None) -> tuple[float, float | None]:
        """The trim as recorded: start in seconds, end None for "to the end" (0 or empty in the UI)."""
        return float(start or 0.0), None if not end else float(end)


@dataclass
class Melody(TrimmedAudio):
    """A melody to follow: mono float32 audio [T] at ``sample_rate`` Hz, already trimmed."""

    @classmethod
    def from_file(cls, path: str | None, start: float = 0.0, end: float | None = None) -> Melody:
        """Read, trim (``start``..``end`` s, at most 30 s) and check a melody file.

        Raises:
            ValueError: no file, unreadable, bad trim, silent, or shorter than a second.
        """
        if not path:
            raise ValueError("Please upload or record a melody first.")
        total = audio_duration(path)
        if total > MAX_MELODY_FILE_SECONDS:
            raise ValueError(
                f"The melody file is {total / 60:.1f} minutes long; upload at most {MAX_MELODY_FILE_SECONDS / 60:.0f} "
                "minutes (only 30 s are used)."
            )
        audio, sr = load_audio(path)
        clip = trim(audio, sr, float(start or 0.0), None if end is None else float(end), MAX_MELODY_SECONDS)
        if clip.shape[0] / sr < MIN_MELODY_SECONDS:  # too short first: a blip is short before it is quiet
            raise ValueError(
                f"The melody is {clip.shape[0] / sr:.2f} s long: too short to follow. Use at least "
                f"{MIN_MELODY_SECONDS:.0f} second."
            )
        check_not_silent(clip, "The melody")
        return cls(clip, sr, cls.trim_of(start, end))


@dataclass
class Clip(TrimmedAudio):
    """Audio to continue: float32 [channels, T] at ``sample_rate`` Hz, already trimmed and checked."""

    @classmethod
    def from_file(cls, path: str | None, start: float = 0.0, end: float | None = None) -> Clip:
        """Read, trim (``start``..``end`` s) and check a clip to continue.

        Raises:
            ValueError: no file, unreadable, silent, shorter than a second, or too long for the model's window.
        """
        if not path:
            raise ValueError("Please upload or record the clip to continue first.")
        if audio_duration(path) > MAX_MELODY_FILE_SECONDS:
            raise ValueError(f"The clip file is over {MAX_MELODY_FILE_SECONDS / 60:.0f} minutes long; trim it first.")
        audio, sr = load_audio(path)
        clip = trim(audio, sr, float(start or 0.0), None if end is None else float(end))
        seconds = clip.shape[0] / sr
        if seconds < MIN_CLIP_SECONDS:
            raise ValueError(f"The clip is {seconds:.2f} s long: use at least {MIN_CLIP_SECONDS:.0f} second to continue.")
        check_not_silent(clip, "The clip")
        if seconds > MAX_CLIP_SECONDS:
            raise ValueError(
                f"The clip is {seconds:.1f} s long, more than the {MAX_CLIP_SECONDS:.0f} s the model can take as a "
                "start (its window is 30 s): trim it with the start/end sliders."
            )
        return cls(clip[None, :], sr, cls.trim_of(start, end))


def looped(audio: np.ndarray, rate: int, offset: float, seconds: float) -> np.ndarray:
    """``seconds`` of ``audio`` [T] from ``offset`` s on, the audio repeating when it runs out."""
    start = int(round(offset * rate))
    need = int(round(seconds * rate))
    reps = -(-(start + need) // max(1, audio.shape[0]))
    return np.tile(audio, reps)[start : start + need]
