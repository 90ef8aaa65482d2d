"""Diagnostic (an internal path, not the app as a user runs it: that is ``bench/app_bench.py``).

The publishable cover's products on a 3.5-minute song: MIDI, audio, score and the falling-notes video.

The song is the same 3.5-minute looped chorale with drums as ``bench.pop2piano_bench``; the notes come from the
full-size Pop2Piano with random weights through the app's wrapper (every chunk runs to its token limit, so the
arrangement is denser than a trained model's: an upper bound for drawing and engraving). Each product is made by
the same function the app and the batch command call (``products/piano.py``), and timed on its own.

    python -m bench.cover_products_bench --song-seconds 210
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
VIDEO_GOAL_S = 60.0


def dense_notes(grid, n_beats: int, seed: int = 0):
    """A stand-in arrangement on the same beat grid, as dense as a busy real cover: on every half-beat a
    right-hand chord of three notes, and a left-hand bass note every beat (~7 notes per beat), each held for one
    to four steps. Random weights make far fewer notes than a trained model; this is the upper bound."""
    import numpy as np

    from utils.notes import GridNotes

    rng = np.random.default_rng(seed)
    rows = []
    for step in range(2 * (n_beats - 1)):
        top = int(rng.integers(67, 84))
        for pitch in (top, top - 4, top - 7):
            rows.append([step, step + int(rng.integers(1, 3)), pitch, 80])
        if step % 2 == 0:
            rows.append([step, step + int(rng.integers(2, 5)), int(rng.integers(36, 50)), 70])
    return GridNotes.from_steps(np.array(rows), grid.step_times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--song-seconds", type=float, default=210.0)
    parser.add_argument("--dense", action="store_true",
                        help="replace the random model's sparse notes by a dense stand-in on the same beat grid")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from bench.common import machine
    from bench.full_size import save_full_size_pop2piano
    from bench.pop2piano_bench import make_song
    from models.pop2piano import PianoCoverModel
    from products import piano as products
    from utils.audio import write_wav
    from utils.video import X264_PRESET

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        song_path = make_song(tmp_path / "song.wav", args.song_seconds)
        model = PianoCoverModel(str(save_full_size_pop2piano(tmp_path / "pop2piano")), "cpu")
        model.load()
        t = time.perf_counter()
        cover, song, sr = model.cover_file(str(song_path), "composer1")
        timings["cover (model, for reference)"] = time.perf_counter() - t
        out = tmp_path / "out"
        out.mkdir()
        grid = cover.grid if not args.dense else dense_notes(cover.grid, cover.beats.times.size)
        job = products.CoverJob(grid, cover.beats.bpm, "Arranger 1", "pop2piano (random, full size)", "song",
                                out, write_wav(out / "song_original.wav", song, sr), song.shape[0] / sr)
        steps = {
            "midi (tempo map + constant)": lambda: products.write_midis(job),
            "audio (render + mix)": lambda: products.write_audio(job, "Acoustic grand piano", 0.7),
            "audio, another instrument": lambda: products.write_audio(job, "Strings", 0.7),
            "score (MusicXML + PDF + pages)": lambda: products.write_score(job),
            "score, easier": lambda: products.write_score(job, easier=True),
            "video landscape 1280x720": lambda: products.write_video(job, "Acoustic grand piano", 0.7, "landscape"),
            "video vertical 720x1280": lambda: products.write_video(job, "Acoustic grand piano", 0.7, "vertical"),
        }
        sizes = {}
        for name, step in steps.items():
            t = time.perf_counter()
            made = step()
            timings[name] = time.perf_counter() - t
            if name.startswith("video"):
                sizes[name] = round(Path(made).stat().st_size / 2**20, 1)
            print(f"{name:34s} {timings[name]:6.1f} s", flush=True)
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "threads": os.cpu_count(),
        "command": "python -m bench.cover_products_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "song_seconds": args.song_seconds,
        "notes": len(job.grid),
        "notes_from": "dense stand-in on the song's beat grid (--dense)" if args.dense else "random-weight model",
        "x264_preset": X264_PRESET,
        "times_s": {k: round(v, 2) for k, v in timings.items()},
        "video_mb": sizes,
        "video_goal_s": VIDEO_GOAL_S,
        "video_goal_met": all(v <= VIDEO_GOAL_S for k, v in timings.items() if k.startswith("video")),
    }
    out = args.out or RESULTS / f"cover-products-cpu{'-dense' if args.dense else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
