"""Songs with lyrics (ACE-Step 1.5) on a tiny random pipeline of the real classes, loaded by the app's own loader:
the wrapper's audio equals stock ``AceStepPipeline``'s, an edit keeps what lies outside its part, Stop, the bad
inputs, the products, the converter of the official layout, the API, and the batch command line."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from models import song
from models.loading import load_model

SR = 48000
REACH_S = 0.35  # the VAE's reach at an edited part's edges (measured: 0.31 s each side, docs/performance-history.md)


def stock_audio(folder: Path, style: str, lyrics: str, seconds: float, seed: int, language: str) -> np.ndarray:
    """Stock ``AceStepPipeline`` in float32 on CPU, as diffusers' doc page calls it: [1, 2, samples]."""
    from diffusers import AceStepPipeline

    pipe = AceStepPipeline.from_pretrained(str(folder))
    pipe.set_progress_bar_config(disable=True)
    return pipe(prompt=style, lyrics=lyrics, audio_duration=seconds, vocal_language=language,
                generator=torch.Generator().manual_seed(seed), guidance_scale=1.0).audios.numpy()


@pytest.fixture(scope="module")
def model(tiny_ace_step_dir, monkeypatch_module):
    monkeypatch_module.setenv("SONG_DTYPE", "float32")
    loaded = load_model("song", str(tiny_ace_step_dir), "cpu")
    loaded.load()
    yield loaded
    loaded.unload()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.parametrize("style, lyrics, language", [
    ("upbeat pop, bright female vocals", "[verse]\nCity lights are shining bright tonight", "en"),
    ("Mandopop ballad", "[verse]\n月光洒在窗前\n我在想你", "zh"),
])
def test_the_wrapper_makes_what_stock_makes(model, tiny_ace_step_dir, style, lyrics, language):
    request = song.SongRequest(style, lyrics, seconds=12, seed=11)
    assert request.language == language  # told from the script (Latin letters: English)
    result = model.make(request)
    assert result.audio.shape == (1, 2, 12 * SR) and result.sample_rate == SR
    stock = stock_audio(tiny_ace_step_dir, style, lyrics, 12, 11, language)
    assert np.abs(result.audio - stock).max() < 1e-5  # the chunked decode: float32 rounding only
    assert result.params["dtype"] == "float32" and result.params["variant_seeds"] == [11]


def test_variant_two_is_the_song_of_the_next_seed(model, tiny_ace_step_dir):
    result = model.make(song.SongRequest("folk", "[verse]\nDown by the river", seconds=10, seed=3, variants=2))
    assert result.audio.shape[0] == 2 and not np.allclose(result.audio[0], result.audio[1])
    stock = stock_audio(tiny_ace_step_dir, "folk", "[verse]\nDown by the river", 10, 4, "en")
    assert np.abs(result.audio[1] - stock[0]).max() < 1e-4


def test_an_edit_keeps_the_song_outside_its_part(model):
    made = model.make(song.SongRequest("pop", "[verse]\nla la la", seconds=12, seed=5))
    edit = song.SongEdit(made.latents[0], made.params, start=4.0, end=7.0, lyrics="[chorus]\nnew words", seed=9,
                         gain=made.gains[0])
    edited = model.edit(edit)
    assert edited.audio.shape == made.audio.shape
    before, after = made.audio[0], edited.audio[0]
    outside = np.r_[0:int((4.0 - REACH_S) * SR), int((7.0 + REACH_S) * SR):12 * SR]
    assert np.abs(before[:, outside] - after[:, outside]).max() < 1e-6
    inside = slice(int(4.5 * SR), int(6.5 * SR))
    assert np.abs(before[:, inside] - after[:, inside]).max() > 1e-3  # the part was made again
    assert edited.params["task"] == "song_edit" and edited.params["span"] == [4.0, 7.0]


def test_extend_keeps_what_the_song_had(model):
    made = model.make(song.SongRequest("pop", "[verse]\nla la la", seconds=10, seed=5))
    longer = model.edit(song.SongEdit(made.latents[0], made.params, extend_by=6, seed=2, gain=made.gains[0]))
    assert longer.audio.shape[-1] == 16 * SR and longer.latents.shape[1] == 400
    kept = int((10 - REACH_S) * SR)
    assert np.abs(longer.audio[0, :, :kept] - made.audio[0, :, :kept]).max() < 1e-6


def test_stop_ends_the_run_and_keeps_nothing(model):
    cancel = threading.Event()
    steps = []

    def progress(fraction: float, message: str) -> None:
        steps.append(message)
        if message.startswith("Step 2 of"):
            cancel.set()

    with pytest.raises(song.GenerationCancelled):
        model.make(song.SongRequest("pop", "", seconds=10, instrumental=True), progress=progress, cancel=cancel)
    assert not any(m.startswith("Step 4 of") for m in steps)
    assert not any(m.startswith("Turning it into sound") for m in steps)  # nothing decoded after the stop


def test_progress_by_step_and_by_decode_and_streamed_chunks(model):
    said, chunks = [], []
    result = model.make(song.SongRequest("pop", "[verse]\nhey", seconds=12, seed=1),
                        progress=lambda f, m: said.append((f, m)), stream=chunks.append)
    steps = [m for _, m in said if m.startswith("Step ")]
    assert steps[-1] == "Step 8 of 8"
    assert any(m.startswith("Turning it into sound") for _, m in said)
    assert [f for f, _ in said] == sorted(f for f, _ in said)
    assert chunks[0].shape[-1] == 2 * SR  # the first 2 s are heard before the rest is decoded
    assert sum(c.shape[-1] for c in chunks) == result.audio.shape[-1]


@pytest.mark.parametrize("kwargs, message", [
    (dict(style="", lyrics=""), "Nothing to sing and nothing to play"),
    (dict(style="pop", seconds=5), "10 to 240 s long"),
    (dict(style="pop", seconds=241), "10 to 240 s long"),
    (dict(style="pop", lyrics="la", language="klingon"), "does not know the language"),
    (dict(style="pop", variants=3), "Variants must be 1 to 2"),
    (dict(style="pop", bpm=500), "30 to 300 BPM"),
    (dict(style="pop", key="H major"), "not one the model knows"),
    (dict(style="pop", time_signature="7/8"), "time signature"),
    (dict(style="pop", seed="abc"), "whole number"),
])
def test_bad_requests_say_why(kwargs, message):
    with pytest.raises(ValueError, match=message):
        song.SongRequest(**kwargs)


def test_lyrics_longer_than_the_model_reads_are_refused(model):
    long = "\n".join(["[verse]", *(f"line number {i} of a very long song" for i in range(120))])[:3990]
    with pytest.raises(ValueError, match="tokens long; the model reads at most"):
        model.make(song.SongRequest("pop", long, seconds=10))


def test_an_edit_outside_the_song_is_refused(model):
    made = {"style": "pop", "lyrics": "", "seed": 1}
    latents = np.zeros((250, 8), np.float32)
    with pytest.raises(ValueError, match="inside the song"):
        song.SongEdit(latents, made, start=8, end=12)
    with pytest.raises(ValueError, match="at most 240 s"):
        song.SongEdit(np.zeros((5000, 8), np.float32), made, extend_by=60)
    with pytest.raises(ValueError, match="Make a song here first"):
        song.SongEdit(np.zeros(8, np.float32), made, start=0, end=2)


def test_an_unknown_model_is_refused_with_the_offered_ones():
    from models.catalogue import check_offered

    with pytest.raises(ValueError, match="not offered on this server"):
        check_offered("song", "someone/voice-clone", "ACE-Step/Ace-Step1.5")


@pytest.mark.parametrize("text, code", [("月光洒在窗前", "zh"), ("さくらの花が", "ja"), ("사랑해요", "ko"),
                                        ("Я люблю тебя", "ru"), ("hello there", None), ("", None)])
def test_the_language_is_told_from_the_script(text, code):
    assert song.script_language(text) == code


def test_the_products_of_a_song(model, tmp_path):
    from products.song import read_song_params, write_song

    result = model.make(song.SongRequest("soft folk", "[verse]\n月光", seconds=10, seed=2))
    files = write_song(result, tmp_path, "folk", watermark="off")
    audio, rate = sf.read(files.wavs[0])
    assert rate == SR and audio.shape == (10 * SR, 2)
    assert files.mp3s[0].stat().st_size > 10_000
    assert files.lyrics.read_text(encoding="utf-8") == "[verse]\n月光\n"
    made = read_song_params(files.params)
    assert made["seed"] == 2 and made["language"] == "zh" and "ACE-Step 1.5" in made["provenance"]
    assert files.picture.stat().st_size > 1000
    with sf.SoundFile(files.wavs[0]) as f:
        tags = f.copy_metadata()
    assert "Generated with AI" in tags.get("comment", "") and "ACE-Step 1.5" in tags["comment"]


def test_the_official_layout_is_converted_once_and_sounds_the_same(tiny_ace_step_dir, tmp_path, monkeypatch):
    """ACE-Step's own layout (one model.safetensors for DiT + condition encoder, vae/, Qwen3-Embedding-0.6B/) made
    from the tiny pipeline by the inverse of the converter's key names, then loaded through the app's loader."""
    from diffusers import AceStepPipeline
    from safetensors.torch import save_file

    from models.song.checkpoints import _ATTENTION_RENAMES

    pipe = AceStepPipeline.from_pretrained(str(tiny_ace_step_dir))
    original = tmp_path / "release"
    dit = original / "acestep-v15-turbo"
    dit.mkdir(parents=True)

    def back(key: str) -> str:
        for old, new in _ATTENTION_RENAMES:
            key = key.replace(new, old)
        return key

    state = {}
    for key, value in pipe.transformer.state_dict().items():
        key = key.replace("proj_in_conv.", "proj_in.1.").replace("proj_out_conv.", "proj_out.1.")
        state["decoder." + back(key)] = value.contiguous()
    for key, value in pipe.condition_encoder.state_dict().items():
        if key == "silence_latent":
            torch.save(value.transpose(1, 2).contiguous(), dit / "silence_latent.pt")
        elif key == "null_condition_emb":
            state[key] = value.contiguous()
        else:
            state["encoder." + back(key)] = value.contiguous()
    save_file(state, str(dit / "model.safetensors"))
    t, c = dict(pipe.transformer.config), dict(pipe.condition_encoder.config)
    config = {k: t[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                "num_key_value_heads", "head_dim", "in_channels", "audio_acoustic_hidden_dim",
                                "patch_size", "rope_theta", "attention_bias", "attention_dropout", "rms_norm_eps",
                                "sliding_window", "layer_types", "is_turbo", "model_version")}
    config |= {k: c[k] for k in ("text_hidden_dim", "timbre_hidden_dim", "num_lyric_encoder_hidden_layers",
                                 "num_timbre_encoder_hidden_layers")}
    (dit / "config.json").write_text(json.dumps(config))
    pipe.vae.save_pretrained(str(original / "vae"))
    pipe.text_encoder.save_pretrained(str(original / "Qwen3-Embedding-0.6B"))
    pipe.tokenizer.save_pretrained(str(original / "Qwen3-Embedding-0.6B"))
    monkeypatch.setenv("SONG_CONVERTED_DIR", str(tmp_path / "converted"))
    monkeypatch.setenv("SONG_DTYPE", "float32")
    converted = load_model("song", str(original), "cpu")
    result = converted.make(song.SongRequest("pop", "[verse]\nhello", seconds=10, seed=4))
    converted.unload()
    assert len(list((tmp_path / "converted").glob("*/model_index.json"))) == 1
    stock = stock_audio(tiny_ace_step_dir, "pop", "[verse]\nhello", 10, 4, "en")
    assert np.abs(result.audio - stock).max() < 1e-5


def test_the_batch_command_line_makes_songs_and_resumes(tiny_ace_step_dir, tmp_path, monkeypatch):
    import cli

    monkeypatch.setenv("SONG_DTYPE", "float32")
    (tmp_path / "chorus.txt").write_text("[chorus]\n夜里的风\n吹过我的心", encoding="utf-8")
    rows = [{"style": "upbeat pop", "lyrics": "[verse]\nhello world", "seconds": 10, "seed": 1},
            {"style": "Mandopop ballad", "lyrics_file": "chorus.txt", "seconds": 10, "seed": 2}]
    table = tmp_path / "songs.jsonl"
    table.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    args = ["song", str(table), "--out", str(out), "--song-model", str(tiny_ace_step_dir), "--watermark-model", "off",
            "--translation-model", "off"]
    assert cli.main(args) == 0
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 2 and all(m["status"] == "done" for m in manifest)
    second = next(m for m in manifest if m["id"].lower().startswith("mandopop"))
    wav = next((out / second["id"]).glob("*_v1.wav"))
    audio, rate = sf.read(wav)
    assert rate == SR and audio.shape == (10 * SR, 2)
    assert "夜里的风" in next((out / second["id"]).glob("*_lyrics.txt")).read_text(encoding="utf-8")
    stamp = wav.stat().st_mtime_ns
    assert cli.main(args) == 0  # resumed: done items are not made again
    assert wav.stat().st_mtime_ns == stamp


def test_a_bad_row_is_refused_before_anything_runs(tiny_ace_step_dir, tmp_path):
    import cli

    table = tmp_path / "songs.csv"
    table.write_text("style,lyrics,seconds\npop,hello,5\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        cli.main(["song", str(table), "--out", str(tmp_path / "o"), "--song-model", str(tiny_ace_step_dir)])


def test_the_cpu_fast_path_stays_close_to_stock(tiny_ace_step_dir, monkeypatch):
    """Unforced, a CPU runs the DiT's linear layers in int8 (and the rest in bfloat16 where the CPU has it): the
    same code path as a CPU Space, on the tiny pipeline; its song stays close to stock float32's (the full-size
    figure is in docs/performance-history.md)."""
    from models.song.model import SongModel

    monkeypatch.delenv("SONG_DTYPE", raising=False)
    fast = SongModel(str(tiny_ace_step_dir), "cpu")
    fast.load()
    assert fast.dtype_note.startswith("DiT int8") and fast.dtype_name().startswith("int8+")
    result = fast.make(song.SongRequest("upbeat pop", "[verse]\nhello", seconds=10, seed=6))
    fast.unload()
    stock = stock_audio(tiny_ace_step_dir, "upbeat pop", "[verse]\nhello", 10, 6, "en")
    snr = 10 * np.log10(np.sum(stock**2) / np.sum((result.audio - stock) ** 2))
    assert snr > 10, snr
