"""Notes from audio: basic-pitch's ICASSP-2022 model (Spotify, Apache-2.0), run with onnxruntime.

basic-pitch's wheel ships its trained model as ``saved_models/icassp_2022/nmp.onnx``; onnxruntime runs it, so the
weights are always here and TensorFlow is never needed (basic-pitch's metadata asks for TensorFlow on Linux with
Python >= 3.11, so ``run.sh`` installs it with ``--no-deps`` from ``requirements-transcribe.txt``; its real needs are
in ``requirements.txt``). It is instrument-agnostic and polyphonic: on a full mix it hears every pitched part.

The model runs on the model thread like every model (``models.runtime``); onnxruntime keeps its own pool of
``KERNEL_THREADS`` threads, outside libgomp.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from models.loading import LoadedModel
from models.runtime import model_thread
from models.sources import ModelLoadError

logger = logging.getLogger(__name__)

TRANSCRIBER_NAME = "basic-pitch"  # the cache key and what files credit
TRANSCRIBER_LABEL = "basic-pitch (ICASSP 2022 model, ONNX)"
INSTALL_HINT = ("MIDI of a result needs basic-pitch and onnxruntime: `./run.sh` installs them, or run "
                "`pip install onnxruntime mir_eval && pip install --no-deps basic-pitch==0.4.0` "
                "(--no-deps: its metadata pulls TensorFlow, which it does not need here).")
ONSET_THRESHOLD = 0.5  # basic-pitch's defaults: how sure a note start must be
FRAME_THRESHOLD = 0.3  # ... and a sounding frame
MIN_NOTE_MS = 127.70  # ... and the shortest note kept (11 frames)


def transcriber_installed() -> bool:
    """Whether basic-pitch and onnxruntime can be imported here (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("basic_pitch", "onnxruntime"))


@dataclass(frozen=True)
class Notes:
    """Notes heard in audio.

    Attributes:
        starts: [N] seconds.
        ends: [N] seconds (> starts).
        pitches: [N] int MIDI pitches.
        velocities: [N] int, 1..127 (from the model's amplitude).
        computed: how the model computed them, for the technical details ("" when nothing to say).
    """

    starts: np.ndarray
    ends: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray
    computed: str = ""

    def __len__(self) -> int:
        return int(self.starts.shape[0])


class Transcriber(LoadedModel):
    """basic-pitch's model (shipped in its wheel), loaded on first use and kept."""

    what = f"Transcription model ({TRANSCRIBER_LABEL})"
    checkpoints = (TRANSCRIBER_NAME,)
    default_device = "cpu"  # onnxruntime's CPU provider (the model is small: 230 KB)

    def __init__(self, name: str | None = None, device: str | None = None) -> None:
        super().__init__(name, device)
        self.model: Any = None

    @classmethod
    def default_name(cls) -> str:
        return TRANSCRIBER_NAME

    def check_before_load(self) -> None:
        if self.name != TRANSCRIBER_NAME:
            raise ValueError(f"The transcriber is {TRANSCRIBER_NAME!r} (the model its wheel ships); got {self.name!r}.")

    def missing_package(self) -> str | None:
        return None if transcriber_installed() else f"{self.what} is not installed. {INSTALL_HINT}"

    def where_from(self) -> None:
        """The weights are in basic-pitch's wheel."""

    def _load_parts(self) -> Any:
        previous = logging.root.level
        logging.root.setLevel(logging.ERROR)  # basic-pitch warns at import about TF, TFLite and CoreML
        try:
            from basic_pitch import ICASSP_2022_MODEL_PATH
            from basic_pitch.inference import Model
        finally:
            logging.root.setLevel(previous)
        onnx = Path(ICASSP_2022_MODEL_PATH).with_suffix(".onnx")
        try:
            return Model(onnx)
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(f"Transcription model {onnx} could not be loaded: {e}. {INSTALL_HINT}") from e

    def _keep(self, parts: Any) -> None:
        self.model = parts

    def _drop(self) -> None:
        self.model = None

    def notes(self, audio: np.ndarray, sample_rate: int) -> Notes:
        """The notes of mono ``audio`` [T] at ``sample_rate`` Hz (on the model thread).

        Raises:
            ModelLoadError: basic-pitch is not installed.
        """
        return model_thread().call(self._notes, audio, sample_rate)

    def _notes(self, audio: np.ndarray, sample_rate: int) -> Notes:
        self._load()
        from basic_pitch.inference import predict

        with tempfile.TemporaryDirectory(prefix="transcribe-") as folder:  # basic-pitch reads a file
            path = Path(folder) / "audio.wav"
            sf.write(str(path), np.asarray(audio, dtype=np.float32), sample_rate)
            _, _, events = predict(str(path), self.model, onset_threshold=ONSET_THRESHOLD,
                                   frame_threshold=FRAME_THRESHOLD, minimum_note_length=MIN_NOTE_MS)
        events = sorted(events, key=lambda e: (e[0], e[2]))
        starts = np.array([e[0] for e in events], dtype=np.float64)
        ends = np.array([e[1] for e in events], dtype=np.float64)
        pitches = np.array([e[2] for e in events], dtype=np.int64)
        velocities = np.clip(np.round(np.array([e[3] for e in events], dtype=np.float64) * 127), 1, 127).astype(
            np.int64)
        keep = ends > starts
        return Notes(starts[keep], ends[keep], pitches[keep], velocities[keep])
