"""Writing MIDI: the tempo-mapped file on a song's beats, a constant-tempo one, instruments, text events."""

from __future__ import annotations

import logging

from typing import Any

import mido
import numpy as np
import pretty_midi

from utils.notes import BEATS_PER_BAR, STEPS_PER_BEAT, GridNotes, fold_into_piano_range

logger = logging.getLogger(__name__)

MIDI_RESOLUTION = 480  # ticks per quarter note (= per beat) in written files
PIANO_PROGRAM = 0  # General MIDI "Acoustic Grand Piano"
MIN_PICKUP_S = 1e-3  # a first beat later than this gets pickup beats before it in the tempo-mapped file
# General MIDI instruments offered for the cover (name -> program number, 0-based).
INSTRUMENTS: dict[str, int] = {
    "Acoustic grand piano": 0,
    "Bright piano": 1,
    "Electric piano": 4,
    "Harpsichord": 6,
    "Music box": 10,
    "Vibraphone": 11,
    "Marimba": 12,
    "Church organ": 19,
    "Nylon-string guitar": 24,
    "Steel-string guitar": 25,
    "Harp": 46,
    "Strings": 48,
    "Choir": 52,
    "Flute": 73,
    "Warm synth pad": 89,
}
DEFAULT_INSTRUMENT = "Acoustic grand piano"


def notes_of(midi: pretty_midi.PrettyMIDI) -> list[pretty_midi.Note]:
    """All notes of all non-drum instruments, sorted by start time."""
    notes = [n for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def check_instrument(name: str) -> int:
    """The General MIDI program of an instrument choice; raises ValueError for an unknown one."""
    if name not in INSTRUMENTS:
        raise ValueError(f"Unknown instrument {name!r}; choose one of: {', '.join(INSTRUMENTS)}.")
    return INSTRUMENTS[name]


def piano_midi(
    notes: list[pretty_midi.Note], bpm: float, program: int = PIANO_PROGRAM, name: str = "Piano"
) -> pretty_midi.PrettyMIDI:
    """A one-track MIDI holding ``notes`` (times in seconds) with one constant tempo ``bpm``.

    The tempo makes the file line up with the song's beats when dropped into a DAW at that tempo (drifting where
    the song's tempo moves; ``tempo_map_midi`` follows every beat). Notes off the 88 keys are moved by octaves
    onto them, so the cover can be played on a real piano. ``program`` is the General MIDI instrument.
    """
    if not 1.0 <= bpm <= 1000.0:
        raise ValueError(f"A tempo of {bpm} BPM is not plausible.")
    midi = pretty_midi.PrettyMIDI(resolution=MIDI_RESOLUTION, initial_tempo=float(bpm))
    piano = pretty_midi.Instrument(program=program, name=name)
    piano.notes = [
        pretty_midi.Note(
            velocity=int(n.velocity), pitch=fold_into_piano_range(int(n.pitch)), start=float(n.start), end=float(n.end)
        )
        for n in notes
    ]
    midi.instruments.append(piano)
    midi.remove_invalid_notes()
    return midi


def grid_to_pretty_midi(grid: GridNotes, bpm: float, program: int = PIANO_PROGRAM, name: str = "Piano"
                        ) -> pretty_midi.PrettyMIDI:
    """The grid's notes in seconds with one constant tempo (for rendering, pictures and tools without tempo maps)."""
    notes = [
        pretty_midi.Note(velocity=int(v), pitch=int(p), start=float(s), end=float(e))
        for s, e, p, v in zip(grid.starts, grid.ends, grid.pitches, grid.velocities)
    ]
    return piano_midi(notes, bpm, program, name)


def pickup_beats(grid: GridNotes) -> int:
    """Beats before the first tracked beat in the tempo-mapped file (0 when the song starts on a beat).

    As many beats of the song's opening tempo as fit before the first beat (at least one), so the file's time 0
    is the song's time 0 and bar lines land on the tracked downbeats.
    """
    lead = grid.first_beat
    if lead < MIN_PICKUP_S:
        return 0
    first = grid.beat_times(2)
    beat = float(first[1] - first[0]) if first.shape[0] > 1 and first[1] > first[0] else 0.5
    return max(1, int(round(lead / beat)))


def tempo_map_midi(grid: GridNotes, program: int = PIANO_PROGRAM, name: str = "Piano", text: str = "",
                   title: str = "") -> mido.MidiFile:
    """A MIDI file on the song's own beat grid: a tempo event per beat, notes on the half-beat grid.

    The song's beat grid here is ``P`` pickup beats from the song's start to its first tracked beat (see
    ``pickup_beats``), then the tracked beats: beat ``i`` of it sits at tick ``i * MIDI_RESOLUTION``, so tracked
    beat ``j`` is at tick ``(P + j) * MIDI_RESOLUTION``, and every note starts and ends on a multiple of
    ``MIDI_RESOLUTION / 2``. Each beat's tempo is set from the beat's length in seconds, rounded so that the
    error never adds up (every beat lands within 0.5 µs of its time): the notes sound at the same seconds as in
    ``grid_to_pretty_midi``. Time signatures: a pickup bar of ``P mod 4`` beats when there is one, then 4/4.

    Args:
        grid: the notes and their step times.
        program: General MIDI program (0 = acoustic grand piano).
        name: the track's name.
        text: a text meta event (provenance).
        title: the sequence's name.
    """
    ticks_per_step = MIDI_RESOLUTION // STEPS_PER_BEAT
    pickup = pickup_beats(grid)
    # every beat of the grid (the song's tracked beats, which outlast its last note when notes are cut at the end)
    last_step = int(max(grid.offsets.max(initial=0), grid.step_times.shape[0] - 1, 1))
    n_beats = -(-last_step // STEPS_PER_BEAT) + 1  # grid beats up to the last step, plus the one after
    beats = grid.beat_times(n_beats)
    lead = grid.first_beat if pickup else 0.0
    times = np.concatenate([np.arange(pickup) * (lead / max(pickup, 1)), beats if pickup else beats - beats[0]])
    micros = np.round(times * 1e6).astype(np.int64)
    tempos = np.diff(micros)  # µs per beat, beat by beat

    conductor = mido.MidiTrack()
    if title:
        conductor.append(mido.MetaMessage("track_name", name=midi_text(title), time=0))
    if text:
        conductor.append(mido.MetaMessage("text", text=midi_text(text), time=0))
    events: list[tuple[int, int, mido.MetaMessage]] = []  # (tick, order, message)
    partial = pickup % BEATS_PER_BAR
    if partial:
        events.append((0, 0, mido.MetaMessage("time_signature", numerator=partial, denominator=4)))
    events.append((partial * MIDI_RESOLUTION, 0,
                   mido.MetaMessage("time_signature", numerator=BEATS_PER_BAR, denominator=4)))
    for beat, tempo in enumerate(tempos):
        events.append((beat * MIDI_RESOLUTION, 1, mido.MetaMessage("set_tempo", tempo=int(max(1, tempo)))))
    _append_absolute(conductor, events)

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    notes: list[tuple[int, int, mido.Message]] = [(0, 0, mido.Message("program_change", program=program, time=0))]
    offset = pickup * MIDI_RESOLUTION
    for on, off, pitch, velocity in zip(grid.onsets, grid.offsets, grid.pitches, grid.velocities):
        notes.append((offset + int(off) * ticks_per_step, 1, mido.Message("note_off", note=int(pitch), velocity=0)))
        notes.append((offset + int(on) * ticks_per_step, 2,
                      mido.Message("note_on", note=int(pitch), velocity=int(velocity))))
    _append_absolute(track, notes)
    midi = mido.MidiFile(ticks_per_beat=MIDI_RESOLUTION, type=1)
    midi.tracks.extend([conductor, track])
    return midi


def _append_absolute(track: mido.MidiTrack, events: list[tuple[int, int, Any]]) -> None:
    """Append (absolute tick, order, message) events to ``track`` with delta times; then end the track."""
    now = 0
    for tick, _order, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))


def midi_text(text: str) -> str:
    """``text`` as a MIDI meta event can hold it (Latin-1): curly quotes become straight, other characters "?"."""
    text = text.translate(str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "—": "-", "·": "-"}))
    return text.encode("latin-1", "replace").decode("latin-1")


def add_text_event(midi: pretty_midi.PrettyMIDI, text: str) -> None:
    """Add a text meta event (provenance) at time 0 of a PrettyMIDI (written with the file)."""
    midi.text_events.append(pretty_midi.Text(midi_text(text), 0.0))
