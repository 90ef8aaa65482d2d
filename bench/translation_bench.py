"""Diagnostic: how long translating a prompt takes after load (``models.translation.translate_prompt``, as MusicGen
calls it), on a MarianMT of opus-mt-mul-en's size.

Random weights (all this machine can have) never emit the end token, so every run goes to its token limit (twice
the run's own tokens plus 8, at most ``MAX_NEW_TOKENS``) with ``NUM_BEAMS`` beams: the worst case. A trained model
stops after the English phrase, sooner.

    python -m bench.translation_bench --translation-model ~/.cache/music-demo/full-size/marian
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
PROMPTS = {  # prompt -> the parts MusicGen's T5 cannot read (as unknown_prompt_parts finds them)
    "欢快的国风摇滚 with guzheng and drums": ["欢快的国风摇滚"],
    "雨天的钢琴，安静的夜晚": ["雨天的钢琴，安静的夜晚"],
    "música alegre con guitarra española": ["ú", "ñ"],
    "Весёлый рок с барабанами": ["Весёлый рок с барабанами"],
    "静かなピアノ、雨の夜": ["静かなピアノ、雨の夜"],
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--translation-model", required=True)
    parser.add_argument("--out", type=Path, default=RESULTS / "translation-cpu.json")
    args = parser.parse_args(argv)

    from bench.app_bench import machine
    from models import translation
    from models.loading import load_model

    t = time.perf_counter()
    translator = load_model("translator", args.translation_model)
    translator.load()
    load_s = time.perf_counter() - t
    rows = {}
    for prompt, unknown in PROMPTS.items():
        times = []
        for _ in range(3):
            translation._remembered.clear()  # each run translates (a repeat is remembered and costs nothing)
            t = time.perf_counter()
            english, _ = translation.translate_prompt(prompt, unknown, args.translation_model)
            times.append(time.perf_counter() - t)
        rows[prompt] = {"best_s": round(min(times), 3), "runs_s": [round(x, 3) for x in times],
                        "translated_runs": sum(translation.runs_to_translate(prompt, unknown))}
        print(prompt, json.dumps(rows[prompt]), flush=True)
    t = time.perf_counter()
    translation.translate_prompt(prompt, unknown, args.translation_model)  # the last one, just translated
    results = {"benchmark": "translation (diagnostic)", "weights": "random (worst case: every run to its token "
               f"limit, {translation.NUM_BEAMS} beams)",
               "command": "python -m bench.translation_bench " + " ".join(argv or sys.argv[1:]),
               "date": datetime.now(UTC).isoformat(timespec="minutes"), "machine": machine(),
               "load_s": round(load_s, 2), "prompts": rows, "remembered_s": round(time.perf_counter() - t, 4)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "prompts"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
