"""MIDI (and sheet music) of any music the app made: the notes basic-pitch hears in it, placed on the beats the beat
tracker finds, written with the same tempo-mapped MIDI writer and engraver as the piano cover's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.transcription import TRANSCRIBER_LABEL, Notes
from products.score import ScoreFiles, engrave_notes
from utils.audio import load_audio, read_tags
from utils.beats import track_beats
from utils.midi import tempo_map_midi
from utils.notes import STEPS_PER_BEAT, GridNotes
from utils.provenance import Provenance

STEADY_BPM = 120.0  # the grid when no steady beat is found (a free-time piece)


@dataclass(frozen=True)
class MusicMidi:
    """What ``write_music_midi`` wrote.

    Attributes:
        midi: the tempo-mapped MIDI (a tempo event per tracked beat; notes on the half-beat grid).
        score: the engraved score, or None when not asked for or no notes were heard.
        notes: how many notes the MIDI holds.
        bpm: the piece's tempo.
        note: a remark for the user ("" when none), e.g. no steady beat was found.
    """

    midi: Path | None
    score: ScoreFiles | None
    notes: int
    bpm: float
    note: str = ""

    @property
    def downloads(self) -> list[Path]:
        """The MIDI (when written), then the score's MusicXML and PDF when engraved."""
        return [*([self.midi] if self.midi else []), *([self.score.musicxml, self.score.pdf] if self.score else [])]


def beat_steps(beats: np.ndarray, duration: float) -> np.ndarray:
    """The half-beat grid [S] in seconds from tracked ``beats`` [N] (N >= 2): the beats and the points halfway,
    extended at the tempo of the first beat back to the start (the first step at 0 <= t < one beat) and at the
    tempo of the last beat past ``duration`` (seconds)."""
    beats = np.asarray(beats, dtype=np.float64)
    first, last = beats[1] - beats[0], beats[-1] - beats[-2]
    before = int(np.floor(beats[0] / first)) if first > 0 else 0
    after = int(np.ceil(max(0.0, duration - beats[-1]) / last)) + 1 if last > 0 else 1
    grid = np.concatenate([beats[0] - first * np.arange(before, 0, -1), beats,
                           beats[-1] + last * np.arange(1, after + 1)])
    positions = np.arange((grid.shape[0] - 1) * STEPS_PER_BEAT + 1) / STEPS_PER_BEAT
    return np.interp(positions, np.arange(grid.shape[0]), grid)


def notes_on_grid(notes: Notes, step_times: np.ndarray) -> GridNotes:
    """``notes`` (seconds) moved to the nearest half-beat steps of ``step_times``; each lasts at least a step."""
    index = np.arange(step_times.shape[0], dtype=np.float64)
    onsets = np.round(np.interp(notes.starts, step_times, index)).astype(np.int64)
    offsets = np.maximum(np.round(np.interp(notes.ends, step_times, index)).astype(np.int64), onsets + 1)
    table = np.stack([onsets, offsets, notes.pitches, notes.velocities], axis=1) if len(notes) else np.zeros((0, 4))
    return GridNotes.from_steps(table, step_times)


def transcribe(path: str | Path) -> tuple[GridNotes, float, str]:
    """The notes of an audio file on its beat grid (``transcribe_audio``).

    Raises:
        ValueError: the file is not audio.
        ModelLoadError: the transcriber is not installed.
    """
    audio, rate = load_audio(path)  # once, at its own rate: basic-pitch and the beat tracker each resample it
    return transcribe_audio(audio, rate)


def transcribe_audio(audio: np.ndarray, rate: int) -> tuple[GridNotes, float, str]:
    """The notes basic-pitch hears in mono ``audio`` [T] at ``rate`` Hz, on its beat grid (``notes_on_beats``).

    Raises:
        ModelLoadError: the transcriber is not installed.
    """
    from serving import backend

    return notes_on_beats(backend().music_notes(audio, rate), audio, rate)


def notes_on_beats(notes: Notes, audio: np.ndarray, rate: int) -> tuple[GridNotes, float, str]:
    """``notes`` heard in mono ``audio`` [T] at ``rate`` Hz, placed on the beats tracked in it (a plain grid when
    it has no steady beat).

    Returns:
        (notes, tempo in bpm, a note for the user or "").
    """
    duration = audio.shape[0] / rate
    note = ""
    try:
        beats = track_beats(audio, rate)
        bpm, times = beats.bpm, beats.times
    except ValueError:  # no steady beat: a free-time piece gets a plain grid
        bpm = STEADY_BPM
        times = np.arange(0.0, duration + 60.0 / bpm, 60.0 / bpm)
        note = f"No steady beat was found, so the notes sit on a plain {STEADY_BPM:.0f} bpm grid."
    return notes_on_grid(notes, beat_steps(times, duration)), float(bpm), note


def score_title(stem: str) -> str:
    """A score's title from a result's file name: "lo-fi_hip_hop_seed42_v2" -> "Lo-fi hip hop (variant 2)"."""
    found = re.fullmatch(r"(.*?)_?seed\d+(?:_v(\d+))?", stem)
    words, variant = (found.group(1), found.group(2)) if found else (stem, None)
    title = words.replace("_", " ").strip().capitalize() or "Music"
    return title + (f" (variant {variant})" if variant else "")


def write_notes(audio: np.ndarray, rate: int, out: Path, stem: str, source: str, made_from: str = "",
                midi: bool = True, score: bool = True, paper: str = "a4", pages: bool = True) -> MusicMidi:
    """Transcribe mono ``audio`` [T] at ``rate`` Hz and write ``{stem}_notes.mid`` (tempo-mapped, with ``midi``) and
    its score (with ``score``; page pictures with ``pages``).

    Args:
        source: what the notes were heard in, for the files' credits (a file name).
        made_from: how that audio was made (its own credit line), or "".
    """
    grid, bpm, note = transcribe_audio(audio, rate)
    settings = f"notes transcribed by {TRANSCRIBER_LABEL} from “{source}”" + (f" ({made_from})" if made_from else "")
    provenance = Provenance(TRANSCRIBER_LABEL, settings, f"{stem} (notes)")
    midi_path = None
    if midi:
        midi_path = out / f"{stem}_notes.mid"
        tempo_map_midi(grid, 0, "Notes", text=provenance.text(), title=provenance.title).save(str(midi_path))
    engraved = None
    if score and len(grid):
        engraved = engrave_notes(grid, bpm, lambda suffix: out / f"{stem}_{suffix}", f"{score_title(stem)} — notes",
                                 "Transcribed from generated audio", provenance,
                                 f"Notes of {source}, transcribed with AI", paper=paper, pages=pages)
    elif not len(grid):
        note = (note + " " if note else "") + "No notes were heard in this audio."
    return MusicMidi(midi_path, engraved, len(grid), bpm, note)


def write_music_midi(path: str | Path, out: Path, stem: str, score: bool = True, paper: str = "a4") -> MusicMidi:
    """Transcribe a piece of music into ``{stem}_notes.mid`` (tempo-mapped) and, with ``score``, engrave it.

    Args:
        path: the audio (a MusicGen result's WAV; any audio file works).
        out: the folder the files go to.
        stem: the start of the file names.
        paper: "a4" or "letter" for the score.
    """
    audio, rate = load_audio(path)  # once, at its own rate: basic-pitch and the beat tracker each resample it
    made_from = read_tags(path).get("comment", "") if Path(path).suffix.lower() == ".wav" else ""
    return write_notes(audio, rate, out, stem, Path(path).name, made_from, score=score, paper=paper)
