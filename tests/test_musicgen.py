"""models.musicgen on tiny random MusicGen / MusicGen-Melody checkpoints, loaded through the app's loader."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import torch
import pytest
import soundfile as sf

from models.loading import load_model
from models.sources import ModelLoadError
from models.musicgen import (
    Clip,
    GenerationCancelled,
    Melody,
    MusicGenModel,
    MusicRequest,
    SamplingParams,
    parse_seed,
)

SR = 32000


@pytest.fixture(scope="module")
def text_model(tiny_musicgen_dir) -> MusicGenModel:
    return load_model("text", str(tiny_musicgen_dir), "cpu")


@pytest.fixture(scope="module")
def melody_model(tiny_melody_dir) -> MusicGenModel:
    return load_model("melody", str(tiny_melody_dir), "cpu")


@pytest.mark.parametrize(("duration", "variants"), [(1.0, 1), (2.5, 3)])
def test_audio_of_the_requested_duration_and_rate(text_model, duration, variants):
    result = text_model.generate("lo fi hip hop warm piano", SamplingParams(duration=duration, seed=1), variants)
    assert result.sample_rate == SR
    assert result.audio.shape == (variants, 1, int(duration * SR))
    assert result.audio.dtype == np.float32 and np.abs(result.audio).max() > 0
    assert result.params["variants"] == variants and result.params["seed"] == 1
    if variants > 1:  # one batched call, different pieces
        assert not np.allclose(result.audio[0], result.audio[1])


def test_same_seed_same_audio_other_seed_other_audio(text_model):
    params = SamplingParams(duration=1.0, seed=1234)
    first = text_model.generate("sad jazz", params, 2)
    again = text_model.generate("sad jazz", params, 2)
    other = text_model.generate("sad jazz", SamplingParams(duration=1.0, seed=1235), 2)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert not np.allclose(first.audio, other.audio)


def test_random_seed_is_reported_and_reproduces(text_model):
    first = text_model.generate("epic orchestral", SamplingParams(duration=1.0), 1)
    assert 0 <= first.seed < 2**31
    again = text_model.generate("epic orchestral", SamplingParams(duration=1.0, seed=first.seed), 1)
    np.testing.assert_array_equal(first.audio, again.audio)


def test_sampling_settings_are_used_and_recorded(text_model):
    greedyish = SamplingParams(duration=1.0, top_k=1, top_p=0.0, temperature=0.5, guidance_scale=1.0, seed=3)
    a = text_model.generate("rock", greedyish, 2)
    # top-k 1 leaves one choice per step: both variants are the same piece whatever the seed.
    np.testing.assert_array_equal(a.audio[0], a.audio[1])
    assert a.params | {"top_k": 1, "temperature": 0.5, "guidance_scale": 1.0} == a.params


def test_stereo_checkpoint_gives_two_channels(tiny_musicgen_stereo_dir):
    model = MusicGenModel(str(tiny_musicgen_stereo_dir), "cpu")
    result = model.generate("ambient synth", SamplingParams(duration=1.0, seed=0), 2)
    assert result.audio.shape == (2, 2, SR)
    assert not np.allclose(result.audio[:, 0], result.audio[:, 1])


def test_progress_follows_the_decode_steps(text_model):
    seen: list[tuple[float, str]] = []
    text_model.generate("pop", SamplingParams(duration=2.0, seed=0), 1, progress=lambda f, m: seen.append((f, m)))
    steps = [m for _, m in seen if " s made" in m]  # progress in music time, one report a step here
    total = text_model.n_steps(2.0)
    assert total == 2 * 50 + 3  # 50 frames/s plus the delay pattern of 4 codebooks
    assert len(steps) == total and steps[0].startswith("0 of 2 s made") and steps[-1].startswith("2 of 2 s made")
    assert "s left" in steps[-2] and "s left" not in steps[0]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] > 0.9


def test_cancel_stops_and_the_next_run_works(text_model):
    cancel = threading.Event()
    calls: list[float] = []

    def progress(fraction: float, message: str) -> None:
        calls.append(fraction)
        if len(calls) == 3:
            cancel.set()

    stopped = text_model.generate("pop", SamplingParams(duration=10.0, seed=0), 1, progress=progress, cancel=cancel)
    assert len(calls) < 10
    # what was finished comes back: the frames complete in every codebook when Stop was pressed
    assert stopped.stopped and 0 < stopped.duration < 1.0 and "Stopped" in stopped.notes[-1]
    assert stopped.audio.shape[-1] == stopped.codes.shape[-1] * SR // 50
    full = text_model.generate("pop", SamplingParams(duration=10.0, seed=0), 1)
    frames = stopped.codes.shape[-1]
    np.testing.assert_array_equal(stopped.codes, full.codes[..., :frames])  # the same music, cut where it stopped
    cancel = threading.Event()
    cancel.set()  # stopped before a single frame was finished: nothing to give back
    with pytest.raises(GenerationCancelled):
        text_model.generate("pop", SamplingParams(duration=10.0, seed=0), 1, cancel=cancel)
    assert text_model.generate("pop", SamplingParams(duration=1.0, seed=0), 1).audio.shape == (1, 1, SR)


def test_melody_end_to_end(melody_model, hummed_melody):
    melody = Melody.from_file(str(hummed_melody), 0.0, 0.0)
    assert melody.duration == pytest.approx(4.0)
    result = melody_model.generate_with_melody("jazz trio", melody, SamplingParams(duration=1.5, seed=9), 2)
    assert result.audio.shape == (2, 1, int(1.5 * SR))
    assert result.chroma.shape == (32, 12)  # 4 s at 32 kHz, hop 4096
    names = np.array(["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"])[result.chroma.argmax(-1)]
    assert {"A", "C", "E"} <= set(names)
    assert result.params["task"] == "melody_to_music" and result.params["melody_seconds"] == 4.0


def test_melody_trim(hummed_melody):
    part = Melody.from_file(str(hummed_melody), 1.0, 2.5)
    assert part.duration == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": ""}, "describe the music"),
        ({"prompt": "x" * 1001}, "under 1000"),
        ({"params": SamplingParams(duration=0.5)}, "between 1 and 300 seconds"),
        ({"params": SamplingParams(duration=301)}, "between 1 and 300 seconds"),
        ({"params": SamplingParams(stride=30)}, "stride must lie between 10 and 25"),
        ({"n_variants": 5}, "1 to 4 variants"),
        ({"params": SamplingParams(top_p=1.5)}, "Top-p"),
        ({"params": SamplingParams(top_k=-1)}, "Top-k"),
        ({"params": SamplingParams(temperature=0.0)}, "temperature"),
        ({"params": SamplingParams(guidance_scale=0.5)}, "guidance scale"),
    ],
)
def test_bad_text_input(text_model, kwargs, message):
    args = {"prompt": "pop", "params": SamplingParams(duration=1.0), "n_variants": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        text_model.generate(**args)


def test_a_request_is_checked_once_when_it_is_built(hummed_melody):
    """``MusicRequest`` refuses bad input before any model is touched, keeps the checked values, and cannot be
    changed afterwards."""
    with pytest.raises(ValueError, match="describe the music"):
        MusicRequest("   ")
    with pytest.raises(ValueError, match="1 to 4 variants"):
        MusicRequest("pop", variants=5)
    with pytest.raises(ValueError, match="Top-p"):
        MusicRequest("pop", SamplingParams(top_p=2.0))
    with pytest.raises(ValueError, match="melody source"):
        MusicRequest("", melody=Melody.from_file(str(hummed_melody)), melody_source="vocals only")
    codes = np.zeros((1, 4, 10), dtype=np.int64)
    with pytest.raises(ValueError, match="not both"):
        MusicRequest("", clip=Clip(np.zeros((1, SR * 2), np.float32), SR), codes=codes)
    request = MusicRequest("  warm piano  ", variants=2.0, melody=Melody.from_file(str(hummed_melody)),
                           melody_source="mix", prompt_english="  ")
    assert (request.prompt, request.variants, request.melody_source, request.prompt_english) == (
        "warm piano", 2, "mix", None)
    assert MusicRequest("", codes=codes).prompt == ""  # extending needs no prompt
    assert MusicRequest("pop").melody_source is None  # no melody, no source
    with pytest.raises(AttributeError):
        request.variants = 3  # type: ignore[misc]


def test_the_page_and_the_cli_make_requests_and_check_nothing_themselves():
    """The events and the batch jobs build a ``MusicRequest`` and hand it to the seam (``serving``), whose
    in-process backend calls ``make``: no entry point chosen there, no input check run a second time."""
    from pathlib import Path as P

    root = P(__file__).resolve().parents[1]
    assert ".make(request" in (root / "serving" / "in_process.py").read_text(encoding="utf-8")
    for path in (root / "ui" / "music.py", root / "batch" / "jobs.py"):  # they build it; the job function runs it
        source = path.read_text(encoding="utf-8")
        assert "MusicRequest(" in source and "make_music(" in source and ".make(" not in source, path
        for name in ("generate_with_melody(", "generate_continuation(", ".extend(", "check_prompt(",
                     "check_variants(", "check_melody_source("):
            assert name not in source, (path.name, name)
    job = (root / "products" / "music.py").read_text(encoding="utf-8")
    assert ".music(" in job and "MusicRequest(" not in job and ".make(" not in job


def test_make_gives_the_entry_points_music(text_model, melody_model, hummed_melody):
    """One request through ``make`` is the entry point's music, sample for sample."""
    params = SamplingParams(duration=1.0, seed=5)
    assert np.array_equal(text_model.make(MusicRequest("jazz", params)).audio,
                          text_model.generate("jazz", params).audio)
    melody = Melody.from_file(str(hummed_melody))
    assert np.array_equal(melody_model.make(MusicRequest("", params, melody=melody, melody_source="mix")).audio,
                          melody_model.generate_with_melody("", melody, params, melody_source="mix").audio)


@pytest.mark.parametrize("seed", ["abc", "-1", "1.5", str(2**31)])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        parse_seed(seed)


def test_seed_parsing():
    assert parse_seed("") is None and parse_seed(None) is None and parse_seed(" 42 ") == 42 and parse_seed(7.0) == 7


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "upload or record a melody"),
        (lambda d: (d / "song.txt").write_text("la") and d / "song.txt", "Could not read"),
        (lambda d: sf.write(str(d / "quiet.wav"), np.zeros(SR * 2), SR) or d / "quiet.wav", "silent"),
        (lambda d: sf.write(str(d / "short.wav"), 0.5 * np.ones(SR // 2), SR) or d / "short.wav", "too short"),
    ],
    ids=["missing", "unreadable", "silent", "too-short"],
)
def test_bad_melody(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ValueError, match=message):
        Melody.from_file(None if path is None else str(path))


def test_bad_trim(hummed_melody):
    with pytest.raises(ValueError, match="must come before its end"):
        Melody.from_file(str(hummed_melody), 3.0, 2.0)


def test_melody_tab_needs_a_melody(melody_model):
    with pytest.raises(ValueError, match="upload or record a melody"):
        melody_model.generate("jazz", SamplingParams(duration=1.0), 1)


def test_text_only_checkpoint_for_melody(tiny_musicgen_dir):
    with pytest.raises(ValueError, match="text-only MusicGen checkpoint"):
        MusicGenModel("facebook/musicgen-small", "cpu", melody=True).load()  # known name: no download tried
    with pytest.raises(ValueError, match="text-only MusicGen checkpoint"):
        MusicGenModel(str(tiny_musicgen_dir), "cpu", melody=True).load()  # found out from its config


def test_missing_folder_says_what_and_how(tmp_path):
    with pytest.raises(ModelLoadError) as err:
        MusicGenModel(str(tmp_path / "musicgen-small"), "cpu").load()
    assert "musicgen-small" in str(err.value) and "--musicgen-model" in str(err.value)
    with pytest.raises(ModelLoadError, match="--melody-model"):
        MusicGenModel(str(tmp_path / "melody"), "cpu", melody=True).load()


def test_another_checkpoint_loads_beside_and_a_third_frees_the_least_recently_used(
        tiny_musicgen_dir, tiny_musicgen_stereo_dir, tmp_path, monkeypatch):
    import shutil

    from models import cache

    monkeypatch.setattr(cache, "_MODEL_CACHE", cache.ModelCache(per_role=2))
    first = load_model("text", str(tiny_musicgen_dir), "cpu")
    first.load()
    old = weakref.ref(first.model)
    assert load_model("text", str(tiny_musicgen_dir), "cpu") is first  # cached
    second = load_model("text", str(tiny_musicgen_stereo_dir), "cpu")
    second.load()
    assert second is not first and first.model is not None  # beside it: memory allows, the role holds two
    third = load_model("text", str(shutil.copytree(tiny_musicgen_dir, tmp_path / "third")), "cpu")
    assert first.model is None and second.model is not None  # the least recently used one went
    assert cache.model_cache().held("text") == [second, third]
    del first
    gc.collect()
    assert old() is None  # nothing holds the old weights any more


def test_env_vars_set_the_defaults(monkeypatch):
    monkeypatch.setenv("MUSICGEN_MODEL", "/models/mg")
    monkeypatch.setenv("MUSICGEN_MELODY_MODEL", "/models/mgm")
    assert MusicGenModel(device="cpu").name == "/models/mg"
    assert MusicGenModel(device="cpu", melody=True).name == "/models/mgm"
    monkeypatch.delenv("MUSICGEN_MODEL")
    monkeypatch.delenv("MUSICGEN_MELODY_MODEL")
    assert MusicGenModel(device="cpu").name == "facebook/musicgen-small"
    assert MusicGenModel(device="cpu", melody=True).name == "facebook/musicgen-melody"


def test_unknown_prompt_parts_are_found_by_the_real_tokenizer_class(tmp_path):
    from transformers import AutoTokenizer

    from models.musicgen import unknown_prompt_note, unknown_prompt_parts
    from tests.tiny_models import T5_CHARACTERS, build_t5_tokenizer

    build_t5_tokenizer(tmp_path, T5_CHARACTERS)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert unknown_prompt_parts(tokenizer, "lo fi piano, 80 bpm") == []
    assert unknown_prompt_parts(tokenizer, "雨天的钢琴 jazz café 雨天的钢琴") == ["雨天的钢琴", "é"]
    note = unknown_prompt_note(["雨天的钢琴"])
    assert "“雨天的钢琴”" in note and "English words" in note
    assert unknown_prompt_note([]) == "" and unknown_prompt_note(["<", "{"]) == ""  # a sign is only left out
    from ui.music_tabs import EXAMPLE_MELODIES, MELODY_PROMPT_EXAMPLES, TEXT_PROMPT_EXAMPLES

    for prompt in TEXT_PROMPT_EXAMPLES + MELODY_PROMPT_EXAMPLES + [p for _, p in EXAMPLE_MELODIES]:
        assert unknown_prompt_parts(tokenizer, prompt) == [], prompt  # the app's own examples are read whole


# --------------------------------------------------------------------------------------- past 30 seconds
def test_a_75_second_piece_in_windows(text_model):
    result = text_model.generate("lo fi piano", SamplingParams(duration=75.0, seed=3, stride=18.0), 1)
    assert result.audio.shape == (1, 1, 75 * SR)
    assert result.codes.shape[-1] == pytest.approx(75 * 50, abs=1)
    windows = result.windows
    assert [(w.start, w.end) for w in windows] == [(0, 1500), (1500, 2400), (2400, 3300), (3300, 3750)]
    for previous, window in zip(windows, windows[1:]):
        assert window.start - window.context_start == (30 - 18) * 50  # each window keeps 30 - stride s of codes
        assert window.context_start == previous.end - 600
    assert len(result.params["windows"]) == 4 and result.params["stride"] == 18.0


def test_a_continuation_starts_with_the_clip(text_model, tmp_path):
    from models.musicgen.codec import encode_audio

    t = np.arange(int(2.0 * SR)) / SR
    sf.write(str(tmp_path / "clip.wav"), (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), SR)
    clip = Clip.from_file(str(tmp_path / "clip.wav"))
    result = text_model.generate_continuation(clip, "jazz", SamplingParams(duration=3.0, seed=1), 2)
    assert result.audio.shape == (2, 1, 5 * SR)  # the clip, then 3 s more
    import torch

    clip_codes = encode_audio(text_model.model, torch.from_numpy(clip.audio)[None]).numpy()
    assert (result.codes[:, :, : clip_codes.shape[-1]] == clip_codes).all()
    assert result.params["clip_seconds"] == 2.0 and "re-encoded" in result.params["clip"]
    extended = text_model.extend(result.codes, "jazz", SamplingParams(duration=2.0, seed=4), 2)
    assert extended.audio.shape == (2, 1, 7 * SR)
    assert (extended.codes[..., : result.codes.shape[-1]] == result.codes).all()  # Extend keeps what was there


@pytest.mark.parametrize(
    ("seconds", "message"), [(0.5, "at least 1 second"), (27.0, "trim it"), (0.0, "silent")],
    ids=["too-short", "too-long", "silent"],
)
def test_bad_clips(tmp_path, seconds, message):
    n = int(max(seconds, 2.0) * SR) if seconds else 2 * SR
    audio = np.zeros(n, dtype=np.float32) if seconds == 0.0 else 0.3 * np.sin(np.arange(int(seconds * SR)) / 5)
    sf.write(str(tmp_path / "c.wav"), audio.astype(np.float32), SR)
    with pytest.raises(ValueError, match=message):
        Clip.from_file(str(tmp_path / "c.wav"))


def test_long_melody_piece_follows_the_melody_in_time_and_loops(melody_model, hummed_melody):
    melody = Melody.from_file(str(hummed_melody))  # 4 s
    result = melody_model.generate_with_melody("jazz", melody, SamplingParams(duration=40.0, seed=2, stride=25.0), 1)
    assert result.audio.shape == (1, 1, 40 * SR)
    offsets = [w["melody_offset"] for w in result.params["windows"]]
    starts = [w["context_start"] / 50 for w in result.params["windows"]]
    assert starts == [0.0, 25.0] and offsets == [0.0, 25.0 % 4.0]  # the melody under each window's time, looped


def test_streaming_grows_and_ends_as_the_full_result(text_model):
    chunks: list[np.ndarray] = []
    result = text_model.generate("pop", SamplingParams(duration=45.0, seed=5), 2, stream=chunks.append)
    plain = text_model.generate("pop", SamplingParams(duration=45.0, seed=5), 2)
    np.testing.assert_array_equal(result.audio, plain.audio)  # streaming does not change the result
    assert chunks[0].shape[:2] == (2, 1) and SR <= chunks[0].shape[-1] <= 1.25 * SR  # about a second comes first
    assert len(chunks) > 10  # then every two seconds, across both windows
    assert sum(c.shape[-1] for c in chunks) == result.audio.shape[-1] == 45 * SR
    streamed = np.concatenate(chunks, axis=-1)
    # a preview decoded chunk by chunk (with a second of context): it sounds as the final file
    assert np.corrcoef(streamed.ravel(), result.audio.ravel())[0, 1] > 0.95


def test_equal_text_encoder_and_codec_are_loaded_once(tiny_musicgen_dir, tiny_melody_dir, tmp_path):
    """A melody checkpoint whose T5 and EnCodec tensors equal the text model's shares them; others do not."""
    from transformers import MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration

    text = MusicgenForConditionalGeneration.from_pretrained(tiny_musicgen_dir)
    same = MusicgenMelodyForConditionalGeneration.from_pretrained(tiny_melody_dir)
    same.text_encoder.load_state_dict(text.text_encoder.state_dict())
    same.audio_encoder.load_state_dict(text.audio_encoder.state_dict())

    def save(model, name: str):
        folder = tmp_path / name
        model.save_pretrained(folder)
        for file in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json"):
            if (tiny_melody_dir / file).exists():
                (folder / file).write_bytes((tiny_melody_dir / file).read_bytes())
        return folder

    folder = save(same, "melody-same-parts")
    with torch.no_grad():  # one T5 value a hair off: equal shapes, not equal tensors
        next(same.text_encoder.parameters()).view(-1)[0] += 1e-6
    differing = save(same, "melody-other-t5")

    first = MusicGenModel(str(tiny_musicgen_dir), "cpu")
    first.load()
    second = MusicGenModel(str(folder), "cpu", melody=True)
    second.load()
    assert sorted(second.shared) == ["audio_encoder", "text_encoder"]
    assert second.model.text_encoder is first.model.text_encoder
    assert second.model.audio_encoder is first.model.audio_encoder
    other = MusicGenModel(str(differing), "cpu", melody=True)
    other.load()
    assert other.shared == ["audio_encoder"] and other.model.text_encoder is not first.model.text_encoder
    melody = Melody(np.sin(np.arange(32000 * 2) / 9).astype(np.float32), 32000)
    result = second.generate_with_melody("jazz", melody, SamplingParams(duration=1.0, seed=1), 1, melody_source="mix")
    assert result.audio.shape == (1, 1, 32000)


def test_users_at_once_share_passes_and_get_their_own_results(text_model, melody_model, hummed_melody):
    """Requests in flight together (the app's workers): their steps share the model thread's passes, and each
    gets exactly the audio it gets alone, streamed or not, whatever the others ask for."""
    melody = Melody.from_file(hummed_melody)
    asks = [
        (text_model.generate, dict(prompt="lo fi hip hop", params=SamplingParams(duration=2.0, seed=1))),
        (text_model.generate, dict(prompt="sad jazz", params=SamplingParams(duration=1.5, seed=2, top_k=50),
                                   n_variants=2)),
        (text_model.generate, dict(prompt="epic drums", params=SamplingParams(duration=2.5, seed=3))),
        (melody_model.generate_with_melody, dict(prompt="piano", params=SamplingParams(duration=1.5, seed=4),
                                                 melody=melody, melody_source="mix")),
    ]
    alone = [generate(**kwargs) for generate, kwargs in asks]
    chunks: list[np.ndarray] = []
    asks[0][1]["stream"] = chunks.append  # one of them streams as it goes
    results: list = [None] * len(asks)
    gate = threading.Barrier(len(asks))

    def user(i: int) -> None:
        gate.wait()
        generate, kwargs = asks[i]
        results[i] = generate(**kwargs)

    users = [threading.Thread(target=user, args=(i,)) for i in range(len(asks))]
    for u in users:
        u.start()
    for u in users:
        u.join(timeout=300)
    for a, r in zip(alone, results):
        np.testing.assert_array_equal(a.audio, r.audio)
        np.testing.assert_array_equal(a.codes, r.codes)
    assert chunks and sum(c.shape[-1] for c in chunks) == alone[0].audio.shape[-1]
    # counted where the pass is made: the text requests (one model, one loop) went through passes together
    for r in results[:3]:
        assert r.params["decode_passes"]["shared_with_other_requests"] > 0, r.params["decode_passes"]
    assert results[3].params["decode_passes"]["shared_with_other_requests"] == 0  # alone on the melody model
