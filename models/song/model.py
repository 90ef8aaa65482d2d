"""Songs with lyrics: ACE-Step 1.5 through diffusers' ``AceStepPipeline``, in the house's shape (one loader, the
model thread, progress and Stop, the audio decoded in chunks so the first seconds can play early).

What runs is the stock pipeline: its prompt format, conditioning, noise, schedule and denoising loop. The wrapper
adds, without changing a number of the result:

- the prompt and lyrics encodings kept for the same text (the same tensors the pipeline would compute again);
- the VAE decode in chunks with context on both sides (equal to one pass within float rounding: ``DECODE_CONTEXT``
  covers the decoder's reach), so chunks can stream while the rest decodes;
- each variant's noise from its own seed (variant i from seed + i), so variant 1 is the song one variant makes.

On a CPU with bfloat16 products in hardware (AMX, AVX-512 BF16) the weights are bfloat16 (``SONG_DTYPE``
overrides); elsewhere float32. The difference from float32 is measured in docs/performance-history.md.
"""

from __future__ import annotations

import collections
import math
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.devices import cpu_bf16_instructions, env_flag, pick_dtype
from models.int8 import page_out_checkpoints
from models.loading import LoadedModel
from models.progress import GenerationCancelled
from models.runtime import model_thread
from models.sources import ModelSource, public_name
from models.song.checkpoints import (
    DIT_SUBFOLDERS,
    SONG_CHECKPOINTS,
    SONG_CLI_FLAG,
    SONG_ENV_VAR,
    default_song_name,
    diffusers_folder,
    hub_marker,
)
from models.song.speedups import cache_encodings, int8_on_cpu, rows_in_order, snake_in_fewer_passes
from models.song.request import (
    MAX_LYRIC_TOKENS,
    SongEdit,
    SongRequest,
    SongResult,
)
from utils.progress import Progress

logger = logging.getLogger(__name__)

FAST_PATH_ENV_VAR = "SONG_FAST_PATH"  # "0": the stock way (float32, one-pass decode, no kept encodings), to compare
DIT_INT8_ENV_VAR = "SONG_DIT_INT8"  # "0": the DiT's linear layers stay in the weights' dtype on a CPU
DTYPE_ENV_VAR = "SONG_DTYPE"  # "float32", "bfloat16" or "float16"; unset: picked per device (see module docstring)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TARGET_PEAK = 10.0 ** (-1.0 / 20.0)  # the stock pipeline's loudness: peak at -1 dBFS
DECODE_CHUNK = 250  # latent frames a decoded chunk holds (10 s)
FIRST_CHUNK = 50  # the first chunk is shorter (2 s), to be heard sooner
DECODE_CONTEXT = 16  # latent frames decoded on each side of a chunk and dropped (0.64 s; the decoder reaches 0.31 s)
SHIFT = 3.0  # diffusers' default schedule shift for every ACE-Step 1.5 variant
GUIDED_STEPS = 30  # base/sft: the doc page's usual 30-60 steps; turbo checkpoints use 8
TURBO_STEPS = 8
GUIDANCE = 7.0  # base/sft default (ignored by turbo checkpoints)
PROMPT_CACHE = 16  # prompt and lyrics encodings kept


def song_dtype(device: torch.device) -> tuple[torch.dtype, str]:
    """The weights' dtype for ``device`` and why (for the log and the technical details).

    Raises:
        ValueError: ``$SONG_DTYPE`` names no dtype we know.
    """
    requested = os.environ.get(DTYPE_ENV_VAR, "").strip().lower()
    if requested:
        if requested not in DTYPES:
            raise ValueError(f"{DTYPE_ENV_VAR}={requested!r}: use one of {', '.join(DTYPES)}.")
        return DTYPES[requested], f"{requested} (as this server is set)"
    if not env_flag(FAST_PATH_ENV_VAR):
        return torch.float32, f"float32 (stock: ${FAST_PATH_ENV_VAR}=0)"
    if device.type == "cpu":
        flags = cpu_bf16_instructions()
        if flags:
            return torch.bfloat16, f"bfloat16 (this CPU's {flags} instructions)"
        return torch.float32, "float32 (this CPU has no bfloat16 instructions)"
    dtype = pick_dtype(device)
    return dtype, f"{str(dtype).replace('torch.', '')} ({device.type})"


def dit_int8_here(device: torch.device) -> bool:
    """Whether the DiT's linear layers run in int8 here: on a CPU, unless ``$SONG_DIT_INT8`` is off or
    ``$SONG_DTYPE`` asks for one dtype throughout (float32 for comparisons with stock)."""
    return device.type == "cpu" and env_flag(DIT_INT8_ENV_VAR) and not os.environ.get(DTYPE_ENV_VAR, "").strip()


class SongModel(LoadedModel):
    """ACE-Step 1.5, loaded on first use. ``make`` makes a song, ``edit`` makes a part again or extends it."""

    what = "Song model (ACE-Step 1.5)"
    job = "Songs with lyrics"
    env_var = SONG_ENV_VAR
    cli_flag = SONG_CLI_FLAG
    marker = "model_index.json"
    checkpoints = SONG_CHECKPOINTS

    def __init__(self, name: str | None = None, device: str | None = None) -> None:
        super().__init__(name, device)
        self.marker = self.layout_marker(self.name)  # checked before loading, as every wrapper's
        self.pipe: Any = None
        self.dtype_note = ""
        self.speed: dict[str, float] = {}  # seconds a DiT step and a second of decode took here (for estimates)
        self._encoded: collections.OrderedDict = collections.OrderedDict()
        self.on_load: Callable[[str], None] | None = None  # hears "Converting..." while a run waits for the load
        self.fast = True  # False: the stock way ($SONG_FAST_PATH=0), for the benchmark's comparison

    @classmethod
    def default_name(cls) -> str:
        return default_song_name()

    def missing_package(self) -> str | None:
        try:
            from diffusers import AceStepPipeline  # noqa: F401
        except ImportError:
            return "Songs with lyrics need diffusers 0.42 or later: `pip install diffusers==0.42.1` (./run.sh does)."
        return None

    @staticmethod
    def layout_marker(name: str) -> str:
        """The file that marks ``name`` as a saved song model: diffusers' ``model_index.json``, or ACE-Step's own
        layout's DiT config (the official releases on the hub, or a folder holding ``acestep-v15-*/``)."""
        if name in SONG_CHECKPOINTS:
            return hub_marker(name)
        folder = Path(name).expanduser()
        if folder.is_dir() and not (folder / "model_index.json").is_file():
            return "acestep-v15-*/config.json" if any(folder.glob("acestep-v15-*")) else "config.json"
        return "model_index.json"

    def _from_source(self, source: ModelSource) -> Any:
        from diffusers import AceStepPipeline

        report = self.on_load or (lambda message: None)
        location = diffusers_folder(self.name, source.location, source.is_local, source.local_files_only, report)
        dtype, why = song_dtype(self.device)
        started = time.perf_counter()
        pipe = AceStepPipeline.from_pretrained(location, dtype=dtype,
                                               local_files_only=source.local_files_only or source.is_local)
        pipe.set_progress_bar_config(disable=True)
        pipe.to(self.device)
        page_out_checkpoints()  # the checkpoint files' pages read while loading: not kept resident
        logger.info("Song model %s: %s on %s, loaded in %.1f s", self.name, why, self.device,
                    time.perf_counter() - started)
        return pipe, why

    def _keep(self, parts: Any) -> None:
        self.pipe, self.dtype_note = parts
        self._encoded.clear()
        self.fast = env_flag(FAST_PATH_ENV_VAR)
        if self.fast:
            cache_encodings(self.pipe, self._encoded, PROMPT_CACHE)
            rows_in_order(self.pipe.transformer)
            snake_in_fewer_passes(self.pipe.vae)
            if dit_int8_here(self.device):
                int8_on_cpu(self.pipe)
                self.dtype_note = f"DiT int8 (dynamic, per-channel weights), the rest {self.dtype_note}"

    def _drop(self) -> None:
        self.pipe = None
        self._encoded.clear()

    # ------------------------------------------------------------------------------------------ properties
    @property
    def sample_rate(self) -> int:
        return int(self.pipe.sample_rate) if self.pipe is not None else 48000

    @property
    def turbo(self) -> bool:
        return bool(self.pipe.is_turbo)

    def steps(self) -> int:
        return TURBO_STEPS if self.turbo else GUIDED_STEPS

    # ------------------------------------------------------------------------------------------ checks
    def lyric_tokens(self, lyrics: str, language: str) -> int:
        """How many tokens the lyrics take as the pipeline formats them."""
        text = f"# Languages\n{language}\n\n# Lyric\n{lyrics}<|endoftext|>"
        return len(self.pipe.tokenizer(text).input_ids)

    def check_lyrics(self, lyrics: str, language: str) -> None:
        """Raises ValueError when the lyrics are longer than the model reads (rather than cut silently)."""
        n = self.lyric_tokens(lyrics, language)
        if n > MAX_LYRIC_TOKENS:
            raise ValueError(f"The lyrics are {n} tokens long; the model reads at most {MAX_LYRIC_TOKENS}. Shorten "
                             "them, or make the song in parts (Edit a part).")

    # ------------------------------------------------------------------------------------------ the runs
    def make(self, request: SongRequest, progress: Progress | None = None, cancel: threading.Event | None = None,
             stream: Callable[[np.ndarray], None] | None = None) -> SongResult:
        """Make ``request``'s song(s) on the model thread (loading the model first when needed).

        Args:
            progress: (fraction, message) by step and by decoded chunk.
            cancel: set to stop at the next step; a diffusion keeps nothing half made (``GenerationCancelled``).
            stream: receives each decoded chunk of variant 1 and 2 [variants, 2, samples], loudness provisional.

        Raises:
            ValueError: lyrics longer than the model reads.
            GenerationCancelled: stopped.
        """
        self._ensure_loaded(progress)
        return model_thread().call(self._make, request, progress, cancel, stream)

    def edit(self, edit: SongEdit, progress: Progress | None = None, cancel: threading.Event | None = None,
             stream: Callable[[np.ndarray], None] | None = None) -> SongResult:
        """Make a part of a song again, or extend it (``SongEdit``), keeping the rest (see ``SongEdit``)."""
        self._ensure_loaded(progress)
        return model_thread().call(self._edit, edit, progress, cancel, stream)

    def _ensure_loaded(self, progress: Progress | None) -> None:
        if self.loaded:
            return
        report = progress or (lambda fraction, message: None)
        report(0.0, "Loading the song model (first use)")
        self.on_load = lambda message: report(0.0, message)
        try:
            self.load()
        finally:
            self.on_load = None

    def _noise(self, seed: int, frames: int) -> torch.Tensor:
        """One variant's starting noise [1, frames, channels], as the stock pipeline draws it from a generator
        seeded ``seed`` (``randn_tensor`` in the DiT's dtype)."""
        from diffusers.utils.torch_utils import randn_tensor

        shape = (1, frames, self.pipe.transformer.config.audio_acoustic_hidden_dim)
        return randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(seed), device=self.device,
                            dtype=self.pipe.transformer.dtype)

    def _denoise(self, n: int, style: str, lyrics: str, language: str, seconds: float, frames: int,
                 seeds: list[int], request: SongRequest, progress: Progress, cancel: threading.Event | None,
                 **task: Any) -> torch.Tensor:
        """The stock pipeline's denoising, to latents [n, frames, channels]; progress at each step, Stop at the
        next one."""
        noise = torch.cat([self._noise(seed, frames) for seed in seeds])
        steps = self.steps()
        timing = {"start": time.perf_counter()}

        def on_step(pipe: Any, step: int, timestep: float, tensors: dict) -> dict:
            if cancel is not None and cancel.is_set():
                pipe._interrupt = True
                return {}
            progress(0.05 + 0.6 * (step + 1) / steps, f"Step {step + 1} of {steps}")
            return {}

        progress(0.05, f"Step 0 of {steps}")
        latents = self.pipe(prompt=[style] * n, lyrics=[lyrics] * n, vocal_language=language,
                            audio_duration=seconds, num_inference_steps=steps, guidance_scale=1.0 if self.turbo else GUIDANCE,
                            shift=SHIFT, latents=noise, output_type="latent", callback_on_step_end=on_step,
                            bpm=request.bpm, keyscale=request.key, timesignature=request.time_signature,
                            **task).audios
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("Stopped.")
        self.speed["step_s"] = (time.perf_counter() - timing["start"]) / steps
        return latents

    def decode(self, latents: torch.Tensor, progress: Progress | None = None,
               stream: Callable[[np.ndarray], None] | None = None, cancel: threading.Event | None = None,
               span: tuple[float, float] = (0.65, 0.98)) -> np.ndarray:
        """The VAE decode of ``latents`` [n, frames, channels] in chunks, each with DECODE_CONTEXT frames of context on
        both sides (dropped after): float32 [n, 2, frames * 1920], before any loudness change. Each chunk goes to
        ``stream`` as it is done."""
        report = progress or (lambda fraction, message: None)
        vae = self.pipe.vae
        z = latents.transpose(1, 2).to(vae.dtype)
        if not self.fast:  # the stock pipeline's decode: the whole song in one pass
            report(span[0], "Turning it into sound")
            return vae.decode(z).sample.float().cpu().numpy()
        frames = z.shape[-1]
        hop = int(round(self.sample_rate / self.pipe.latents_per_second))
        pieces, done, started = [], 0, time.perf_counter()
        shown_peak = 0.0
        while done < frames:
            size = FIRST_CHUNK if done == 0 else DECODE_CHUNK
            end = min(frames, done + size)
            if frames - end < DECODE_CONTEXT:  # no short last chunk
                end = frames
            lo, hi = max(0, done - DECODE_CONTEXT), min(frames, end + DECODE_CONTEXT)
            audio = vae.decode(z[:, :, lo:hi]).sample.float()
            audio = audio[:, :, (done - lo) * hop: (end - lo) * hop].cpu().numpy()
            pieces.append(audio)
            if stream is not None:  # a preview: the loudness of the chunks so far (the file's comes from the whole)
                shown_peak = max(shown_peak, float(np.abs(audio).max()), 1e-6)
                stream(np.clip(audio * (TARGET_PEAK / shown_peak), -1.0, 1.0).astype(np.float32))
            done = end
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled("Stopped.")
            report(span[0] + (span[1] - span[0]) * done / frames,
                   f"Turning it into sound: {done / self.pipe.latents_per_second:.0f} of "
                   f"{frames / self.pipe.latents_per_second:.0f} s")
        self.speed["decode_s_per_s"] = (time.perf_counter() - started) / max(frames / self.pipe.latents_per_second,
                                                                               1e-6)
        return np.concatenate(pieces, axis=-1)

    @staticmethod
    def loudness(raw: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """The stock pipeline's loudness on each variant [n, 2, T]: peak at -1 dBFS (gain = TARGET_PEAK / peak)."""
        peaks = np.maximum(np.abs(raw).reshape(raw.shape[0], -1).max(axis=1), 1e-6)
        gains = [float(TARGET_PEAK / p) for p in peaks]
        return (raw * np.asarray(gains, dtype=np.float32)[:, None, None]).astype(np.float32), gains

    def _record(self, request: SongRequest, started: float) -> dict[str, Any]:
        import diffusers

        return {"task": "song", "model": public_name(self.name), **request.record(),
                "language_how": request.language_how,
                "steps": self.steps(), "shift": SHIFT, "guidance_scale": None if self.turbo else GUIDANCE,
                "turbo": self.turbo, "dtype": self.dtype_name(),
                "dtype_note": self.dtype_note, "device": str(self.device),
                "pipeline": f"diffusers {diffusers.__version__} AceStepPipeline",
                "variant_seeds": [request.seed + i for i in range(request.variants)],
                "seconds_taken": round(time.perf_counter() - started, 2)}

    def _make(self, request: SongRequest, progress: Progress | None, cancel: threading.Event | None,
              stream: Callable[[np.ndarray], None] | None) -> SongResult:
        report = progress or (lambda fraction, message: None)
        started = time.perf_counter()
        self.check_lyrics(request.sung, request.language)
        with torch.inference_mode():
            latents = self._denoise(request.variants, request.style_read, request.sung, request.language,
                                    request.seconds, math.ceil(request.seconds * self.pipe.latents_per_second),
                                    [request.seed + i for i in range(request.variants)], request,
                                    report, cancel)
            raw = self.decode(latents, report, stream, cancel)
        audio, gains = self.loudness(raw)
        return SongResult(audio, self.sample_rate, latents.float().cpu().numpy(), gains, request.seed,
                          self._record(request, started), request.lyrics)

    def _edit(self, edit: SongEdit, progress: Progress | None, cancel: threading.Event | None,
              stream: Callable[[np.ndarray], None] | None) -> SongResult:
        report = progress or (lambda fraction, message: None)
        started = time.perf_counter()
        made = edit.made
        request = SongRequest(edit.style or made.get("style_english") or made.get("style") or "",
                              edit.lyrics or made.get("lyrics", ""), made.get("language", "auto"),
                              seconds=min(max(edit.end, 10.0), 240.0), bpm=made.get("bpm"), key=made.get("key"),
                              time_signature=made.get("time_signature"), seed=edit.seed,
                              instrumental=bool(made.get("instrumental")) and not edit.lyrics)
        self.check_lyrics(request.sung, request.language)
        rate = self.pipe.latents_per_second
        with torch.inference_mode():
            kept = torch.from_numpy(edit.latents)[None].to(self.device, self.pipe.transformer.dtype)
            total = kept.shape[1]
            if edit.extend_by:  # the new seconds start as the model's silence, as a song without source does
                total = int(np.ceil(edit.end * rate))
                silence, _ = self.pipe.prepare_src_latents(device=self.device, dtype=kept.dtype, batch_size=1,
                                                           latent_length=total)
                kept = torch.cat([kept, silence[:, kept.shape[1]:]], dim=1)
            seconds = total / rate
            with self._source_latents(kept):
                latents = self._denoise(1, request.style_read, request.sung, request.language, seconds, total, [edit.seed],
                                        request, report, cancel, task_type="repaint",
                                        src_audio=torch.zeros(2, 1), repainting_start=edit.start,
                                        repainting_end=edit.end)
            inside = self.span_mask(total, edit.start, edit.end)
            latents = torch.where(inside[None, :, None].to(latents.device), latents, kept.to(latents.dtype))
            raw = self.decode(latents, report, stream, cancel)
        gain = edit.gain if edit.gain else self.loudness(raw)[1][0]
        peak = float(np.abs(raw).max())
        notes = []
        if peak * gain > 1.0:
            gain = 1.0 / peak
            notes.append("The new part is louder than the song was: the whole song was turned down a little.")
        audio = (raw * gain).astype(np.float32)
        record = self._record(request, started)
        record.update({"task": "song_edit" if not edit.extend_by else "song_extend",
                       "edited_from": {k: made.get(k) for k in ("style", "lyrics", "seed", "seconds", "language",
                                                                 "model")},
                       "span": [round(edit.start, 3), round(edit.end, 3)], "seconds": round(seconds, 3)})
        return SongResult(audio, self.sample_rate, latents.float().cpu().numpy(), [gain], edit.seed, record,
                          request.lyrics, notes)

    def span_mask(self, frames: int, start: float, end: float) -> torch.Tensor:
        """The latent frames an edit makes again, as the pipeline's repaint mask marks them ([frames], bool)."""
        rate = self.pipe.latents_per_second
        lo = max(0, min(int(start * rate), frames - 1))
        hi = max(lo + 1, min(int(end * rate), frames))
        mask = torch.zeros(frames, dtype=torch.bool)
        mask[lo:hi] = True
        return mask

    @contextlib.contextmanager
    def _source_latents(self, latents: torch.Tensor) -> Iterator[None]:
        """While the block runs, the pipeline's source for a repaint is ``latents`` [1, frames, channels] (the song's
        kept latents) instead of a VAE encoding of its audio (a round trip that would change the whole song)."""
        original = self.pipe.prepare_src_latents

        def prepare_src_latents(device: Any, dtype: Any, batch_size: int = 1, src_audio: Any = None, **kwargs: Any):
            if src_audio is None:
                return original(device=device, dtype=dtype, batch_size=batch_size, **kwargs)
            return latents.to(device, dtype).expand(batch_size, -1, -1).contiguous(), latents.shape[1]

        self.pipe.prepare_src_latents = prepare_src_latents
        try:
            yield
        finally:
            del self.pipe.prepare_src_latents  # the class's own method again

    def dtype_name(self) -> str:
        """The weights' dtype as the parameters record it ("float32", "bfloat16", "int8+bfloat16")."""
        rest = str(self.pipe.vae.dtype).replace("torch.", "")
        return f"int8+{rest}" if self.dtype_note.startswith("DiT int8") else rest

    def estimate_seconds(self, seconds: float, variants: int) -> float | None:
        """Roughly how long a song takes here, from this machine's earlier runs (None before the first)."""
        if "step_s" not in self.speed or "decode_s_per_s" not in self.speed:
            return None
        scale = seconds / 30.0
        return (self.speed["step_s"] * self.steps() * scale * variants
                + self.speed["decode_s_per_s"] * seconds * variants)
