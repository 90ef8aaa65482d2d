"""MusicGen and MusicGen-Melody through transformers, shaped as audiocraft's ``MusicGen``: one model object with thin
entry points (``generate``, ``generate_with_melody``, ``generate_continuation``, ``extend``) over one windowed token
loop, then ``decode``.

The checkpoints are the official ``facebook/musicgen-*`` ones (audiocraft cannot be installed next to a current
torch). Melody chroma is computed by ``utils.chroma`` because transformers' melody feature extractor needs
torchaudio. The decode backend (the fast loop, or stock ``generate``) is built once, when the model loads.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from transformers import MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration

from models.devices import env_flag, pick_dtype, settle_attention_backend
from models.musicgen.backends import Backend, FastBackend, build_backend
from models.musicgen.checkpoints import (
    CPU_INT8_ENV_VAR,
    FAST_PATH_ENV_VAR,
    MELODY_CHECKPOINTS,
    MELODY_CLI_FLAG,
    MELODY_ENV_VAR,
    MUSICGEN_CLI_FLAG,
    MUSICGEN_ENV_VAR,
    TEXT_CHECKPOINTS,
    check_kind_by_name,
    default_model_name,
    load_checkpoint,
)
from models.musicgen.codec import codebook_delays, decode_codes, encode_audio
from models.musicgen.decoding import PassCount
from models.musicgen.inputs import (
    DEFAULT_STRIDE_S,
    MAX_SEED,
    WINDOW_S,
    Clip,
    Melody,
    SamplingParams,
    looped,
    unknown_prompt_note,
    unknown_prompt_parts,
)
from models.musicgen.request import MusicRequest, MusicResult
from models.musicgen.streaming import AudioStream
from models.musicgen.windows import Window, decode_steps, plan_windows
from models.progress import GenerationCancelled, StepWatcher
from models.runtime import model_thread
from models.separator import MELODY_STEMS, SOURCE_SEPARATED
from models.cache import ModelBusy
from models.loading import LoadedModel, use_model
from models.sources import NOT_HERE, ModelLoadError, ModelSource, public_name
from models.translation import default_translation_name, translate_prompt
from utils.audio import resample
from utils.chroma import ChromaExtractor
from utils.progress import Progress, no_progress

logger = logging.getLogger(__name__)

MIN_STEPS_FOR_ESTIMATE = 10  # progress says how long is left once this many steps were timed


@dataclass(frozen=True, eq=False)
class _Prepared:
    """A request's conditions, ready for the token loop (``MusicGenModel._prepare``)."""

    request: MusicRequest
    seed: int
    inputs: Any  # the tokenized prompt (its English when translated), one row per variant
    english: str | None  # the English the prompt was made from, when translated
    unknown: list[str]  # prompt parts the model still cannot read
    translation_failure: str  # why a needed translation could not be made ("" when none was needed or it worked)
    translation_model: str | None  # the translator, when one was needed
    melody: Melody | None  # what the chroma is taken from (separated stems, or the melody as given)
    source_used: str | None
    source_note: str
    given: torch.Tensor | None  # the codes the piece starts from [variants, K, frames]
    context: int  # frames of ``given``
    new_frames: int
    windows: list[Window]


class MusicGenModel(LoadedModel):
    """A MusicGen or MusicGen-Melody checkpoint, loaded lazily on first use and kept.

    Args:
        name: hub id or local folder; default from ``$MUSICGEN_MODEL`` / ``$MUSICGEN_MELODY_MODEL``.
        device: "cuda", "mps", "cpu"...; default: the best available.
        melody: True for the melody tab (needs a MusicGen-Melody checkpoint).
    """

    def __init__(self, name: str | None = None, device: str | None = None, melody: bool = False) -> None:
        self.melody = melody
        self.what = "Melody model" if melody else "Text-to-music model"
        self.env_var, self.cli_flag = self.setting(melody)
        self.checkpoints = self.known(melody)
        super().__init__(name or default_model_name(melody), device)
        self.dtype = pick_dtype(self.device)
        self.fast_path = env_flag(FAST_PATH_ENV_VAR)
        self.int8 = self.device.type == "cpu" and env_flag(CPU_INT8_ENV_VAR)
        # on a GPU the fast loop runs the decoder in bfloat16/float16, T5 and EnCodec in float32 (checkpoints.py)
        self.float32_parts = self.fast_path and self.device.type != "cpu" and self.dtype != torch.float32
        self.model: MusicgenForConditionalGeneration | MusicgenMelodyForConditionalGeneration | None = None
        self.backend: Backend | None = None  # how windows decode, built once at load
        self.tokenizer = None
        self.chroma: ChromaExtractor | None = None
        self._step_seconds: float | None = None  # measured decode speed here, for time estimates
        self.shared: list[str] = []  # parts found equal to an already loaded model's, and shared with it

    @classmethod
    def default_name(cls, melody: bool = False) -> str:
        return default_model_name(melody)

    @classmethod
    def setting(cls, melody: bool = False) -> tuple[str, str]:
        return (MELODY_ENV_VAR, MELODY_CLI_FLAG) if melody else (MUSICGEN_ENV_VAR, MUSICGEN_CLI_FLAG)

    @classmethod
    def known(cls, melody: bool = False) -> tuple[str, ...]:
        """The official checkpoints of the text or melody role."""
        return MELODY_CHECKPOINTS if melody else TEXT_CHECKPOINTS

    @property
    def sample_rate(self) -> int:
        assert self.model is not None
        return int(self.model.config.audio_encoder.sampling_rate)

    @property
    def frame_rate(self) -> float:
        assert self.model is not None
        return self.model.config.audio_encoder.frame_rate

    @property
    def delay(self) -> int:
        """The delay pattern's tail: steps after the last frame until every codebook has it."""
        assert self.model is not None
        return max(codebook_delays(self.model.config.decoder))

    def check_kind_by_name(self) -> None:
        """Fail early, without loading, when a known text-only checkpoint is chosen for the melody tab."""
        check_kind_by_name(self.name, self.melody)

    def check_before_load(self) -> None:
        self.check_kind_by_name()

    def _from_source(self, source: ModelSource) -> tuple[Any, Any, ChromaExtractor | None, list[str]]:
        return load_checkpoint(source, self.name, self.melody, self.device, self.dtype, self.int8, self.float32_parts)

    def _keep(self, parts: tuple[Any, Any, ChromaExtractor | None, list[str]]) -> None:
        self.model, self.tokenizer, self.chroma, self.shared = parts
        # one backend per loaded model: every request's decode joins its loop, so requests share its passes
        self.backend = build_backend(self.model, self.fast_path)

    def _after_load(self) -> None:
        attention = settle_attention_backend(self.device)
        logger.info("%s: %s; %s", self.what, self.dtype, attention)

    def _drop(self) -> None:
        self.model = self.tokenizer = self.chroma = self.backend = None

    def n_steps(self, duration: float) -> int:
        """Decode steps for ``duration`` seconds: frames plus the codebook delay pattern's tail."""
        return math.ceil(duration * self.frame_rate) + self.delay

    def plan_windows(self, total_frames: int, stride_s: float, context_frames: int = 0,
                     whole_context: bool = False) -> list[Window]:
        """``windows.plan_windows`` at this model's frame rate."""
        return plan_windows(total_frames, self.frame_rate, stride_s, context_frames, whole_context)

    def estimate_seconds(self, duration: float, n_variants: int = 1, stride: float = DEFAULT_STRIDE_S) -> float | None:
        """Roughly how long a piece takes here, from the decode speed measured on this machine (None before any)."""
        if not self._step_seconds or self.model is None:
            return None
        steps = decode_steps(self.plan_windows(int(round(duration * self.frame_rate)), stride), self.delay)
        return steps * self._step_seconds * (1 + 0.15 * (n_variants - 1))

    # ---------------------------------------------------------------------------------------------- entry points
    # As audiocraft's: each entry point says what to make (a ``MusicRequest``, checked once when built), then
    # ``make`` prepares its conditions, runs ``_generate_tokens`` (the windowed token loop) and ``generate_audio``.
    def generate(self, prompt: str, params: SamplingParams = SamplingParams(), n_variants: int = 1, *,
                 prompt_english: str | None = None, **run: Any) -> MusicResult:
        """``n_variants`` pieces from a text prompt, in one batched call per window.

        Up to 30 s is one window; longer pieces (up to 300 s) are extended window by window, each keeping the last
        ``30 - params.stride`` seconds of codes as its prompt (audiocraft's extension).

        Args:
            prompt: text description.
            params: sampling settings; ``params.seed`` None picks a random seed (returned).
            n_variants: 1..4 different pieces from the same prompt.
            prompt_english: the English to make this request from instead of translating (a parameters file's
                ``prompt_english``, to reproduce its result); for this request only.
            run: how it runs (progress, cancel, stream, translator, separator): see ``make``.

        Raises:
            ValueError: invalid prompt or settings, or a melody model (it needs a melody).
            GenerationCancelled: ``cancel`` was set before any music was finished.
        """
        return self.make(MusicRequest(prompt, params, n_variants, prompt_english=prompt_english), **run)

    def generate_with_melody(self, prompt: str, melody: Melody, params: SamplingParams = SamplingParams(),
                             n_variants: int = 1, *, melody_source: str = SOURCE_SEPARATED,
                             prompt_english: str | None = None, **run: Any) -> MusicResult:
        """Music that follows ``melody`` (MusicGen-Melody), in the style of ``prompt`` (may be empty).

        A piece past 30 s gives each window the part of the melody under its own time, the melody looping.

        Args:
            melody_source: "separated": the chroma is taken from the melody's vocals + other stems (Demucs), as
                audiocraft does; "mix": from the melody as given. When the separator cannot be loaded, the whole
                mix is used and a note says why.
            Others as in ``generate``.
        """
        request = MusicRequest(prompt, params, n_variants, melody=melody, melody_source=melody_source,
                               prompt_english=prompt_english)
        return self.make(request, **run)

    def generate_continuation(self, clip: Clip, prompt: str = "", params: SamplingParams = SamplingParams(),
                              n_variants: int = 1, *, prompt_english: str | None = None, **run: Any) -> MusicResult:
        """``clip`` (re-encoded by the model's codec) then ``params.duration`` seconds more; others as in
        ``generate`` (the prompt may be empty)."""
        return self.make(MusicRequest(prompt, params, n_variants, clip=clip, prompt_english=prompt_english), **run)

    def extend(self, codes: np.ndarray, prompt: str = "", params: SamplingParams = SamplingParams(),
               n_variants: int = 1, *, melody: Melody | None = None, melody_source: str = SOURCE_SEPARATED,
               prompt_english: str | None = None, **run: Any) -> MusicResult:
        """An earlier result's codes [variants or 1, K, frames] then ``params.duration`` seconds more; a melody
        model follows ``melody`` again. Others as in ``generate_with_melody``."""
        request = MusicRequest(prompt, params, n_variants, melody=melody, melody_source=melody_source,
                               codes=codes, prompt_english=prompt_english)
        return self.make(request, **run)

    @torch.inference_mode()
    def make(self, request: MusicRequest, *, progress: Progress | None = None, cancel: threading.Event | None = None,
             stream: Callable[[np.ndarray], None] | None = None, translator: str | None = None,
             separator: str | None = None) -> MusicResult:
        """Make what ``request`` asks for: the one call behind every entry point, for the page, the API and the
        command line.

        Args:
            request: what to make (already checked).
            progress: called with (fraction, message) as decoding advances, across all windows.
            cancel: set it from another thread to stop: the finished part comes back (``result.stopped``), or
                GenerationCancelled when nothing was finished yet.
            stream: receives the audio in chunks [variants, channels, samples] as it is finished: about a second of
                music first, then every two seconds (a preview decoded chunk by chunk; the result's audio is
                decoded in one go, and equals the result without streaming).
            translator: the MarianMT model for prompt parts in other languages (hub id, folder or "off"); None:
                ``$PROMPT_TRANSLATION_MODEL`` or the default (see ``models.translation``).
            separator: the Demucs model for a separated melody (hub id or folder); None:
                ``$MELODY_SEPARATOR_MODEL`` or the default.

        Raises:
            ValueError: the request does not fit this model (a melody for the text model, or none for the melody
                model).
            GenerationCancelled: ``cancel`` was set before any music was finished.
        """
        report = progress or no_progress
        if request.melody is not None and not self.melody:
            raise ValueError("This is the text-to-music model; use the melody tab to follow a melody.")
        self.check_kind_by_name()
        if self.melody and request.melody is None:
            raise ValueError("Please upload or record a melody first.")
        report(0.0, "Loading the model" if not self.loaded else "Preparing")
        self.load()
        assert self.backend is not None
        prepared = self._prepare(request, translator, separator, report)
        streamer = (AudioStream(self.model, stream, limit=prepared.context + prepared.new_frames)
                    if stream is not None else None)
        try:
            codes, done, chroma, stopped, passes = self._generate_tokens(prepared, report, cancel, streamer)
        finally:
            self.backend.end_request()  # ZeroGPU: the decode buffers go with the call
        if streamer is not None:
            streamer(codes, final=True)
        return self.generate_audio(codes, prepared, done, chroma, stopped, passes, report)

    def _prepare(self, request: MusicRequest, translator: str | None, separator: str | None,
                 report: Progress) -> _Prepared:
        """A request's conditions: the seed, the prompt's tokens (its English when translated), the melody the
        chroma is taken from, the codes the piece starts from, and its windows."""
        assert self.tokenizer is not None
        seed = request.params.seed if request.params.seed is not None else secrets.randbelow(MAX_SEED + 1)
        unknown = unknown_prompt_parts(self.tokenizer, request.prompt)
        english, translation_failure = translate_prompt(request.prompt, unknown, translator, request.prompt_english)
        if english is not None:
            unknown = unknown_prompt_parts(self.tokenizer, english)  # what the translation still leaves unread
        inputs = self.tokenizer([english or request.prompt] * request.variants, return_tensors="pt",
                                padding=True).to(self.device)
        melody, source_used, source_note = request.melody, None, ""
        if melody is not None:
            melody, source_used, source_note = self._melody_source(melody, request.melody_source, separator, report)
        given = self._given_codes(request.clip, request.codes, request.variants)
        context = 0 if given is None else int(given.shape[-1])
        new_frames = int(math.ceil(request.params.duration * self.frame_rate))
        windows = self.plan_windows(new_frames, request.params.stride, context, whole_context=request.clip is not None)
        return _Prepared(request, seed, inputs, english, unknown, translation_failure,
                         (translator or default_translation_name()) if english is not None or translation_failure
                         else None, melody, source_used, source_note, given, context, new_frames, windows)

    def generate_audio(self, codes: torch.Tensor, prepared: _Prepared, done: list[Window],
                       chroma: torch.Tensor | None, stopped: bool, passes: PassCount,
                       report: Progress = no_progress) -> MusicResult:
        """The finished codes decoded to audio, with the record that makes the same music again."""
        params = prepared.request.params
        report(0.97, "Decoding audio")
        seconds = (codes.shape[-1] / self.frame_rate if stopped
                   else prepared.context / self.frame_rate + params.duration)
        audio = self.decode(codes, seconds)
        record = self._record(prepared, audio, done, passes)
        notes = [note for note in (unknown_prompt_note(prepared.unknown), prepared.source_note) if note]
        if stopped:
            record["stopped"] = True
            notes.append(f"Stopped: here are the {audio.shape[-1] / self.sample_rate:.1f} s that were finished.")
        chroma_rate = self.chroma.sampling_rate / self.chroma.hop_length if self.chroma is not None else None
        return MusicResult(audio, self.sample_rate, prepared.seed, record,
                           None if chroma is None else chroma[0].cpu().numpy(), notes, codes.cpu().numpy(), done,
                           stopped, chroma_rate, prepared.english)

    def _record(self, prepared: _Prepared, audio: np.ndarray, done: list[Window], passes: PassCount) -> dict:
        """Everything needed to make the same music again, and how it was made (JSON-serialisable)."""
        assert self.backend is not None
        request = prepared.request
        dtype = str(self.dtype).removeprefix("torch.")
        record = {
            "model": public_name(self.name),
            "task": "melody_to_music" if self.melody else "text_to_music",
            "prompt": request.prompt,
            **({"prompt_english": prepared.english} if prepared.english is not None else {}),
            **asdict(request.params),
            "seed": prepared.seed,
            "variants": request.variants,
            "sample_rate": self.sample_rate,
            "channels": int(audio.shape[1]),
            "seconds": round(audio.shape[-1] / self.sample_rate, 3),
            "windows": [asdict(w) for w in done],
            "device": str(self.device),
            "dtype": dtype,
            "decoder_weights": "int8" if self.int8 else dtype,
            "text_encoder_and_codec": "float32" if self.float32_parts else dtype,
            "decode_loop": self.backend.name,
        }
        if isinstance(self.backend, FastBackend):  # how it ran, not needed to reproduce it
            record["decode_passes"] = {"total": passes.total, "shared_with_other_requests": passes.shared}
        if prepared.melody is not None:
            record["melody_seconds"] = round(prepared.melody.duration, 3)
            record["melody_trim"] = list(prepared.melody.trim)
            record["melody_source"] = request.melody_source
            record["melody_source_used"] = prepared.source_used
        if request.clip is not None:
            record["clip_seconds"] = round(request.clip.duration, 3)
            record["clip_trim"] = list(request.clip.trim)
            record["clip"] = "re-encoded by the model's codec (EnCodec), then continued"
        if request.codes is not None:
            record["extended_from_seconds"] = round(prepared.context / self.frame_rate, 3)
        if prepared.unknown:
            record["unknown_prompt_parts"] = prepared.unknown
        if prepared.translation_model:
            record["translation_model"] = public_name(prepared.translation_model)
        if prepared.translation_failure:
            record["translation_failed"] = prepared.translation_failure
        return record

    def _melody_source(self, melody: Melody, source: str | None, separator: str | None,
                       report: Progress) -> tuple[Melody, str, str]:
        """The melody the chroma is taken from: its vocals + other stems (Demucs) when separated, else as given.
        Returns (melody, what was used, a note when separation was asked for and could not be done)."""
        if source != SOURCE_SEPARATED:
            return melody, "whole mix", ""
        report(0.02, "Separating the melody from drums and bass (Demucs)")
        try:
            with use_model("separator", separator, wait=False) as stemmer:  # this run holds its own model
                stems = stemmer.melody_stems(melody.audio, melody.sample_rate)  # on the model thread
                name = stemmer.name
        except (ModelLoadError, ModelBusy) as e:  # the why and the fix: for whoever runs the app, in the log
            logger.warning("Melody separation skipped: %s", e)
            return (melody, f"whole mix (the melody separator is {NOT_HERE})",
                    "The melody could not be separated from drums and bass here, so the whole mix was used.")
        return (Melody(stems, melody.sample_rate, melody.trim),
                f"separated: {' + '.join(MELODY_STEMS)} stems ({public_name(name)})", "")

    def _given_codes(self, clip: Clip | None, continue_codes: np.ndarray | None,
                     n_variants: int) -> torch.Tensor | None:
        """The codes [variants, K, frames] a piece starts from: a clip encoded by EnCodec, or an earlier result's."""
        assert self.model is not None
        given = None
        if clip is not None:
            audio_in = torch.from_numpy(resample(clip.audio, clip.sample_rate, self.sample_rate))[None]
            codec_dtype = next(self.model.audio_encoder.parameters()).dtype
            given = model_thread().call(encode_audio, self.model, audio_in.to(self.device, codec_dtype))
        elif continue_codes is not None:
            given = torch.as_tensor(continue_codes, dtype=torch.long, device=self.device)
        if given is not None and given.shape[0] != n_variants:
            given = given[:1].repeat(n_variants, 1, 1)
        return given

    def _generate_tokens(self, prepared: _Prepared, report: Progress, cancel: threading.Event | None,
                         streamer: AudioStream | None,
                         ) -> tuple[torch.Tensor, list[Window], torch.Tensor | None, bool, PassCount]:
        """The windowed token loop: each window's codes from its prompt (the music before it) and, for a melody
        model, the chroma of the melody under its own time. Returns (codes [B, K, frames] with the given ones
        first, the windows done, the first window's chroma, whether it stopped early, the decoder passes)."""
        inputs, given, windows, melody = prepared.inputs, prepared.given, prepared.windows, prepared.melody
        params, seed, n_variants = prepared.request.params, prepared.seed, prepared.request.variants
        assert self.backend is not None
        rate, backend = self.frame_rate, self.backend
        context = 0 if given is None else int(given.shape[-1])
        passes = PassCount()

        new_seconds = sum(w.end - w.start for w in windows) / rate

        def describe(step: int, total: int) -> str:
            """Progress in music time: "12 of 40 s made · about 30 s left" (the time left once it can be told)."""
            made = new_seconds * step / total
            line = f"{made:.0f} of {new_seconds:.0f} s made"
            if step >= MIN_STEPS_FOR_ESTIMATE:
                line += f" · about {(time.perf_counter() - started) / step * (total - step):.0f} s left"
            return line

        # the fast loop stops between steps and keeps what it finished; stock generate is stopped by the watcher
        watcher = StepWatcher(decode_steps(windows, self.delay), report, (0.05, 0.95), describe,
                              None if backend.stops_itself else cancel)
        sampling = dict(do_sample=True, top_k=int(params.top_k), top_p=params.top_p if params.top_p > 0 else 1.0,
                        temperature=params.temperature, guidance_scale=params.guidance_scale)
        # this request's random numbers: the fast loop samples with it, stock generate through it (backends.py)
        generator = torch.Generator(self.device).manual_seed(seed)
        report(0.05, "Generating")
        codes, first_chroma, done, stopped = given, None, [], False
        started = time.perf_counter()
        for window in windows:
            prompt_len = window.start - window.context_start  # frames of earlier music the window starts from
            prompt_codes = codes[..., window.context_start : window.start] if prompt_len else None
            features = None
            if melody is not None:
                assert self.chroma is not None
                # As audiocraft: one window follows the melody as given; a longer piece gives each window
                # WINDOW_S seconds of the melody from the window's own time on, the melody looping.
                offset = (window.context_start / rate) % melody.duration
                window = Window(window.context_start, window.start, window.end, round(offset, 3))
                segment = (melody.audio if len(windows) == 1
                           else looped(melody.audio, melody.sample_rate, offset, WINDOW_S))
                chroma = model_thread().call(self.chroma, segment, melody.sample_rate)  # [1, frames, 12]
                first_chroma = chroma if first_chroma is None else first_chroma
                features = chroma.repeat(n_variants, 1, 1).to(self.device, self.dtype)
            on_frames = None
            if streamer is not None:
                on_frames = (lambda window_codes, before=codes, prompt_len=prompt_len: streamer(
                    window_codes if before is None else torch.cat([before, window_codes[..., prompt_len:]], -1)))
            try:
                out = backend.decode_window(inputs, prompt_codes, window.end - window.start + self.delay, sampling,
                                            watcher, features, cancel, on_frames, generator, passes)
            except GenerationCancelled:
                if codes is None or codes.shape[-1] <= context:
                    raise
                stopped = True
                break
            fresh = out[..., prompt_len:]
            codes = fresh if codes is None else torch.cat([codes, fresh], dim=-1)
            done.append(window)
            if streamer is not None:
                streamer(codes)
            if fresh.shape[-1] < window.end - window.start:
                stopped = True  # the loop stopped inside this window: keep what it finished
                break
        if codes is None or (stopped and codes.shape[-1] <= context):
            raise GenerationCancelled("Generation was stopped before any music was finished.")
        if watcher.step:
            self._step_seconds = (time.perf_counter() - started) / watcher.step
        return codes, done, first_chroma, stopped, passes

    def decode(self, codes: torch.Tensor, seconds: float) -> np.ndarray:
        """Codes [B, K, frames] -> audio float32 [B, channels, T] in [-1, 1], exactly ``seconds`` long (EnCodec on
        the model thread; cut, or padded with silence)."""
        audio = model_thread().call(decode_codes, self.model, codes).float().cpu().numpy()
        n_samples = int(round(seconds * self.sample_rate))
        audio = audio[..., :n_samples]
        if audio.shape[-1] < n_samples:
            audio = np.pad(audio, ((0, 0), (0, 0), (0, n_samples - audio.shape[-1])))
        return np.clip(audio, -1.0, 1.0).astype(np.float32)
