"""Text-to-music and melody-to-music with MusicGen / MusicGen-Melody through transformers.

The checkpoints are the official ``facebook/musicgen-*`` ones (audiocraft cannot be installed next to a
current torch). Melody chroma is computed by ``utils.chroma`` because transformers' melody feature
extractor needs torchaudio.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoTokenizer,
    MusicgenForConditionalGeneration,
    MusicgenMelodyForConditionalGeneration,
)
from transformers.generation.stopping_criteria import StoppingCriteria, StoppingCriteriaList

from models.common import (
    ModelLoadError,
    ModelSource,
    env_flag,
    free_accelerator_memory,
    load_or_explain,
    pick_device,
    pick_dtype,
    return_freed_memory,
)
from models.fast_musicgen import (
    FastMusicgen,
    PassCount,
    codebook_delays,
    decode_codes,
    encode_audio,
    fold_weight_norm,
    quantize_decoder_int8,
    supports_fast_path,
    undelay,
)
from models.runtime import model_thread
from models.separator import MELODY_STEMS, SOURCE_SEPARATED, check_melody_source, get_separator
from utils.audio import audio_duration, check_not_silent, load_audio, trim
from utils.chroma import ChromaExtractor

logger = logging.getLogger(__name__)

FAST_PATH_ENV_VAR = "MUSICGEN_FAST_PATH"  # "0" = stock transformers generate
CPU_INT8_ENV_VAR = "MUSICGEN_CPU_INT8"  # "0" = keep float32 decoder weights on CPU
MUSICGEN_ENV_VAR = "MUSICGEN_MODEL"
MUSICGEN_CLI_FLAG = "--musicgen-model"
DEFAULT_MUSICGEN_MODEL = "facebook/musicgen-small"
MELODY_ENV_VAR = "MUSICGEN_MELODY_MODEL"
MELODY_CLI_FLAG = "--melody-model"
DEFAULT_MELODY_MODEL = "facebook/musicgen-melody"

TEXT_CHECKPOINTS = (
    "facebook/musicgen-small",
    "facebook/musicgen-medium",
    "facebook/musicgen-large",
    "facebook/musicgen-stereo-small",
    "facebook/musicgen-stereo-medium",
    "facebook/musicgen-stereo-large",
)
MELODY_CHECKPOINTS = (
    "facebook/musicgen-melody",
    "facebook/musicgen-melody-large",
    "facebook/musicgen-stereo-melody",
    "facebook/musicgen-stereo-melody-large",
)

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

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)


def default_model_name(melody: bool) -> str:
    """The checkpoint from ``$MUSICGEN_MODEL`` / ``$MUSICGEN_MELODY_MODEL``, else the official default."""
    env, default = (MELODY_ENV_VAR, DEFAULT_MELODY_MODEL) if melody else (MUSICGEN_ENV_VAR, DEFAULT_MUSICGEN_MODEL)
    return os.environ.get(env, "").strip() or default


class GenerationCancelled(RuntimeError):
    """The user stopped a generation."""


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
    """A note for the page about prompt parts the model cannot read ("" when there are none)."""
    if not parts:
        return ""
    shown = ", ".join(f"“{p}”" for p in parts[:MAX_UNKNOWN_PARTS_SHOWN])
    more = f" and {len(parts) - MAX_UNKNOWN_PARTS_SHOWN} more" if len(parts) > MAX_UNKNOWN_PARTS_SHOWN else ""
    return (
        f"The model's vocabulary has no words for {shown}{more}: it will not understand that part of the prompt. "
        "MusicGen learned from English descriptions, so English prompts work best."
    )


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
        check_not_silent(clip, "The melody")
        if clip.shape[0] / sr < MIN_MELODY_SECONDS:
            raise ValueError(
                f"The melody is {clip.shape[0] / sr:.2f} s long: too short to follow. Use at least "
                f"{MIN_MELODY_SECONDS:.0f} second."
            )
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
        check_not_silent(clip, "The clip")
        seconds = clip.shape[0] / sr
        if seconds < MIN_CLIP_SECONDS:
            raise ValueError(f"The clip is {seconds:.2f} s long: use at least {MIN_CLIP_SECONDS:.0f} second to continue.")
        if seconds > MAX_CLIP_SECONDS:
            raise ValueError(
                f"The clip is {seconds:.1f} s long, more than the {MAX_CLIP_SECONDS:.0f} s the model can take as a "
                "start (its window is 30 s): trim it with the start/end sliders."
            )
        return cls(clip[None, :], sr, cls.trim_of(start, end))


@dataclass(frozen=True)
class Window:
    """One window of a long piece, in frames of the output: its prompt ``[context_start, start)`` and new music
    ``[start, end)``; ``melody_offset`` is where in the (looped) melody its chroma starts, in seconds."""

    context_start: int
    start: int
    end: int
    melody_offset: float | None = None


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

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate


class _StepWatcher(StoppingCriteria):
    """Runs after every decode step: reports progress, and stops generation when ``cancel`` is set.

    Called by the fast loop through ``tick``, and by stock ``generate`` as a stopping criterion (rather than a
    streamer: MusicGen's ``generate`` in transformers 5.23 hands its streamer only the prompt, never the steps).
    """

    def __init__(self, total_steps: int, progress: Progress, cancel: threading.Event | None) -> None:
        self.total = max(1, total_steps)
        self.progress = progress
        self.cancel = cancel
        self.step = 0
        self.every = max(1, self.total // 100)
        self.label = ""
        self.last_ids: torch.Tensor | None = None

    def tick(self, *_: Any) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise GenerationCancelled("Generation was stopped.")
        self.step += 1
        if self.step % self.every == 0 or self.step == self.total:
            where = f" ({self.label})" if self.label else ""
            self.progress(0.05 + 0.9 * self.step / self.total, f"Generating: step {self.step} of {self.total}{where}")

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        self.last_ids = input_ids
        self.tick()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class MusicGenModel:
    """A MusicGen or MusicGen-Melody checkpoint, loaded lazily on first use and kept.

    Args:
        name: hub id or local folder; default from ``$MUSICGEN_MODEL`` / ``$MUSICGEN_MELODY_MODEL``.
        device: "cuda", "mps", "cpu"...; default: the best available.
        melody: True for the melody tab (needs a MusicGen-Melody checkpoint).
    """

    def __init__(self, name: str | None = None, device: str | None = None, melody: bool = False) -> None:
        self.melody = melody
        self.name = (name or default_model_name(melody)).strip()
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device)
        self.fast_path = env_flag(FAST_PATH_ENV_VAR)
        self.int8 = self.device.type == "cpu" and env_flag(CPU_INT8_ENV_VAR)
        self.model: MusicgenForConditionalGeneration | MusicgenMelodyForConditionalGeneration | None = None
        self.loop: FastMusicgen | None = None  # the decode loop, built once at load (None: stock ``generate``)
        self.tokenizer = None
        self.chroma: ChromaExtractor | None = None
        self._lock = threading.Lock()
        self._step_seconds: float | None = None  # measured decode speed here, for time estimates
        self.shared: list[str] = []  # parts found equal to an already loaded model's, and shared with it

    @property
    def what(self) -> str:
        return "Melody model" if self.melody else "Text-to-music model"

    @property
    def loaded(self) -> bool:
        return self.model is not None

    @property
    def is_melody_model(self) -> bool:
        return isinstance(self.model, MusicgenMelodyForConditionalGeneration)

    @property
    def sample_rate(self) -> int:
        assert self.model is not None
        return int(self.model.config.audio_encoder.sampling_rate)

    def check_kind_by_name(self) -> None:
        """Fail early, without loading, when a known text-only checkpoint is chosen for the melody tab."""
        if self.melody and self.name in TEXT_CHECKPOINTS:
            raise ValueError(
                f"`{self.name}` is a text-only MusicGen checkpoint; melody conditioning needs a MusicGen-Melody "
                f"checkpoint: {', '.join(MELODY_CHECKPOINTS)}."
            )

    def load(self) -> None:
        """Load the model and tokenizer once.

        Raises:
            ValueError: a text-only checkpoint was chosen for the melody tab.
            ModelLoadError: which model failed, why, and how to point the app at a local folder.
        """
        self.check_kind_by_name()
        model_thread().call(self._load)

    def _load(self) -> None:
        with self._lock:
            if self.model is not None:
                return
            env, flag = (MELODY_ENV_VAR, MELODY_CLI_FLAG) if self.melody else (MUSICGEN_ENV_VAR, MUSICGEN_CLI_FLAG)
            self.model, self.tokenizer, self.chroma = load_or_explain(self.what, self.name, env, flag, self._from_source)
            # one loop per loaded model: every request's decode joins it, so requests in flight share its passes
            self.loop = FastMusicgen(self.model) if self.fast_path and supports_fast_path(self.model) else None
            logger.info("Loaded %s %s on %s (%s)", self.what, self.name, self.device, self.dtype)

    def _from_source(self, source: ModelSource):
        kwargs = {"local_files_only": source.local_files_only}
        config = AutoConfig.from_pretrained(source.location, **kwargs)
        if config.model_type not in {"musicgen", "musicgen_melody"}:
            raise ValueError(f"`{self.name}` is a `{config.model_type}` checkpoint, not MusicGen.")
        is_melody = config.model_type == "musicgen_melody"
        if self.melody and not is_melody:
            raise ValueError(
                f"`{self.name}` is a text-only MusicGen checkpoint; melody conditioning needs a MusicGen-Melody "
                f"checkpoint: {', '.join(MELODY_CHECKPOINTS)}."
            )
        model_class = MusicgenMelodyForConditionalGeneration if is_melody else MusicgenForConditionalGeneration
        model = model_class.from_pretrained(source.location, dtype=self.dtype, **kwargs).to(self.device).eval()
        if self.int8:
            model = quantize_decoder_int8(model)  # layer by layer; the model lets go of the mapped checkpoint
        fold_weight_norm(model.audio_encoder)  # EnCodec's weights computed once, not at every decode (exact)
        self.shared = share_frozen_parts(model)
        return_freed_memory()  # the float32 layers the int8 ones replaced, and any duplicate T5/EnCodec
        tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
        chroma = None
        if is_melody:
            folder = source.location
            if not source.is_local:
                from huggingface_hub import snapshot_download

                folder = snapshot_download(source.location, allow_patterns=["preprocessor_config.json"], **kwargs)
            chroma = ChromaExtractor.from_pretrained(folder)
        return model, tokenizer, chroma

    def unload(self) -> None:
        """Drop the model and return its memory."""
        with self._lock:
            self.model = self.tokenizer = self.chroma = self.loop = None
        free_accelerator_memory()

    def n_steps(self, duration: float) -> int:
        """Decode steps for ``duration`` seconds: frames plus the codebook delay pattern's tail."""
        assert self.model is not None
        return math.ceil(duration * self.model.config.audio_encoder.frame_rate) + self.delay

    def plan_windows(self, total_frames: int, stride_s: float, context_frames: int = 0,
                     whole_context: bool = False) -> list[Window]:
        """The windows of a piece of ``total_frames`` new frames after ``context_frames`` of given codes.

        As audiocraft's extension: a window holds at most WINDOW_S seconds of codes; every window keeps the last
        ``WINDOW_S - stride`` seconds before it as its prompt (none for a fresh piece's first window) and adds up to
        ``stride`` seconds (the first window of a fresh piece: up to WINDOW_S). ``whole_context``: the first window
        keeps all the given codes (a clip, at most MAX_CLIP_SECONDS).
        """
        assert self.model is not None
        rate = self.model.config.audio_encoder.frame_rate
        window, stride = int(round(WINDOW_S * rate)), int(round(stride_s * rate))
        windows: list[Window] = []
        end = context_frames
        while end < context_frames + total_frames:
            keep = min(end, window - stride)
            if not windows and whole_context:
                keep = min(end, int(round(MAX_CLIP_SECONDS * rate)))
            new = min(window - keep, context_frames + total_frames - end)
            windows.append(Window(end - keep, end, end + new))
            end += new
        return windows

    def estimate_seconds(self, duration: float, n_variants: int = 1, stride: float = DEFAULT_STRIDE_S) -> float | None:
        """Roughly how long a piece takes here, from the decode speed measured on this machine (None before any)."""
        if not self._step_seconds or self.model is None:
            return None
        rate = self.model.config.audio_encoder.frame_rate
        windows = self.plan_windows(int(round(duration * rate)), stride)
        steps = sum(w.end - w.start + self.delay for w in windows)
        return steps * self._step_seconds * (1 + 0.15 * (n_variants - 1))

    @property
    def delay(self) -> int:
        """The delay pattern's tail: steps after the last frame until every codebook has it."""
        assert self.model is not None
        return max(codebook_delays(self.model.config.decoder))

    @torch.inference_mode()
    def generate(
        self,
        prompt: str,
        params: SamplingParams = SamplingParams(),
        n_variants: int = 1,
        melody: Melody | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        clip: Clip | None = None,
        continue_codes: np.ndarray | None = None,
        stream: Callable[[np.ndarray], None] | None = None,
        melody_source: str = SOURCE_SEPARATED,
        separator: str | None = None,
    ) -> MusicResult:
        """Generate ``n_variants`` pieces in one batched call per window.

        Up to 30 s is one window; longer pieces (up to 300 s) are extended window by window, each keeping the last
        ``30 - params.stride`` seconds of codes as its prompt (audiocraft's extension). With a melody, each window
        follows the part of the melody under its own time, the melody looping when the piece outlasts it.

        Args:
            prompt: text description (may be empty when a melody is given).
            params: sampling settings; ``params.seed`` None picks a random seed (returned).
            n_variants: 1..4 different pieces from the same prompt.
            melody: melody to follow (melody checkpoints only).
            progress: called with (fraction, message) as decoding advances, across all windows.
            cancel: set it from another thread to stop: the finished part comes back (``result.stopped``), or
                GenerationCancelled when nothing was finished yet.
            clip: audio to continue: the result is the clip (re-encoded by the model's codec) then ``duration``
                seconds more.
            continue_codes: [variants or 1, K, frames] codes of an earlier result to extend by ``duration`` seconds.
            stream: receives the audio in chunks [variants, channels, samples] as it is finished: about a second of
                music first, then every two seconds (a preview decoded chunk by chunk; the result's audio is
                decoded in one go, and equals the result without streaming).
            melody_source: "separated": the chroma is taken from the melody's vocals + other stems (Demucs), as
                audiocraft does; "mix": from the melody as given. When the separator cannot be loaded, the whole
                mix is used and a note says why.
            separator: the Demucs model (hub id or folder); None: ``$MELODY_SEPARATOR_MODEL`` or the default.

        Raises:
            ValueError: invalid prompt, settings, melody or clip.
            GenerationCancelled: ``cancel`` was set before any music was finished.
        """
        report = progress or (lambda fraction, message: None)
        params = params.validated()
        prompt = check_prompt(prompt, required=melody is None and clip is None and continue_codes is None)
        if not 1 <= n_variants <= MAX_VARIANTS:
            raise ValueError(f"Ask for 1 to {MAX_VARIANTS} variants, got {n_variants}.")
        melody_source = check_melody_source(melody_source)
        if melody is not None and self.melody is False:
            raise ValueError("This is the text-to-music model; use the melody tab to follow a melody.")
        self.check_kind_by_name()
        report(0.0, "Loading the model" if not self.loaded else "Preparing")
        self.load()
        assert self.model is not None and self.tokenizer is not None

        seed = params.seed if params.seed is not None else secrets.randbelow(MAX_SEED + 1)
        unknown = unknown_prompt_parts(self.tokenizer, prompt)
        inputs = self.tokenizer([prompt] * n_variants, return_tensors="pt", padding=True).to(self.device)
        if self.melody:
            if melody is None:
                raise ValueError("Please upload or record a melody first.")
            assert self.chroma is not None
            if melody.duration < MIN_MELODY_SECONDS:
                raise ValueError(f"The melody is too short; use at least {MIN_MELODY_SECONDS:.0f} second of it.")
        source_used, source_note = None, ""
        if self.melody and melody is not None:
            source_used = "whole mix"
            if melody_source == SOURCE_SEPARATED:
                report(0.02, "Separating the melody from drums and bass (Demucs)")
                stemmer = get_separator(separator)
                try:
                    stems = stemmer.melody_stems(melody.audio, melody.sample_rate)  # on the model thread
                    melody = Melody(stems, melody.sample_rate, melody.trim)
                    source_used = f"separated: {' + '.join(MELODY_STEMS)} stems ({stemmer.name})"
                except ModelLoadError as e:
                    source_used = "whole mix (the separator could not be loaded)"
                    source_note = f"The melody was not separated, so its chroma comes from the whole mix. {e}"

        given = None  # codes the piece starts from: a clip, or an earlier result
        if clip is not None:
            audio_in = torch.from_numpy(resample_to(clip.audio, clip.sample_rate, self.sample_rate))[None]
            codec_dtype = next(self.model.audio_encoder.parameters()).dtype
            given = model_thread().call(encode_audio, self.model, audio_in.to(self.device, codec_dtype))
        elif continue_codes is not None:
            given = torch.as_tensor(continue_codes, dtype=torch.long, device=self.device)
        if given is not None and given.shape[0] != n_variants:
            given = given[:1].repeat(n_variants, 1, 1)

        rate = self.model.config.audio_encoder.frame_rate
        new_frames = int(math.ceil(params.duration * rate))
        context = 0 if given is None else int(given.shape[-1])
        windows = self.plan_windows(new_frames, params.stride, context, whole_context=clip is not None)
        total_steps = sum(w.end - w.start + self.delay for w in windows)
        fast = self.loop is not None
        passes = PassCount()
        # the fast loop stops between steps and keeps what it finished; stock generate is stopped by the watcher
        watcher = _StepWatcher(total_steps, report, None if fast else cancel)
        sampling = dict(
            do_sample=True,
            top_k=int(params.top_k),
            top_p=params.top_p if params.top_p > 0 else 1.0,
            temperature=params.temperature,
            guidance_scale=params.guidance_scale,
        )
        torch.manual_seed(seed)  # stock generate samples with torch's global generator
        sampling_generator = torch.Generator(self.device).manual_seed(seed)  # the fast loop: this request's own
        report(0.05, "Generating")
        codes = given
        streamer = AudioStream(self.model, stream, limit=context + new_frames) if stream is not None else None
        first_chroma = None
        done_windows: list[Window] = []
        stopped = False
        started = time.perf_counter()
        for index, window in enumerate(windows):
            prompt_len = window.start - window.context_start  # frames of earlier music the window starts from
            prompt_codes = codes[..., window.context_start : window.start] if prompt_len else None
            steps = window.end - window.start + self.delay
            extra: dict[str, Any] = {}
            if self.melody:
                assert melody is not None and self.chroma is not None
                # As audiocraft: one window follows the melody as given; a longer piece gives each window
                # WINDOW_S seconds of the melody from the window's own time on, the melody looping.
                offset = (window.context_start / rate) % melody.duration
                window = Window(window.context_start, window.start, window.end, round(offset, 3))
                segment = (melody.audio if len(windows) == 1
                           else looped(melody.audio, melody.sample_rate, offset, WINDOW_S))
                chroma = model_thread().call(self.chroma, segment, melody.sample_rate)  # [1, frames, 12]
                first_chroma = chroma if first_chroma is None else first_chroma
                extra["input_features"] = chroma.repeat(n_variants, 1, 1).to(self.device, self.dtype)
            if len(windows) > 1:
                watcher.label = f"window {index + 1} of {len(windows)}"
            on_frames = None
            if streamer is not None:
                on_frames = (lambda window_codes, before=codes, prompt_len=prompt_len: streamer(
                    window_codes if before is None else torch.cat([before, window_codes[..., prompt_len:]], -1)))
            try:
                out = self._window(inputs, prompt_codes, steps, sampling, watcher, extra, cancel, on_frames,
                                   sampling_generator, passes)
            except GenerationCancelled:
                if codes is None or codes.shape[-1] <= context:
                    raise
                stopped = True
                break
            fresh = out[..., prompt_len:]
            codes = fresh if codes is None else torch.cat([codes, fresh], dim=-1)
            done_windows.append(window)
            if streamer is not None:
                streamer(codes)
            if fresh.shape[-1] < window.end - window.start:
                stopped = True  # the loop stopped inside this window: keep what it finished
                break
        if codes is None or (stopped and codes.shape[-1] <= context):
            raise GenerationCancelled("Generation was stopped before any music was finished.")
        elapsed = time.perf_counter() - started
        if watcher.step:
            self._step_seconds = elapsed / watcher.step
        if streamer is not None:
            streamer(codes, final=True)
        report(0.97, "Decoding audio")
        audio = model_thread().call(decode_codes, self.model, codes).float().cpu().numpy()
        seconds = codes.shape[-1] / rate if stopped else context / rate + params.duration
        n_samples = int(round(seconds * self.sample_rate))
        audio = audio[..., :n_samples]
        if audio.shape[-1] < n_samples:
            audio = np.pad(audio, ((0, 0), (0, 0), (0, n_samples - audio.shape[-1])))
        record = {
            "model": self.name,
            "task": "melody_to_music" if self.melody else "text_to_music",
            "prompt": prompt,
            **asdict(params),
            "seed": seed,
            "variants": n_variants,
            "sample_rate": self.sample_rate,
            "channels": int(audio.shape[1]),
            "seconds": round(audio.shape[-1] / self.sample_rate, 3),
            "windows": [asdict(w) for w in done_windows],
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "decoder_weights": "int8" if self.int8 else str(self.dtype).removeprefix("torch."),
            "decode_loop": "fast" if fast else "transformers generate",
        }
        if fast:  # how it ran, not needed to reproduce it: passes through the decoder, and those shared with others
            record["decode_passes"] = {"total": passes.total, "shared_with_other_requests": passes.shared}
        if melody is not None:
            record["melody_seconds"] = round(melody.duration, 3)
            record["melody_trim"] = list(melody.trim)
            record["melody_source"] = melody_source
            record["melody_source_used"] = source_used
        if clip is not None:
            record["clip_seconds"] = round(clip.duration, 3)
            record["clip_trim"] = list(clip.trim)
            record["clip"] = "re-encoded by the model's codec (EnCodec), then continued"
        if continue_codes is not None:
            record["extended_from_seconds"] = round(context / rate, 3)
        if unknown:
            record["unknown_prompt_parts"] = unknown
        notes = [note for note in (unknown_prompt_note(unknown), source_note) if note]
        if stopped:
            record["stopped"] = True
            notes.append(f"Stopped: here are the {audio.shape[-1] / self.sample_rate:.1f} s that were finished.")
        return MusicResult(
            np.clip(audio, -1.0, 1.0).astype(np.float32),
            self.sample_rate,
            seed,
            record,
            None if first_chroma is None else first_chroma[0].cpu().numpy(),
            notes,
            codes.cpu().numpy(),
            done_windows,
            stopped,
        )

    def _window(self, inputs: Any, prompt_codes: torch.Tensor | None, steps: int, sampling: dict[str, Any],
                watcher: _StepWatcher, extra: dict[str, Any], cancel: threading.Event | None,
                on_frames: Callable[[torch.Tensor], None] | None = None,
                generator: torch.Generator | None = None, passes: PassCount | None = None) -> torch.Tensor:
        """One window: codes [B, K, prompt + new frames] (the prompt codes first, as given); ``passes`` counts the
        fast loop's decoder passes.

        The fast loop steps on the model thread, sharing its passes with the other requests decoding on this
        model at the time (each request gets exactly the tokens it gets alone); stock ``generate`` runs there whole.
        """
        assert self.model is not None
        if self.loop is not None:
            return self.loop.generate_codes(
                inputs["input_ids"], inputs["attention_mask"], steps, on_step=watcher.tick,
                prompt_codes=prompt_codes, should_stop=(lambda: cancel.is_set()) if cancel is not None else None,
                on_frames=on_frames, frames_every=10, input_features=extra.get("input_features"), generator=generator,
                joint=model_thread(), passes=passes, **sampling,
            )
        batch, k = inputs["input_ids"].shape[0], self.model.config.decoder.num_codebooks
        start = int(self.model.generation_config.decoder_start_token_id)
        first = torch.full((batch * k, 1), start, dtype=torch.long, device=self.device)
        if prompt_codes is not None:
            first = torch.cat([first, prompt_codes.reshape(batch * k, -1)], dim=1)
        watcher.last_ids = None
        model_thread().call(
            self.model.generate,
            **inputs, **extra, decoder_input_ids=first, max_new_tokens=steps,
            stopping_criteria=StoppingCriteriaList([watcher]), **sampling,
        )
        # stock generate returns audio only: its codes are the ids the watcher saw last, in the delay pattern
        ids = watcher.last_ids
        _, pattern = self.model.decoder.build_delay_pattern_mask(first, pad_token_id=start,
                                                                 max_length=first.shape[1] + steps)
        ids = self.model.decoder.apply_delay_pattern_mask(ids, pattern[:, : ids.shape[1]])
        return undelay(ids.view(batch, k, -1), codebook_delays(self.model.config.decoder))


STREAM_FIRST_S = 1.0  # streaming: the first chunk as soon as this much music is finished
STREAM_EVERY_S = 2.0  # ... then a chunk every this much
STREAM_CONTEXT_S = 1.0  # each chunk is decoded with this much of the music before it, for a seamless join


class AudioStream:
    """Turns the codes finished so far into new audio while a piece is made (for players that start at once).

    Each chunk decodes the new frames together with up to STREAM_CONTEXT_S of the frames before them and hands on
    only the new part, so chunks join without clicks. It is a preview: the final file is decoded in one go from
    the same codes, as without streaming.

    Args:
        model: the loaded MusicGen (its EnCodec decodes).
        send: receives each chunk, float32 [variants, channels, samples].
        limit: frames to stream at most (the piece's length; codes past it are the delay pattern's tail).
    """

    def __init__(self, model: Any, send: Callable[[np.ndarray], None], limit: int | None = None) -> None:
        self.model = model
        self.send = send
        rate = model.config.audio_encoder.frame_rate
        self.hop = int(model.config.audio_encoder.sampling_rate // rate)  # samples per frame
        self.context = int(STREAM_CONTEXT_S * rate)
        self.first = int(STREAM_FIRST_S * rate)
        self.every = int(STREAM_EVERY_S * rate)
        self.sent = 0
        self.limit = limit

    def __call__(self, codes: torch.Tensor, final: bool = False) -> None:
        """Offer the codes [B, K, frames] finished so far; a chunk goes out when enough new frames are there."""
        frames = codes.shape[-1] if self.limit is None else min(codes.shape[-1], self.limit)
        threshold = self.first if self.sent == 0 else self.every
        if frames <= self.sent or (frames - self.sent < threshold and not final):
            return
        start = max(0, self.sent - self.context)
        audio = model_thread().call(decode_codes, self.model, codes[..., start:frames]).float().cpu().numpy()
        audio = audio[..., (self.sent - start) * self.hop : (frames - start) * self.hop]
        self.sent = frames
        self.send(np.clip(audio, -1.0, 1.0).astype(np.float32))


def resample_to(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """[channels, T] audio at ``rate`` Hz -> ``target`` Hz (float32)."""
    if rate == target:
        return audio.astype(np.float32)
    import librosa

    return librosa.resample(audio, orig_sr=rate, target_sr=target).astype(np.float32)


def looped(audio: np.ndarray, rate: int, offset: float, seconds: float) -> np.ndarray:
    """``seconds`` of ``audio`` [T] from ``offset`` s on, the audio repeating when it runs out."""
    start = int(round(offset * rate))
    need = int(round(seconds * rate))
    reps = -(-(start + need) // max(1, audio.shape[0]))
    return np.tile(audio, reps)[start : start + need]


SHARED_PARTS = ("text_encoder", "audio_encoder")  # frozen T5 and EnCodec: the same in many checkpoints
_parts: weakref.WeakValueDictionary[str, torch.nn.Module] = weakref.WeakValueDictionary()
_parts_lock = threading.Lock()


def fingerprint(module: torch.nn.Module) -> str:
    """A hash of a module's class, parameter and buffer names, dtypes, shapes, devices and values."""
    digest = hashlib.blake2b(type(module).__name__.encode(), digest_size=20)
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|{tensor.device}".encode())
        digest.update(tensor.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def share_frozen_parts(model: torch.nn.Module) -> list[str]:
    """Point ``model``'s text encoder and audio codec at an already loaded model's when their tensors are equal
    (checked by hash, never assumed): the MusicGen checkpoints share T5-base and the 32 kHz EnCodec, so the text
    and melody tabs then hold one copy. Returns the parts that were shared."""
    shared = []
    with _parts_lock:
        for part in SHARED_PARTS:
            module = getattr(model, part, None)
            if module is None:
                continue
            key = f"{part}:{fingerprint(module)}"
            existing = _parts.get(key)
            if existing is not None and existing is not module:
                setattr(model, part, existing)
                shared.append(part)
                logger.info("Sharing the %s with an already loaded model (equal tensors)", part)
            else:
                _parts[key] = module
    return shared


_cache: dict[str, MusicGenModel] = {}
_cache_lock = threading.Lock()


def get_musicgen_model(name: str | None = None, device: str | None = None, melody: bool = False) -> MusicGenModel:
    """The shared model for one tab; choosing another checkpoint frees the previous one first."""
    key = "melody" if melody else "text"
    name = (name or default_model_name(melody)).strip()
    with _cache_lock:
        current = _cache.get(key)
        if current is not None and current.name == name and (device is None or str(current.device) == device):
            return current
        if current is not None:
            current.unload()
            del _cache[key]
            current = None
            free_accelerator_memory()
        _cache[key] = MusicGenModel(name, device, melody)
        return _cache[key]


def params_json(result: MusicResult) -> str:
    """The parameters of a result as pretty JSON (for the page and for reproducing it)."""
    return json.dumps(result.params, indent=2)


__all__ = [
    "GenerationCancelled",
    "Melody",
    "MusicGenModel",
    "MusicResult",
    "SamplingParams",
    "get_musicgen_model",
]
