"""models.pop2piano on a tiny random Pop2Piano, loaded through the app's own loader."""

from __future__ import annotations

from collections import Counter

import time

import numpy as np
import pytest
import soundfile as sf

from models import pop2piano
from models.sources import ModelLoadError
from models.loading import load_model
from models.pop2piano import COMPOSERS, PianoCoverModel
from utils import beats as beats_module
from utils.audio import OUTPUT_SAMPLE_RATE
from utils.midi import notes_of
from utils.render import render_midi


@pytest.fixture(scope="module")
def model(tiny_pop2piano_dir) -> PianoCoverModel:
    m = load_model("piano", str(tiny_pop2piano_dir), "cpu")
    m.load()
    return m


def test_loader_reads_the_saved_folder(model, tiny_pop2piano_dir):
    assert model.loaded and model.name == str(tiny_pop2piano_dir)
    assert model.device.type == "cpu"
    assert model.model.config.d_model == 64
    assert model.feature_extractor.feature_size == 64
    assert load_model("piano", str(tiny_pop2piano_dir), "cpu") is model  # cached, not reloaded


def test_cpu_uses_int8_weights_unless_told_not_to(model, tiny_pop2piano_dir, monkeypatch):
    assert model.int8 and "quantized" in type(model.model.decoder.block[0].layer[0].SelfAttention.q).__module__
    monkeypatch.setenv("PIANO_COVER_CPU_INT8", "0")
    assert not PianoCoverModel(str(tiny_pop2piano_dir), "cpu").int8


def test_real_music_end_to_end(model, chorale):
    path, bpm = chorale
    progress: list[tuple[float, str]] = []
    cover, song, sr = model.cover_file(str(path), "composer5", progress=lambda f, m: progress.append((f, m)))

    assert sr == 44100 and song.ndim == 1
    assert cover.composer == "composer5"
    assert cover.n_chunks >= 8  # 22.5 s at 96 BPM = 36 beats = 9 four-beat chunks
    # Random weights never emit the end token: every chunk ran out of length and was decoded anyway.
    assert cover.n_unfinished == cover.n_chunks
    assert any("256-token limit" in w for w in cover.warnings)
    notes = notes_of(cover.midi)
    assert len(notes) > 0 and cover.n_notes == len(notes)
    assert all(21 <= n.pitch <= 108 and n.end > n.start for n in notes)  # on the 88 keys
    assert min(n.start for n in notes) >= cover.beats.times[0] - 1e-6  # notes sit on the song's beat grid
    assert cover.midi.get_tempo_changes()[1][0] == pytest.approx(cover.beats.bpm)
    assert any(abs(cover.beats.bpm * k - bpm) / bpm < 0.05 for k in (0.5, 1, 2))

    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.9
    assert any("Arranging beats" in m for _, m in progress)

    rendered = render_midi(cover.midi, OUTPUT_SAMPLE_RATE)
    assert rendered.sample_rate == OUTPUT_SAMPLE_RATE
    assert rendered.audio.shape[0] >= int(max(n.end for n in notes) * OUTPUT_SAMPLE_RATE)
    assert np.abs(rendered.audio).max() > 0.1


def test_batches_give_the_same_result_in_float32(tiny_pop2piano_dir, monkeypatch, clicks):
    monkeypatch.setenv("PIANO_COVER_CPU_INT8", "0")
    model = PianoCoverModel(str(tiny_pop2piano_dir), "cpu")
    whole, _, _ = model.cover_file(str(clicks[0]), "composer1")
    monkeypatch.setitem(pop2piano.CHUNKS_PER_BATCH, "cpu", 1)
    messages: list[str] = []
    cover, _, _ = model.cover_file(str(clicks[0]), "composer1", progress=lambda f, m: messages.append(m))
    batches = sorted({m for m in messages if m.startswith("Arranging beats")})
    assert len(batches) == cover.n_chunks >= 2  # one call per chunk, progress after every step
    assert f"Arranging beats 1-4 of {4 * cover.n_chunks}" in batches
    assert [(n.pitch, n.start, n.end) for n in notes_of(cover.midi)] == [
        (n.pitch, n.start, n.end) for n in notes_of(whole.midi)
    ]


@pytest.mark.skipif(not beats_module.essentia_available(), reason="the reference processor needs essentia")
def test_same_notes_as_the_transformers_reference_pipeline(tiny_pop2piano_dir, chorale, monkeypatch):
    """processor -> generate -> batch_decode, as transformers documents it, on the same weights, with the
    reference's resampler (the app's default, PIANO_COVER_RESAMPLER=kaiser_best)."""
    import librosa
    import torch
    from transformers import Pop2PianoProcessor

    from utils.notes import fold_into_piano_range

    monkeypatch.setenv("PIANO_COVER_RESAMPLER", "kaiser_best")
    model = PianoCoverModel(str(tiny_pop2piano_dir), "cpu")
    ours, _, _ = model.cover_file(str(chorale[0]), "composer6")
    processor = Pop2PianoProcessor(model.feature_extractor.__class__.__base__.from_dict(
        model.feature_extractor.to_dict()), model.tokenizer)
    audio, sr = librosa.load(str(chorale[0]), sr=44100)
    inputs = processor(audio=audio, sampling_rate=sr, return_tensors="pt")
    with torch.inference_mode():
        ids = model.model.generate(input_features=inputs["input_features"], composer="composer6", max_length=256)
    ids = torch.cat([ids, torch.ones(ids.shape[0], 1, dtype=ids.dtype)], dim=1)  # random weights: no end token
    reference = processor.batch_decode(token_ids=ids, feature_extractor_output=inputs)["pretty_midi_objects"][0]
    expected = Counter((int(fold_into_piano_range(n.pitch)), round(float(n.start), 4))
                       for n in reference.instruments[0].notes)
    got = Counter((int(n.pitch), round(float(n.start), 4)) for n in notes_of(ours.midi))
    # the same notes, except that ours stop at the song's end: the reference's last chunk reaches past it
    duration = audio.shape[0] / sr
    assert not got - expected  # nothing the reference does not have
    assert all(start >= duration - 1.0 for (_, start) in expected - got)  # only notes at the very end go
    assert max(n.end for n in notes_of(ours.midi)) <= duration + 1e-6
    assert len(expected) > 0


def test_same_input_same_cover(model, clicks):
    first, _, _ = model.cover_file(str(clicks[0]), "composer3")
    second, _, _ = model.cover_file(str(clicks[0]), "composer3")
    assert [(n.pitch, n.start) for n in notes_of(first.midi)] == [(n.pitch, n.start) for n in notes_of(second.midi)]


def test_random_style_picks_one_of_the_21(model, clicks):
    cover, _, _ = model.cover_file(str(clicks[0]), "random")
    assert cover.composer in COMPOSERS


def test_short_token_limit_still_decodes(model, clicks):
    audio, sr = sf.read(str(clicks[0]), dtype="float32")
    cover = model.arrange(audio, sr, "composer2", max_tokens_per_chunk=8)
    assert cover.n_unfinished == cover.n_chunks
    assert all(0 <= n.pitch <= 127 and n.end > n.start for n in notes_of(cover.midi))


def test_essentia_missing_falls_back_to_librosa(model, monkeypatch, clicks):
    monkeypatch.setattr(beats_module, "essentia_available", lambda: False)
    cover, _, _ = model.cover_file(str(clicks[0]), "composer1")
    assert cover.beats.backend == "librosa"
    assert any("essentia is not installed" in w for w in cover.warnings)
    assert cover.n_notes > 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "upload a song"),
        (lambda d: d / "missing.wav", "does not exist"),
        (lambda d: (d / "lyrics.txt").write_text("la la la") and d / "lyrics.txt", "Could not read"),
        (lambda d: sf.write(str(d / "quiet.wav"), np.zeros(44100 * 5), 44100) or d / "quiet.wav", "silent"),
        (lambda d: sf.write(str(d / "blip.wav"), np.ones(4410) * 0.5, 44100) or d / "blip.wav", "too short"),
    ],
    ids=["no-file", "missing", "not-audio", "silence", "too-short"],
)
def test_bad_input(model, tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ValueError, match=message):
        model.cover_file(None if path is None else str(path), "composer1")


def test_no_beats_in_a_drone(model, tmp_path):
    t = np.arange(44100 * 4) / 44100
    path = tmp_path / "drone.wav"
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 110 * t), 44100)
    with pytest.raises(ValueError, match="beat"):
        model.cover_file(str(path), "composer1")


def test_song_over_the_limit(model, clicks):
    with pytest.raises(ValueError, match="limit here is 0.1 minutes"):
        model.cover_file(str(clicks[0]), "composer1", max_seconds=6.0)


def test_unknown_style(model, clicks):
    with pytest.raises(ValueError, match="Unknown arranger style"):
        model.cover_file(str(clicks[0]), "composer99")


def test_missing_folder_says_what_and_how(tmp_path):
    missing = PianoCoverModel(str(tmp_path / "no-such-model"), "cpu")
    with pytest.raises(ModelLoadError) as err:
        missing.load()
    text = str(err.value)
    assert "no-such-model" in text and "does not exist" in text
    assert "--piano-model" in text and "PIANO_COVER_MODEL" in text


def test_folder_without_a_model(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        PianoCoverModel(str(tmp_path), "cpu").load()


def test_unreachable_hub_fails_fast_with_advice(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as err:
        PianoCoverModel("sweetcocoa/pop2piano", "cpu").load()
    assert time.monotonic() - start < 10
    text = str(err.value)
    assert "sweetcocoa/pop2piano" in text and "cannot be reached" in text
    assert "huggingface-cli download sweetcocoa/pop2piano --local-dir ./weights/pop2piano" in text
    assert "PIANO_COVER_MODEL=./weights/pop2piano" in text


def test_env_var_sets_the_default(monkeypatch, tiny_pop2piano_dir):
    monkeypatch.setenv("PIANO_COVER_MODEL", str(tiny_pop2piano_dir))
    assert PianoCoverModel(device="cpu").name == str(tiny_pop2piano_dir)
    monkeypatch.delenv("PIANO_COVER_MODEL")
    assert PianoCoverModel(device="cpu").name == "sweetcocoa/pop2piano"


def test_the_fast_resampler_changes_only_the_top_mel_bins(model, chorale):
    """soxr (opt-in) against the reference extractor's resampy kaiser_best, on the same beats: the log-mel features
    agree below ~10.5 kHz and differ in the top bins, as recorded in docs/performance-history.md."""
    import librosa

    from models.pop2piano import _PRECOMPUTED_BEATS
    from utils.beats import track_beats

    audio, sr = librosa.load(str(chorale[0]), sr=44100)
    token = _PRECOMPUTED_BEATS.set(track_beats(audio, sr))
    try:
        extract = model.feature_extractor
        reference = extract(audio=audio, sampling_rate=sr, steps_per_beat=2, return_tensors="np")["input_features"]
        fast_audio = librosa.resample(audio, orig_sr=sr, target_sr=extract.sampling_rate, res_type="soxr_hq")
        fast = extract(audio=fast_audio, sampling_rate=extract.sampling_rate, steps_per_beat=2,
                       return_tensors="np")["input_features"]
    finally:
        _PRECOMPUTED_BEATS.reset(token)
    per_bin = np.abs(fast - reference).mean(axis=(0, 1))  # [512 mel bins]
    assert fast.shape == reference.shape
    top = int(0.9 * per_bin.size)
    assert per_bin[:top].max() < 0.05  # below the top bins: the same features
    assert per_bin[top:].max() > 0.5  # near Nyquist the two filters differ: why kaiser_best stays the default
    assert model.resampler == "kaiser_best"


def test_bad_resampler_setting(tiny_pop2piano_dir, monkeypatch):
    monkeypatch.setenv("PIANO_COVER_RESAMPLER", "linear")
    with pytest.raises(ValueError, match="kaiser_best, soxr_hq"):
        PianoCoverModel(str(tiny_pop2piano_dir), "cpu")
