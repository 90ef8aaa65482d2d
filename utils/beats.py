"""Beat tracking: essentia's RhythmExtractor2013 (what Pop2Piano was trained with), else librosa."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

import librosa
import numpy as np

from utils.audio import resample

logger = logging.getLogger(__name__)

BEAT_SAMPLE_RATE = 44100  # Hz; essentia's RhythmExtractor2013 assumes this rate
MIN_BEATS = 4  # fewer beats than this and there is no musical grid to arrange on
ESSENTIA_MISSING_WARNING = (
    "essentia is not installed here (it has Linux x86_64 wheels only), so beats were tracked with librosa; "
    "the cover may drift from the beat more than with essentia."
)


def essentia_available() -> bool:
    """Whether essentia can be imported."""
    return importlib.util.find_spec("essentia") is not None


@dataclass(frozen=True)
class Beats:
    """The beat grid of a song.

    Attributes:
        bpm: tempo in beats per minute.
        times: beat times in seconds, shape [N], increasing.
        backend: "essentia" or "librosa".
        warning: a note for the user when a fallback was used, else "".
    """

    bpm: float
    times: np.ndarray
    backend: str
    warning: str = ""


def _essentia_beats(audio: np.ndarray) -> tuple[float, np.ndarray]:
    import essentia
    import essentia.standard

    essentia.log.infoActive = False
    tracker = essentia.standard.RhythmExtractor2013(method="multifeature")
    bpm, times, _confidence, _estimates, _intervals = tracker(audio.astype(np.float32))
    return float(bpm), np.asarray(times, dtype=np.float64)


def _librosa_beats(audio: np.ndarray, sample_rate: int) -> tuple[float, np.ndarray]:
    # Mean over mel bands, not beat_track's default median: a beat carried by one instrument (a narrow band)
    # would otherwise vanish from the onset envelope.
    envelope = librosa.onset.onset_strength(y=audio, sr=sample_rate)
    tempo, times = librosa.beat.beat_track(onset_envelope=envelope, sr=sample_rate, units="time")
    return float(np.atleast_1d(tempo)[0]), np.asarray(times, dtype=np.float64)


def track_beats(audio: np.ndarray, sample_rate: int = BEAT_SAMPLE_RATE, backend: str = "auto") -> Beats:
    """Find the beats of ``audio``.

    Args:
        audio: mono float32 audio, shape [T].
        sample_rate: rate of ``audio`` in Hz; resampled to 44.1 kHz for essentia.
        backend: "essentia", "librosa", or "auto" (essentia when importable, else librosa with a warning).

    Raises:
        ValueError: fewer than ``MIN_BEATS`` beats were found (clip too short or without rhythm).
    """
    if backend not in {"auto", "essentia", "librosa"}:
        raise ValueError(f"Unknown beat tracker {backend!r}; use 'auto', 'essentia' or 'librosa'.")
    warning = ""
    if backend == "auto":
        backend = "essentia" if essentia_available() else "librosa"
        if backend == "librosa":
            warning = ESSENTIA_MISSING_WARNING
            logger.warning(warning)
    if backend == "essentia":
        if sample_rate != BEAT_SAMPLE_RATE:
            audio = resample(audio, sample_rate, BEAT_SAMPLE_RATE)
        bpm, times = _essentia_beats(audio)
    else:
        bpm, times = _librosa_beats(audio, sample_rate)
    if times.size < MIN_BEATS:
        raise ValueError(
            f"Only {times.size} beat(s) were found: the clip is too short or has no steady rhythm to arrange. "
            "Try a longer excerpt with a clear beat."
        )
    return Beats(bpm=bpm, times=times, backend=backend, warning=warning)


PERCUSSION_RATE = 22050  # Hz, for the percussive share: enough for drums, and quick
PERCUSSION_SECONDS = 60.0  # the share is measured on at most this much of the audio, from its middle


def percussive_share(audio: np.ndarray, sample_rate: int) -> float:
    """The share of ``audio``'s spectral energy (mono [T]) in its percussive part (librosa's median-filter
    harmonic/percussive split): low for a piano alone, high with drums. 0 for silence."""
    mono = resample(np.asarray(audio, dtype=np.float32), sample_rate, PERCUSSION_RATE)
    keep = int(PERCUSSION_SECONDS * PERCUSSION_RATE)
    if mono.shape[0] > keep:
        start = (mono.shape[0] - keep) // 2
        mono = mono[start : start + keep]
    spectrum = np.abs(librosa.stft(mono)) ** 2
    harmonic, percussive = librosa.decompose.hpss(spectrum)
    total = float(harmonic.sum() + percussive.sum())
    return float(percussive.sum()) / total if total > 0 else 0.0
