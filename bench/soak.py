"""Soak test: many sequential requests per job against a running app; does its memory stay flat?

Starts ``app.py`` as its own process (as ``tests/live_app.py`` does), sends ``--requests`` requests to each of
the three jobs one after another through ``gradio_client`` (piano cover, text to music, melody to music, in
turn), and reads the server's resident memory (RSS, process and children) every ``--every`` requests of a job.
Growth is measured from the end of warm-up (the first reading, after the models are loaded and every code path
ran once) to the end.

By default the models are the tests' tiny random ones: the soak is about the app's own bookkeeping (files,
sessions, caches, queues) over hours of use, which model size does not change; pass folders with
``--piano-model/--musicgen-model/--melody-model`` to soak real checkpoints.

    python -m bench.soak --requests 100 --every 10
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
GOAL_MB = 50.0


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, in MB."""
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100, help="requests per job")
    parser.add_argument("--every", type=int, default=10, help="read RSS after every N requests of each job")
    parser.add_argument("--warmup", type=int, default=20,
                        help="requests per job counted as warm-up (caches, allocator pools and lazy imports fill)")
    parser.add_argument("--piano-model", help="folder; default: a tiny random Pop2Piano")
    parser.add_argument("--musicgen-model", help="folder; default: a tiny random MusicGen")
    parser.add_argument("--melody-model", help="folder; default: a tiny random MusicGen-Melody")
    parser.add_argument("--jobs", nargs="+", default=["piano", "text", "melody"], choices=["piano", "text", "melody"],
                        help="which jobs to send (each request of a round goes to each of them)")
    parser.add_argument("--out", type=Path, default=RESULTS / "soak-cpu.json")
    args = parser.parse_args()

    import soundfile as sf
    from gradio_client import Client, handle_file

    from tests.live_app import start_app
    from tests.music_fixtures import click_track
    from tests.tiny_models import build_tiny_musicgen, build_tiny_pop2piano

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    piano = Path(args.piano_model) if args.piano_model else build_tiny_pop2piano(work / "pop2piano")
    text = Path(args.musicgen_model) if args.musicgen_model else build_tiny_musicgen(work / "musicgen")
    melody = Path(args.melody_model) if args.melody_model else build_tiny_musicgen(work / "melody", melody=True)
    song = work / "song.wav"
    sf.write(str(song), click_track(8.0, 44100), 44100)
    hum = work / "hum.wav"
    sf.write(str(hum), click_track(4.0, 32000), 32000)

    app = start_app(piano, text, melody, log_name="app-server-soak.log",
                    extra_args=["--output-dir", str(work / "outputs")])
    readings: list[dict] = []
    started = time.perf_counter()
    try:
        client = Client(app.url, verbose=False, download_files=False)
        for i in range(1, args.requests + 1):
            if "piano" in args.jobs:
                client.predict(handle_file(str(song)), f"composer{i % 21 + 1}", 0.5, api_name="/piano_cover")
            if "text" in args.jobs:
                client.predict(f"soak request {i}", "", 1.0, 250, 0.0, 1.0, 3.0, str(i), 1,
                               api_name="/text_to_music")
            if "melody" in args.jobs:
                client.predict(handle_file(str(hum)), 0, 0, f"soak {i}", "", 1.0, 250, 0.0, 1.0, 3.0, str(i), 1,
                               api_name="/melody_to_music")
            if i % args.every == 0 or i == 1:
                readings.append({"requests_per_job": i, "rss_mb": round(rss_mb(app.process.pid), 1),
                                 "elapsed_s": round(time.perf_counter() - started, 1)})
                print(readings[-1], flush=True)
    finally:
        app.stop()

    warm = next(r for r in readings if r["requests_per_job"] >= args.warmup)
    growth = readings[-1]["rss_mb"] - warm["rss_mb"]
    early = next(r for r in readings if r["requests_per_job"] >= args.every)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
        "command": "python -m bench.soak " + " ".join(sys.argv[1:]),
        "malloc_arena_max": __import__("os").environ.get("MALLOC_ARENA_MAX", "glibc default (8 x cores)"),
        "models": "tiny random" if not (args.piano_model or args.musicgen_model or args.melody_model) else "given",
        "requests_per_job": args.requests,
        "jobs": args.jobs,
        "readings": readings,
        "warmup_requests_per_job": args.warmup,
        "growth_after_warmup_mb": round(growth, 1),
        f"growth_from_request_{args.every}_mb": round(readings[-1]["rss_mb"] - early["rss_mb"], 1),
        "goal_mb": GOAL_MB,
        "met": growth <= GOAL_MB,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "readings"}, indent=2))


if __name__ == "__main__":
    main()
