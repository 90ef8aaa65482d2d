"""An inaudible watermark on every audio the app's models made, and a detector anyone can run: Meta's AudioSeal
(MIT; the watermark audiocraft ships), 16-bit messages.

AudioSeal works on 16 kHz mono. ``mark`` computes the watermark of the audio's mono mix at 16 kHz, brings it back to
the audio's rate and adds it to every channel (the mark lives below 8 kHz, where AudioSeal was trained to put it).
Audio is marked and checked in windows of ``WINDOW_S`` with ``CONTEXT_S`` of context on each side: memory stays
flat for a 5-minute piece, and it is faster than one long call. The message is ``APP_MESSAGE``: "MD" (Music demo)
in ASCII, 0x4D44.

Set the model with ``--watermark-model`` / ``$WATERMARK_MODEL``: a hub id (``facebook/audioseal``: its
``generator_base.pth`` and ``detector_base.pth``), a folder holding those two files, or ``off``. It loads on first
need, on the model thread. Without it files are written unmarked, and the page and the parameters say so.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.loading import LoadedModel, use_model
from models.runtime import model_thread
from models.sources import NOT_HERE, ModelLoadError, ModelSource, is_off
from utils.audio import resample

logger = logging.getLogger(__name__)

WATERMARK_ENV_VAR = "WATERMARK_MODEL"
WATERMARK_CLI_FLAG = "--watermark-model"
DEFAULT_WATERMARK_MODEL = "facebook/audioseal"
GENERATOR_FILE = "generator_base.pth"  # as the hub holds them; a folder holds the same two files
DETECTOR_FILE = "detector_base.pth"
WATERMARK_RATE = 16000  # Hz, AudioSeal's rate
NBITS = 16
APP_MESSAGE = 0x4D44  # "MD" (Music demo): the 16 bits every file of this app carries
DETECTION_THRESHOLD = 0.5  # a frame counts as marked above this probability; a file, when over half its frames are
# Seconds marked or checked at once, and of audio on each side of a window for the convolutions' edges. Short windows
# keep each layer's activations in cache: 5 s windows mark 210 s in 5.9 s on 2 cores, 20 s windows in 9.6 s, and
# several windows in one call (a batch) were slower still (docs/performance-history.md).
WINDOW_S = 5.0
CONTEXT_S = 0.25


def default_watermark_name() -> str:
    """The watermark model from ``$WATERMARK_MODEL``, else AudioSeal on the hub."""
    return os.environ.get(WATERMARK_ENV_VAR, "").strip() or DEFAULT_WATERMARK_MODEL


def message_bits(message: int = APP_MESSAGE) -> np.ndarray:
    """``message`` as NBITS bits, most significant first: [NBITS] int."""
    return np.array([(message >> (NBITS - 1 - i)) & 1 for i in range(NBITS)], dtype=np.int64)


def bits_message(bits: np.ndarray) -> int:
    """The inverse of ``message_bits``."""
    return int("".join(str(int(b)) for b in bits), 2)


@dataclass(frozen=True)
class Detection:
    """What the detector found in a file.

    Attributes:
        score: the share of the audio's frames the detector takes as marked, 0..1.
        message: the 16 bits it read (meaningless when ``score`` is low).
        seconds: how much audio was checked.
    """

    score: float
    message: int
    seconds: float

    @property
    def marked(self) -> bool:
        return self.score > DETECTION_THRESHOLD

    @property
    def ours(self) -> bool:
        """Marked, with this app's message."""
        return self.marked and self.message == APP_MESSAGE

    def describe(self) -> str:
        """One plain line for the page."""
        if self.ours:
            verdict = "This file carries this app's watermark: it was made here with AI."
        elif self.marked:
            verdict = "This file carries an AudioSeal watermark, but not this app's message."
        else:
            verdict = "No watermark found: not made here, or changed too much since."
        return (f"{verdict} Detector score {self.score:.2f} (over {DETECTION_THRESHOLD:.1f} means marked), message "
                f"{self.message:#06x} (this app's: {APP_MESSAGE:#06x}), {self.seconds:.1f} s checked.")


def _mono_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """[T] or [channels, T] audio at ``rate`` Hz -> its mono mix at AudioSeal's rate, [T']."""
    return resample(audio if audio.ndim == 1 else audio.mean(axis=0), rate, WATERMARK_RATE, "polyphase")


def _windows(length: int, rate: int) -> list[tuple[int, int, int, int]]:
    """(start with context, start, end, end with context) in samples, covering ``length``."""
    step, context = int(WINDOW_S * rate), int(CONTEXT_S * rate)
    return [(max(0, s - context), s, min(length, s + step), min(length, s + step + context))
            for s in range(0, max(length, 1), step)]


class Watermarker(LoadedModel):
    """AudioSeal's generator and detector, loaded on first use and kept.

    Args:
        name: hub id or folder; default from ``$WATERMARK_MODEL``; "off" disables marking.
        device: "cuda", "cpu"...; default: the CPU. The mark is added where the files are written, outside a
            ZeroGPU lease, and the model is small (0.3 s per 10 s of music on 2 cores: docs/performance-history.md).
    """

    what = "Watermark model (AudioSeal)"
    job = "The watermark"
    env_var = WATERMARK_ENV_VAR
    cli_flag = WATERMARK_CLI_FLAG
    marker = GENERATOR_FILE
    optional = True
    checkpoints = (DEFAULT_WATERMARK_MODEL,)
    default_device = "cpu"

    def __init__(self, name: str | None = None, device: str | None = None) -> None:
        super().__init__(name, device)
        self.generator: Any = None
        self.detector: Any = None

    @classmethod
    def default_name(cls) -> str:
        return default_watermark_name()

    def missing_package(self) -> str | None:
        if importlib.util.find_spec("audioseal") is not None:
            return None
        return "The watermark needs the `audioseal` package (`pip install audioseal==0.2.0`)."

    def _keep(self, parts: tuple[Any, Any]) -> None:
        self.generator, self.detector = parts

    def _after_load(self) -> None:
        self._warm_up()

    def _drop(self) -> None:
        self.generator = self.detector = None

    @torch.inference_mode()
    def _warm_up(self) -> None:
        """One window of silence through both models: their first call of a shape sets up its kernels (~1.5 s for
        the detector), which a user's first mark or check then does not wait for."""
        from audioseal.libs.moshi.utils.compile import no_compile

        x = torch.zeros(1, 1, int((WINDOW_S + 2 * CONTEXT_S) * WATERMARK_RATE), device=self.device)
        with no_compile():
            self.generator.get_watermark(x, message=torch.from_numpy(message_bits())[None].to(self.device))
            self.detector.detector(x)

    def _from_source(self, source: ModelSource) -> tuple[Any, Any]:
        from audioseal import AudioSeal

        files = []
        for file_name in (GENERATOR_FILE, DETECTOR_FILE):
            if source.is_local:
                path = Path(source.location) / file_name
                if not path.is_file():
                    raise ValueError(f"the folder has no {file_name}")
            else:
                from huggingface_hub import hf_hub_download

                path = Path(hf_hub_download(source.location, file_name, local_files_only=source.local_files_only))
            files.append(str(path))
        generator = AudioSeal.load_generator(files[0], nbits=NBITS).to(self.device).eval()
        detector = AudioSeal.load_detector(files[1], nbits=NBITS).to(self.device).eval()
        return generator, detector

    # ------------------------------------------------------------------------------------------------ marking
    def mark(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """``audio`` [T] or [channels, T] at ``sample_rate`` Hz with the app's mark added (same shape).

        Raises:
            ModelLoadError: the models cannot be loaded.
        """
        return model_thread().call(self._mark, np.asarray(audio, dtype=np.float32), int(sample_rate))

    @torch.inference_mode()
    def _mark(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        self._load()
        from audioseal.libs.moshi.utils.compile import no_compile

        mono = _mono_16k(audio, sample_rate)
        message = torch.from_numpy(message_bits())[None].to(self.device)
        mark = np.zeros_like(mono)
        with no_compile():  # audioseal's SEANet would compile itself on first use (tens of seconds) otherwise
            for lo, start, end, hi in _windows(mono.shape[0], WATERMARK_RATE):
                x = torch.from_numpy(mono[lo:hi])[None, None].to(self.device)
                piece = self.generator.get_watermark(x, message=message)[0, 0].float().cpu().numpy()
                mark[start:end] = piece[start - lo : end - lo]
        mark = resample(mark, WATERMARK_RATE, sample_rate, "polyphase")
        mark = np.pad(mark, (0, max(0, audio.shape[-1] - mark.shape[0])))[: audio.shape[-1]]
        return (audio + mark).astype(np.float32)

    def detect(self, audio: np.ndarray, sample_rate: int) -> Detection:
        """Look for a mark in mono ``audio`` [T] at ``sample_rate`` Hz.

        Raises:
            ModelLoadError: the models cannot be loaded.
        """
        return model_thread().call(self._detect, np.asarray(audio, dtype=np.float32), int(sample_rate))

    @torch.inference_mode()
    def _detect(self, audio: np.ndarray, sample_rate: int) -> Detection:
        self._load()
        from audioseal.libs.moshi.utils.compile import no_compile

        mono = _mono_16k(audio, sample_rate)
        marked_frames, frames, bits = 0.0, 0, np.zeros(NBITS)
        with no_compile():
            for lo, start, end, hi in _windows(mono.shape[0], WATERMARK_RATE):
                x = torch.from_numpy(mono[lo:hi])[None, None].to(self.device)
                raw = self.detector.detector(x)[0, :, start - lo : end - lo]  # [2 + NBITS, samples], as forward()
                marked = torch.softmax(raw[:2].float(), dim=0)[1]
                marked_frames += float((marked > DETECTION_THRESHOLD).sum())
                frames += end - start
                bits += raw[2:].sum(dim=-1).float().cpu().numpy()  # the message's logits, summed over frames
        message = bits_message((bits > 0).astype(np.int64))
        return Detection(marked_frames / max(frames, 1), message, mono.shape[0] / WATERMARK_RATE)


def mark_or_explain(audio: np.ndarray, sample_rate: int, name: str | None = None) -> tuple[np.ndarray, str]:
    """``audio`` with the app's mark, and "" — or ``audio`` as it was and why it is unmarked (off, missing)."""
    name = (name or default_watermark_name()).strip()
    if is_off(name):
        return audio, "Not watermarked: the watermark is turned off on this server."
    try:
        with use_model("watermark", name) as watermarker:
            return watermarker.mark(audio, sample_rate), ""
    except ModelLoadError as e:  # the why and the fix are for whoever runs the app: the log
        logger.warning("Not watermarked: %s", e)
        return audio, f"Not watermarked: the watermark model is {NOT_HERE}."
