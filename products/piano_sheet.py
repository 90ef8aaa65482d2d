"""Sheet music of a piano recording: the notes Transkun hears in it, placed on the beats tracked in it, then written
by the cover's own writers (the tempo-mapped MIDI, MusicXML and PDF for two hands, Easier, the falling-notes video).
``make_sheet_music`` is the whole job (the recording read and checked, the notes heard through the backend, then the
files), for the page, its MCP tool and the command line alike."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.piano_transcription import LABEL
from models.pop2piano import MIN_SONG_SECONDS, default_max_song_seconds
from models.transcription import Notes
from products.music_midi import notes_on_beats
from products.piano import CoverFiles, CoverJob, check_products, write_cover
from serving import Backend, backend
from utils.audio import (
    OUTPUT_SAMPLE_RATE,
    audio_duration,
    check_duration,
    check_not_silent,
    load_audio,
    resample,
    write_wav,
)
from utils.beats import percussive_share
from utils.progress import Progress

SHEET_PRODUCTS = ("midi", "score", "pages", "video")  # pages: the score's page pictures
PAGE_SHEET_PRODUCTS = ("midi", "score", "pages")  # on the page (the video on request, as for a cover)
BATCH_SHEET_PRODUCTS = ("midi", "score")  # the command line's default
# Over this share of percussive energy (drums, claps), a recording is not solo piano: its sheet music is made, with a
# warning. Measured (utils.beats.percussive_share) on three corpus pieces rendered by FluidSynth: on the piano alone
# 0.038, 0.040 and 0.069; the same with the examples' pop drums 0.323, 0.302 and 0.140. Real piano recordings were
# not at hand: their hammers may read higher than a SoundFont's.
NOT_PIANO_SHARE = 0.11
NOT_PIANO_WARNING = ("This does not sound like a piano alone (there are drums or other percussion), so the notes may "
                     "be wrong. For a song, “Make a piano cover” arranges it for piano instead.")
NO_NOTES = "No piano notes were heard in this recording."


@dataclass(frozen=True)
class SheetMusic:
    """A recording's sheet music: its job (for later actions: Easier, paper, video), the files written, and what
    the page says of them."""

    job: CoverJob
    files: CoverFiles
    notes: int
    bpm: float
    warnings: list[str]


def sheet_music(notes: Notes, audio: np.ndarray, sample_rate: int, song_path: str | None, out: Path,
                products: Iterable[str] = PAGE_SHEET_PRODUCTS, easier: bool = False, paper: str = "a4",
                video_format: str = "landscape", transcriber: str = LABEL, watermark: str | None = None,
                keep_song: bool = True, progress: Progress | None = None) -> SheetMusic:
    """The sheet music of a piano recording from the notes heard in it, its products named in ``products`` (of
    SHEET_PRODUCTS).

    Args:
        notes: what the piano transcriber heard (``Backend.piano_notes``, as ``make_sheet_music`` asks it).
        audio: the recording, mono float32 [T] at ``sample_rate`` Hz.
        song_path: its file (names the files), or None.
        transcriber: the weights the notes came from, for the files' credits.
        keep_song: keep the recording beside the products for later actions (the page); False for one call.

    Raises:
        ValueError: an unknown product, paper or format, or no notes heard.
    """
    report = progress or (lambda fraction, message: None)
    asked = check_products(products, SHEET_PRODUCTS)
    if not len(notes):
        raise ValueError(NO_NOTES)
    report(0.7, "Finding the beats")
    grid, bpm, note = notes_on_beats(notes, audio, sample_rate)
    warnings = [w for w in (note, NOT_PIANO_WARNING if percussive_share(audio, sample_rate) > NOT_PIANO_SHARE
                            else "") if w]
    song = resample(audio, sample_rate, OUTPUT_SAMPLE_RATE)
    stem = (Path(song_path).stem[:60] if song_path else "") or "recording"
    song_wav = write_wav(out / f"{stem}_original.wav", song, OUTPUT_SAMPLE_RATE) if keep_song else None
    job = CoverJob(grid, bpm, LABEL, transcriber, stem, out, song_wav,
                   song.shape[0] / OUTPUT_SAMPLE_RATE, watermark=watermark,
                   song=None if keep_song else song, transcribed=True)
    report(0.85, "Writing the MIDI and engraving the score")
    files = write_cover(job, asked, easier=easier, paper=paper, video_format=video_format, video_balance=0.0,
                        progress=progress)
    return SheetMusic(job, files, len(grid), bpm, warnings)


def make_sheet_music(model: str, recording_path: str | None, out: Path, products: Iterable[str] = PAGE_SHEET_PRODUCTS,
                     *, easier: bool = False, paper: str = "a4", video_format: str = "landscape",
                     max_seconds: float | None = None, watermark: str | None = None, keep_song: bool = True,
                     cancel: threading.Event | None = None, progress: Progress | None = None,
                     through: Backend | None = None) -> tuple[Notes, SheetMusic]:
    """One recording's sheet music, for every caller (the page, its MCP tool, the command line): the recording
    read and checked (``MIN_SONG_SECONDS`` to ``max_seconds``, None: the songs' limit; not silent), its notes heard by the piano
    transcriber ``model`` through the backend (it stops at its next segment once ``cancel`` is set), then
    ``sheet_music``'s files (its other arguments).

    Returns:
        (the notes heard, the sheet music written).

    Raises:
        ValueError: no recording, one too short, too long or silent, no notes heard, or an unknown product, paper
            or format.
    """
    if not recording_path:
        raise ValueError("Upload or record a piano recording first.")
    limit = default_max_song_seconds() if max_seconds is None else max_seconds
    check_duration(audio_duration(recording_path), MIN_SONG_SECONDS, limit)
    audio, rate = load_audio(recording_path)
    check_not_silent(audio, Path(recording_path).name)
    notes = (through or backend()).piano_notes(model, audio, rate, cancel=cancel, progress=progress)
    if progress is not None:
        progress(0.75, "Finding the beats and engraving the score")
    made = sheet_music(notes, audio, rate, recording_path, out, products, easier, paper, video_format,
                       transcriber=model, watermark=watermark, keep_song=keep_song)
    return notes, made
