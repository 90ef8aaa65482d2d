"""utils.beats: essentia's tracker, the librosa fallback, and clips without beats."""

from __future__ import annotations

import numpy as np
import pytest

from tests.music_fixtures import CLICK_BPM, click_track
from utils import beats as beats_module
from utils.beats import ESSENTIA_MISSING_WARNING, essentia_available, track_beats

SR = 44100


def assert_beat_grid(result, bpm: float) -> None:
    """The tempo (or a double/half of it) and the beat spacing match ``bpm`` within 5%."""
    assert any(abs(result.bpm * k - bpm) / bpm < 0.05 for k in (0.5, 1.0, 2.0)), result.bpm
    spacing = float(np.median(np.diff(result.times)))
    assert any(abs(spacing / k - 60.0 / bpm) / (60.0 / bpm) < 0.05 for k in (0.5, 1.0, 2.0)), spacing


@pytest.mark.skipif(not essentia_available(), reason="essentia has wheels for Linux x86_64 only")
def test_essentia_finds_the_click_tempo():
    result = track_beats(click_track(10.0, SR), SR, backend="essentia")
    assert result.backend == "essentia" and result.warning == ""
    assert_beat_grid(result, CLICK_BPM)


def test_librosa_finds_the_click_tempo():
    result = track_beats(click_track(10.0, SR), SR, backend="librosa")
    assert result.backend == "librosa"
    assert_beat_grid(result, CLICK_BPM)


def test_auto_falls_back_to_librosa_with_a_warning(monkeypatch):
    monkeypatch.setattr(beats_module, "essentia_available", lambda: False)
    result = track_beats(click_track(10.0, SR), SR)
    assert result.backend == "librosa"
    assert result.warning == ESSENTIA_MISSING_WARNING
    assert_beat_grid(result, CLICK_BPM)


def test_real_music_tempo(chorale):
    import soundfile as sf

    path, bpm = chorale
    audio, sr = sf.read(str(path), dtype="float32")
    assert_beat_grid(track_beats(audio, sr), bpm)


@pytest.mark.parametrize("backend", ["auto", "librosa"])
def test_too_short_for_beats(backend):
    with pytest.raises(ValueError, match="beat"):
        track_beats(click_track(0.6, SR), SR, backend=backend)


def test_unknown_backend():
    with pytest.raises(ValueError, match="Unknown beat tracker"):
        track_beats(np.zeros(10, dtype=np.float32), SR, backend="madmom")
