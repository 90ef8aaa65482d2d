"""Is this file one the app made? The watermark detector on any file a user brings: WAV, MP3, FLAC, OGG or the
sound of an MP4. The page's "Check a file", the API's ``/check_watermark`` and ``cli.py check-watermark`` call it."""

from __future__ import annotations

from pathlib import Path

from models.watermark import WATERMARK_RATE, Detection
from serving import backend
from utils.audio import load_media_audio

MIN_CHECK_SECONDS = 1.0  # shorter than this, the detector has too few frames to say anything


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
