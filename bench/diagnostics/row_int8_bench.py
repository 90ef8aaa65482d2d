"""Diagnostic: could requests share one int8 call exactly? A row-wise int8 linear (each row quantised with its own
scale, products summed exactly in int32 by ``torch._int_mm``) gives every row the same result whatever rows share
its call, so four requests could go through one call. Measured against the app's fbgemm layers, which quantise a
call's whole input with one scale (so each request makes calls of its own). Shapes of musicgen-small's decoder, 16
distinct layers per shape (weights do not all sit in the cache), 2 rows per request (guidance).

    python -m bench.diagnostics.row_int8_bench [--out FILE]

Also measured, for the same question: weight-only int8 with bfloat16 activations and bfloat16 weights (AMX where
the CPU has it); both keep rows independent, neither needs activation scales.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from bench.common import RESULTS, machine
from models.int8 import quantize_int8

INT8_MAX = 127


def row_int8(linear: torch.nn.Linear):
    """x [rows, in] -> [rows, out]: per-channel int8 weights, per-row int8 activations, exact int32 products."""
    weight = linear.weight.detach()
    w_scale = weight.abs().amax(dim=1).clamp(min=1e-12) / INT8_MAX
    w_int8 = torch.round(weight / w_scale[:, None]).to(torch.int8).t().contiguous()
    bias = linear.bias.detach()

    def forward(x: torch.Tensor) -> torch.Tensor:
        scale = x.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12).div_(INT8_MAX)
        return torch._int_mm(torch.round(x / scale).to(torch.int8), w_int8).float().mul_(scale).mul_(w_scale).add_(bias)

    return forward


def weight_only_int8(linear: torch.nn.Linear):
    """x [rows, in] -> [rows, out]: per-channel int8 weights, bfloat16 activations (``torch._weight_int8pack_mm``):
    no activation quantisation, so rows are independent too."""
    weight = linear.weight.detach()
    w_scale = weight.abs().amax(dim=1).clamp(min=1e-12) / INT8_MAX
    w_int8 = torch.round(weight / w_scale[:, None]).to(torch.int8).contiguous()
    bias, scales = linear.bias.detach().bfloat16(), w_scale.bfloat16()
    return lambda x: torch._weight_int8pack_mm(x.bfloat16(), w_int8, scales).add_(bias)


def bf16_weights(linear: torch.nn.Linear):
    """x [rows, in] -> [rows, out] in bfloat16 (AMX where the CPU has it): twice int8's bytes, rows independent."""
    weight, bias = linear.weight.detach().bfloat16(), linear.bias.detach().bfloat16()
    return lambda x: torch.nn.functional.linear(x.bfloat16(), weight, bias)


def us_per_round(fns, inputs: list[torch.Tensor], seconds: float = 1.0) -> float:
    for f in fns:
        for x in inputs:
            f(x)
    start, rounds = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for f in fns:
            for x in inputs:
                f(x)
        rounds += 1
    return 1e6 * (time.perf_counter() - start) / (rounds * len(fns))


def main() -> None:
    torch.manual_seed(0)
    results = {}
    with torch.inference_mode():
        for d_in, d_out in [(1024, 1024), (1024, 4096), (4096, 1024)]:
            layers = [torch.nn.Linear(d_in, d_out) for _ in range(16)]
            fbgemm = [quantize_int8(torch.nn.Sequential(layer))[0] for layer in layers]
            rows = [row_int8(layer) for layer in layers]
            requests = [torch.randn(2, d_in) for _ in range(4)]
            together = torch.cat(requests)
            exact = all(torch.equal(rows[0](together)[2 * i: 2 * i + 2], rows[0](r)) for i, r in enumerate(requests))
            results[f"{d_in}x{d_out}"] = {
                "fbgemm_one_request_us": round(us_per_round(fbgemm, requests[:1]), 1),
                "fbgemm_four_requests_a_call_each_us": round(us_per_round(fbgemm, requests), 1),
                "fbgemm_four_requests_one_call_us (inexact: one scale for all rows)":
                    round(us_per_round(fbgemm, [together]), 1),
                "row_int8_one_request_us": round(us_per_round(rows, requests[:1]), 1),
                "row_int8_four_requests_one_call_us": round(us_per_round(rows, [together]), 1),
                "row_int8_rows_independent": exact,
            }
            for label, make in (("weight_only_int8_bf16", weight_only_int8), ("bf16_weights", bf16_weights)):
                fns = [make(layer) for layer in layers]
                results[f"{d_in}x{d_out}"] |= {
                    f"{label}_one_request_us": round(us_per_round(fns, requests[:1]), 1),
                    f"{label}_four_requests_one_call_us": round(us_per_round(fns, [together]), 1),
                    f"{label}_rows_independent": all(torch.equal(fns[0](together)[2 * i: 2 * i + 2], fns[0](r))
                                                     for i, r in enumerate(requests)),
                }
            print(d_in, d_out, results[f"{d_in}x{d_out}"], flush=True)
    record = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
              "command": "python -m bench.diagnostics.row_int8_bench " + " ".join(sys.argv[1:]), "threads": torch.get_num_threads(),
              "results": results}
    out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else RESULTS / "row-int8-cpu.json"
    out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
