"""Diagnostic (an internal path: the loop called in-process, without streaming, EnCodec or the server; what users
get is ``bench/app_bench.py``'s ``users_4x10s``). Four users asking for 10 s of text-to-music at once, full-size musicgen-small with the app's int8 decoder,
2 CPU cores, in one process:
- one request alone;
- the four one after another (the app with ``--concurrency 1``);
- the four in four threads, their steps sharing each pass on the model thread (the app's default): every matrix
  product and attention still runs request by request, so each gets the tokens it gets alone (checked here);
- one batched pass of all four prompts (one matrix product for all rows): measured to size what batching could
  give, not used: fbgemm's dynamic int8 quantises a layer's input over all its rows, so a request's tokens would
  depend on who shared its pass.
Four different prompts, guidance 3, top-k 250, each request with its own seeded generator.

    python -m bench.users_bench --seconds 10 --users 4
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime

import torch

from bench.common import RESULTS, machine

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
    parser.add_argument("--model", default="musicgen-small", choices=["musicgen-small", "musicgen-melody"],
                        help="musicgen-melody: each user with a melody's chroma (30 s, 235 frames) of their own")
    args = parser.parse_args(argv)

    from bench.full_size import build_musicgen
    from models.musicgen.decoding import PassCount
    from models.musicgen.fast_loop import FastMusicgen
    from models.musicgen.layers import quantize_decoder_int8
    from models.runtime import ModelThread

    thread = ModelThread()  # as the app: every model call on one thread (built there too)
    model = thread.call(lambda: quantize_decoder_int8(build_musicgen(args.model)))
    loop = FastMusicgen(model)
    steps = int(round(args.seconds * model.config.audio_encoder.frame_rate)) + model.config.decoder.num_codebooks - 1
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.users)]

    def batch(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        return ids, mask

    def run(rows: list[list[int]], seed: int = 0, joint: ModelThread | None = thread,
            passes: PassCount | None = None) -> tuple[float, torch.Tensor]:
        """One request from a thread of its own (the app's worker), its work on the model thread."""
        ids, mask = batch(rows)
        chroma = None
        if args.model == "musicgen-melody":  # one-hot chroma as the extractor makes, one melody per prompt
            notes = torch.stack([torch.randint(0, 12, (235,), generator=torch.Generator().manual_seed(seed + i))
                                 for i in range(len(rows))])
            chroma = torch.nn.functional.one_hot(notes, 12).float()
        start = time.perf_counter()
        codes = loop.generate_codes(ids, mask, steps, do_sample=True, top_k=250, guidance_scale=3.0,
                                    generator=torch.Generator().manual_seed(seed), joint=joint,
                                    input_features=chroma, passes=passes)
        return time.perf_counter() - start, codes

    def in_threads(work: list) -> tuple[float, list]:
        gate = threading.Barrier(len(work) + 1)
        results: list = [None] * len(work)

        def user(i: int) -> None:
            gate.wait()
            results[i] = work[i]()

        threads = [threading.Thread(target=user, args=(i,)) for i in range(len(work))]
        for t in threads:
            t.start()
        gate.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        return time.perf_counter() - start, results

    run(prompts[:1])  # warm-up (short pieces are not enough to settle the allocator)
    one, _ = run(prompts[:1])
    in_a_row = [run([p], seed=i) for i, p in enumerate(prompts)]
    counts = [PassCount() for _ in prompts]  # counted in the pass itself
    shared, together = in_threads([lambda i=i: run([prompts[i]], seed=i, passes=counts[i])
                                   for i in range(len(prompts))])
    batched, _ = thread.call(lambda: run(prompts, joint=None))
    # the same request computed in a thread of its own, beside the model thread (two teams of kernel threads)
    _, (second_thread,) = in_threads([lambda: run(prompts[:1], joint=None)])
    a_row = sum(t for t, _ in in_a_row)
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.users_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "model": args.model,
        "seconds": args.seconds,
        "users": args.users,
        "one_request_s": round(one, 2),
        "one_after_another_s": round(a_row, 2),
        "one_after_another_finish_s": [round(sum(t for t, _ in in_a_row[: i + 1]), 2) for i in range(len(prompts))],
        "shared_passes_s": round(shared, 2),
        "shared_passes_finish_s": [round(t, 2) for t, _ in together],
        "shared_passes_same_tokens_as_alone": all(torch.equal(c, a) for (_, c), (_, a) in zip(together, in_a_row)),
        "passes_per_user": [c.total for c in counts],
        "passes_shared_with_others_per_user": [c.shared for c in counts],
        "one_batched_pass_s": round(batched, 2),
        "one_request_in_a_second_thread_s": round(second_thread[0], 2),
        "one_after_another_over_one": round(a_row / one, 2),
        "shared_passes_over_one": round(shared / one, 2),
        "batched_over_one": round(batched / one, 2),
    }
    print(json.dumps(record, indent=2))
    (RESULTS / f"users-{args.model.removeprefix('musicgen-')}-{args.users}x{int(args.seconds)}s-cpu.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
