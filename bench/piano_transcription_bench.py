"""Diagnostic: how well the piano transcriber (Transkun V2, its real shipped weights) hears rendered piano, against
basic-pitch (the app's "MIDI of this") on the same renders, in the same run, and how long it takes.

The MIDIs: the example songs' scores (music21's corpus, on the piano, as ``examples/make_examples.py`` renders them
without the drums), and the piano covers Pop2Piano makes of the example songs (``--piano-model``; full-size random
weights here, so dense, random-sounding covers). Each is rendered by FluidSynth (the app's renderer) with the
SoundFont pretty_midi ships (TimGM6mb) and with the better one ``./run.sh app`` installs (FluidR3_GM), cut to
``--seconds``, transcribed as the app does (``load_model(role).notes``), and scored with mir_eval: note onset within
50 ms and the same pitch; with offsets too (20 % of the note or 50 ms); and with velocities (transcription_velocity).

    python -m bench.piano_transcription_bench --piano-model ~/.cache/music-demo/full-size/pop2piano
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pretty_midi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
RATE = 44100
SOUNDFONTS = {"TimGM6mb (shipped)": Path(pretty_midi.__file__).parent / "TimGM6mb.sf2",
              "FluidR3_GM (run.sh app)": Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")}
# Transkun twice: in float32, and in bfloat16 (the autocast the app picks on CPUs with bfloat16 instructions)
TRANSCRIBERS = {"transkun": ("piano_transcriber", "float32"), "transkun bfloat16": ("piano_transcriber", "bfloat16"),
                "basic-pitch": ("transcriber", None)}


def scores(reference: list[pretty_midi.Note], heard) -> dict:
    """mir_eval F1 (precision, recall): onsets; onsets and offsets; onsets, offsets and velocities."""
    import mir_eval

    ref_i = np.array([[n.start, n.end] for n in reference]).reshape(-1, 2)
    ref_p = mir_eval.util.midi_to_hz(np.array([n.pitch for n in reference], dtype=float))
    ref_v = np.array([n.velocity for n in reference], dtype=float)
    est_i = np.stack([heard.starts, heard.ends], axis=1).reshape(-1, 2)
    est_p = mir_eval.util.midi_to_hz(heard.pitches.astype(float))
    out: dict = {"notes_written": len(reference), "notes_heard": len(heard)}
    for label, ratio in (("onset", None), ("onset_offset", 0.2)):
        p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ref_i, ref_p, est_i, est_p,
                                                                          offset_ratio=ratio)
        out[label] = {"f1": round(f, 3), "precision": round(p, 3), "recall": round(r, 3)}
    p, r, f, _ = mir_eval.transcription_velocity.precision_recall_f1_overlap(
        ref_i, ref_p, ref_v, est_i, est_p, heard.velocities.astype(float), offset_ratio=None)
    out["onset_velocity"] = {"f1": round(f, 3), "precision": round(p, 3), "recall": round(r, 3)}
    return out


def cut(midi: pretty_midi.PrettyMIDI, seconds: float) -> pretty_midi.PrettyMIDI:
    """The piano notes of ``midi`` that start before ``seconds``, ending by then."""
    out = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, min(n.end, seconds))
                   for inst in midi.instruments if not inst.is_drum for n in inst.notes
                   if n.start < seconds - 0.05]
    out.instruments.append(piano)
    return out


def corpus_midi(piece: str, folder: Path) -> pretty_midi.PrettyMIDI:
    import music21

    path = folder / (piece.replace("/", "_") + ".mid")
    music21.corpus.parse(piece).write("midi", fp=str(path))
    return pretty_midi.PrettyMIDI(str(path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--piano-model", help="Pop2Piano folder for the covers (left out when not given)")
    parser.add_argument("--seconds", type=float, default=30.0, help="the length of each render")
    parser.add_argument("--out", type=Path, default=RESULTS / "piano-transcription-cpu.json")
    args = parser.parse_args(argv)

    import models  # noqa: F401 - before torch: the model thread's threads
    from bench.app_bench import machine
    from examples.make_examples import SONGS
    from models.loading import load_model
    from utils.render import render_midi

    import torch

    for role, _ in TRANSCRIBERS.values():
        load_model(role, None, "cpu").load()
    results: dict = {"benchmark": "piano transcription (diagnostic)",
                     "command": "python -m bench.piano_transcription_bench " + " ".join(argv or sys.argv[1:]),
                     "date": datetime.now(UTC).isoformat(timespec="minutes"), "machine": machine(),
                     "seconds_per_render": args.seconds, "renders": {}, "summary": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pieces = {f"score of {name}": corpus_midi(piece, folder) for name, piece in SONGS.items()}
        if args.piano_model:
            model = load_model("piano", args.piano_model, "cpu")
            for name in SONGS:
                cover, _, _ = model.cover_file(str(ROOT / "examples" / name), "composer1")
                pieces[f"cover of {name}"] = cover.midi
        for soundfont_name, soundfont in SOUNDFONTS.items():
            if not soundfont.is_file():
                print(f"{soundfont_name}: {soundfont} is not installed; left out", flush=True)
                continue
            for piece_name, midi in pieces.items():
                piece = cut(midi, args.seconds)
                audio = render_midi(piece, RATE, soundfont).audio[: int(args.seconds * RATE)]
                row: dict = {}
                for label, (role, dtype) in TRANSCRIBERS.items():
                    transcriber = load_model(role, None, "cpu")
                    if dtype is not None:
                        transcriber.compute_dtype = getattr(torch, dtype)
                    t = time.perf_counter()
                    heard = transcriber.notes(audio, RATE)
                    row[label] = {**scores(piece.instruments[0].notes, heard),
                                  "seconds": round(time.perf_counter() - t, 2)}
                key = f"{piece_name} · {soundfont_name}"
                results["renders"][key] = row
                print(key, json.dumps({k: (v["onset"]["f1"], v["onset_offset"]["f1"], v["onset_velocity"]["f1"],
                                           v["seconds"]) for k, v in row.items()}), flush=True)
    for label in TRANSCRIBERS:
        rows = [row[label] for row in results["renders"].values()]
        results["summary"][label] = {
            metric: round(float(np.mean([r[metric]["f1"] for r in rows])), 3)
            for metric in ("onset", "onset_offset", "onset_velocity")
        } | {"min_onset_f1": min(r["onset"]["f1"] for r in rows),
             "seconds_per_render": round(float(np.mean([r["seconds"] for r in rows])), 2)}
    print("summary", json.dumps(results["summary"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
