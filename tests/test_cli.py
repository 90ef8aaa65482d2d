"""The batch command line (cli.py) on tiny models: resumable, one bad input never stops it, same MIDI anywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import mido
import pytest
import soundfile as sf

import cli
from tests.live_app import ROOT
from tests.music_fixtures import click_track
from batch.runner import ITEM_RECORD, read_manifest

SR = 44100


@pytest.fixture(scope="module")
def songs(tmp_path_factory, chorale):
    """A folder of 4 inputs, one in a subfolder, one not audio at all."""
    folder = tmp_path_factory.mktemp("catalogue")
    (folder / "album").mkdir()
    sf.write(str(folder / "clicks_a.wav"), click_track(6.0, SR), SR)
    sf.write(str(folder / "album" / "clicks_b.wav"), click_track(7.0, SR, bpm=100.0), SR)
    (folder / "chorale.wav").write_bytes(chorale[0].read_bytes())
    (folder / "notes.txt").write_text("not a song")
    return folder


def midi_events(path) -> list:
    """Every note and tempo event of a MIDI file with its absolute tick (the provenance text aside)."""
    events = []
    for index, track in enumerate(mido.MidiFile(str(path)).tracks):
        now = 0
        for message in track:
            now += message.time
            if message.type in {"note_on", "note_off", "set_tempo", "time_signature", "program_change"}:
                events.append((index, now, str(message.copy(time=0))))
    return sorted(events)


def run_cli(*args: str) -> int:
    return cli.main([*map(str, args), "--device", "cpu"])


def test_catalogue_done_failed_then_skipped(songs, tiny_pop2piano_dir, tmp_path):
    out = tmp_path / "covers"
    code = run_cli("piano-cover", songs, "--out", out, "--piano-model", tiny_pop2piano_dir,
                   "--products", "midi", "audio", "score")
    assert code == 1  # one input failed
    rows = read_manifest(out / "manifest.jsonl")
    done = {k: r for k, r in rows.items() if r["status"] == "done"}
    assert set(done) == {"clicks_a", "album_clicks_b", "chorale"}
    failed = rows["notes"]
    assert failed["status"] == "failed" and "Could not read `notes.txt` as audio" in failed["error"]
    for item_id, row in done.items():
        folder = out / item_id
        assert json.loads((folder / ITEM_RECORD).read_text())["status"] == "done"
        names = set(row["files"])
        assert {n.split("_")[-1] for n in names} >= {"piano.mid", "tempo.mid", "piano.wav", "score.musicxml",
                                                       "score.pdf"}
        assert all((folder / n).is_file() for n in names) and row["timings"]["cover and products"] > 0
        audio = sf.info(str(folder / next(n for n in names if n.endswith("piano.wav"))))
        assert audio.samplerate == 44100
    assert not (out / "notes").exists()

    code = run_cli("piano-cover", songs, "--out", out, "--piano-model", tiny_pop2piano_dir,
                   "--products", "midi", "audio", "score")
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    second = rows[4:]
    assert code == 1 and sorted(r["status"] for r in second) == ["failed", "skipped", "skipped", "skipped"]


def test_killed_mid_item_leaves_nothing_that_looks_finished(songs, tiny_pop2piano_dir, tmp_path):
    out = tmp_path / "covers"
    command = [sys.executable, "cli.py", "piano-cover", str(songs), "--out", str(out), "--piano-model",
               str(tiny_pop2piano_dir), "--products", "midi", "audio", "score", "video", "--device", "cpu"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob(".*.partial-*/*.wav")):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert list(out.glob(".*.partial-*")), "the run was killed while writing an item"
    for folder in out.iterdir():
        if folder.is_dir() and not folder.name.startswith("."):  # anything that looks finished is finished
            row = json.loads((folder / ITEM_RECORD).read_text())
            assert row["status"] == "done" and all((folder / n).is_file() for n in row["files"])
    assert run_cli("piano-cover", songs, "--out", out, "--piano-model", tiny_pop2piano_dir,
                   "--products", "midi", "audio", "score", "video") == 1
    assert not list(out.glob(".*.partial-*"))
    rows = read_manifest(out / "manifest.jsonl")
    assert sorted(r["status"] for r in rows.values()) == ["done", "done", "done", "failed"]


def test_workers_and_ray_give_the_same_midi_as_one_worker(songs, tiny_pop2piano_dir, tmp_path):
    runs = {}
    for name, extra in {"one": [], "workers": ["--workers", "2"], "ray": ["--ray", "--workers", "2"]}.items():
        out = tmp_path / name
        assert run_cli("piano-cover", songs, "--out", out, "--piano-model", tiny_pop2piano_dir, "--products",
                       "midi", *extra) == 1
        runs[name] = {p.parent.name: midi_events(p) for p in out.glob("*/*_acoustic_grand_piano.mid")}
    assert len(runs["one"]) == 3 and runs["workers"] == runs["one"] and runs["ray"] == runs["one"]
    rows = read_manifest(tmp_path / "ray" / "manifest.jsonl")
    assert {r["status"] for r in rows.values()} == {"done", "failed"}


def test_prompt_file_gives_an_audio_per_prompt_and_variant(tiny_musicgen_dir, tiny_melody_dir, hummed_melody,
                                                            tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# styles\nlo fi piano\njazz drums, 90 bpm\n")
    out = tmp_path / "music"
    assert run_cli("text-to-music", prompts, "--out", out, "--musicgen-model", tiny_musicgen_dir,
                   "--duration", 1.5, "--variants", 2, "--seed", 7) == 0
    rows = read_manifest(out / "manifest.jsonl")
    assert len(rows) == 2
    for row in rows.values():
        wavs = [n for n in row["files"] if n.endswith(".wav")]
        assert len(wavs) == 2 and "params.json" in row["files"]
        params = json.loads((out / row["id"] / "params.json").read_text())
        assert params["seed"] == 7 and params["prompt"] == row["input"] and params["variants"] == 2
        for wav in wavs:
            info = sf.info(str(out / row["id"] / wav))
            assert info.samplerate == 32000 and info.duration == pytest.approx(1.5, abs=1e-3)
    melodies = tmp_path / "melodies"
    melodies.mkdir()
    (melodies / "hum.wav").write_bytes(hummed_melody.read_bytes())
    out = tmp_path / "restyled"
    assert run_cli("melody-to-music", melodies, "--prompts", prompts, "--out", out, "--melody-model",
                   tiny_melody_dir, "--duration", 1) == 0
    rows = read_manifest(out / "manifest.jsonl")
    assert sorted(r["settings"]["prompt"] for r in rows.values()) == ["jazz drums, 90 bpm", "lo fi piano"]
    assert all(r["settings"]["melody"].endswith("hum.wav") for r in rows.values())


def test_any_language_marked_audio_and_midi_from_the_command_line(tiny_musicgen_dir, tiny_translator_dir,
                                                                  tiny_watermark_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("欢快的国风摇滚 with guzheng and drums\n", encoding="utf-8")
    out = tmp_path / "music"
    assert run_cli("text-to-music", prompts, "--out", out, "--musicgen-model", tiny_musicgen_dir, "--duration", 2,
                   "--variants", 2, "--seed", 5, "--products", "wav", "midi", "score",
                   "--translation-model", tiny_translator_dir, "--watermark-model", tiny_watermark_dir) == 0
    (row,) = read_manifest(out / "manifest.jsonl").values()
    assert row["status"] == "done", row
    files = row["files"]
    folder = out / row["id"]
    assert sorted(n for n in files if n.endswith("_notes.mid")) == [f"{row['id']}_seed5_v1_notes.mid",
                                                                   f"{row['id']}_seed5_v2_notes.mid"]
    midi = mido.MidiFile(str(folder / f"{row['id']}_seed5_v1_notes.mid"))
    assert any(m.type == "set_tempo" for m in midi.tracks[0])
    params = json.loads((folder / "params.json").read_text(encoding="utf-8"))
    assert params["prompt"] == "欢快的国风摇滚 with guzheng and drums"
    assert params["prompt_english"].endswith(" with guzheng and drums")
    assert params["watermark"] == "AudioSeal, message 0x4d44"
    wavs = [folder / n for n in files if n.endswith(".wav")]
    assert len(wavs) == 2
    capsys.readouterr()
    assert cli.main(["check-watermark", *map(str, wavs), "--watermark-model", str(tiny_watermark_dir)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("Detector score" in line and "message 0x" in line for line in lines)


def test_the_command_line_names_products_as_the_product_layer_does():
    """One home per name: each job's --products choices are the product writer's own names, so a name means the same
    file on the page, over the API and here."""
    import argparse

    import cli
    from products.music import MUSIC_PRODUCTS, PAGE_PRODUCTS
    from products.piano import COVER_PRODUCTS, PAGE_COVER_PRODUCTS
    from products.piano_sheet import PAGE_SHEET_PRODUCTS, SHEET_PRODUCTS
    from products.song import PAGE_SONG_PRODUCTS, SONG_PRODUCTS

    jobs = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    choices = {name: next(a.choices for a in job._actions if a.dest == "products") for name, job in jobs.items()
               if any(a.dest == "products" for a in job._actions)}
    assert choices == {"piano-cover": COVER_PRODUCTS, "piano-sheet-music": SHEET_PRODUCTS,
                       "text-to-music": MUSIC_PRODUCTS, "melody-to-music": MUSIC_PRODUCTS, "song": SONG_PRODUCTS}
    assert set(PAGE_SONG_PRODUCTS) <= set(SONG_PRODUCTS)
    assert set(PAGE_PRODUCTS) <= set(MUSIC_PRODUCTS) and set(PAGE_COVER_PRODUCTS) <= set(COVER_PRODUCTS)
    assert set(PAGE_SHEET_PRODUCTS) <= set(SHEET_PRODUCTS)
