"""Diagnostic (an internal path, not the app as a user runs it: that is ``bench/app_bench.py``).

MusicGen through the app's wrapper: time to the first streamed audio, and long pieces in windows.

Full-size musicgen-small with random weights (speed does not depend on weight values), saved like a checkpoint
and loaded by ``models.musicgen.MusicGenModel`` as the app loads it (int8 decoder and our loop on CPU). Stock
``generate`` has no streaming: its first audio arrives when the whole piece is done, so its time to first audio is
its total time; it runs in the same process on the same weights (``MUSICGEN_FAST_PATH=0``-equivalent).

    python -m bench.long_music_bench --seconds 10 --long 120
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
PROMPT = "lo-fi hip hop with warm piano and vinyl crackle, 80 bpm"


def timed(model, seconds: float, stream: bool) -> dict:
    """One piece through ``model.generate``; the total split into text encoding, EnCodec decoding (streamed chunks
    and the final decode) and the rest (the decode loop)."""
    import models.musicgen as wrapper
    from models.musicgen import SamplingParams

    marks: dict[str, float] = {}
    spent = {"text_encoder_s": 0.0, "encodec_decode_s": 0.0}
    decode = wrapper.decode_codes

    def timed_decode(*args, **kwargs):
        t = time.perf_counter()
        try:
            return decode(*args, **kwargs)
        finally:
            spent["encodec_decode_s"] += time.perf_counter() - t

    encoder = model.model.text_encoder
    hooks = [encoder.register_forward_pre_hook(lambda *_: marks.__setitem__("encoder_in", time.perf_counter())),
             encoder.register_forward_hook(lambda *_: spent.__setitem__(
                 "text_encoder_s", spent["text_encoder_s"] + time.perf_counter() - marks["encoder_in"]))]
    wrapper.decode_codes = timed_decode
    start = time.perf_counter()

    def first(_audio) -> None:
        marks.setdefault("first_audio_s", time.perf_counter() - start)

    try:
        result = model.generate(PROMPT, SamplingParams(duration=seconds, seed=1), 1, stream=first if stream else None)
    finally:
        wrapper.decode_codes = decode
        for hook in hooks:
            hook.remove()
    total = time.perf_counter() - start
    steps = sum(w.end - w.start + model.delay for w in result.windows)
    loop = total - spent["text_encoder_s"] - spent["encodec_decode_s"]
    return {"seconds": seconds, "total_s": round(total, 2), "first_audio_s": round(marks.get("first_audio_s", total), 2),
            "windows": len(result.windows), "steps": steps, "ms_per_step": round(1000 * total / steps, 1),
            "real_time_factor": round(total / seconds, 2),
            "split_s": {"text_encoder": round(spent["text_encoder_s"], 2),
                        "decode_loop_and_rest": round(loop, 2),
                        "encodec_decode": round(spent["encodec_decode_s"], 2)},
            "loop_ms_per_step": round(1000 * loop / steps, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="the short piece (streamed, and stock)")
    parser.add_argument("--long", type=float, default=120.0, help="the long piece (ours only), 0 = skip")
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "long-music-cpu.json")
    args = parser.parse_args(argv)

    from bench.full_size import build_musicgen
    from bench.common import machine
    from models.musicgen import MusicGenModel
    from tests.tiny_models import build_t5_tokenizer

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "musicgen-small"
        build_musicgen("musicgen-small").save_pretrained(folder)
        build_t5_tokenizer(folder)  # a small T5 tokenizer: the prompt's tokens do not change the speed
        ours = MusicGenModel(str(folder), "cpu")
        t = time.perf_counter()
        ours.load()
        results["load_s"] = {"ours": round(time.perf_counter() - t, 2)}
        timed(ours, 1.0, stream=False)  # warm-up
        results["ours_short"] = timed(ours, args.seconds, stream=True)
        print("ours  ", results["ours_short"], flush=True)
        if not args.skip_stock:
            ours.fast_path = False  # the same weights, stock generate
            results["stock_short"] = timed(ours, args.seconds, stream=False)
            print("stock ", results["stock_short"], flush=True)
            ours.fast_path = True
        if args.long:
            results["ours_long"] = timed(ours, args.long, stream=True)
            print("long  ", results["ours_long"], flush=True)
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": "python -m bench.long_music_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "note": "stock here = transformers generate on the same int8 decoder weights (the app's MUSICGEN_FAST_PATH=0)",
        **results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
