"""Diagnostic (an internal path, not the app as a user runs it: that is ``bench/app_bench.py``).

MusicGen speed: stock transformers ``generate`` against the app's fast path, in the same run.

Each (path, duration) runs in its own process so peak memory is its own. Models are full-size with random
weights (speed does not depend on weight values). Text prompt, classifier-free guidance 3, top-k 250; the melody
model also gets a 30 s melody's chroma.

    python -m bench.musicgen_bench --model musicgen-small --seconds 10 30 --paths stock-fp32 fast-int8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from bench.common import RESULTS, ROOT, machine  # noqa: F401 - RESULTS, machine: this bench's results
PATHS = {
    # name: (loop, weights) - "stock" is MusicgenForConditionalGeneration.generate, "fast" our decode loop
    "stock-fp32": ("stock", "fp32"),
    "stock-bf16": ("stock", "bf16"),
    "stock-int8": ("stock", "int8"),
    "fast-fp32": ("fast", "fp32"),
    "fast-bf16": ("fast", "bf16"),
    "fast-int8": ("fast", "int8"),
    "stock-half": ("stock", "half"),  # GPU: bfloat16 weights
    "fast-half": ("fast", "half"),
}
PROMPT_IDS = [[71, 1712, 3, 9, 2213, 28, 2414, 8024, 6, 2775, 3, 115, 102, 51, 1]]  # a 15-token T5 prompt


def worker(path: str, model_name: str, seconds: float, device: str, threads: int) -> dict:
    """Build the model, generate ``seconds`` of audio once (after a short warm-up), return the measurements."""
    import torch
    from transformers.generation.stopping_criteria import StoppingCriteria, StoppingCriteriaList

    from bench.full_size import build_musicgen
    from models.musicgen.codec import decode_codes
    from models.musicgen.fast_loop import FastMusicgen
    from models.musicgen.layers import quantize_decoder_int8

    torch.set_num_threads(threads)
    loop, weights = PATHS[path]
    model = build_musicgen(model_name)
    if weights == "bf16" or weights == "half":
        model = model.to(torch.bfloat16)
    elif weights == "int8":
        model = quantize_decoder_int8(model)
    model = model.to(device)
    frame_rate = model.config.audio_encoder.frame_rate
    steps = int(round(seconds * frame_rate)) + model.config.decoder.num_codebooks - 1
    ids = torch.tensor(PROMPT_IDS, device=device)
    mask = torch.ones_like(ids)
    melody: dict[str, torch.Tensor] = {}
    if model_name == "musicgen-melody":  # a 30 s melody's one-hot chroma (235 frames), as the app passes it
        notes = torch.randint(0, 12, (1, model.config.chroma_length), generator=torch.Generator().manual_seed(0))
        melody["input_features"] = torch.nn.functional.one_hot(notes, 12).to(device, model.dtype)
    stamps: list[float] = []

    class Stamp(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stamps.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def run(n_steps: int) -> torch.Tensor:
        stamps.clear()
        torch.manual_seed(0)
        if loop == "stock":
            return model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=n_steps, do_sample=True, top_k=250,
                guidance_scale=3.0, stopping_criteria=StoppingCriteriaList([Stamp()]), **melody,
            )

        def on_step(_: int) -> None:
            stamps.append(time.perf_counter())

        codes = FastMusicgen(model).generate_codes(
            ids, mask, n_steps, do_sample=True, top_k=250, guidance_scale=3.0, on_step=on_step, **melody
        )
        return decode_codes(model, codes)

    with torch.inference_mode():
        run(8)  # warm-up: allocator, kernels, one-time packing
        sync()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        audio = run(steps)
        sync()
        total = time.perf_counter() - start
    step_times = [b - a for a, b in pairwise(stamps)]
    result = {
        "path": path,
        "model": model_name,
        "seconds": seconds,
        "steps": steps,
        "audio_seconds": round(audio.shape[-1] / model.config.audio_encoder.sampling_rate, 3),
        "total_s": round(total, 3),
        "ms_per_step": round(1000 * sum(step_times) / len(step_times), 2),
        "ms_per_step_last_100": round(1000 * sum(step_times[-100:]) / len(step_times[-100:]), 2),
        "real_time_factor": round(total / seconds, 3),
        "time_to_first_audio_s": round(total, 3),  # neither path streams: the first audio is the whole piece
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "device": device,
        "machine": machine(),
    }
    if device.startswith("cuda"):
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="musicgen-small", choices=["musicgen-small", "musicgen-melody"])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0])
    parser.add_argument("--paths", nargs="+", default=["stock-fp32", "fast-int8"], choices=sorted(PATHS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument("--worker", nargs=2, metavar=("PATH", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker[0], args.model, float(args.worker[1]), args.device, args.threads)))
        return

    results = []
    for seconds in args.seconds:
        for path in args.paths:
            command = [sys.executable, "-m", "bench.musicgen_bench", "--model", args.model, "--device", args.device,
                       "--threads", str(args.threads), "--worker", path, str(seconds)]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{path} at {seconds} s failed")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(result)
            print(
                f"{args.model:16s} {path:11s} {seconds:5.0f} s  {result['ms_per_step']:8.1f} ms/step  "
                f"total {result['total_s']:7.1f} s  RTF {result['real_time_factor']:6.2f}  "
                f"peak RSS {result['peak_rss_mb']:7.0f} MB", flush=True,
            )
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.musicgen_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": results,
    }
    out = args.out or RESULTS / f"musicgen-{args.model}-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
