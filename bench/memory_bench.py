"""Diagnostic (an internal path, not the app as a user runs it: that is ``bench/app_bench.py``).

Memory of the loaded models, as the app loads them (``models.*`` wrappers, CPU, int8 decoders), full-size
random weights saved to folders first.

For each model alone (its own process): RSS before, peak while loading, and after (steady). Then all three in
one process, the order the app preloads them. The melody checkpoint is saved with the text checkpoint's T5 and
EnCodec tensors (the published ones are frozen copies of T5-base and the 32 kHz EnCodec), so the run shows the
share-when-equal check at work; ``--distinct`` saves it with its own random ones instead.

    python -m bench.memory_bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import RESULTS, ROOT, machine


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory in MB; ``RssAnon`` counts only anonymous memory (not the mapped checkpoint
    file's pages, which the kernel can drop under pressure and read again)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakWatch:
    """Samples this process's RSS every 20 ms in a thread (ru_maxrss cannot be reset between models)."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self.peak_anon = rss_mb("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            self.peak_anon = max(self.peak_anon, rss_mb("RssAnon"))
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, rss_mb())


def save_all(folder: Path, distinct: bool) -> dict[str, Path]:
    from bench.full_size import save_musicgen_pair
    from bench.full_size import save_full_size_pop2piano

    paths = {"small": folder / "musicgen-small", "melody": folder / "musicgen-melody", "piano": folder / "pop2piano"}
    save_musicgen_pair(paths["small"], paths["melody"], distinct)
    paths["piano"].mkdir()
    save_full_size_pop2piano(paths["piano"])
    return paths


def load(kind: str, path: Path):
    from models.loading import load_model

    model = load_model(kind, str(path), "cpu")
    model.load()
    return model


def worker(kinds: list[str], paths: dict[str, Path]) -> list[dict]:
    import torch  # noqa: F401 - counted in the baseline

    import models.musicgen  # noqa: F401
    import models.pop2piano  # noqa: F401

    rows, keep = [], []
    for kind in kinds:
        before, before_anon = rss_mb(), rss_mb("RssAnon")
        watch = PeakWatch()
        keep.append(load(kind, paths[kind]))
        peak = watch.stop()
        time.sleep(0.5)
        after, after_anon = rss_mb(), rss_mb("RssAnon")
        shared = getattr(keep[-1], "shared", [])
        rows.append({"model": kind, "before_mb": round(before), "peak_mb": round(peak), "after_mb": round(after),
                     "added_mb": round(after - before), "load_peak_over_added": round((peak - before) / max(1, after - before), 2),
                     "shared": shared, "anon_before_mb": round(before_anon), "anon_peak_mb": round(watch.peak_anon),
                     "anon_after_mb": round(after_anon),
                     "anon_peak_over_added": round((watch.peak_anon - before_anon) / max(1, after_anon - before_anon), 2)})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distinct", action="store_true", help="give the melody model its own T5 and EnCodec")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        paths = {k: args.folder / v for k, v in
                 {"small": "musicgen-small", "melody": "musicgen-melody", "piano": "pop2piano"}.items()}
        print(json.dumps(worker(args.worker, paths)))
        return
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        save_all(Path(tmp), args.distinct)
        for name, kinds in [("small alone", ["small"]), ("melody alone", ["melody"]), ("piano alone", ["piano"]),
                            ("all three", ["piano", "small", "melody"])]:
            done = subprocess.run([sys.executable, "-m", "bench.memory_bench", "--folder", tmp, "--worker", *kinds],
                                  cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
            print(name, json.dumps(runs[name]), flush=True)
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.memory_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "runs": runs,
    }
    out = RESULTS / f"memory{'-distinct' if args.distinct else ''}.json"
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
