"""Diagnostic: where the server's memory is after each request, and whether it creeps (issue 35).

The app runs as a user starts it (``app.py`` on full-size random-weight folders, driven with ``gradio_client``), with
one addition: a probe thread in the server's own process. After each stage (a request, or four users at once) and
a few idle seconds, the probe records the resident size (anonymous and file-backed), glibc's ``mallinfo2`` (bytes
in use and free in malloc's arenas, and in mmapped chunks), the bytes of the torch storages that Python objects
reach (weights, caches; the int8 decoders' packed weights are not among them), then the same resident size after
``gc.collect()`` and ``malloc_trim(0)``. The server's peak RSS over each stage is sampled every 0.5 s from outside.

    python -m bench.memory_trace --out bench/results/memory-trace-cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import app_bench

STAGES = ("text_2s", "melody_2s", "cover_20s", "text_10s", "users_4x10s", "text_10s", "melody_10s", "cover_210s",
          "translated_10s", "text_30s", "text_10s")

# Runs in the server: a thread that answers each request file with one line of figures, then app.py as usual.
PROBE = '''
import ctypes, gc, json, os, runpy, sys, threading, time
FOLDER = {folder!r}

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

def status():  # GB
    return {{line.split(":")[0]: int(line.split()[1]) / 2**20 for line in open("/proc/self/status")
            if line.startswith(("VmRSS", "RssAnon", "RssFile"))}}

def figures():
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    found = {{"rss_gb": status()}}
    found["malloc_gb"] = {{"in_use": info.uordblks / 2**30, "free_in_arenas": info.fordblks / 2**30,
                          "mmapped": info.hblkhd / 2**30}}
    torch = sys.modules.get("torch")
    if torch is not None:
        storages = {{}}
        for o in gc.get_objects():
            try:  # weak proxies to dead objects raise on isinstance
                if isinstance(o, torch.Tensor):
                    storage = o.untyped_storage()
                    storages[storage.data_ptr()] = storage.nbytes()
            except Exception:
                pass
        found["torch_storages_gb"] = sum(storages.values()) / 2**30
    gc.collect()
    libc.malloc_trim(0)
    found["rss_gb_after_trim"] = status()
    return found

def serve():
    while True:  # a failed reading is answered with its error, so the benchmark never waits on a dead thread
        time.sleep(0.2)
        for request in sorted(os.listdir(FOLDER)):
            if request.endswith(".ask"):
                path = os.path.join(FOLDER, request)
                try:
                    answer = json.dumps(figures())
                except Exception as e:
                    answer = json.dumps({{"error": repr(e)}})
                with open(path[:-4] + ".tmp", "w") as out:
                    out.write(answer)
                os.replace(path[:-4] + ".tmp", path[:-4] + ".json")
                os.remove(path)

threading.Thread(target=serve, daemon=True, name="memory-probe").start()
sys.argv[0] = "app.py"
runpy.run_path("app.py", run_name="__main__")
'''


def ask(folder: Path, name: str) -> dict:
    """The probe's figures, in GB (read once it has answered)."""
    (folder / f"{name}.ask").write_text("")
    answer = folder / f"{name}.json"
    while not answer.exists():
        time.sleep(0.2)
    found = json.loads(answer.read_text())
    if "error" in found:
        raise RuntimeError(f"the probe failed: {found['error']}")
    return {k: ({kk: round(vv, 2) for kk, vv in v.items()} if isinstance(v, dict) else round(v, 2))
            for k, v in found.items()}


def main(argv: list[str] | None = None) -> None:
    from gradio_client import Client, handle_file

    from bench.full_size import save_full_size_folders
    from tests.live_app import start_app

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=app_bench.DEFAULT_MODELS)
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=sorted(set(STAGES)))
    parser.add_argument("--idle", type=float, default=3.0, help="seconds without work before the probe reads")
    parser.add_argument("--out", type=Path, default=app_bench.RESULTS / "memory-trace-cpu.json")
    args = parser.parse_args(argv)

    folders = save_full_size_folders(args.models)
    work = args.models / "bench-run"
    work.mkdir(exist_ok=True)
    song, melody_song, short_song = app_bench.make_songs(work)
    probe_folder = Path(tempfile.mkdtemp(prefix="memory-probe-"))
    extra = ["--separator-model", str(folders["htdemucs"]), "--translation-model", str(folders["marian"]),
             "--watermark-model", str(folders["audioseal"])]
    app = start_app(folders["pop2piano"], folders["musicgen-small"], folders["musicgen-melody"],
                    log_name="memory-trace.log", extra_args=extra, env={"MUSIC_DEMO_PROGRESS_LINE": "0"},
                    entry_code=PROBE.format(folder=str(probe_folder)))
    results = {"benchmark": "memory_trace", "command": "python -m bench.memory_trace " + " ".join(argv or sys.argv[1:]),
               "date": datetime.now(UTC).isoformat(timespec="minutes"), "machine": app_bench.machine(),
               "stages": []}
    peak = app_bench.ServerPeak(app.process.pid)
    try:
        client = Client(app.url, verbose=False, download_files=str(work / "memory-trace-downloads"))
        results["stages"].append({"stage": "started", **ask(probe_folder, "0-started")})
        for i, stage in enumerate(args.stages, 1):
            peak.reset()
            started = time.perf_counter()
            if stage.startswith("text_"):
                app_bench.text(client, int(stage[5:-1]), 1).result()
            elif stage == "translated_10s":
                app_bench.text(client, 10, 1, app_bench.TRANSLATED_PROMPT).result()
            elif stage.startswith("melody_"):
                app_bench.Timed(client, handle_file(str(melody_song)), 0, 0, "a jazz trio", "", int(stage[7:-1]),
                                250, 0.0, 1.0, 3.0, "1", 1, 18, "separated", api_name="/melody_to_music").result()
            elif stage.startswith("cover_"):
                app_bench.Timed(client, handle_file(str(short_song if stage == "cover_20s" else song)), "composer1",
                                api_name="/piano_cover").result()
            elif stage == "users_4x10s":
                users = [Client(app.url, verbose=False, download_files=str(work / f"memory-trace-user{u}"))
                         for u in range(4)]
                jobs = [app_bench.text(user, 10, 10 + u, app_bench.USER_PROMPTS[u]) for u, user in enumerate(users)]
                [job.result() for job in jobs]
            seconds = round(time.perf_counter() - started, 1)
            time.sleep(args.idle)
            row = {"stage": stage, "seconds": seconds, "peak_rss_gb": round(peak.current, 2),
                   **ask(probe_folder, f"{i}-{stage}")}
            results["stages"].append(row)
            print(json.dumps(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        peak.stop()
        app.stop()


if __name__ == "__main__":
    main()
