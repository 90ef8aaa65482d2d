"""MIDI helpers: tempo, SoundFont discovery and rendering to audio with FluidSynth."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from typing import Any

import mido
import numpy as np
import pretty_midi

from utils.audio import OUTPUT_SAMPLE_RATE

logger = logging.getLogger(__name__)

SOUNDFONT_ENV_VAR = "SOUNDFONT"
# Better General MIDI SoundFonts, in order of preference, where Debian/Ubuntu packages put them
# (fluid-soundfont-gm, musescore-general-soundfont*, timgm6mb-soundfont).
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
)
BUNDLED_SOUNDFONT = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"  # shipped with pretty_midi
MIDI_RESOLUTION = 480  # ticks per quarter note (= per beat) in written files
PIANO_PROGRAM = 0  # General MIDI "Acoustic Grand Piano"
PIANO_PITCH_RANGE = (21, 108)  # A0..C8, the 88 keys
STEPS_PER_BEAT = 2  # Pop2Piano's time steps are half-beats of the tracked beat grid
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")  # pitch classes from C
BEATS_PER_BAR = 4  # Pop2Piano arranges in four-beat bars from the first tracked beat
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


def find_soundfont() -> Path:
    """The SoundFont to render with: ``$SOUNDFONT``, else a system GM SoundFont, else pretty_midi's own."""
    override = os.environ.get(SOUNDFONT_ENV_VAR, "").strip()
    if override:
        if Path(override).is_file():
            return Path(override)
        logger.warning("%s=%s is not a file; using the default SoundFont instead.", SOUNDFONT_ENV_VAR, override)
    for candidate in SYSTEM_SOUNDFONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    return BUNDLED_SOUNDFONT


def fluidsynth_available() -> bool:
    """Whether pyfluidsynth and the FluidSynth library it wraps can be loaded."""
    try:
        import fluidsynth  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError or OSError from the shared library loader
        return False
    return True


@dataclass(frozen=True)
class Rendered:
    """Rendered MIDI.

    Attributes:
        audio: mono float32 [T], peak-normalised to 0.9.
        sample_rate: Hz.
        renderer: "fluidsynth" or "sine" (the fallback).
        soundfont: SoundFont used, or None for the fallback.
        warning: a note for the user when the fallback was used, else "".
    """

    audio: np.ndarray
    sample_rate: int
    renderer: str
    soundfont: Path | None
    warning: str = ""


FLUIDSYNTH_MISSING_WARNING = (
    "FluidSynth is not installed, so the piano was rendered with plain sine tones. Install it with "
    "`apt-get install libfluidsynth3` (Debian/Ubuntu) or `brew install fluid-synth` (macOS) for a real piano."
)


def renderer_in_use(soundfont: str | Path | None = None) -> tuple[str, Path | None, str]:
    """What ``render_midi`` renders with here: ("fluidsynth", SoundFont, "") or ("sine", None, warning)."""
    if fluidsynth_available():
        return "fluidsynth", Path(soundfont) if soundfont else find_soundfont(), ""
    return "sine", None, FLUIDSYNTH_MISSING_WARNING


def render_midi(
    midi: pretty_midi.PrettyMIDI, sample_rate: int = OUTPUT_SAMPLE_RATE, soundfont: str | Path | None = None
) -> Rendered:
    """Render ``midi`` to mono audio with FluidSynth and a General MIDI SoundFont.

    Falls back, with a warning, to pretty_midi's sine synthesis when FluidSynth cannot be loaded.
    """
    from utils.audio import normalize_peak

    renderer, sf2, warning = renderer_in_use(soundfont)
    if sf2 is not None:
        try:
            audio = midi.fluidsynth(fs=sample_rate, sf2_path=str(sf2))
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(f"FluidSynth failed to render the MIDI with SoundFont {sf2}: {e}") from e
        return Rendered(normalize_peak(audio.astype(np.float32)), sample_rate, renderer, sf2)
    logger.warning(warning)
    audio = midi.synthesize(fs=sample_rate) if midi.instruments else np.zeros(0)
    return Rendered(normalize_peak(audio.astype(np.float32)), sample_rate, renderer, None, warning)


def notes_of(midi: pretty_midi.PrettyMIDI) -> list[pretty_midi.Note]:
    """All notes of all non-drum instruments, sorted by start time."""
    notes = [n for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def fold_into_piano_range(pitch: int) -> int:
    """Move ``pitch`` by whole octaves onto the 88 keys (A0..C8), keeping its pitch class."""
    low, high = PIANO_PITCH_RANGE
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


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


# ------------------------------------------------------------------------------------- notes on a beat grid
@dataclass(frozen=True)
class GridNotes:
    """Notes placed on the song's beat grid, as Pop2Piano makes them.

    Attributes:
        onsets: [N] int, the step each note starts on (steps are half-beats; step 0 is the first tracked beat).
        offsets: [N] int, the step each note ends on (> onset).
        pitches: [N] int, MIDI pitches on the 88 keys.
        velocities: [N] int, 1..127.
        step_times: [S] float, the time in seconds of each step (linear between tracked beats, extended at the
            end by the last beat's length), covering every onset and offset.
    """

    onsets: np.ndarray
    offsets: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray
    step_times: np.ndarray

    def __len__(self) -> int:
        return int(self.onsets.shape[0])

    def time_of(self, steps: np.ndarray) -> np.ndarray:
        """Seconds of ``steps`` (ints), past the last step extended by the last step's length."""
        steps = np.asarray(steps, dtype=np.int64)
        last = self.step_times.shape[0] - 1
        inside = np.minimum(steps, last)
        step = self.step_times[-1] - self.step_times[-2] if last > 0 else 0.25
        return self.step_times[inside] + (steps - inside) * step

    @property
    def starts(self) -> np.ndarray:
        """[N] onset times in seconds."""
        return self.time_of(self.onsets)

    @property
    def ends(self) -> np.ndarray:
        """[N] offset times in seconds."""
        return self.time_of(self.offsets)

    @property
    def first_beat(self) -> float:
        """Seconds from the start of the song to the first tracked beat (step 0)."""
        return float(self.step_times[0])

    def beat_times(self, n_beats: int) -> np.ndarray:
        """[n_beats] seconds of beats 0..n_beats-1 of the grid, extended linearly past its last step."""
        return self.time_of(np.arange(n_beats) * STEPS_PER_BEAT)

    @classmethod
    def from_steps(cls, notes: np.ndarray, step_times: np.ndarray) -> GridNotes:
        """From Pop2Piano's decoded notes [N, 4] (onset step, offset step, pitch, velocity) and the step times.

        Pitches off the 88 keys move by octaves onto them; notes that do not end after they start are dropped
        (as ``PrettyMIDI.remove_invalid_notes`` drops them from the reference output).
        """
        notes = np.array(notes, dtype=np.int64).reshape(-1, 4)
        if notes.shape[0] == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty, np.asarray(step_times, float))
        notes[:, 2] = [fold_into_piano_range(int(p)) for p in notes[:, 2]]
        notes = notes[notes[:, 1] > notes[:, 0]]
        # One key cannot sound twice at once: a note ends where the next one on its key starts (chunks overlap
        # at their edges, and folding octaves can land two notes on one key).
        notes = notes[np.lexsort((notes[:, 0], notes[:, 2]))]
        same_key_next = np.r_[notes[1:, 2] == notes[:-1, 2], False]
        next_onset = np.r_[notes[1:, 0], 0]
        notes[same_key_next, 1] = np.minimum(notes[same_key_next, 1], next_onset[same_key_next])
        notes = notes[notes[:, 1] > notes[:, 0]]
        notes = notes[np.lexsort((notes[:, 2], notes[:, 0]))]
        return cls(notes[:, 0], notes[:, 1], notes[:, 2], np.clip(notes[:, 3], 1, 127), np.asarray(step_times, float))

    def cut_at(self, seconds: float) -> GridNotes:
        """The notes that sound before ``seconds`` (the song's end), each ending by then: notes starting later are
        dropped, and a note held past it ends on the last grid step at or before it."""
        if len(self) == 0:
            return self
        times = self.time_of(np.arange(int(self.offsets.max()) + 1))
        last = int(np.searchsorted(times, seconds, side="right")) - 1  # the last step at or before ``seconds``
        offsets = np.minimum(self.offsets, last)
        keep = offsets > self.onsets
        return GridNotes(self.onsets[keep], offsets[keep], self.pitches[keep], self.velocities[keep],
                         self.step_times)

    def subset(self, keep: np.ndarray) -> GridNotes:
        """The notes where the boolean mask ``keep`` [N] is True, on the same grid."""
        return GridNotes(self.onsets[keep], self.offsets[keep], self.pitches[keep], self.velocities[keep],
                         self.step_times)


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
