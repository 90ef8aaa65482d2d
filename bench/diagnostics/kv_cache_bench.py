"""Diagnostic (an internal path, not the app as a user runs it: that is ``bench/app_bench.py``).

The KV cache's dtype in the fast MusicGen loop: speed, and what the approximation changes, in one process.

"exact" keeps the self-attention cache in the weights' dtype (float32 on CPU: the same tokens as stock
``generate``); "bf16" stores it in bfloat16, halving the bytes attention reads each step. Both run the app's int8
decoder on full-size random weights (``bench/full_size.py``).

- speed: sampled runs (top-k 250, guidance 3, seed 0), the two modes alternating, ``--rounds`` times;
- approximation, greedy: (a) teacher-forced on the exact run's tokens, the processed scores of every step are
  compared (top-1 agreement, max and mean absolute difference); (b) free-running, the share of tokens equal to
  the exact run's, and the first step where they differ.
Random weights give flat, near-tied logits, so the token figures are a pessimistic check, not a quality figure.

    python -m bench.diagnostics.kv_cache_bench --model musicgen-small --seconds 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from bench.common import RESULTS, machine
from bench.musicgen_bench import PROMPT_IDS

MODES = {"exact": None, "bf16": torch.bfloat16}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="musicgen-small", choices=["musicgen-small", "musicgen-melody"])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from bench.full_size import build_musicgen
    from models.musicgen.fast_loop import FastMusicgen
    from models.musicgen.layers import quantize_decoder_int8

    model = quantize_decoder_int8(build_musicgen(args.model))
    steps = int(round(args.seconds * model.config.audio_encoder.frame_rate)) + model.config.decoder.num_codebooks - 1
    ids = torch.tensor(PROMPT_IDS)
    mask = torch.ones_like(ids)
    extra = {}
    if args.model == "musicgen-melody":
        notes = torch.randint(0, 12, (1, model.config.chroma_length), generator=torch.Generator().manual_seed(0))
        extra["input_features"] = torch.nn.functional.one_hot(notes, 12).float()
    loops = {mode: FastMusicgen(model, kv_dtype=dtype) for mode, dtype in MODES.items()}

    def run(mode: str, **kwargs) -> tuple[torch.Tensor, float]:
        stamps: list[float] = []
        torch.manual_seed(0)
        with torch.inference_mode():
            codes = loops[mode].generate_codes(ids, mask, steps, guidance_scale=3.0, top_k=250,
                                               on_step=lambda _: stamps.append(time.perf_counter()), **extra,
                                               **kwargs)
        return codes, 1000 * (stamps[-1] - stamps[0]) / (len(stamps) - 1)

    for mode in MODES:  # warm-up
        with torch.inference_mode():
            loops[mode].generate_codes(ids, mask, 8, **extra)
    speed: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        for mode in MODES:
            _, ms = run(mode, do_sample=True)
            speed[mode].append(round(ms, 2))
            print(f"round {round_ + 1}: {mode:5s} {ms:7.2f} ms/step", flush=True)

    quality = {}
    if not args.skip_quality:
        reference: list[torch.Tensor] = []
        picked: list[torch.Tensor] = []

        def record(step: int, scores: torch.Tensor) -> None:
            reference.append(scores.clone())
            picked.append(scores.argmax(-1))

        exact_codes, _ = run("exact", do_sample=False, on_scores=record)
        agree, max_diff, mean_diff = [], 0.0, []

        def compare(step: int, scores: torch.Tensor) -> torch.Tensor:
            nonlocal max_diff
            ref = reference[step - 1]
            agree.append((scores.argmax(-1) == ref.argmax(-1)).float().mean().item())
            diff = (scores - ref).abs()
            max_diff = max(max_diff, diff.max().item())
            mean_diff.append(diff.mean().item())
            return picked[step - 1]  # teacher forcing: the exact run's token

        run("bf16", do_sample=False, on_scores=compare)
        free_codes, _ = run("bf16", do_sample=False)
        same = exact_codes == free_codes  # [1, K, frames]
        differs = (~same).any(dim=1)[0].nonzero()
        quality = {
            "teacher_forced_top1_agreement": round(sum(agree) / len(agree), 5),
            "teacher_forced_max_abs_diff": round(max_diff, 5),
            "teacher_forced_mean_abs_diff": round(sum(mean_diff) / len(mean_diff), 6),
            "reference_score_std": round(torch.stack(reference).std().item(), 5),
            "free_running_token_match": round(same.float().mean().item(), 5),
            "free_running_first_difference_frame": None if differs.numel() == 0 else int(differs[0, 0]),
            "frames": int(exact_codes.shape[-1]),
        }
        print(json.dumps(quality, indent=2))

    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.diagnostics.kv_cache_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "model": args.model,
        "seconds": args.seconds,
        "steps": steps,
        "ms_per_step": speed,
        "quality": quality,
    }
    out = args.out or RESULTS / f"kv-cache-{args.model}-{int(args.seconds)}s.json"
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
