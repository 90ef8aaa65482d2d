"""Four users asking for 10 s of text-to-music at once: served one after another (the app) against one batched
decode pass (what grouping them would give), full-size musicgen-small with the app's int8 decoder, 2 CPU cores.

The batched pass is measured to size the opportunity, not used by the app: fbgemm's dynamic int8 quantises each
layer's activations over the whole batch, so a request's tokens would depend on who shared its pass (see
docs/PERFORMANCE.md). Four different prompts, guidance 3, top-k 250.

    python -m bench.users_bench --seconds 10 --users 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime

import torch

from bench.musicgen_bench import RESULTS, machine

PROMPTS = [
    [71, 1712, 3, 9, 2213, 28, 2414, 8024, 6, 2775, 3, 115, 102, 51, 1],
    [3, 9, 2213, 28, 1712, 1],
    [2414, 8024, 6, 2775, 3, 115, 71, 1],
    [102, 51, 3, 9, 2213, 28, 2414, 8024, 6, 2775, 1],
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=4)
    args = parser.parse_args(argv)

    from bench.full_size import build_musicgen
    from models.fast_musicgen import FastMusicgen, quantize_decoder_int8

    model = quantize_decoder_int8(build_musicgen("musicgen-small"))
    loop = FastMusicgen(model)
    steps = int(round(args.seconds * model.config.audio_encoder.frame_rate)) + model.config.decoder.num_codebooks - 1
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.users)]

    def batch(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        return ids, mask

    def run(rows: list[list[int]]) -> float:
        ids, mask = batch(rows)
        torch.manual_seed(0)
        start = time.perf_counter()
        with torch.inference_mode():
            loop.generate(ids, mask, steps, do_sample=True, top_k=250, guidance_scale=3.0)
        return time.perf_counter() - start

    run(prompts[:1])  # warm-up (short pieces are not enough to settle the allocator)
    one = run(prompts[:1])
    in_a_row = [run([p]) for p in prompts]
    batched = run(prompts)
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.users_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "seconds": args.seconds,
        "users": args.users,
        "one_request_s": round(one, 2),
        "one_after_another_s": round(sum(in_a_row), 2),
        "last_user_waits_s": round(sum(in_a_row), 2),
        "one_batched_pass_s": round(batched, 2),
        "batched_over_one": round(batched / one, 2),
        "one_after_another_over_one": round(sum(in_a_row) / one, 2),
    }
    print(json.dumps(record, indent=2))
    (RESULTS / f"users-{args.users}x{int(args.seconds)}s-cpu.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
