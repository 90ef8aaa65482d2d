"""The products of one piano cover, all written from the cover's notes (nothing is generated twice).

A ``CoverJob`` holds what the model made (notes on the song's beat grid, the tempo) and where the files go.
From it: the tempo-mapped MIDI and a constant-tempo one, the cover rendered on any General MIDI instrument, the
mix with the original, the score (MusicXML, PDF, page pictures; full or Easier) and the falling-notes video.
Every file says it was generated with AI, by which model, in which style, and when. The app's piano tab and the
batch command line both call these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.pop2piano import PianoCover, composer_label
from models.watermark import mark_or_explain
from products.score import ScoreFiles, engrave_notes
from utils.audio import OUTPUT_SAMPLE_RATE, fit_length, load_audio, mix, write_wav
from utils.midi import (
    DEFAULT_INSTRUMENT,
    GridNotes,
    add_text_event,
    check_instrument,
    grid_to_pretty_midi,
    render_midi,
    renderer_in_use,
    tempo_map_midi,
)
from utils.files import safe_name
from utils.progress import Progress
from utils.provenance import Provenance, utc_now

DEFAULT_BALANCE = 0.7  # the mix of a cover with its original: 0 = original only, 1 = cover only


def slug(instrument: str) -> str:
    """An instrument as it appears in file names ("Nylon-string guitar" -> "nylon-string_guitar")."""
    return safe_name(instrument.lower(), empty="x")


@dataclass(frozen=True)
class CoverJob:
    """One cover's notes and where its files go.

    Attributes:
        grid: the notes on the song's half-beat grid.
        bpm: the song's tempo (for the constant-tempo MIDI and the score's tempo mark).
        style: the arranger style, as shown to people (e.g. "Arranger 7").
        model: the checkpoint that made it (hub id or folder).
        stem: the start of every file name (the song's name).
        out: the folder the files go to.
        song_wav: the original song (mono WAV), for mixes and the video's soundtrack.
        duration: the song's length in seconds; audio products are exactly this long.
        created: when the cover was made (ISO 8601 UTC).
        watermark: the watermark model for its audio (hub id, folder, "off"); None: ``$WATERMARK_MODEL``.
    """

    grid: GridNotes
    bpm: float
    style: str
    model: str
    stem: str
    out: Path
    song_wav: Path
    duration: float
    created: str = field(default_factory=utc_now)
    watermark: str | None = None

    def provenance(self, instrument: str = DEFAULT_INSTRUMENT, what: str = "piano cover") -> Provenance:
        settings = f"style {self.style}" + ("" if instrument == DEFAULT_INSTRUMENT else f", played on {instrument}")
        return Provenance(self.model, settings, f"{self.stem} ({what})", self.created)

    def path(self, suffix: str) -> Path:
        return self.out / f"{self.stem}_{suffix}"

    @property
    def song(self) -> str:
        """The song's name as people write it, from the file name ("rag_pop_118bpm" -> "Rag Pop")."""
        return song_title(self.stem)


def song_title(stem: str) -> str:
    """A readable title from a file name: separators become spaces, tempo and take tags go ("118bpm", "v2"), each
    word capitalised ("rag_pop_118bpm" -> "Rag Pop"); "Song" when nothing is left."""
    words = [w for w in re.split(r"[\s_\-]+", stem) if w and not re.fullmatch(r"\d+bpm|v\d+|take\d*", w, re.I)]
    return " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in words) or "Song"


def start_cover(cover: PianoCover, song: np.ndarray, sample_rate: int, model: str, song_path: str | None,
                out: Path, watermark: str | None = None) -> CoverJob:
    """The job of a cover just made: file names from the song's name, and the song [T] at ``sample_rate`` Hz written
    beside the products as ``{stem}_original.wav`` (for mixes and the video's soundtrack)."""
    assert cover.grid is not None
    stem = (Path(song_path).stem[:60] if song_path else "") or "song"
    song_wav = write_wav(out / f"{stem}_original.wav", song, sample_rate)
    return CoverJob(cover.grid, cover.beats.bpm, composer_label(cover.composer), model, stem, out, song_wav,
                    song.shape[0] / sample_rate, watermark=watermark)


@dataclass(frozen=True)
class MidiFiles:
    """``tempo_map``: on the song's beat grid (a tempo per beat); ``constant``: one tempo, for older tools."""

    tempo_map: Path
    constant: Path


def write_midis(job: CoverJob, instrument: str = DEFAULT_INSTRUMENT) -> MidiFiles:
    """Write the cover as MIDI twice: on the song's beat grid, and at one constant tempo; program = instrument."""
    program = check_instrument(instrument)
    text = job.provenance(instrument).text()
    name = slug(instrument)
    tempo_map = tempo_map_midi(job.grid, program, instrument, text=text, title=job.provenance(instrument).title)
    tempo_map_path = job.path(f"{name}.mid")
    tempo_map.save(str(tempo_map_path))
    constant = grid_to_pretty_midi(job.grid, job.bpm, program, instrument)
    add_text_event(constant, text)
    constant_path = job.path(f"{name}_constant_tempo.mid")
    constant.write(str(constant_path))
    return MidiFiles(tempo_map_path, constant_path)


@dataclass(frozen=True)
class AudioFiles:
    """The cover rendered on an instrument (``cover``), its mix with the original (``mix``), how it was rendered."""

    cover: Path
    mix: Path
    renderer: str
    warning: str


def render_cover(job: CoverJob, instrument: str = DEFAULT_INSTRUMENT) -> tuple[Path, str, str]:
    """Render the cover on ``instrument`` as a WAV as long as the song, with the app's watermark (reused when
    already written).

    Returns:
        (WAV path, renderer description, warnings or "": a fallback renderer, no watermark).
    """
    program = check_instrument(instrument)
    path = job.path(f"{slug(instrument)}.wav")
    renderer, soundfont, warning = renderer_in_use()
    if not path.exists():  # FluidSynth runs once per instrument; remixes and videos reuse the WAV
        rendered = render_midi(grid_to_pretty_midi(job.grid, job.bpm, program, instrument), OUTPUT_SAMPLE_RATE)
        audio = fit_length(rendered.audio, int(round(job.duration * OUTPUT_SAMPLE_RATE)))
        audio, unmarked = mark_or_explain(audio, OUTPUT_SAMPLE_RATE, job.watermark)
        write_wav(path, audio, OUTPUT_SAMPLE_RATE, job.provenance(instrument).tags())
        warning = " ".join(w for w in (warning, unmarked) if w)
    return path, renderer + (f" ({soundfont.name})" if soundfont else ""), warning


def write_mix(job: CoverJob, cover_wav: Path, balance: float, instrument: str = DEFAULT_INSTRUMENT) -> Path:
    """The cover mixed with the original song (``balance`` 0 = original only, 1 = cover only), watermarked again:
    the mix weakens the cover's own mark."""
    cover, _ = load_audio(cover_wav, OUTPUT_SAMPLE_RATE)
    song, _ = load_audio(job.song_wav, OUTPUT_SAMPLE_RATE)
    path = job.path(f"{slug(instrument)}_mix_{int(round(balance * 100))}.wav")
    mixed, _ = mark_or_explain(mix(cover, song, balance), OUTPUT_SAMPLE_RATE, job.watermark)
    return write_wav(path, mixed, OUTPUT_SAMPLE_RATE, job.provenance(instrument, "mix").tags())


def write_audio(job: CoverJob, instrument: str = DEFAULT_INSTRUMENT, balance: float = DEFAULT_BALANCE) -> AudioFiles:
    """Render the cover on ``instrument`` and mix it with the original at ``balance``."""
    cover, renderer, warning = render_cover(job, instrument)
    return AudioFiles(cover, write_mix(job, cover, balance, instrument), renderer, warning)


def write_score(job: CoverJob, easier: bool = False, paper: str = "a4") -> ScoreFiles:
    """Engrave the cover for two hands: MusicXML, PDF and page pictures on ``paper`` (A4 or Letter), titled after
    the song with the arranger style below; ``easier`` thins it to 4 notes a hand."""
    what = "piano score, easier" if easier else "piano score"
    title = f"{job.song} — piano arrangement" + (" (easier)" if easier else "")
    return engrave_notes(job.grid, job.bpm, job.path, title, f"{job.style} style", job.provenance(what=what),
                         f"Piano arrangement of {job.song}, {job.style} style, generated with AI", easier, paper)


def write_video(job: CoverJob, instrument: str = DEFAULT_INSTRUMENT, balance: float = 1.0,
                fmt: str = "landscape", progress: Progress | None = None) -> Path:
    """The falling-notes video: the cover on ``instrument`` mixed with the original at ``balance``.

    Args:
        fmt: "landscape" (1280x720) or "vertical" (720x1280, 9:16).
        progress: called with (fraction, message) while frames are written.
    """
    from utils import score, video

    cover, _, _ = render_cover(job, instrument)
    soundtrack = cover if balance >= 1.0 else write_mix(job, cover, balance, instrument)
    hands = score.split_hands(job.grid)
    notes = video.FallingNotes(job.grid.starts, job.grid.ends, job.grid.pitches, job.grid.velocities,
                               hands.right, job.duration, fmt, title=job.song, subtitle=f"Piano · {job.style} style")
    path = job.path(f"{slug(instrument)}_{fmt}.mp4")
    return video.write_video(notes, soundtrack, path, job.provenance(instrument, "falling-notes video").tags(),
                             progress)


__all__ = [
    "AudioFiles",
    "CoverJob",
    "MidiFiles",
    "ScoreFiles",
    "render_cover",
    "start_cover",
    "write_audio",
    "write_midis",
    "write_mix",
    "write_score",
    "write_video",
]
