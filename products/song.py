"""Songs with lyrics, for the page, the MCP tool and the command line alike: ``make_song`` and ``edit_song`` are the
jobs (the style translated where it needs to be, the request through the backend, then its files), ``write_song``
a song's files (each variant as WAV and MP3, 48 kHz stereo, watermarked and tagged; the lyrics as text; the
parameters as JSON to make the same song again; the waveform/spectrogram picture); and reading a song's parameters
JSON back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.song import GenerationCancelled, SongEdit, SongRequest, SongResult
from models.sources import public_name
from models.translation import foreign_parts, translate_prompt
from models.watermark import APP_MESSAGE
from products.music import prompt_stem, write_marked_variants
from serving import Backend, backend
from serving.seam import Progress, Stream
from utils.plots import spectrograms_png
from utils.provenance import song_provenance

SONG_PRODUCTS = ("wav", "mp3", "lyrics", "params", "picture")  # what a song can be written as
PAGE_SONG_PRODUCTS = SONG_PRODUCTS
BATCH_SONG_PRODUCTS = ("wav", "lyrics", "params")  # the command line's default
SONG_TASKS = ("song", "song_edit", "song_extend")
STOPPED = ("Stopped. A song is made whole, all at once, so nothing of it was kept: press Generate to start "
           "again.")


def song_stem(result: SongResult, fallback: str = "song") -> str:
    """The start of a song's file names: its style's words ("upbeat_pop_with_bright_vocals")."""
    return prompt_stem(str(result.params.get("style_english") or result.params.get("style") or ""), fallback)


@dataclass(frozen=True)
class SongFiles:
    """What ``write_song`` wrote: the products asked for (empty or None for the others)."""

    wavs: list[Path]
    mp3s: list[Path]
    lyrics: Path | None
    params: Path | None
    picture: Path | None
    watermark_note: str = ""  # why the audio is not watermarked ("" when it is)

    @property
    def downloads(self) -> list[Path]:
        return [*self.wavs, *self.mp3s, *([self.lyrics] if self.lyrics else []),
                *([self.params] if self.params else [])]


def translated_style(style: str, translator: str | None) -> tuple[str | None, str]:
    """The style's English where parts of it are in another language and the translator is here: (English or
    None, why it could not be used: "" when it was not needed or it worked)."""
    parts = foreign_parts(style)
    if not parts:
        return None, ""
    english, why = translate_prompt(style, parts, translator)
    return english, ("" if english is not None else why)


def make_song(model: str, request: SongRequest, out: Path, stem: str | None = None, *,
              products: Iterable[str] = PAGE_SONG_PRODUCTS, watermark: str | None = None,
              translator: str | None = None, cancel: threading.Event | None = None, progress: Progress | None = None,
              stream: Stream | None = None, through: Backend | None = None) -> tuple[SongResult, SongFiles]:
    """One song job, for every caller (the page, its MCP tool, the command line): ``request``'s style translated
    where parts of it are in another language (``translator``: hub id, folder or "off"; None: the default), the
    song made by the song model ``model`` through the backend, then its files in ``out``.

    Args:
        stem: the start of the file names (None: the style's words, ``song_stem``).
        products, watermark: as ``write_song``.
        cancel: set to stop at the next step; a song is made whole, so nothing is kept (raises).
        progress: ``(fraction, message)`` reports; stream: ``(sample_rate, audio [variants, 2, T])`` chunks as the
            song is decoded.
        through: the backend (None: the one in use, ``serving.backend()``).

    Raises:
        ValueError: stopped (nothing kept), or any value the song cannot be made with.
    """
    failure = ""
    if request.style_english is None:
        request.style_english, failure = translated_style(request.style, translator)
    result = _made(lambda b: b.song(model, request, cancel=cancel, progress=progress, stream=stream), through)
    if request.style_english:
        result.params["translation_model"] = public_name(translator) or "the default translator"
    if failure:
        result.notes.append(f"The style could not be translated ({failure}); the model read it as written.")
    if progress is not None:
        progress(0.99, "Writing the files")
    return result, write_song(result, out, stem or song_stem(result), products, watermark=watermark)


def edit_song(model: str, edit: SongEdit, out: Path, stem: str | None = None, *,
              products: Iterable[str] = PAGE_SONG_PRODUCTS, watermark: str | None = None,
              translator: str | None = None, cancel: threading.Event | None = None, progress: Progress | None = None,
              stream: Stream | None = None, through: Backend | None = None) -> tuple[SongResult, SongFiles]:
    """A part of a song made here made again, or the song made longer (``edit``), with its new style translated as
    ``make_song`` does; then its files (``{style}_edited`` or ``_extended`` unless ``stem`` is given). The
    arguments and errors are ``make_song``'s."""
    if edit.style:
        edit.style = translated_style(edit.style, translator)[0] or edit.style
    result = _made(lambda b: b.song_edit(model, edit, cancel=cancel, progress=progress, stream=stream), through)
    if progress is not None:
        progress(0.99, "Writing the files")
    suffix = "_extended" if edit.extend_by else "_edited"
    return result, write_song(result, out, stem or song_stem(result) + suffix, products, watermark=watermark)


def _made(job: Any, through: Backend | None) -> SongResult:
    """``job(backend)``, a stop said plainly: nothing of a song is kept."""
    try:
        return job(through or backend())
    except GenerationCancelled as e:
        raise ValueError(STOPPED) from e


def write_song(result: SongResult, out: Path, stem: str, products: Iterable[str] = PAGE_SONG_PRODUCTS,
               watermark: str | None = None) -> SongFiles:
    """Write the products of a song named in ``products`` (of SONG_PRODUCTS) into ``out``, and nothing else. Every
    audio file is tagged as made with AI (ACE-Step 1.5, the checkpoint, when) and carries the app's inaudible
    watermark (the parameters say whether it does, and why not).

    Args:
        stem: the start of the file names: ``{stem}_seed{seed}_v{n}.wav``.
        watermark: the watermark model (hub id, folder, "off"); None: ``$WATERMARK_MODEL`` or the default.

    Raises:
        ValueError: an unknown product.
    """
    asked = set(products)
    unknown = sorted(asked - set(SONG_PRODUCTS))
    if unknown:
        raise ValueError(f"Unknown product(s) {', '.join(unknown)}; choose from {', '.join(SONG_PRODUCTS)}.")
    out.mkdir(parents=True, exist_ok=True)
    n = result.audio.shape[0]
    tags = song_provenance(result.params, result.seed).tags()
    base = f"{stem}_seed{result.seed}"
    _, wavs, mp3s, note = write_marked_variants(result.audio, result.sample_rate, out, base, asked, tags, watermark)
    lyrics = None
    if "lyrics" in asked:
        lyrics = out / f"{base}_lyrics.txt"
        lyrics.write_text((result.lyrics or "[Instrumental]") + "\n", encoding="utf-8")
    params = None
    if "params" in asked:
        params = out / f"{base}.json"
        record = {**result.params, "watermark": note or f"AudioSeal, message {APP_MESSAGE:#06x}",
                  "provenance": tags["comment"]}
        params.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    picture = None
    if "picture" in asked:
        picture = spectrograms_png(result.audio, result.sample_rate, out / f"{base}.png",
                                   titles=[f"variant {i + 1}" for i in range(n)])
    return SongFiles(wavs, mp3s, lyrics, params, picture, note)


def read_song_params(path: str | Path | None) -> dict[str, Any]:
    """A song's parameters file, read back to make the same song again.

    Raises:
        ValueError: no file, not JSON, or not a song's parameters.
    """
    if not path:
        raise ValueError("Choose a parameters file (the .json in a song's downloads).")
    try:
        made = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"This is not a parameters file: {e}") from e
    if not isinstance(made, dict) or made.get("task") not in SONG_TASKS:
        raise ValueError("This JSON is not a song's parameters file.")
    return made
