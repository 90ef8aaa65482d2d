"""utils.files: one folder per request; the output root bounded by age and by size. And what a result's files are named."""

from __future__ import annotations

import os
import time

import pytest

from utils.files import MIN_KEEP_S, new_run_dir, sweep


def make_run(root, name: str, n_bytes: int, age_s: float):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "out.wav").write_bytes(b"\0" * n_bytes)
    stamp = time.time() - age_s
    os.utime(folder, (stamp, stamp))
    return folder


def test_old_folders_go(tmp_path):
    old = make_run(tmp_path, "old", 10, age_s=3 * 3600)
    fresh = make_run(tmp_path, "fresh", 10, age_s=10)
    assert sweep(tmp_path, max_age_s=2 * 3600) == [old]
    assert not old.exists() and fresh.exists()


def test_the_oldest_go_until_the_root_fits_under_its_cap(tmp_path):
    runs = [make_run(tmp_path, f"run{i}", 1000, age_s=MIN_KEEP_S + 1000 - i * 100) for i in range(5)]
    removed = sweep(tmp_path, max_age_s=3600 * 24, max_bytes=2500)
    assert removed == runs[:3]
    assert [r.exists() for r in runs] == [False, False, False, True, True]


def test_a_folder_still_being_answered_is_kept_even_over_the_cap(tmp_path):
    busy = make_run(tmp_path, "busy", 5000, age_s=1)
    assert sweep(tmp_path, max_bytes=100) == [] and busy.exists()


def test_new_run_dir_sweeps_then_makes_a_fresh_folder(tmp_path):
    old = make_run(tmp_path, "old", 10, age_s=10_000)
    first = new_run_dir("text", tmp_path, max_age_s=3600)
    second = new_run_dir("text", tmp_path, max_age_s=3600)
    assert first != second and first.is_dir() and second.is_dir() and not old.exists()
    assert first.name.startswith("text-") and first.parent == tmp_path


@pytest.mark.parametrize("prompt, stem", [
    ("upbeat jazz piano trio with brushed drums", "upbeat_jazz_piano_trio_with_brushed_drums"),  # every word fits
    ("lo-fi hip hop with warm piano and vinyl crackle, 80 bpm", "lo-fi_hip_hop_with_warm_piano_and_vinyl_crackle"),
    ("An 80s driving pop song with heavy drums and synth pads in the background",
     "an_80s_driving_pop_song_with_heavy_drums_and"),  # whole words up to the length, none cut in two
    ("", "music"),
])
def test_file_names_keep_the_prompts_words_up_to_a_length(prompt, stem):
    from products.music import STEM_CHARS, prompt_stem

    assert prompt_stem(prompt) == stem and len(stem) <= STEM_CHARS
    assert prompt_stem("x" * 70) == "x" * STEM_CHARS  # one word longer than the length is cut
