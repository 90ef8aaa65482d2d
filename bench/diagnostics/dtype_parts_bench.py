"""Diagnostic (an internal path): what half precision changes in the parts around the decoder, T5 and EnCodec.

On a GPU the app runs MusicGen's decoder in bfloat16 (float16 on a T4) and keeps T5 and EnCodec in float32
(``models/musicgen/checkpoints.FLOAT32_PARTS``). This measures what bfloat16 and float16 would change there, on
full-size random weights of the published architectures (rounding does not depend on the device; speed does, and is
measured on a GPU by ``bench/gpu_bench.py``):
- T5-base: the relative error of the encoder's output for a few prompts;
- EnCodec 32 kHz: the signal-to-error ratio of 5 s of audio decoded from the same codes;
- the melody's chroma is one-hot (0 or 1): exact in any dtype, nothing to measure.

    python -m bench.diagnostics.dtype_parts_bench            # writes bench/results/dtype-parts-cpu.json
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402,F401 - one OpenMP team (see models/__init__.py)
import torch  # noqa: E402

PROMPTS = ["lo-fi hip hop with warm piano and vinyl crackle, 80 bpm", "epic orchestral trailer with choir",
           "calm ambient pads"]


def main() -> None:
    from bench.full_size import build_musicgen
    from models.musicgen.codec import decode_codes, fold_weight_norm
    from tests.tiny_models import build_t5_tokenizer

    began = time.time()
    model = build_musicgen("musicgen-small")
    fold_weight_norm(model.audio_encoder)
    tokenizer = build_t5_tokenizer(Path("/tmp/dtype-parts-tokenizer"))
    inputs = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    codes = torch.randint(0, 2048, (1, 4, 250), generator=torch.Generator().manual_seed(0))  # 5 s at 50 frames/s
    rows = []
    with torch.inference_mode():
        reference_text = model.text_encoder(**inputs).last_hidden_state
        reference_audio = decode_codes(model, codes)
        for dtype in (torch.bfloat16, torch.float16):
            encoder = model.text_encoder.to(dtype)
            text = encoder(**inputs).last_hidden_state.float()
            mask = inputs["attention_mask"][..., None].bool()
            error = ((text - reference_text).masked_select(mask).norm()
                     / reference_text.masked_select(mask).norm()).item()
            model.text_encoder.float()
            model.audio_encoder.to(dtype)
            audio = decode_codes(model, codes).float()
            model.audio_encoder.float()
            noise = (audio - reference_audio).pow(2).mean().item()
            snr = 10 * torch.log10(reference_audio.pow(2).mean() / max(noise, 1e-30)).item()
            rows.append({"dtype": str(dtype).removeprefix("torch."), "t5_relative_error": round(error, 5),
                         "t5_finite": bool(torch.isfinite(text).all()), "encodec_snr_db": round(snr, 1),
                         "encodec_peak_error": round((audio - reference_audio).abs().max().item(), 5)})
            print(json.dumps(rows[-1]), flush=True)
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": "CPU (rounding only)",
              "command": "python -m bench.diagnostics.dtype_parts_bench", "weights": "full-size random (musicgen-small's T5 and "
              "EnCodec)", "seconds": round(time.time() - began, 1), "rows": rows}
    out = ROOT / "bench" / "results" / "dtype-parts-cpu.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
