"""Serving past one process, as users see it: the app started as a user starts it and driven over its API by 1, 2
and 4 clients at once (each its own gradio_client session asking for SECONDS of text to music), against three
backends in one run, one app after the other:
- ``in-process``: ``app.py`` (the default);
- ``serve-1x2``: ``app.py --replicas 1 --replica-threads 2`` (the text role on one Ray Serve replica with both cores);
- ``serve-2x1``: ``app.py --replicas 2 --replica-threads 1`` (two replicas of one thread each).
Each app serves the text role from the full-size random MusicGen-small folder (``bench/full_size.py``); the other
roles stay in the front end (``--serve-roles text``). A warm-up piece loads the model first (on both replicas).

    python -m bench.serve_bench --seconds 5 --out bench/results/serve.json
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.app_bench import DEFAULT_MODELS, USER_PROMPTS, machine  # noqa: E402

BACKENDS = {
    "in-process": [],
    "serve-1x2": ["--replicas", "1", "--replica-threads", "2", "--serve-roles", "text"],
    "serve-2x1": ["--replicas", "2", "--replica-threads", "1", "--serve-roles", "text"],
}
CLIENTS = (1, 2, 4)


def piece(url: str, seconds: float, seed: int, prompt: str) -> dict:
    """One client's request, timed from submit to result."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    started = time.perf_counter()
    outputs = client.predict(prompt, "", seconds, 250, 0.0, 1.0, 3.0, str(seed), 1, api_name="/text_to_music")
    served = "Ray Serve replica" in outputs[6]
    return {"total_s": round(time.perf_counter() - started, 2), "served": served}


def at_once(url: str, n: int, seconds: float) -> dict:
    """``n`` clients ask at the same moment: each one's wait, and the time until the last is done."""
    results: list[dict | None] = [None] * n
    started = time.perf_counter()

    def run(i: int) -> None:
        results[i] = piece(url, seconds, 100 + i, USER_PROMPTS[i % len(USER_PROMPTS)])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"clients": n, "all_done_s": round(time.perf_counter() - started, 2), "each": results}


def run_backend(name: str, args: list[str], folders: Path, seconds: float) -> dict:
    from tests.live_app import start_app

    app = start_app(folders / "pop2piano", folders / "musicgen-small", folders / "musicgen-melody",
                    log_name=f"serve-bench-{name}.log",
                    extra_args=[*args, "--separator-model", "off", "--translation-model", "off",
                                "--watermark-model", "off", "--concurrency", "4", "--runs-per-address", "8"],
                    env={"RAY_USAGE_STATS_ENABLED": "0"})
    try:
        at_once(app.url, 2, 2)  # warm-up: the model loaded (on both replicas where there are two)
        return {"args": args, "runs": [at_once(app.url, n, seconds) for n in CLIENTS]}
    finally:
        app.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
              "seconds": args.seconds, "backends": {}}
    for name in args.backends:
        report["backends"][name] = run_backend(name, BACKENDS[name], args.models, args.seconds)
        print(name, [(r["clients"], r["all_done_s"]) for r in report["backends"][name]["runs"]], flush=True)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
