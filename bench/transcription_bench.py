"""Diagnostic: how well "MIDI of this" hears notes, with basic-pitch's real (shipped) model, and how long it takes.

- Note F1 against known MIDI: each MIDI is rendered with FluidSynth (the app's renderer), transcribed the way the
  app does it (``load_model("transcriber").notes``), and scored with mir_eval (onset within 50 ms and the same pitch;
  also with offsets). The MIDIs: the example songs' scores (music21's corpus, as ``examples/make_examples.py``
  renders them, without the drums), the tests' chorale fixture (the same piece as bach_bwv66.6), and the piano
  covers Pop2Piano makes of the example songs (with ``--piano-model``; full-size random weights here, so dense,
  random-sounding covers).
- Pitch accuracy on the example melodies (hum, flute): at the middle of each written note, is the lowest note heard
  sounding the written one; and their note F1.
- Speed: transcription, beat tracking and the whole ``write_music_midi`` (with the score) per 30 s of music.

    python -m bench.transcription_bench --piano-model ~/.cache/music-demo/full-size/pop2piano
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
RATE = 22050


def score_notes(reference: list[tuple[float, float, int]], heard) -> dict:
    """mir_eval note precision, recall and F1: onsets only, and onsets with offsets."""
    import mir_eval

    ref_i = np.array([[s, e] for s, e, _ in reference]).reshape(-1, 2)
    ref_p = mir_eval.util.midi_to_hz(np.array([p for _, _, p in reference], dtype=float))
    est_i = np.stack([heard.starts, heard.ends], axis=1).reshape(-1, 2)
    est_p = mir_eval.util.midi_to_hz(heard.pitches.astype(float))
    out = {"notes_written": len(reference), "notes_heard": len(heard)}
    for label, ratio in (("onset", None), ("onset_offset", 0.2)):
        p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ref_i, ref_p, est_i, est_p,
                                                                          offset_ratio=ratio)
        out[label] = {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3)}
    return out


def midi_notes(midi: pretty_midi.PrettyMIDI) -> list[tuple[float, float, int]]:
    return [(n.start, n.end, n.pitch) for inst in midi.instruments if not inst.is_drum for n in inst.notes]


def rendered_and_heard(midi: pretty_midi.PrettyMIDI) -> tuple[dict, float]:
    from models.loading import load_model
    from utils.render import render_midi

    audio = render_midi(midi, RATE).audio
    t = time.perf_counter()
    heard = load_model("transcriber").notes(audio, RATE)
    return score_notes(midi_notes(midi), heard), time.perf_counter() - t


def corpus_midi(piece: str, folder: Path) -> pretty_midi.PrettyMIDI:
    import music21

    path = folder / (piece.replace("/", "_") + ".mid")
    music21.corpus.parse(piece).write("midi", fp=str(path))
    midi = pretty_midi.PrettyMIDI(str(path))
    for inst in midi.instruments:  # on the piano, as the examples' songs sound without their drums
        inst.program = 0
    return midi


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--piano-model", help="Pop2Piano folder for the covers (left out when not given)")
    parser.add_argument("--out", type=Path, default=RESULTS / "transcription-cpu.json")
    args = parser.parse_args(argv)

    from bench.app_bench import machine
    from examples.make_examples import MELODIES, SONGS, melody_notes
    from models.loading import load_model
    from products.music_midi import transcribe, write_music_midi
    from utils.audio import load_audio
    from utils.beats import BEAT_SAMPLE_RATE, track_beats

    load_model("transcriber").load()
    results: dict = {"benchmark": "transcription (diagnostic)", "command": "python -m bench.transcription_bench "
                     + " ".join(argv or sys.argv[1:]), "date": datetime.now(UTC).isoformat(timespec="minutes"),
                     "machine": machine(), "songs": {}, "covers": {}, "melodies": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for file_name, piece in SONGS.items():
            results["songs"][file_name], _ = rendered_and_heard(corpus_midi(piece, folder))
            print(file_name, json.dumps(results["songs"][file_name]), flush=True)
        results["songs"]["fixture: chorale bwv66.6 (tests)"] = results["songs"]["bach_bwv66.6_pop.ogg"]
        if args.piano_model:
            from models.loading import load_model

            model = load_model("piano", args.piano_model, "cpu")
            for file_name in SONGS:
                cover, _, _ = model.cover_file(str(ROOT / "examples" / file_name), "composer1")
                results["covers"][file_name], _ = rendered_and_heard(cover.midi)
                print("cover of", file_name, json.dumps(results["covers"][file_name]), flush=True)
        for file_name, (tune, bpm, _) in MELODIES.items():
            written = melody_notes(tune, bpm)
            audio, _ = load_audio(ROOT / "examples" / file_name, RATE)
            heard = load_model("transcriber").notes(audio, RATE)
            right = 0
            for start, end, pitch in written:
                middle = (start + end) / 2
                sounding = heard.pitches[(heard.starts <= middle) & (heard.ends >= middle)]
                right += bool(sounding.size) and int(sounding.min()) == pitch
            results["melodies"][file_name] = {"pitch_accuracy": round(right / len(written), 3),
                                              **score_notes(written, heard)}
            print(file_name, json.dumps(results["melodies"][file_name]), flush=True)
        # Speed on 30 s of the rag (the densest example), as "MIDI of this" runs it.
        rag = folder / "rag_30s.wav"
        import soundfile as sf

        audio, rate = load_audio(ROOT / "examples" / "joplin_maple_leaf_rag_pop.ogg", 44100)
        sf.write(str(rag), audio[: 30 * rate], rate)
        clip, _ = load_audio(rag, RATE)
        speed = {}
        for _ in range(3):  # the best of three: the machine is noisy
            t = time.perf_counter()
            load_model("transcriber").notes(clip, RATE)
            notes_s = time.perf_counter() - t
            t = time.perf_counter()
            track_beats(load_audio(rag, BEAT_SAMPLE_RATE)[0], BEAT_SAMPLE_RATE)
            beats_s = time.perf_counter() - t
            t = time.perf_counter()
            transcribe(rag)
            transcribe_s = time.perf_counter() - t
            t = time.perf_counter()
            write_music_midi(rag, folder, "rag")
            whole_s = time.perf_counter() - t
            for key, value in (("transcriber_s", notes_s), ("beats_s", beats_s),
                               ("notes_on_beats_s", transcribe_s), ("midi_and_score_s", whole_s)):
                speed[key] = round(min(speed.get(key, 1e9), value), 3)
        results["speed_per_30s"] = speed
        print("speed per 30 s", json.dumps(speed), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
