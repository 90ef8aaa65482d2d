"""Sheet music of a piano recording: the notes Transkun hears in it, placed on the beats tracked in it, then written
by the cover's own writers (the tempo-mapped MIDI, MusicXML and PDF for two hands, Easier, the falling-notes video)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.piano_transcription import LABEL
from models.transcription import Notes
from products.music_midi import notes_on_beats
from products.piano import CoverFiles, CoverJob, check_products, write_cover
from utils.audio import OUTPUT_SAMPLE_RATE, resample, write_wav
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
        notes: what the piano transcriber heard (``load_model("piano_transcriber").notes``).
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
