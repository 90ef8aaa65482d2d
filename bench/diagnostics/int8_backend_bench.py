"""Diagnostic (an internal path, not the app as a user runs it: that is ``bench/app_bench.py``).

int8 linear layers on CPU: torch.ao's dynamic quantisation (fbgemm, what the app uses) against torchao's
configs, eager and compiled, on a stack of musicgen-melody-sized feed-forward layers (16 distinct layers, 150 MB of
int8 weights, so they do not sit in the cache), batch of 2 rows (guidance), one token: a decode step's shape.

Needs torchao (not an app requirement): ``pip install torchao==0.18.0``.

    python -m bench.diagnostics.int8_backend_bench
"""

from __future__ import annotations

import copy
import json
import sys
import time
from datetime import UTC, datetime

import torch

from bench.common import RESULTS, machine


def per_call_ms(fn, x: torch.Tensor, n: int = 50) -> float:
    for _ in range(5):
        fn(x)
    start = time.perf_counter()
    for _ in range(n):
        fn(x)
    return 1000 * (time.perf_counter() - start) / n


def main() -> None:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_

    from models.int8 import quantize_int8

    torch.manual_seed(0)
    width, ffn = 1536, 6144
    net = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(width, ffn, bias=False),
                                                    torch.nn.Linear(ffn, width, bias=False)) for _ in range(8)]).eval()
    x = torch.randn(2, 1, width)
    results: dict[str, dict] = {}
    with torch.inference_mode():
        results["fp32"] = {"ms": round(per_call_ms(net, x), 2)}
        fbgemm = quantize_int8(copy.deepcopy(net))
        results["torch.ao quantize_dynamic (fbgemm, the app)"] = {"ms": round(per_call_ms(fbgemm, x), 2)}
        one, both = fbgemm(x[:1]), fbgemm(x)
        results["torch.ao quantize_dynamic (fbgemm, the app)"]["rows_independent"] = bool(torch.equal(one, both[:1]))
        for name, config in [("torchao int8 dynamic activation + int8 weight", Int8DynamicActivationInt8WeightConfig()),
                             ("torchao int8 weight only", Int8WeightOnlyConfig())]:
            model = copy.deepcopy(net)
            quantize_(model, config)
            eager = per_call_ms(model, x, 10)
            start = time.perf_counter()
            compiled = torch.compile(model)
            compiled(x)
            compile_s = time.perf_counter() - start
            one, both = compiled(x[:1]), compiled(x)
            results[name] = {"ms": round(per_call_ms(compiled, x), 2), "eager_ms": round(eager, 2),
                             "compile_s": round(compile_s, 1), "rows_independent": bool(torch.equal(one, both[:1]))}
    record = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
              "command": "python -m bench.diagnostics.int8_backend_bench " + " ".join(sys.argv[1:]),
              "layers": "8 x (1536->6144, 6144->1536), batch 2 x 1 token", "results": results}
    print(json.dumps(record, indent=2))
    (RESULTS / "int8-backends-cpu.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
