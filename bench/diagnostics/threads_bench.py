"""Diagnostic: does a decode stay as fast after other threads computed? (the "one OpenMP team" section)

Full-size musicgen-small, int8, the fast loop on the model thread: 150 steps, then the same on the main thread,
then a native OpenMP user in a thread that stays (as FluidSynth renders a cover in a gradio worker), then 150 steps
on the model thread again. Each setting runs in a fresh interpreter:
- ``before``: torch loaded first, as before the runtime set one OpenMP thread as every thread's default;
- ``runtime``: ``models`` imported first, as app.py and cli.py do now.

    python -m bench.diagnostics.threads_bench
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"

PROBE = r"""
import ctypes, json, os, sys, threading, time
if sys.argv[1] == "before":
    import torch
import models  # noqa: F401
import torch
from bench.full_size import build_musicgen
from models.musicgen.fast_loop import FastMusicgen
from models.musicgen.layers import quantize_decoder_int8
from models.runtime import model_thread

runtime = model_thread()
model = runtime.call(lambda: quantize_decoder_int8(build_musicgen("musicgen-small")))
loop = FastMusicgen(model)
ids = torch.randint(0, 32000, (1, 12)); mask = torch.ones_like(ids)

def ms_per_step(joint, steps=150):
    start = time.perf_counter()
    loop.generate_codes(ids, mask, steps, generator=torch.Generator().manual_seed(0), joint=joint)
    return round(1000 * (time.perf_counter() - start) / steps, 1)

out = {"model_thread": ms_per_step(runtime)}
with torch.inference_mode():
    out["main_thread"] = ms_per_step(None)
gomp = ctypes.CDLL("libgomp.so.1")
region = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: None)
stay = threading.Event()
def native_user():
    gomp.GOMP_parallel(region, None, 0, 0)
    stay.wait()
worker = threading.Thread(target=native_user, daemon=True); worker.start()
out["model_thread_again"] = ms_per_step(runtime)
out["threads"] = len(os.listdir("/proc/self/task"))
print(json.dumps(out))
"""


def main() -> None:
    results = {}
    for setting in ("before", "runtime"):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MODEL_KERNEL_THREADS")}
        run = subprocess.run([sys.executable, "-c", PROBE, setting], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True)
        results[setting] = json.loads(run.stdout.strip().splitlines()[-1])
        print(setting, results[setting], flush=True)
    record = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "command": "python -m bench.diagnostics.threads_bench", "unit": "ms per decode step", "results": results}
    (RESULTS / "threads-cpu.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
