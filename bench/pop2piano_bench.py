"""Diagnostic (an internal path, not the app as a user runs it: that is ``bench/app_bench.py``).

Pop2Piano speed: a 3.5-minute song end to end, the transformers reference pipeline against the app's.

The song is real music: a music21 chorale looped with a pop drum beat, rendered by FluidSynth. The model is
full-size (d_model 512, 6 + 6 layers) with random weights, which never emit the end token: every chunk runs
to the 256-token limit, so the generation times are an upper bound (a trained model stops earlier).

    python -m bench.pop2piano_bench --song-seconds 210
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
MAX_TOKENS = 256


def make_song(path: Path, seconds: float) -> Path:
    """Loop a music21 chorale (with drums) to ``seconds`` and render it to a 44.1 kHz WAV."""
    import numpy as np
    import pretty_midi
    import soundfile as sf

    from tests.music_fixtures import add_drums, render_corpus_piece  # noqa: F401 - same fixture as the tests
    from utils.render import render_midi

    one = path.with_name("one.wav")
    bpm = render_corpus_piece("bach/bwv66.6", one, 44100)
    piece = pretty_midi.PrettyMIDI(str(one.with_suffix(".mid")))
    length = piece.get_end_time()
    song = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    for inst in piece.instruments:
        copy = pretty_midi.Instrument(inst.program, inst.is_drum, inst.name)
        for k in range(int(np.ceil(seconds / length))):
            copy.notes += [pretty_midi.Note(n.velocity, n.pitch, n.start + k * length, n.end + k * length)
                           for n in inst.notes if n.start + k * length < seconds]
        song.instruments.append(copy)
    add_drums(song, bpm)
    audio = render_midi(song, 44100).audio[: int(seconds * 44100)]
    sf.write(str(path), audio, 44100)
    return path


def reference(song: Path, folder: Path, dtype: str) -> dict:
    """transformers' documented usage: processor -> generate (all chunks at once) -> batch_decode."""
    import librosa
    import torch
    from transformers import Pop2PianoForConditionalGeneration, Pop2PianoProcessor

    from utils.render import render_midi

    times: dict[str, float] = {}
    t = time.perf_counter()
    audio, sr = librosa.load(str(song), sr=44100)
    times["read"] = time.perf_counter() - t
    processor = Pop2PianoProcessor.from_pretrained(folder)
    model = Pop2PianoForConditionalGeneration.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()
    extractor = processor.feature_extractor
    original = extractor.extract_rhythm

    def timed_rhythm(audio):
        t0 = time.perf_counter()
        out = original(audio)
        times["beats"] = time.perf_counter() - t0
        return out

    extractor.extract_rhythm = timed_rhythm
    t = time.perf_counter()
    inputs = processor(audio=audio, sampling_rate=sr, return_tensors="pt")
    times["features"] = time.perf_counter() - t - times["beats"]
    t = time.perf_counter()
    with torch.inference_mode():
        ids = model.generate(input_features=inputs["input_features"].to(model.dtype), composer="composer1",
                             max_length=MAX_TOKENS)
    times["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    ids = torch.cat([ids, torch.ones(ids.shape[0], 1, dtype=ids.dtype)], dim=1)  # no end token: see docstring
    midi = processor.batch_decode(token_ids=ids, feature_extractor_output=inputs)["pretty_midi_objects"][0]
    times["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    render_midi(midi, 44100)
    times["render"] = time.perf_counter() - t
    n_notes = sum(len(i.notes) for i in midi.instruments)
    return {"chunks": int(inputs["input_features"].shape[0]), "notes": n_notes, "times": times}


def ours(song: Path, folder: Path, dtype: str) -> dict:
    """The app's pipeline: PianoCoverModel.cover_file (loader, beats, features, batched generation, MIDI)."""
    import torch

    from models.pop2piano import PianoCoverModel
    from utils.render import render_midi

    model = PianoCoverModel(str(folder), "cpu" if not torch.cuda.is_available() else "cuda")
    if dtype != "default":
        model.dtype = getattr(torch, dtype)
    model.load()
    marks: list[tuple[float, str]] = []
    start = time.perf_counter()
    cover, _, _ = model.cover_file(str(song), "composer1", progress=lambda f, m: marks.append((time.perf_counter(), m)))
    end = time.perf_counter()
    stage_of = {"Reading": "read", "Finding": "beats", "Computing": "features", "Arranging": "generate",
                "Writing": "decode"}
    times: dict[str, float] = {}
    points = [(start, "Reading")] + marks + [(end, "end")]
    for (t0, message), (t1, _) in pairwise(points):
        stage = next((v for k, v in stage_of.items() if message.startswith(k)), "other")
        times[stage] = times.get(stage, 0.0) + (t1 - t0)
    t = time.perf_counter()
    render_midi(cover.midi, 44100)
    times["render"] = time.perf_counter() - t
    return {"chunks": cover.n_chunks, "notes": cover.n_notes, "times": times, "dtype": str(model.dtype)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--song-seconds", type=float, default=210.0)
    parser.add_argument("--paths", nargs="+", default=["reference-fp32", "ours"],
                        help="reference-fp32, reference-bfloat16, ours (the app's default), ours-float32 ...")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", nargs=3, metavar=("PATH", "SONG", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.worker:
        path, song, folder = args.worker
        kind, _, dtype = path.partition("-")
        dtype = {"fp32": "float32", "": "default"}.get(dtype, dtype)
        result = (reference if kind == "reference" else ours)(Path(song), Path(folder), dtype)
        result["times"] = {k: round(v, 2) for k, v in result["times"].items()}
        result["total_s"] = round(sum(result["times"].values()), 2)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(result))
        return

    from bench.common import machine
    from bench.full_size import save_full_size_pop2piano

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        song = make_song(Path(tmp) / "song.wav", args.song_seconds)
        folder = save_full_size_pop2piano(Path(tmp) / "pop2piano")
        for path in args.paths:
            command = [sys.executable, "-m", "bench.pop2piano_bench", "--threads", str(args.threads),
                       "--worker", path, str(song), str(folder)]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{path} failed")
            result = json.loads(done.stdout.strip().splitlines()[-1]) | {"path": path}
            results.append(result)
            stages = "  ".join(f"{k} {v:.1f}" for k, v in result["times"].items())
            print(f"pop2piano {path:18s} {args.song_seconds:.0f} s song: total {result['total_s']:6.1f} s "
                  f"({result['chunks']} chunks, {result['notes']} notes)  [{stages}]  "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": "python -m bench.pop2piano_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": results,
    }
    out = args.out or RESULTS / "pop2piano-cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
