"""Diagnostic (an internal path, not the app as a user runs it: that is ``bench/app_bench.py``).

Melody separation cost: a full-size HTDemucs (htdemucs' published configuration, random weights) on a melody
of ``--seconds``, through the app's wrapper (``models.separator``), loaded from a folder in the hub's format.

    python -m bench.separator_bench --seconds 30
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from bench.common import RESULTS, machine
from bench.full_size import save_full_size_htdemucs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    from models.separator import StemSeparator

    with tempfile.TemporaryDirectory() as tmp:
        folder = save_full_size_htdemucs(Path(tmp))
        separator = StemSeparator(str(folder), "cpu")
        t = time.perf_counter()
        separator.load()
        load_s = time.perf_counter() - t
        rate = 32000
        audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(args.seconds * rate)) / rate)).astype(np.float32)
        t = time.perf_counter()
        separator.melody_stems(audio, rate)
        separate_s = time.perf_counter() - t
        t = time.perf_counter()
        separator.melody_stems(audio, rate)
        cached_s = time.perf_counter() - t
    params = sum(p.numel() for p in separator.model.parameters())
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.separator_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "parameters": params,
        "melody_seconds": args.seconds,
        "load_s": round(load_s, 2),
        "separate_s": round(separate_s, 2),
        "same_melody_again_s": round(cached_s, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(record, indent=2))
    (RESULTS / f"separator-{int(args.seconds)}s.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
