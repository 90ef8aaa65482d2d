"""The products of one piano cover, all written from the cover's notes (nothing is generated twice).

A ``CoverJob`` holds what the model made (notes on the song's beat grid, the tempo) and where the files go.
From it: the tempo-mapped MIDI and a constant-tempo one, the cover rendered on any General MIDI instrument, the
mix with the original, the score (MusicXML, PDF, page pictures; full or Easier) and the falling-notes video.
Every file says it was generated with AI, by which model, in which style, and when. ``make_cover`` is the whole
job (a song read and checked, the model through the backend, then the files asked for): the piano tab, its MCP tool
and the batch command line all call it, and the tab's later actions (remix, instrument, score, video) call
``write_cover`` on the same job.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.pop2piano import PianoCover, composer_label, read_song
from models.sources import public_name
from products.checking import mark
from products.score import ScoreFiles, engrave_notes
from serving import Backend, backend
from utils.audio import OUTPUT_SAMPLE_RATE, fit_length, load_audio, mix, resample, write_mp3, write_wav
from utils.midi import (
    DEFAULT_INSTRUMENT,
    add_text_event,
    check_instrument,
    grid_to_pretty_midi,
    tempo_map_midi,
)
from utils.notes import GridNotes
from utils.render import render_midi, renderer_in_use
from utils.files import safe_name
from utils.progress import Progress
from utils.provenance import Provenance, utc_now
from utils.words import words

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
        song_wav: the original song (mono WAV) kept beside the products for later mixes and videos (the page's), or
            None when the song is held in memory (``song``) for this one call (the command line's).
        duration: the song's length in seconds; audio products are exactly this long.
        created: when the cover was made (ISO 8601 UTC).
        watermark: the watermark model for its audio (hub id, folder, "off"); None: ``$WATERMARK_MODEL``.
        song: the original song, mono float32 [T] at OUTPUT_SAMPLE_RATE, when it is not kept as a file.
        transcribed: the notes were heard in a piano recording (``style`` names the transcriber), not arranged.
    """

    grid: GridNotes
    bpm: float
    style: str
    model: str
    stem: str
    out: Path
    song_wav: Path | None
    duration: float
    created: str = field(default_factory=utc_now)
    watermark: str | None = None
    song: np.ndarray | None = field(default=None, repr=False, compare=False)
    transcribed: bool = False

    def provenance(self, instrument: str = DEFAULT_INSTRUMENT, what: str = "piano cover") -> Provenance:
        made = f"notes transcribed from the recording by {self.style}" if self.transcribed else f"style {self.style}"
        settings = made + ("" if instrument == DEFAULT_INSTRUMENT else f", played on {instrument}")
        return Provenance(public_name(self.model) or self.model, settings, f"{self.stem} ({what})", self.created)

    @property
    def byline(self) -> str:
        """What the score and the video say under the title: the arranger style, or that it was transcribed."""
        if self.transcribed:
            return words("Transcribed from a piano recording")
        return f"{words(self.style)} {words('style')}"

    def path(self, suffix: str) -> Path:
        return self.out / f"{self.stem}_{suffix}"

    @property
    def title(self) -> str:
        """The song's name as people write it, from the file name ("rag_pop_118bpm" -> "Rag Pop")."""
        return song_title(self.stem)

    def song_audio(self) -> np.ndarray:
        """The original song, mono float32 [T] at OUTPUT_SAMPLE_RATE."""
        if self.song is not None:
            return self.song
        assert self.song_wav is not None
        return load_audio(self.song_wav, OUTPUT_SAMPLE_RATE)[0]


def song_title(stem: str) -> str:
    """A readable title from a file name: separators become spaces, tempo and take tags go ("118bpm", "v2"), each
    word capitalised ("rag_pop_118bpm" -> "Rag Pop"); "Song" when nothing is left."""
    words = [w for w in re.split(r"[\s_\-]+", stem) if w and not re.fullmatch(r"\d+bpm|v\d+|take\d*", w, re.I)]
    return " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in words) or "Song"


def start_cover(cover: PianoCover, song: np.ndarray, sample_rate: int, model: str, song_path: str | None,
                out: Path, watermark: str | None = None, keep_song: bool = True) -> CoverJob:
    """The job of a cover just made, file names from the song's name.

    Args:
        song: the original song [T] at ``sample_rate`` Hz (for mixes and the video's soundtrack).
        keep_song: write it beside the products as ``{stem}_original.wav``, for later actions on the cover (the
            page's remix and video); False holds it in memory for this call only (the command line's).
    """
    assert cover.grid is not None
    stem = (Path(song_path).stem[:60] if song_path else "") or "song"
    duration = song.shape[0] / sample_rate
    if sample_rate != OUTPUT_SAMPLE_RATE:
        song, sample_rate = resample(song, sample_rate, OUTPUT_SAMPLE_RATE), OUTPUT_SAMPLE_RATE
    song_wav = write_wav(out / f"{stem}_original.wav", song, sample_rate) if keep_song else None
    return CoverJob(cover.grid, cover.beats.bpm, composer_label(cover.composer), model, stem, out, song_wav,
                    duration, watermark=watermark, song=None if keep_song else np.asarray(song, dtype=np.float32))


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


AUDIO_FORMATS = ("wav", "mp3")


def _writer(fmt: str):  # noqa: ANN202 - write_wav or write_mp3 (the same arguments)
    if fmt not in AUDIO_FORMATS:
        raise ValueError(f"Unknown audio format {fmt!r}; one of {', '.join(AUDIO_FORMATS)}.")
    return write_mp3 if fmt == "mp3" else write_wav


@dataclass(frozen=True)
class AudioFiles:
    """The cover rendered on an instrument (``cover``), its mix with the original (``mix``), how it was rendered."""

    cover: Path
    mix: Path
    renderer: str
    warning: str


def cover_audio(job: CoverJob, instrument: str = DEFAULT_INSTRUMENT) -> tuple[np.ndarray, str, str]:
    """The cover played on ``instrument``, as long as the song, with the app's watermark: mono float32 [T] at
    OUTPUT_SAMPLE_RATE (read back when its WAV was already written: FluidSynth runs once per instrument).

    Returns:
        (audio, renderer description, warnings or "": a fallback renderer, no watermark).
    """
    program = check_instrument(instrument)
    renderer, soundfont, warning = renderer_in_use()
    label = renderer + (f" ({soundfont.name})" if soundfont else "")
    written = job.path(f"{slug(instrument)}.wav")
    if written.exists():
        return load_audio(written, OUTPUT_SAMPLE_RATE)[0], label, warning
    rendered = render_midi(grid_to_pretty_midi(job.grid, job.bpm, program, instrument), OUTPUT_SAMPLE_RATE)
    audio = fit_length(rendered.audio, int(round(job.duration * OUTPUT_SAMPLE_RATE)))
    audio, unmarked = mark(audio, OUTPUT_SAMPLE_RATE, job.watermark)
    return audio, label, " ".join(w for w in (warning, unmarked) if w)


def render_cover(job: CoverJob, instrument: str = DEFAULT_INSTRUMENT, fmt: str = "wav",
                 rendered: tuple[np.ndarray, str, str] | None = None) -> tuple[Path, str, str]:
    """Write the cover on ``instrument`` (``cover_audio``, or ``rendered`` when the caller has it) as a WAV or MP3;
    returns (path, renderer, warnings)."""
    audio, renderer, warning = rendered or cover_audio(job, instrument)
    path = job.path(f"{slug(instrument)}.{fmt}")
    if not path.exists():
        _writer(fmt)(path, audio, OUTPUT_SAMPLE_RATE, job.provenance(instrument).tags())
    return path, renderer, warning


def mixed_audio(job: CoverJob, cover: np.ndarray, balance: float) -> np.ndarray:
    """The cover [T] mixed with the original song (``balance`` 0 = original only, 1 = cover only), watermarked
    again: the mix weakens the cover's own mark."""
    return mark(mix(cover, job.song_audio(), balance), OUTPUT_SAMPLE_RATE, job.watermark)[0]


def write_mix(job: CoverJob, cover: np.ndarray, balance: float, instrument: str = DEFAULT_INSTRUMENT,
              fmt: str = "wav") -> Path:
    """The cover [T] mixed with the original song at ``balance`` (``mixed_audio``), as a WAV or MP3."""
    path = job.path(f"{slug(instrument)}_mix_{int(round(balance * 100))}.{fmt}")
    return _writer(fmt)(path, mixed_audio(job, cover, balance), OUTPUT_SAMPLE_RATE,
                        job.provenance(instrument, "mix").tags())


def write_audio(job: CoverJob, instrument: str = DEFAULT_INSTRUMENT, balance: float = DEFAULT_BALANCE) -> AudioFiles:
    """Render the cover on ``instrument`` and mix it with the original at ``balance`` (both as WAV)."""
    rendered = cover_audio(job, instrument)
    path, renderer, warning = render_cover(job, instrument, rendered=rendered)
    return AudioFiles(path, write_mix(job, rendered[0], balance, instrument), renderer, warning)


def write_score(job: CoverJob, easier: bool = False, paper: str = "a4", pages: bool = True) -> ScoreFiles:
    """Engrave the cover for two hands: MusicXML, PDF and page pictures on ``paper`` (A4 or Letter), titled after
    the song with the arranger style below; ``easier`` thins it to 4 notes a hand."""
    what = "piano score, easier" if easier else "piano score"
    kind = "piano score" if job.transcribed else "piano arrangement"
    title = f"{job.title} — " + words(kind + (" (easier)" if easier else ""))
    description = (f"Piano score of {job.title}, transcribed from a recording with AI" if job.transcribed
                   else f"Piano arrangement of {job.title}, {job.style} style, generated with AI")
    return engrave_notes(job.grid, job.bpm, job.path, title, job.byline, job.provenance(what=what), description,
                         easier, paper, pages)


def write_video(job: CoverJob, instrument: str = DEFAULT_INSTRUMENT, balance: float = 1.0,
                fmt: str = "landscape", progress: Progress | None = None) -> Path:
    """The falling-notes video: the cover on ``instrument`` mixed with the original at ``balance``; its title card
    names the instrument and the style.

    Args:
        fmt: "landscape" (1280x720) or "vertical" (720x1280, 9:16).
        progress: called with (fraction, message) while frames are written.
    """
    from utils import engraving, video

    if balance <= 0.0:  # the original alone (a recording's own sound under its notes): nothing to render
        soundtrack = mark(job.song_audio(), OUTPUT_SAMPLE_RATE, job.watermark)[0]
    else:
        cover, _, _ = cover_audio(job, instrument)
        soundtrack = cover if balance >= 1.0 else mixed_audio(job, cover, balance)
    hands = engraving.split_hands(job.grid)
    played_on = words("Piano" if instrument == DEFAULT_INSTRUMENT else instrument)
    notes = video.FallingNotes(job.grid.starts, job.grid.ends, job.grid.pitches, job.grid.velocities,
                               hands.right, job.duration, fmt, title=job.title,
                               subtitle=f"{played_on} · {words('transcribed') if job.transcribed else job.byline}")
    path = job.path(f"{slug(instrument)}_{fmt}.mp4")
    return video.encode_video(notes, (soundtrack, OUTPUT_SAMPLE_RATE), path,
                             job.provenance(instrument, "falling-notes video").tags(), progress)


COVER_PRODUCTS = ("midi", "audio", "mix", "score", "pages", "video")  # pages: the score's page pictures
PAGE_COVER_PRODUCTS = ("midi", "audio", "mix", "score", "pages")  # a cover on the page (the video on request)
BATCH_COVER_PRODUCTS = ("midi", "audio")  # the command line's default


@dataclass(frozen=True)
class CoverFiles:
    """What ``write_cover`` wrote; None for a product not asked for."""

    midis: MidiFiles | None = None
    audio: Path | None = None
    mix: Path | None = None
    score: ScoreFiles | None = None
    video: Path | None = None
    renderer: str = ""
    warning: str = ""

    @property
    def files(self) -> list[Path]:
        """Every file written, in the products' order."""
        found: list[Path] = []
        if self.midis is not None:
            found += [self.midis.tempo_map, self.midis.constant]
        found += [f for f in (self.audio, self.mix) if f is not None]
        if self.score is not None:
            found += [self.score.musicxml, self.score.pdf, *self.score.pages]
        return found + ([self.video] if self.video is not None else [])


def check_products(products: Iterable[str], known: tuple[str, ...]) -> set[str]:
    """The products asked for, checked against ``known``; raises ValueError naming the unknown ones."""
    asked = set(products)
    unknown = sorted(asked - set(known))
    if unknown:
        raise ValueError(f"Unknown product(s) {', '.join(unknown)}; choose from {', '.join(known)}.")
    return asked


def write_cover(job: CoverJob, products: Iterable[str], instrument: str = DEFAULT_INSTRUMENT,
                balance: float = DEFAULT_BALANCE, easier: bool = False, paper: str = "a4",
                video_format: str = "landscape", audio_format: str = "wav", video_balance: float | None = None,
                progress: Progress | None = None) -> CoverFiles:
    """Write the products of a cover named in ``products`` (of COVER_PRODUCTS), and nothing else: the page, the API
    and the command line all call this.

    Args:
        products: "midi" (tempo-mapped and constant-tempo), "audio" (the cover on ``instrument``), "mix" (with the
            original at ``balance``), "score" (MusicXML + PDF on ``paper``, Easier with ``easier``), "pages" (the
            score's page pictures), "video" (falling notes, ``video_format``, soundtrack at ``video_balance``, or
            ``balance``).
        audio_format: "wav" or "mp3" for the audio and the mix.

    Raises:
        ValueError: an unknown product, instrument, format or paper.
    """
    asked = check_products(products, COVER_PRODUCTS)
    _writer(audio_format)
    midis = write_midis(job, instrument) if "midi" in asked else None
    audio_path = mix_path = None
    renderer = warning = ""
    if asked & {"audio", "mix"}:
        cover, renderer, warning = rendered = cover_audio(job, instrument)  # FluidSynth and the mark, once
        if "audio" in asked:
            audio_path, _, _ = render_cover(job, instrument, audio_format, rendered)
        if "mix" in asked:
            mix_path = write_mix(job, cover, float(balance), instrument, audio_format)
    score = write_score(job, bool(easier), paper, pages="pages" in asked) if asked & {"score", "pages"} else None
    video = None
    if "video" in asked:
        video = write_video(job, instrument, float(balance if video_balance is None else video_balance),
                            video_format, progress)
    return CoverFiles(midis, audio_path, mix_path, score, video, renderer, warning)



def make_cover(model: str, song_path: str | None, style: str, out: Path, products: Iterable[str] = PAGE_COVER_PRODUCTS,
               *, instrument: str = DEFAULT_INSTRUMENT, balance: float = DEFAULT_BALANCE, easier: bool = False,
               paper: str = "a4", video_format: str = "landscape", audio_format: str = "wav",
               video_balance: float | None = None, max_seconds: float | None = None, watermark: str | None = None,
               keep_song: bool = True, cancel: threading.Event | None = None, progress: Progress | None = None,
               through: Backend | None = None) -> tuple[PianoCover, CoverJob, CoverFiles]:
    """One piano cover, for every caller (the page, its MCP tool, the command line): the song at ``song_path``
    read and checked (at most ``max_seconds``), arranged by the Pop2Piano model ``model`` in ``style`` through the
    backend (it stops at its next decode step once ``cancel`` is set), then the ``products`` written into ``out``
    (the arguments as ``write_cover``'s; ``keep_song`` as ``start_cover``'s).

    Returns:
        (the cover, its job for later products, the files written).

    Raises:
        ValueError: a song the model cannot take, or an unknown product, instrument, format or paper.
    """
    song, rate = read_song(song_path, max_seconds)
    cover = (through or backend()).cover(model, song, rate, style, cancel=cancel, progress=progress)
    if progress is not None:
        progress(0.93, "Writing the MIDI and rendering the audio")
    job = start_cover(cover, song, rate, model, song_path, out, watermark, keep_song=keep_song)
    made = write_cover(job, products, instrument, balance, easier, paper, video_format, audio_format, video_balance)
    return cover, job, made

__all__ = [
    "AUDIO_FORMATS",
    "BATCH_COVER_PRODUCTS",
    "COVER_PRODUCTS",
    "PAGE_COVER_PRODUCTS",
    "AudioFiles",
    "CoverFiles",
    "CoverJob",
    "MidiFiles",
    "make_cover",
    "ScoreFiles",
    "render_cover",
    "start_cover",
    "write_audio",
    "write_cover",
    "write_midis",
    "write_mix",
    "write_score",
    "write_video",
]
