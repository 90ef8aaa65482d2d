"""The watermark on music: what it costs, how it sounds, what it survives, what it wrongly finds.

Runs with any AudioSeal folder (``--watermark-model``: ``generator_base.pth`` + ``detector_base.pth``). With the
released weights (``facebook/audioseal``) every figure below means what it says. With random weights of the
released architecture (``bench/full_size.py``, all this machine can have: the hub is unreachable) only the timings
mean anything: a random detector's verdicts, and a random generator's loudness, are noise.

- speed: ``Watermarker.mark`` on 10 s of MusicGen's 32 kHz stereo and of a cover's 44.1 kHz mono (best of 3), and
  ``detect`` on 10 s;
- sound: the mark's SNR against the music, and the loudness change (dB, RMS);
- robustness, on the example songs (music, not speech) marked as the app marks them: detection as written, after
  MP3 at 128 kbps (ffmpeg, constant bit rate), after a 50% volume change, after resampling to 44.1 kHz and back,
  and after mixing with the original at the app's default balance (0.7);
- false positives: detection on the example songs and melodies as they are (never marked).

    python -m bench.watermark_bench --watermark-model ~/.cache/music-demo/full-size/audioseal
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
SECONDS = 10.0
RATE = 44100


def db(x: float) -> float:
    return float(20 * np.log10(max(x, 1e-12)))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def mp3_128k(audio: np.ndarray, rate: int, folder: Path) -> np.ndarray:
    from utils.video import ffmpeg_exe

    wav, mp3 = folder / "in.wav", folder / "out.mp3"
    sf.write(str(wav), audio, rate)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "128k",
                    str(mp3)], check=True)
    from utils.audio import load_media_audio

    return load_media_audio(mp3, rate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watermark-model", required=True, help="AudioSeal hub id or folder")
    parser.add_argument("--weights", default="random (released architecture)",
                        help="what the weights are, for the record")
    parser.add_argument("--out", type=Path, default=RESULTS / "watermark-cpu.json")
    args = parser.parse_args(argv)

    from scipy.signal import resample_poly

    from bench.app_bench import machine
    from examples.make_examples import MELODIES, SONGS
    from models.watermark import Watermarker
    from products.piano import DEFAULT_BALANCE
    from utils.audio import load_audio, mix

    marker = Watermarker(args.watermark_model)
    marker.load()
    results: dict = {"benchmark": "watermark (diagnostic)", "weights": args.weights,
                     "command": "python -m bench.watermark_bench " + " ".join(argv or sys.argv[1:]),
                     "date": datetime.now(UTC).isoformat(timespec="minutes"), "machine": machine()}
    rng = np.random.default_rng(0)
    stereo = (0.2 * rng.standard_normal((2, int(SECONDS * 32000)))).astype(np.float32)
    mono = (0.2 * rng.standard_normal(int(SECONDS * RATE))).astype(np.float32)
    speed = {}
    for label, fn in (("mark_10s_32k_stereo_s", lambda: marker.mark(stereo, 32000)),
                      ("mark_10s_44k_mono_s", lambda: marker.mark(mono, RATE)),
                      ("detect_10s_s", lambda: marker.detect(mono, RATE))):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        speed[label] = round(min(times), 3)
    results["speed"] = speed
    print("speed", json.dumps(speed), flush=True)

    songs, rows = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in SONGS:
            audio, _ = load_audio(ROOT / "examples" / name, RATE)
            songs[name] = audio[: int(20 * RATE)]
        for name, original in songs.items():
            marked = marker.mark(original, RATE)
            mark = marked - original
            row = {"snr_db": round(db(rms(original)) - db(rms(mark)), 1),
                   "loudness_change_db": round(db(rms(marked)) - db(rms(original)), 3)}
            attacks = {
                "as_written": marked,
                "mp3_128k": mp3_128k(marked, RATE, folder),
                "volume_50pct": 0.5 * marked,
                "resampled_44k1_via_32k": resample_poly(resample_poly(marked, 320, 441), 441, 320),
                "mixed_with_original_0.7": mix(marked, original, DEFAULT_BALANCE),
            }
            for attack, audio in attacks.items():
                found = marker.detect(audio.astype(np.float32), RATE)
                row[attack] = {"score": round(found.score, 3), "message": f"{found.message:#06x}", "ours": found.ours}
            rows[name] = row
            print(name, json.dumps(row), flush=True)
        results["music"] = rows
        false = {}
        for name in [*SONGS, *MELODIES]:
            audio, _ = load_audio(ROOT / "examples" / name, RATE)
            found = marker.detect(audio, RATE)
            false[name] = {"score": round(found.score, 3), "marked": found.marked, "ours": found.ours}
        results["false_positives"] = false
        print("unmarked files", json.dumps(false), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
