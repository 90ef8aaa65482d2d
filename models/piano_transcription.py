"""Notes of a piano recording: Transkun V2 (Yan & Duan, MIT), a transformer with a semi-CRF over note intervals.

Its wheel (``transkun`` 2.0.1) ships the trained weights (``transkun/pretrained/2.0.pt``, 56 MB, and ``2.0.conf``);
the paper reports a note-onset F1 of 0.983 on MAESTRO v3. The app installs it without its declared dependencies
(``requirements-transcribe.txt`` says why): what its inference path imports is torch, numpy, moduleconf,
pretty_midi and mir_eval. torchaudio is imported in one place only, to build the mel filter bank, which the
checkpoint holds and overwrites at load; here that bank is built with librosa (HTK mel, no norm: the same matrix).

Set the weights with ``--piano-transcription-model`` / ``$PIANO_TRANSCRIPTION_MODEL``: ``transkun`` (the shipped
ones, the default), a ``.pt`` file with its ``.conf`` beside it, a folder holding one of each, or ``off``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.devices import cpu_bf16_instructions
from models.loading import LoadedModel
from models.progress import GenerationCancelled
from models.runtime import model_thread
from models.sources import ModelLoadError
from models.transcription import Notes
from utils.audio import resample

logger = logging.getLogger(__name__)

PIANO_TRANSCRIPTION_ENV_VAR = "PIANO_TRANSCRIPTION_MODEL"
PIANO_TRANSCRIPTION_CLI_FLAG = "--piano-transcription-model"
SHIPPED = "transkun"  # the weights transkun's wheel ships
LABEL = "Transkun V2 (MIT)"
# Transkun reads 16 s segments. Its own hop is 8 s (every second heard twice, 8 s of padding at each end); on a CPU
# the hop is the whole segment, each second heard once: measured on 30 s of a piano render (Joplin's rag, 2 cores, the
# model thread), 8 s took 64 s with a note-onset F1 of 0.994, 12 s 27 s (0.996), 16 s 13 s (0.984).
SEGMENT_S = 16.0
CPU_HOP_S = 16.0
# On a CPU with bfloat16 products in hardware (AMX, AVX-512 BF16) the backbone runs under bfloat16 autocast: on 32 s
# of the rag render (Intel Xeon with AMX, 2 cores, 2026-12-06) 4.9 s against 6.6 s, the notes the same as float32's
# to an onset F1 of 0.999; the onset F1 against the written notes of the project's renders is measured in
# docs/performance-history.md. Where the CPU lacks them torch emulates bfloat16, slower than float32: float32 there.
DTYPE_ENV_VAR = "PIANO_TRANSCRIPTION_DTYPE"  # "float32" or "bfloat16"; unset = bfloat16 where the CPU has it
COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
INSTALL_HINT = ("Sheet music of a piano recording needs Transkun: `./run.sh` installs it, or run "
                "`pip install moduleconf && pip install --no-deps transkun==2.0.1` (--no-deps: its metadata pulls "
                "torchaudio, tensorboard and sox, which its transcription does not need).")


def default_piano_transcription_name() -> str:
    """The weights from ``$PIANO_TRANSCRIPTION_MODEL``, else the ones transkun ships."""
    return os.environ.get(PIANO_TRANSCRIPTION_ENV_VAR, "").strip() or SHIPPED


@contextlib.contextmanager
def stopped_by(model: torch.nn.Module, cancel: threading.Event | None) -> Iterator[None]:
    """While the block runs, each call of ``model``'s parts (several per 16 s segment: Transkun's own loop goes
    through them) first checks ``cancel``, and stops the work with ``GenerationCancelled`` once it is set."""
    if cancel is None:
        yield
        return

    def check(*_: Any) -> None:
        if cancel.is_set():
            raise GenerationCancelled("The transcription was stopped.")

    hooks = [part.register_forward_pre_hook(check) for part in model.children()]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def transkun_installed() -> bool:
    """Whether transkun and moduleconf can be imported here (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("transkun", "moduleconf"))


def weights_and_conf(name: str) -> tuple[Path, Path]:
    """The checkpoint and its conf for ``name``: the shipped ones, a ``.pt`` file (conf beside it, same stem or
    the only ``.conf``), or a folder holding one ``.pt`` and its conf.

    Raises:
        ModelLoadError: the file or folder is missing, or holds no checkpoint or no conf.
    """
    if name == SHIPPED:
        import transkun

        folder = Path(transkun.__file__).parent / "pretrained"
        return folder / "2.0.pt", folder / "2.0.conf"
    path = Path(name).expanduser()
    if path.is_dir():
        checkpoints = sorted(path.glob("*.pt"))
        if not checkpoints:
            raise ModelLoadError(f"{LABEL} `{name}`: the folder holds no .pt checkpoint. Point "
                                 f"`{PIANO_TRANSCRIPTION_CLI_FLAG}` at transkun's `2.0.pt` and `2.0.conf`, or use "
                                 f"`{SHIPPED}` for the weights its package ships.")
        path = checkpoints[0]
    if not path.is_file():
        raise ModelLoadError(f"{LABEL} `{name}`: no such file or folder. Use `{SHIPPED}` (the weights transkun "
                             f"ships), or set `{PIANO_TRANSCRIPTION_CLI_FLAG}` / `{PIANO_TRANSCRIPTION_ENV_VAR}` to "
                             "a .pt checkpoint with its .conf beside it.")
    confs = [path.with_suffix(".conf")] if path.with_suffix(".conf").is_file() else sorted(path.parent.glob("*.conf"))
    if len(confs) != 1:
        raise ModelLoadError(f"{LABEL} `{name}`: put the checkpoint's .conf (transkun's `2.0.conf`) beside it.")
    return path, confs[0]


@contextlib.contextmanager
def mel_filters_without_torchaudio() -> Iterator[None]:
    """While a Transkun model is built: ``import torchaudio`` gives a module whose only function is
    ``functional.melscale_fbanks`` (HTK mel, no norm), from librosa. The real torchaudio, where it imports, is
    left alone."""
    try:
        import torchaudio  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or a CUDA-only build on a CPU machine
        pass
    else:
        yield
        return
    import librosa

    def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int,
                        norm: str | None = None, mel_scale: str = "htk") -> torch.Tensor:
        bank = librosa.filters.mel(sr=sample_rate, n_fft=2 * (n_freqs - 1), n_mels=n_mels, fmin=f_min, fmax=f_max,
                                   htk=mel_scale == "htk", norm=norm)
        return torch.from_numpy(bank.T.astype(np.float32))  # [n_freqs, n_mels], as torchaudio's

    stub = types.ModuleType("torchaudio")
    stub.functional = types.SimpleNamespace(melscale_fbanks=melscale_fbanks)  # type: ignore[attr-defined]
    saved = sys.modules.get("torchaudio")
    sys.modules["torchaudio"] = stub
    try:
        yield
    finally:
        if saved is None:
            sys.modules.pop("torchaudio", None)
        else:
            sys.modules["torchaudio"] = saved


def pick_compute_dtype(device: torch.device) -> torch.dtype:
    """What Transkun computes in on ``device``: ``$PIANO_TRANSCRIPTION_DTYPE``, else bfloat16 (autocast) on a CPU
    with bfloat16 instructions, else float32 (and float32 on a GPU, as before: not measured there).

    Raises:
        ValueError: ``$PIANO_TRANSCRIPTION_DTYPE`` names another dtype.
    """
    requested = os.environ.get(DTYPE_ENV_VAR, "").strip().lower()
    if requested:
        if requested not in COMPUTE_DTYPES:
            raise ValueError(f"{DTYPE_ENV_VAR}={requested!r}: use one of {', '.join(COMPUTE_DTYPES)}.")
        return COMPUTE_DTYPES[requested]
    if device.type == "cpu" and cpu_bf16_instructions() is not None:
        return torch.bfloat16
    return torch.float32


class PianoTranscriber(LoadedModel):
    """Transkun V2, loaded on first use and kept: the notes (with velocities and pedal-aware lengths) of a piano
    recording."""

    what = f"Piano transcription model ({LABEL})"
    job = "Sheet music of piano recordings"
    env_var = PIANO_TRANSCRIPTION_ENV_VAR
    cli_flag = PIANO_TRANSCRIPTION_CLI_FLAG
    optional = True
    checkpoints = (SHIPPED,)

    def __init__(self, name: str | None = None, device: str | None = None) -> None:
        super().__init__(name, device)
        self.model: Any = None
        self.compute_dtype = pick_compute_dtype(self.device)

    @property
    def precision(self) -> str:
        """What the backbone computes in, for the log and the technical details."""
        if self.compute_dtype == torch.bfloat16 and self.device.type == "cpu":
            return f"bfloat16 autocast (this CPU's {cpu_bf16_instructions() or 'bfloat16'} instructions)"
        return str(self.compute_dtype).removeprefix("torch.")

    @classmethod
    def default_name(cls) -> str:
        return default_piano_transcription_name()

    def missing_package(self) -> str | None:
        return None if transkun_installed() else f"{self.what} is not installed. {INSTALL_HINT}"

    def where_from(self) -> None:
        weights_and_conf(self.name)

    def _load_parts(self) -> Any:
        import moduleconf

        weights, conf_path = weights_and_conf(self.name)
        try:
            conf = moduleconf.parseFromFile(str(conf_path))
            with mel_filters_without_torchaudio():
                model = conf["Model"].module.TransKun(conf=conf["Model"].config)
            checkpoint = torch.load(str(weights), map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - a broken file, or a conf of another model
            raise ModelLoadError(f"{self.what} `{self.name}` could not be loaded from {weights.name}: "
                                 f"{type(e).__name__}: {e}") from e
        state = checkpoint.get("best_state_dict", checkpoint.get("state_dict", checkpoint))
        missing, _ = model.load_state_dict(state, strict=False)
        if missing:
            raise ModelLoadError(f"{self.what} `{self.name}`: {weights.name} lacks {len(missing)} of the model's "
                                 f"weights (e.g. {missing[0]}); is it a Transkun checkpoint for this conf?")
        logger.info("%s: %s on %s", LABEL, self.precision, self.device)
        return model.to(self.device).eval()

    def _keep(self, parts: Any) -> None:
        self.model = parts

    def _drop(self) -> None:
        self.model = None

    @property
    def sample_rate(self) -> int:
        """Hz the model hears (44.1 kHz for the shipped weights)."""
        assert self.model is not None
        return int(self.model.fs)

    def notes(self, audio: np.ndarray, sample_rate: int, cancel: threading.Event | None = None) -> Notes:
        """The notes of mono ``audio`` [T] at ``sample_rate`` Hz (on the model thread); pedal events are left out.

        Args:
            cancel: set from another thread to stop at the next segment.

        Raises:
            ModelLoadError: the model cannot be loaded.
            GenerationCancelled: ``cancel`` was set.
        """
        return model_thread().call(self._notes, audio, sample_rate, cancel)

    @torch.inference_mode()
    def _notes(self, audio: np.ndarray, sample_rate: int, cancel: threading.Event | None = None) -> Notes:
        self._load()
        narrow = self.compute_dtype != torch.float32
        with stopped_by(self.model, cancel), torch.autocast(self.device.type, self.compute_dtype, enabled=narrow):
            return self._transcribe(audio, sample_rate)

    def _transcribe(self, audio: np.ndarray, sample_rate: int) -> Notes:
        mono = resample(np.asarray(audio, dtype=np.float32), sample_rate, self.sample_rate)
        x = torch.from_numpy(np.ascontiguousarray(mono[:, None])).to(self.device)  # [T, 1]
        hop = CPU_HOP_S if self.device.type == "cpu" else None  # None: the model's own (overlapping) hop
        events = [e for e in self.model.transcribe(x, stepInSecond=hop, segmentSizeInSecond=SEGMENT_S if hop else None,
                                                   discardSecondHalf=False) if e.pitch > 0]
        events.sort(key=lambda e: (e.start, e.pitch))
        starts = np.array([e.start for e in events], dtype=np.float64)
        ends = np.array([e.end for e in events], dtype=np.float64)
        pitches = np.array([e.pitch for e in events], dtype=np.int64)
        velocities = np.clip(np.array([e.velocity for e in events], dtype=np.int64), 1, 127)
        keep = ends > starts
        return Notes(starts[keep], ends[keep], pitches[keep], velocities[keep], computed=self.precision)
