"""utils.audio: reading every supported format, checks, mixing."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from utils.audio import (
    audio_duration,
    check_duration,
    check_not_silent,
    fit_length,
    load_audio,
    mix,
    write_wav,
)


def tone(seconds: float, sr: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_reads_every_supported_format_as_mono_at_the_asked_rate(tmp_path, fmt):
    path = tmp_path / f"tone.{fmt}"
    sf.write(str(path), tone(2.0, 48000, channels=2), 48000, format=fmt.upper() if fmt != "ogg" else "OGG")
    audio, sr = load_audio(path, 44100)
    assert sr == 44100
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert abs(audio.shape[0] / sr - 2.0) < 0.1  # mp3 adds encoder padding
    spectrum = np.abs(np.fft.rfft(audio[: sr]))
    assert abs(np.argmax(spectrum) * sr / sr - 440.0) <= 2.0  # 1 s window: bins are 1 Hz apart
    assert abs(audio_duration(path) - 2.0) < 0.1


def test_keeps_the_file_rate_when_none_is_asked(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(1.0, 16000), 16000)
    audio, sr = load_audio(path)
    assert sr == 16000 and audio.shape == (16000,)


def test_stereo_is_averaged_to_mono(tmp_path):
    stereo = np.zeros((1000, 2), dtype=np.float32)
    stereo[:, 0] = 0.5
    path = tmp_path / "s.wav"
    sf.write(str(path), stereo, 8000, subtype="FLOAT")
    audio, _ = load_audio(path)
    np.testing.assert_allclose(audio, 0.25, atol=1e-6)


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a song")
    with pytest.raises(ValueError, match="Could not read `notes.txt` as audio"):
        load_audio(path)
    with pytest.raises(ValueError, match="Could not read"):
        audio_duration(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_silence_and_durations():
    with pytest.raises(ValueError, match="silent"):
        check_not_silent(np.zeros(44100, dtype=np.float32))
    check_not_silent(np.full(10, 0.01, dtype=np.float32))
    with pytest.raises(ValueError, match="too short"):
        check_duration(1.0, 3.0, 600.0)
    with pytest.raises(ValueError, match="limit here is 10.0 minutes"):
        check_duration(601.0, 3.0, 600.0)
    check_duration(30.0, 3.0, 600.0)


def test_mix_balance_ends_are_each_signal_alone():
    piano = np.sin(np.linspace(0, 100, 1000)).astype(np.float32)
    song = np.cos(np.linspace(0, 50, 800)).astype(np.float32)
    only_piano = mix(piano, song, 1.0)
    only_song = mix(piano, song, 0.0)
    assert only_piano.shape == (1000,)
    np.testing.assert_allclose(only_piano, 0.9 * piano / np.abs(piano).max(), atol=1e-6)
    np.testing.assert_allclose(only_song[:800], 0.9 * song / np.abs(song).max(), atol=1e-6)
    assert np.all(only_song[800:] == 0)
    with pytest.raises(ValueError, match="balance"):
        mix(piano, song, 1.5)


def test_fit_length():
    assert fit_length(np.ones(5), 3).shape == (3,)
    padded = fit_length(np.ones(3), 5)
    assert padded.tolist() == [1, 1, 1, 0, 0]


# ------------------------------------------------------------------ the bad-input matrix, file by file
def write(path, audio, sr, **kwargs):
    sf.write(str(path), audio, sr, **kwargs)
    return path


def test_non_finite_samples_are_refused(tmp_path):
    audio = tone(1.0, 44100).astype(np.float32)
    audio[100] = np.nan
    audio[200] = -np.inf
    path = write(tmp_path / "broken.wav", audio, 44100, subtype="FLOAT")
    with pytest.raises(ValueError, match="2 sample\\(s\\) that are not numbers"):
        load_audio(path, 22050)


def test_empty_file_and_truncated_mp3(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="Could not read `empty.wav`"):
        load_audio(empty)
    full = write(tmp_path / "song.mp3", tone(3.0, 44100), 44100, format="MP3")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    audio, sr = load_audio(cut)  # a download cut short: the part that arrived is used
    assert 0.3 < audio.shape[0] / sr < 2.0
    # its header still says 3 s; the length said on arrival is the part that is there, as the run will find it
    assert sf.info(str(cut)).duration == pytest.approx(3.0, abs=0.1)
    assert audio_duration(cut) == pytest.approx(audio.shape[0] / sr, abs=0.05)
    assert audio_duration(full) == pytest.approx(3.0, abs=0.1)
    from ui.piano import check_song_upload

    kept, line = check_song_upload(str(cut))
    assert kept is None and "too short" in line  # refused as it arrives, not when Make is pressed


def test_six_channels_at_96_khz_and_8_bit_at_8_khz(tmp_path):
    six = write(tmp_path / "surround.wav", tone(1.0, 96000, channels=6), 96000)
    audio, sr = load_audio(six, 44100)
    assert sr == 44100 and audio.ndim == 1 and audio.shape[0] == 44100
    low = write(tmp_path / "phone.wav", tone(1.0, 8000), 8000, subtype="PCM_U8")
    audio, sr = load_audio(low, 44100)
    assert sr == 44100 and abs(audio.shape[0] - 44100) <= 1 and 0.4 < np.abs(audio).max() < 0.6


def test_clipped_audio_is_accepted_and_stays_in_range(tmp_path):
    loud = np.clip(4.0 * tone(1.0, 44100), -1.0, 1.0)
    audio, _ = load_audio(write(tmp_path / "clipped.wav", loud, 44100), 44100)
    assert np.abs(audio).max() <= 1.0 + 1e-6 and np.isfinite(audio).all()


@pytest.mark.parametrize("method", ["soxr_hq", "polyphase", "sinc_hann"])
def test_the_one_resampler_keeps_a_tone_and_the_length(method):
    from utils.audio import resample

    rate, target = 44100, 32000
    t = np.arange(rate) / rate
    tone = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 880 * t)]).astype(np.float32)  # [2, T]
    out = resample(tone, rate, target, method)
    assert out.dtype == np.float32 and out.shape == (2, target)
    for channel, freq in ((0, 440), (1, 880)):
        spectrum = np.abs(np.fft.rfft(out[channel, 1000:-1000]))
        peak = np.argmax(spectrum) * target / (out.shape[-1] - 2000)
        assert abs(peak - freq) < 2, (method, channel, peak)
    assert resample(tone[0], rate, rate, method) is not None and np.array_equal(resample(tone[0], rate, rate), tone[0])
    with pytest.raises(ValueError, match="one of"):
        resample(tone, rate, target, "kaiser_best")


def test_no_module_resamples_on_its_own():
    """Every resample in the app goes through ``utils.audio.resample`` (one home; soxr where it is installed). The one
    exception is named: Pop2Piano's feature extractor resamples inside transformers, and the app warms that up."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    calls = ("librosa.resample(", "librosa.core.resample(", "resample_poly(", "soxr.resample(", "functional.resample(")
    allowed = {("models/pop2piano.py", "librosa.core.resample(")}  # _warm_up_resampler: the extractor's own path
    found = []
    for package in ("app.py", "cli.py", "ui", "products", "batch", "models", "utils"):
        for path in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else [root / package]:
            name = str(path.relative_to(root))
            source = path.read_text(encoding="utf-8")
            found += [(name, call) for call in calls
                      if call in source and (name, call) not in allowed and name != "utils/audio.py"]
    assert found == []
