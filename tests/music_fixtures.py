"""Test audio: real scores from music21's corpus rendered with FluidSynth, and synthetic clicks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

CLICK_BPM = 120.0
KICK, SNARE, HIHAT = 36, 38, 42  # General MIDI drum keys


def click_track(seconds: float, sample_rate: int, bpm: float = CLICK_BPM) -> np.ndarray:
    """Short 1 kHz clicks on every beat over a quiet A3 tone, float32 [T]."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = 0.1 * np.sin(2 * np.pi * 220.0 * t)
    click_len = int(0.04 * sample_rate)
    click = np.hanning(click_len) * np.sin(2 * np.pi * 1000.0 * t[:click_len])
    for beat in np.arange(0.0, seconds, 60.0 / bpm):
        i = int(beat * sample_rate)
        n = min(click_len, audio.shape[0] - i)
        audio[i : i + n] += 0.8 * click[:n]
    return audio.astype(np.float32)


def add_drums(midi: pretty_midi.PrettyMIDI, bpm: float) -> None:
    """Add a rock beat (kick on 1 and 3, snare on 2 and 4, eighth-note hi-hats) over the whole piece."""
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="Drums")
    beat = 60.0 / bpm
    end = midi.get_end_time()
    for i, start in enumerate(np.arange(0.0, end, beat)):
        drums.notes.append(pretty_midi.Note(100, KICK if i % 2 == 0 else SNARE, start, start + 0.1))
        for half in (0.0, beat / 2):
            drums.notes.append(pretty_midi.Note(70, HIHAT, start + half, start + half + 0.05))
    midi.instruments.append(drums)


def render_corpus_piece(name: str, path: Path, sample_rate: int, with_drums: bool = False) -> float:
    """Render a music21 corpus piece to a WAV file with FluidSynth; returns its tempo in BPM."""
    import music21

    score = music21.corpus.parse(name)
    midi_path = Path(path).with_suffix(".mid")
    score.write("midi", fp=str(midi_path))
    midi = pretty_midi.PrettyMIDI(str(midi_path))
    bpm = float(midi.get_tempo_changes()[1][0])
    if with_drums:
        add_drums(midi, bpm)
    from utils.render import render_midi

    rendered = render_midi(midi, sample_rate)
    sf.write(str(path), rendered.audio, sample_rate)
    return bpm
