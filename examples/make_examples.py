"""Render the example inputs shown under the tabs (run once; the OGG files are committed).

Songs: public-domain pieces from music21's corpus (Bach chorales, a Schumann song), played by FluidSynth with a
General MIDI SoundFont and a pop drum groove, cut to ~25 s. Melodies: public-domain tunes sung by a GM choir voice
or played on a flute, for the melody tab.

    python -m examples.make_examples
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.music_fixtures import add_drums  # noqa: E402
from utils.render import render_midi  # noqa: E402

SAMPLE_RATE = 32000  # small files; the app resamples as it needs
MAX_SECONDS = 25.0
SONGS = {  # file name -> music21 corpus piece
    "bach_bwv66.6_pop.ogg": "bach/bwv66.6",
    "bach_bwv7.7_pop.ogg": "bach/bwv7.7",
    "joplin_maple_leaf_rag_pop.ogg": "joplin/maple_leaf_rag",
}
# (pitch, beats) - public-domain tunes
ODE_TO_JOY = [(64, 1), (64, 1), (65, 1), (67, 1), (67, 1), (65, 1), (64, 1), (62, 1), (60, 1), (60, 1), (62, 1),
              (64, 1), (64, 1.5), (62, 0.5), (62, 2)]
TWINKLE = [(60, 1), (60, 1), (67, 1), (67, 1), (69, 1), (69, 1), (67, 2), (65, 1), (65, 1), (64, 1), (64, 1),
           (62, 1), (62, 1), (60, 2)]
MELODIES = {  # file name -> (tune, bpm, General MIDI program)
    "melody_ode_to_joy_hummed.ogg": (ODE_TO_JOY, 100, 52),  # choir "aah", like humming
    "melody_twinkle_flute.ogg": (TWINKLE, 96, 73),
}


def write_ogg(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    audio = audio[: int(MAX_SECONDS * sample_rate)]
    fade = np.linspace(1.0, 0.0, int(0.5 * sample_rate))
    audio[-fade.size :] *= fade
    sf.write(str(path), audio.astype(np.float32), sample_rate, format="OGG", subtype="VORBIS")
    print(f"{path.name}: {audio.shape[0] / sample_rate:.1f} s, {path.stat().st_size // 1024} KB")


def song(name: str, piece: str) -> None:
    import music21

    midi_path = HERE / "_tmp.mid"
    music21.corpus.parse(piece).write("midi", fp=str(midi_path))
    midi = pretty_midi.PrettyMIDI(str(midi_path))
    midi_path.unlink()
    add_drums(midi, float(midi.get_tempo_changes()[1][0]))
    write_ogg(HERE / name, render_midi(midi, SAMPLE_RATE).audio, SAMPLE_RATE)


def melody_notes(tune: list[tuple[int, float]], bpm: float) -> list[tuple[float, float, int]]:
    """The notes of an example melody as written into its file: (start s, end s, pitch), the tune twice from 0.2 s,
    up to the file's length."""
    notes, now, beat = [], 0.2, 60.0 / bpm
    for pitch, beats in tune * 2:
        notes.append((now, now + beats * beat * 0.95, pitch))
        now += beats * beat
    return [n for n in notes if n[0] < MAX_SECONDS - 0.5]


def melody(name: str, tune: list[tuple[int, float]], bpm: float, program: int) -> None:
    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    voice = pretty_midi.Instrument(program=program)
    for start, end, pitch in melody_notes(tune, bpm):
        voice.notes.append(pretty_midi.Note(90, pitch, start, end))
    midi.instruments.append(voice)
    write_ogg(HERE / name, render_midi(midi, SAMPLE_RATE).audio, SAMPLE_RATE)


if __name__ == "__main__":
    for file_name, corpus_piece in SONGS.items():
        song(file_name, corpus_piece)
    for file_name, (notes, tempo, gm_program) in MELODIES.items():
        melody(file_name, notes, tempo, gm_program)
