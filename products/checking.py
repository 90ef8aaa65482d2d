"""The app's watermark, through the seam (where the watermark model runs): ``mark`` puts it on every audio file the
products write, and ``check_file`` looks for it in any file a user brings (WAV, MP3, FLAC, OGG or the sound of an
MP4): the page's "Check a file", the API's ``/check_watermark`` and ``cli.py check-watermark`` call it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.watermark import WATERMARK_RATE, Detection
from serving import backend
from utils.audio import load_media_audio

MIN_CHECK_SECONDS = 1.0  # shorter than this, the detector has too few frames to say anything


def mark(audio: np.ndarray, sample_rate: int, model: str | None = None) -> tuple[np.ndarray, str]:
    """``audio`` [T] or [channels, T] with the app's mark and "", or as it was and why it is unmarked (turned off,
    the model missing), by the watermark ``model`` (None: ``$WATERMARK_MODEL`` or the default)."""
    return backend().mark(model, audio, sample_rate)


def check_file(path: str | Path | None, model: str | None = None) -> Detection:
    """Look for the app's watermark in a file.

    Args:
        model: the watermark model (hub id or folder); None: ``$WATERMARK_MODEL`` or the default.

    Raises:
        ValueError: no file, not audio or video with sound, or too short.
        ModelLoadError: the watermark model cannot be loaded.
    """
    if not path:
        raise ValueError("Choose a file to check (WAV, MP3 or MP4).")
    audio = load_media_audio(path, WATERMARK_RATE)
    if audio.shape[0] < MIN_CHECK_SECONDS * WATERMARK_RATE:
        raise ValueError(f"`{Path(path).name}` is shorter than {MIN_CHECK_SECONDS:.0f} s: too short to check.")
    return backend().detect_watermark(model, audio, WATERMARK_RATE)
