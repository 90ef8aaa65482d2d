"""utils.files: one folder per request; the output root bounded by age and by size."""

from __future__ import annotations

import os
import time

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
