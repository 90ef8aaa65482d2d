"""Music from a prompt or a melody, for the page, the MCP tools and the command line alike: ``make_music`` is the
job (its checked request through the backend, then its files), ``write_music`` the files of a MusicGen result
(each variant as WAV and MP3, the parameters as JSON to make the same music again, the waveform/spectrogram
picture and the melody's chroma); and reading a parameters JSON back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.musicgen import GenerationCancelled, MusicRequest, MusicResult
from models.watermark import APP_MESSAGE
from products.checking import mark
from products.music_midi import MusicMidi, write_notes
from serving import Backend, backend
from serving.seam import Progress, Stream
from utils.audio import write_mp3, write_wav
from utils.files import safe_name
from utils.plots import chroma_png, spectrograms_png
from utils.provenance import music_provenance

TASKS = ("text_to_music", "melody_to_music")
STOPPED_EMPTY = "Stopped before any music was finished. Press Generate to start again."


MUSIC_PRODUCTS = ("wav", "mp3", "params", "picture", "midi", "score")  # what a result can be written as
STEM_CHARS = 48  # how much of the prompt names a result's files: whole words, up to this many characters


def result_stem(result: MusicResult, fallback: str = "music") -> str:
    """The start of a result's file names: the prompt's words (its English when translated) as far as STEM_CHARS
    allows, whole words only ("upbeat_jazz_piano_trio_with_brushed_drums"); ``fallback`` for a piece with no
    prompt."""
    return prompt_stem(result.prompt_english or str(result.params.get("prompt", "")), fallback)


def prompt_stem(prompt: str, fallback: str = "music", limit: int = STEM_CHARS) -> str:
    """A prompt as the start of a file name: its words, lower case, as many whole ones as fit in ``limit``
    characters (a first word longer than that is cut)."""
    stem = ""
    for word in prompt.lower().split():
        longer = safe_name(f"{stem} {word}" if stem else word, limit=10 * limit, empty="")
        if len(longer) > limit:
            break
        stem = longer
    return stem or safe_name(prompt.lower(), limit=limit, empty=fallback)


PAGE_PRODUCTS = ("wav", "mp3", "params", "picture")  # a result on the page (its MIDI and score on request)
BATCH_MUSIC_PRODUCTS = ("wav", "params")  # the command line's default (it always writes the parameters)


@dataclass(frozen=True)
class MusicFiles:
    """What ``write_music`` wrote: the products asked for (empty or None for the others)."""

    wavs: list[Path]
    mp3s: list[Path]
    params: Path | None
    picture: Path | None = None
    chroma: Path | None = None
    watermark_note: str = ""  # why the audio is not watermarked ("" when it is)
    notes: list[MusicMidi] = field(default_factory=list)  # each variant's notes (MIDI), the first one's score

    @property
    def downloads(self) -> list[Path]:
        """The files offered for download: WAVs, MP3s, the parameters, then the notes' MIDI and score."""
        return [*self.wavs, *self.mp3s, *([self.params] if self.params else []),
                *(f for made in self.notes for f in made.downloads)]


def make_music(role: str, model: str, request: MusicRequest, out: Path, stem: str | None = None, *, suffix: str = "",
               products: Iterable[str] = PAGE_PRODUCTS, params_name: str | None = None, watermark: str | None = None,
               paper: str = "a4", cancel: threading.Event | None = None, progress: Progress | None = None,
               stream: Stream | None = None, through: Backend | None = None) -> tuple[MusicResult, MusicFiles]:
    """One music job, for every caller (the page, its MCP tools, the command line): ``request`` made by the
    ``role`` model ("text" or "melody") ``model`` through the backend, then its files in ``out``.

    Args:
        stem: the start of the file names (None: the prompt's words, ``result_stem``), then ``suffix``.
        products, params_name, watermark, paper: as ``write_music``.
        cancel: set to stop; the part finished by then is kept and written (a stop before any was finished raises).
        progress: ``(fraction, message)`` reports; stream: ``(sample_rate, audio [variants, channels, T])`` chunks
            while the piece is made.
        through: the backend (None: the one in use, ``serving.backend()``).

    Raises:
        ValueError: stopped before any music was finished, or any value the piece cannot be made with.
    """
    try:
        result = (through or backend()).music(role, model, request, cancel=cancel, progress=progress, stream=stream)
    except GenerationCancelled as e:
        raise ValueError(STOPPED_EMPTY) from e
    fallback = "melody_music" if role == "melody" else "music"
    files = write_music(result, out, (stem or result_stem(result, fallback)) + suffix, products, params_name=params_name,
                        watermark=watermark, paper=paper)
    return result, files


def write_music(result: MusicResult, out: Path, stem: str, products: Iterable[str] = PAGE_PRODUCTS,
                params_name: str | None = None, watermark: str | None = None, paper: str = "a4") -> MusicFiles:
    """Write the products of a result named in ``products`` (of MUSIC_PRODUCTS) into ``out``, and nothing else:
    the page, the API and the command line all call this. Every audio file is tagged as made with AI and carries
    the app's inaudible watermark (the parameters say whether it does, and why not).

    Args:
        stem: the start of the file names: ``{stem}_seed{seed}_v{n}.wav``.
        products: "wav" and "mp3" (each variant), "params" (the settings as JSON, to make it again), "picture"
            (waveforms and spectrograms, and the melody's chroma when the result has one), "midi" (each variant's
            notes, transcribed, tempo-mapped), "score" (variant 1's notes engraved on ``paper``).
        params_name: the parameters file's name; default ``{stem}_seed{seed}.json``.
        watermark: the watermark model (hub id, folder, "off"); None: ``$WATERMARK_MODEL`` or the default.

    Raises:
        ValueError: an unknown product.
    """
    asked = set(products)
    unknown = sorted(asked - set(MUSIC_PRODUCTS))
    if unknown:
        raise ValueError(f"Unknown product(s) {', '.join(unknown)}; choose from {', '.join(MUSIC_PRODUCTS)}.")
    n = result.audio.shape[0]
    tags = music_provenance(result.params, result.seed).tags()
    base = f"{stem}_seed{result.seed}"
    audio, wavs, mp3s, note = write_marked_variants(result.audio, result.sample_rate, out, base, asked, tags,
                                                    watermark)
    params = None
    if "params" in asked:
        params = out / (params_name or f"{base}.json")
        record = {**result.params, "watermark": note or f"AudioSeal, message {APP_MESSAGE:#06x}"}
        params.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    drawing = chroma = None
    if "picture" in asked:
        drawing = spectrograms_png(result.audio, result.sample_rate, out / f"{base}.png",
                                   titles=[f"variant {i + 1}" for i in range(n)])
        if result.chroma is not None and result.chroma_rate:
            chroma = chroma_png(result.chroma, result.chroma_rate, out / "chroma.png",
                                "Melody chroma the model follows")
    heard: list[MusicMidi] = []
    for i in range(n) if asked & {"midi", "score"} else ():
        score = "score" in asked and i == 0
        if "midi" not in asked and not score:
            continue
        heard.append(write_notes(np.asarray(audio[i]).mean(axis=0), result.sample_rate, out, f"{base}_v{i + 1}",
                                 f"{base}_v{i + 1}", tags.get("comment", ""), midi="midi" in asked, score=score,
                                 paper=paper, pages=False))
    return MusicFiles(wavs, mp3s, params, drawing, chroma, note, heard)


def write_marked_variants(audio: np.ndarray, sample_rate: int, out: Path, base: str, asked: set[str],
                          tags: dict[str, str], watermark: str | None) -> tuple[Any, list[Path], list[Path], str]:
    """Each variant of ``audio`` [variants, channels, T] watermarked (when an audio file or the parameters are asked
    for: the parameters say whether it was) and written as ``{base}_v{n}.wav`` / ``.mp3`` with ``tags``, as asked.

    Returns:
        (the variants as written, marked where they were; the WAVs; the MP3s; why unmarked, "" when marked).
    """
    n = audio.shape[0]
    marked, note = audio, ""
    if asked & {"wav", "mp3", "params"}:  # the mark goes on the audio files; the parameters say whether it did
        marked, notes = zip(*(mark(audio[i], sample_rate, watermark) for i in range(n)))
        note = notes[0]
    wavs = ([write_wav(out / f"{base}_v{i + 1}.wav", marked[i].T, sample_rate, tags) for i in range(n)]
            if "wav" in asked else [])
    mp3s = ([write_mp3(out / f"{base}_v{i + 1}.mp3", marked[i].T, sample_rate, tags) for i in range(n)]
            if "mp3" in asked else [])
    return marked, wavs, mp3s, note


def read_params(path: str | Path | None, task: str) -> dict[str, Any]:
    """A result's parameters file, read back to make the same music again on the tab of ``task``.

    Raises:
        ValueError: no file, not JSON, not a parameters file of this app, or one from the other task.
    """
    if not path:
        raise ValueError("Choose a parameters file (the .json in a result's downloads).")
    try:
        made = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"This is not a parameters file: {e}") from e
    if not isinstance(made, dict) or made.get("task") not in TASKS:
        raise ValueError("This JSON is not a parameters file of this app (it has no \"task\").")
    if made["task"] != task:
        other = "melody" if made["task"] == "melody_to_music" else "text"
        raise ValueError(f"These parameters come from the {other} tab: load them there.")
    return made


def params_notes(made: dict[str, Any]) -> str:
    """What reproducing from a parameters record needs beyond its settings (the audio it used is not in it)."""
    notes = [f"Loaded the settings of seed {made.get('seed')}."]
    if made.get("task") == "melody_to_music":
        notes.append(f"Give the same melody ({made.get('melody_seconds', '?')} s used): it is not in the file.")
    elif made.get("clip_seconds"):
        notes.append(f"This result continued a clip ({made['clip_seconds']} s used): give the same clip.")
    if made.get("extended_from_seconds"):
        notes.append(f"It extended an earlier result ({made['extended_from_seconds']} s): these settings remake "
                     "the earlier piece's settings, not its music; generate it first, then Extend.")
    return " ".join(notes)
