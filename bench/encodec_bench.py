"""Diagnostic: the EnCodec decode of a 30 s piece, and what streaming adds, on the model thread as the app runs it.

Full-size 32 kHz EnCodec (musicgen-small's) with random weights, codes of a 30 s piece (1500 frames):
- the final decode in one go, with the checkpoint's weight norm recomputed at every layer call (as loaded) and with
  it folded once (as the app now loads it: bit-identical, tested);
- the streamed chunks (``models.musicgen.AudioStream``: a chunk every 2 s of music, each decoded with 1 s of the music
  before it), and how far their joined audio is from the one-go decode (why the final file is decoded again).

    python -m bench.encodec_bench
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

import numpy as np
import torch

from bench.common import RESULTS, machine


def main() -> None:
    from bench.full_size import build_musicgen
    from models.musicgen.codec import decode_codes, fold_weight_norm
    from models.musicgen import AudioStream
    from models.runtime import model_thread

    runtime = model_thread()
    model = runtime.call(build_musicgen, "musicgen-small")
    codes = torch.randint(0, 2048, (1, 4, 1500), generator=torch.Generator().manual_seed(0))

    def timed(fn, *args):
        start = time.perf_counter()
        out = runtime.call(fn, *args)
        return out, time.perf_counter() - start

    results = {}
    runtime.call(decode_codes, model, codes[..., :100])  # warm-up
    plain, results["one_go_weight_norm_each_call_s"] = timed(decode_codes, model, codes)
    runtime.call(fold_weight_norm, model.audio_encoder)
    folded, results["one_go_folded_s"] = timed(decode_codes, model, codes)
    results["folded_equal_bit_for_bit"] = bool(torch.equal(plain, folded))
    chunks: list[np.ndarray] = []
    stream = AudioStream(model, chunks.append, limit=1500)
    start = time.perf_counter()
    for frames in range(10, 1501, 10):  # the loop offers the finished frames every 10 steps
        stream(codes[..., :frames], final=frames == 1500)
    results["streamed_chunks_s"] = round(time.perf_counter() - start, 2)
    results["streamed_chunks"] = len(chunks)
    joined = np.concatenate(chunks, axis=-1)[0, 0]
    one_go = folded[0, 0].numpy()[: joined.shape[0]]
    error = joined - one_go
    results["streamed_vs_one_go_max_abs"] = float(np.abs(error).max())
    results["streamed_vs_one_go_snr_db"] = round(float(10 * np.log10((one_go ** 2).sum() / (error ** 2).sum())), 1)
    for key in ("one_go_weight_norm_each_call_s", "one_go_folded_s"):
        results[key] = round(results[key], 2)
    record = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
              "command": "python -m bench.encodec_bench " + " ".join(sys.argv[1:]), "audio_seconds": 30,
              "kernel_threads": runtime.kernel_threads, "results": results}
    print(json.dumps(record, indent=2))
    (RESULTS / "encodec-30s-cpu.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
