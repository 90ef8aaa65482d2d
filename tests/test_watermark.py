"""The watermark: AudioSeal's generator and detector (tiny, random weights of the real architecture) loaded by
audioseal's own loader from a folder, the mark added to every audio product, and the checker on WAV, MP3 and MP4.

Random weights cannot show that a mark is found (the robustness figures need the released weights: see
docs/performance-history.md); these tests show that the app computes exactly AudioSeal's mark and AudioSeal's verdict."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from models import watermark
from models.loading import load_model
from models.sources import ModelLoadError
from models.watermark import APP_MESSAGE, WATERMARK_RATE, Detection, Watermarker, message_bits


@pytest.fixture(scope="module")
def marker(tiny_watermark_dir) -> Watermarker:
    w = Watermarker(str(tiny_watermark_dir), "cpu")
    w.load()
    return w


def music(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return np.stack([tone * (1 - 0.1 * c) for c in range(channels)]).astype(np.float32).squeeze()


def test_the_message_says_md():
    assert bytes([APP_MESSAGE >> 8, APP_MESSAGE & 0xFF]) == b"MD"
    assert watermark.bits_message(message_bits()) == APP_MESSAGE and message_bits().shape == (16,)


def test_the_models_come_from_audioseals_loader(marker):
    from audioseal.models import AudioSealDetector, AudioSealWM

    assert isinstance(marker.generator, AudioSealWM) and isinstance(marker.detector, AudioSealDetector)
    assert marker.detector.nbits == 16


def test_the_mark_is_audioseals_watermark_of_the_mono_mix(marker):
    audio = music(watermark.WINDOW_S - 1.0, 32000, channels=2)  # [2, T] at MusicGen's rate, one window
    marked = marker.mark(audio, 32000)
    assert marked.shape == audio.shape and np.isfinite(marked).all()
    mono16 = resample_poly(audio.mean(axis=0), 1, 2).astype(np.float32)
    with torch.inference_mode():
        from audioseal.libs.moshi.utils.compile import no_compile

        with no_compile():
            expected = marker.generator.get_watermark(torch.from_numpy(mono16)[None, None],
                                                      message=torch.from_numpy(message_bits())[None])[0, 0].numpy()
    expected = resample_poly(expected, 2, 1)[: audio.shape[-1]]
    for channel in range(2):  # the same mark on both channels
        assert np.allclose(marked[channel] - audio[channel], expected, atol=1e-5)


def test_long_audio_is_marked_window_by_window_to_its_full_length(marker):
    audio = music(watermark.WINDOW_S * 2 + 3.0, 44100)
    marked = marker.mark(audio, 44100)
    assert marked.shape == audio.shape
    assert np.abs(marked - audio)[-44100:].max() > 0  # the last window is marked too


def test_the_verdict_reads_the_score_and_the_message():
    assert Detection(0.9, APP_MESSAGE, 10.0).ours
    other = Detection(0.9, APP_MESSAGE ^ 1, 10.0)
    assert other.marked and not other.ours and "not this app's message" in other.describe()
    assert not Detection(0.2, APP_MESSAGE, 10.0).marked
    assert "No watermark found" in Detection(0.2, APP_MESSAGE, 10.0).describe()


def test_detection_is_audioseals_over_the_whole_file(marker):
    audio = marker.mark(music(watermark.WINDOW_S - 1.0, WATERMARK_RATE), WATERMARK_RATE)
    found = marker.detect(audio, WATERMARK_RATE)
    with torch.inference_mode():
        from audioseal.libs.moshi.utils.compile import no_compile

        with no_compile():
            score, bits = marker.detector.detect_watermark(torch.from_numpy(audio)[None, None])
    assert found.score == pytest.approx(float(score[0]), abs=1e-6)
    assert found.seconds == pytest.approx(watermark.WINDOW_S - 1.0)
    assert 0.0 <= found.score <= 1.0 and 0 <= found.message < 2**16
    assert found.message == watermark.bits_message(bits[0].numpy())


def test_write_music_marks_every_file_and_says_so(tiny_musicgen_dir, tiny_watermark_dir, tmp_path):
    from models import musicgen
    from products.music import write_music

    result = musicgen.MusicGenModel(str(tiny_musicgen_dir), "cpu").generate(
        "lo-fi piano", musicgen.SamplingParams(duration=1.0, seed=1), 2)
    marked = write_music(result, tmp_path / "marked", "music", watermark=str(tiny_watermark_dir))
    plain = write_music(result, tmp_path / "plain", "music", watermark="off")
    assert marked.watermark_note == "" and "turned off" in plain.watermark_note
    import json

    assert json.loads(marked.params.read_text())["watermark"] == "AudioSeal, message 0x4d44"
    assert "Not watermarked" in json.loads(plain.params.read_text())["watermark"]
    for a, b in zip(marked.wavs, plain.wavs):
        x, _ = sf.read(a)
        y, _ = sf.read(b)
        assert x.shape == y.shape and np.abs(x - y).max() > 1e-4  # the mark is there, in every variant


def test_a_missing_watermark_model_writes_unmarked_and_says_how_to_fix(tiny_musicgen_dir, tmp_path, caplog):
    from models import musicgen
    from products.music import write_music

    result = musicgen.MusicGenModel(str(tiny_musicgen_dir), "cpu").generate(
        "lo-fi piano", musicgen.SamplingParams(duration=1.0, seed=1))
    with caplog.at_level("WARNING"):
        files = write_music(result, tmp_path, "music", watermark=str(tmp_path / "no-watermark-here"))
    # the visitor reads plain words; whoever runs the app finds the why and the fix in the log
    assert files.watermark_note == "Not watermarked: the watermark model is not available on this server."
    assert "--watermark-model" in caplog.text


def test_cover_audio_mix_and_video_soundtrack_are_marked(tiny_pop2piano_dir, tiny_watermark_dir, chorale, tmp_path):
    from models import pop2piano
    from products import piano as products

    song_path, _ = chorale
    cover, song, sr = load_model("piano", str(tiny_pop2piano_dir), "cpu").cover_file(str(song_path))
    made = {}
    for name in ("off", str(tiny_watermark_dir)):
        job = products.start_cover(cover, song, sr, "tiny", str(song_path), tmp_path / ("off" if name == "off" else
                                                                                          "marked"), name)
        made[name] = products.write_audio(job)
    assert "turned off" in made["off"].warning
    assert "Not watermarked" not in made[str(tiny_watermark_dir)].warning
    for kind in ("cover", "mix"):
        x, _ = sf.read(getattr(made[str(tiny_watermark_dir)], kind))
        y, _ = sf.read(getattr(made["off"], kind))
        assert np.abs(x - y).max() > 1e-4


def test_check_file_reads_wav_mp3_and_mp4(marker, tiny_watermark_dir, tmp_path):
    from products.checking import check_file
    from utils.audio import write_mp3, write_wav
    from utils.video import ffmpeg_exe

    audio = marker.mark(music(3.0, 32000), 32000)
    wav = write_wav(tmp_path / "m.wav", audio, 32000)
    mp3 = write_mp3(tmp_path / "m.mp3", audio, 32000)
    mp4 = tmp_path / "m.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=64x64:d=3", "-i", str(wav),
                    "-c:v", "libx264", "-c:a", "aac", "-shortest", str(mp4)], check=True)
    for path in (wav, mp3, mp4):
        found = check_file(path, str(tiny_watermark_dir))
        assert found.seconds == pytest.approx(3.0, abs=0.15), path.suffix
        assert 0.0 <= found.score <= 1.0


def test_check_file_refuses_what_it_cannot_check(tiny_watermark_dir, tmp_path):
    from products.checking import check_file

    with pytest.raises(ValueError, match="Choose a file"):
        check_file(None, str(tiny_watermark_dir))
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(ValueError, match="Could not read"):
        check_file(text, str(tiny_watermark_dir))
    short = tmp_path / "short.wav"
    sf.write(str(short), np.zeros(8000, dtype=np.float32) + 0.1, 16000)
    with pytest.raises(ValueError, match="too short"):
        check_file(short, str(tiny_watermark_dir))
    long_enough = tmp_path / "long.wav"
    sf.write(str(long_enough), np.zeros(32000, dtype=np.float32) + 0.1, 16000)
    with pytest.raises(ModelLoadError, match="turned off"):
        check_file(long_enough, "off")
