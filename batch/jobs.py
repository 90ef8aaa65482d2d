"""The batch jobs: what one item of each job does (a song to a piano cover's files, a prompt or a melody to music),
and the items a command line's inputs make. Each worker loads its model once and runs its jobs through the seam
the page uses (``serving.InProcess``) and the same product writers."""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.runner import Item, find_audio, read_table, unique_ids
from utils.files import safe_name



def in_process(device: str | None, translation: str | None = None, separator: str | None = None) -> Any:
    """The seam the page uses (``serving``), on this worker's runtime with this command line's settings."""
    from types import SimpleNamespace

    from serving import InProcess

    return InProcess(SimpleNamespace(device=device, translation_model=translation, separator_model=separator))


@dataclass(frozen=True)
class PianoCoverWork:
    """Loads Pop2Piano once (when called, in the worker) and returns the per-song work function."""

    model: str
    device: str | None
    max_seconds: float
    products: tuple[str, ...]
    instrument: str
    balance: float
    easier: bool
    video_format: str
    audio_format: str
    paper: str = "a4"
    watermark: str | None = None

    def __call__(self):
        from models.loading import load_model

        load_model("piano", self.model, self.device).load()
        seam = in_process(self.device)

        def work(item: Item, folder: Path) -> tuple[list[str], dict[str, Any]]:
            return self.cover(seam, item, folder)

        return work

    def cover(self, seam, item: Item, folder: Path) -> tuple[list[str], dict[str, Any]]:
        from products.piano import make_cover

        t = time.perf_counter()
        cover, job, made = make_cover(self.model, item.input, item.settings["style"], folder, self.products,
                                      instrument=self.instrument, balance=self.balance, easier=self.easier,
                                      paper=self.paper, video_format=self.video_format, audio_format=self.audio_format,
                                      video_balance=1.0, max_seconds=self.max_seconds, watermark=self.watermark,
                                      keep_song=False, through=seam)  # the song: not a product
        extra = {"style": cover.composer, "bpm": round(cover.beats.bpm, 2), "notes": len(job.grid),
                 "timings": {"cover and products": round(time.perf_counter() - t, 2)}, "warnings": cover.warnings}
        return [f.name for f in made.files], extra


@dataclass(frozen=True)
class PianoSheetWork:
    """Loads the piano transcriber once and returns the per-recording work function: a piano recording's sheet
    music (the same products as the page's "Make its sheet music")."""

    model: str
    device: str | None
    max_seconds: float
    products: tuple[str, ...]
    easier: bool
    paper: str
    video_format: str
    watermark: str | None = None

    def __call__(self):
        from models.loading import load_model

        load_model("piano_transcriber", self.model, self.device).load()
        seam = in_process(self.device)

        def work(item: Item, folder: Path) -> tuple[list[str], dict[str, Any]]:
            return self.sheet(seam, item, folder)

        return work

    def sheet(self, seam, item: Item, folder: Path) -> tuple[list[str], dict[str, Any]]:
        from products.piano_sheet import make_sheet_music

        t = time.perf_counter()
        _, made = make_sheet_music(self.model, item.input, folder, self.products, easier=self.easier,
                                   paper=self.paper, video_format=self.video_format, max_seconds=self.max_seconds,
                                   watermark=self.watermark, keep_song=False, through=seam)
        extra = {"bpm": round(made.bpm, 2), "notes": made.notes, "warnings": made.warnings,
                 "timings": {"transcribe and products": round(time.perf_counter() - t, 2)}}
        return [f.name for f in made.files.files], extra


@dataclass(frozen=True)
class MusicWork:
    """Loads MusicGen (or MusicGen-Melody) once and returns the per-item work function."""

    model: str
    device: str | None
    melody: bool
    separator: str | None = None
    translation: str | None = None
    watermark: str | None = None
    products: tuple[str, ...] = ("wav", "params")  # of products.music.MUSIC_PRODUCTS
    paper: str = "a4"

    def __call__(self):
        from models.loading import load_model

        load_model("melody" if self.melody else "text", self.model, self.device).load()
        seam = in_process(self.device, self.translation, self.separator)

        def work(item: Item, folder: Path) -> tuple[list[str], dict[str, Any]]:
            return self.generate(seam, item, folder)

        return work

    def written(self) -> set[str]:
        """This command line's products: those asked for, and the parameters always (a rerun reads them)."""
        return {"params", *self.products}

    def generate(self, seam, item: Item, folder: Path) -> tuple[list[str], dict[str, Any]]:
        from models import musicgen
        from products.music import make_music

        s = item.settings
        params = musicgen.SamplingParams.from_record(s)
        english = s.get("prompt_english") or None  # a row from a parameters file: made from the same English
        t = time.perf_counter()
        request = musicgen.MusicRequest(s["prompt"], params, s["variants"],
                                        melody=musicgen.Melody.from_file(s["melody"]) if self.melody else None,
                                        melody_source=s.get("melody_source", "mix"), prompt_english=english)
        result, files = make_music("melody" if self.melody else "text", self.model, request, folder, item.id,
                                   products=self.written(), params_name="params.json", watermark=self.watermark,
                                   paper=self.paper, through=seam)
        timings = {"generate and write": time.perf_counter() - t}
        names = [f.name for f in files.downloads]
        notes = [*result.notes, *([files.watermark_note] if files.watermark_note else []),
                 *(made.note for made in files.notes if made.note)]
        extra = {"seed": result.seed, "timings": {k: round(v, 2) for k, v in timings.items()}, "notes": notes}
        if result.prompt_english:
            extra["prompt_english"] = result.prompt_english
        return names, extra


@dataclass(frozen=True)
class SongWork:
    """Loads ACE-Step 1.5 once and returns the per-item work function: a song from a row's style and lyrics."""

    model: str
    device: str | None
    translation: str | None = None
    watermark: str | None = None
    products: tuple[str, ...] = ("wav", "lyrics", "params")  # of products.song.SONG_PRODUCTS

    def __call__(self):
        from models.loading import load_model

        load_model("song", self.model, self.device).load()
        seam = in_process(self.device, self.translation)

        def work(item: Item, folder: Path) -> tuple[list[str], dict[str, Any]]:
            return self.generate(seam, item, folder)

        return work

    def generate(self, seam, item: Item, folder: Path) -> tuple[list[str], dict[str, Any]]:
        from models import song
        from products.song import make_song

        s = item.settings
        request = song.SongRequest(s.get("style", ""), s.get("lyrics", ""), s.get("language") or song.AUTO,
                                   s.get("seconds", song.DEFAULT_SECONDS), s.get("bpm"), s.get("key") or None,
                                   s.get("time_signature") or None, s.get("seed", ""), s.get("variants", 1),
                                   str(s.get("instrumental", "")).lower() in {"1", "true", "yes"})
        t = time.perf_counter()
        result, files = make_song(self.model, request, folder, item.id, products={"params", *self.products},
                                  watermark=self.watermark, translator=self.translation, through=seam)
        timings = {"generate and write": time.perf_counter() - t}
        notes = [*result.notes, *([files.watermark_note] if files.watermark_note else [])]
        extra = {"seed": result.seed, "language": request.language, "notes": notes,
                 "timings": {k: round(v, 2) for k, v in timings.items()}}
        if request.style_english:
            extra["style_english"] = request.style_english
        return [f.name for f in files.downloads], extra


# ------------------------------------------------------------------------------------------------- items
def piano_items(inputs: list[str], style: str) -> list:
    """Songs from files, folders (recursive) and CSV/JSONL lists (columns: path, optional style)."""
    entries: list[tuple[str, str, str]] = []  # (path, style, id)
    plain = []
    for raw in inputs:
        if Path(raw).suffix.lower() in {".csv", ".jsonl", ".ndjson"} and Path(raw).is_file():
            for row in read_table(raw):
                path = str(row.get("path") or row.get("song") or row.get("file") or "")
                base = Path(raw).parent
                full = path if not path or Path(path).is_absolute() else str(base / path)
                entries.append((full, str(row.get("style") or style), safe_name(Path(path).stem or "row")))
        else:
            plain.append(raw)
    for file, root in find_audio(plain):
        relative = file.relative_to(root.resolve()) if file.is_relative_to(root.resolve()) else Path(file.name)
        entries.append((str(file), style, safe_name(str(relative.with_suffix("")))))
    items = []
    for path, item_style, item_id in entries:
        if item_style == "random":  # drawn now, so the settings (and a rerun) know which style it was
            from models.pop2piano import COMPOSERS

            item_style = random.choice(COMPOSERS)
        items.append(Item(item_id, path, {"style": item_style}))
    return unique_ids(items)


def recording_items(inputs: list[str]) -> list:
    """Piano recordings from files and folders (recursive): one item each, named after its path."""
    items = []
    for file, root in find_audio(inputs):
        relative = file.relative_to(root.resolve()) if file.is_relative_to(root.resolve()) else Path(file.name)
        items.append(Item(safe_name(str(relative.with_suffix(""))), str(file), {}))
    return unique_ids(items)


def prompt_rows(path: str) -> list[dict[str, Any]]:
    """Prompts from a .txt (one a line), .csv or .jsonl file (column ``prompt``; optional seed, duration...)."""
    rows = read_table(path)
    for number, row in enumerate(rows, start=1):
        if not str(row.get("prompt", "")).strip():
            raise ValueError(f"{path}: row {number} has no prompt.")
    return rows


def music_items(args: argparse.Namespace, melody: bool) -> list:
    """text-to-music: one item per prompt; melody-to-music: one per melody x prompt."""
    base = {"duration": args.duration, "top_k": args.top_k, "top_p": args.top_p, "temperature": args.temperature,
            "guidance_scale": args.guidance_scale, "variants": args.variants, "seed": args.seed,
            "stride": args.stride}
    if melody:
        base["melody_source"] = args.melody_source
    items = []
    if not melody:
        for row in prompt_rows(args.prompts):
            settings = base | {k: row[k] for k in base if row.get(k) not in (None, "")} | {"prompt": row["prompt"]}
            items.append(Item(safe_name(row["prompt"], 60), row["prompt"], settings))
        return unique_ids(items)
    prompts = prompt_rows(args.prompts) if args.prompts else [{"prompt": ""}]
    for file, _root in find_audio(args.inputs):
        for row in prompts:
            settings = base | {k: row[k] for k in base if row.get(k) not in (None, "")}
            settings |= {"prompt": row["prompt"], "melody": str(file)}
            name = f"{file.stem}__{row['prompt']}" if row["prompt"] else file.stem
            items.append(Item(safe_name(name, 80), str(file), settings))
    return unique_ids(items)


SONG_COLUMNS = ("style", "lyrics", "lyrics_file", "language", "seconds", "seed", "bpm", "key", "time_signature",
                "variants", "instrumental")


def song_items(args: argparse.Namespace) -> list:
    """song: one item per row of a .csv or .jsonl (columns style, lyrics or lyrics_file, optional language, seconds,
    seed, bpm, key, time_signature, variants, instrumental); each row checked before anything runs.

    Raises:
        ValueError: a row the song model cannot make (its number and why), or a lyrics file that is missing.
    """
    from models import song

    base = {"seconds": args.seconds, "seed": args.seed, "language": args.language, "variants": args.variants}
    items = []
    for number, row in enumerate(read_table(args.songs), start=1):
        settings = base | {k: row[k] for k in SONG_COLUMNS if row.get(k) not in (None, "")}
        lyrics_file = settings.pop("lyrics_file", None)
        if lyrics_file:
            path = Path(lyrics_file) if Path(lyrics_file).is_absolute() else Path(args.songs).parent / lyrics_file
            if not path.is_file():
                raise ValueError(f"{args.songs}: row {number}: no lyrics file {lyrics_file}.")
            settings["lyrics"] = path.read_text(encoding="utf-8")
        if str(settings.get("seed", "")).strip() == "":  # drawn now, so the manifest (and a rerun) knows it
            settings["seed"] = random.randrange(2**31)
        try:
            song.SongRequest(settings.get("style", ""), settings.get("lyrics", ""), settings.get("language"),
                             settings.get("seconds"), settings.get("bpm"), settings.get("key") or None,
                             settings.get("time_signature") or None, settings["seed"], settings.get("variants", 1),
                             str(settings.get("instrumental", "")).lower() in {"1", "true", "yes"})
        except ValueError as e:
            raise ValueError(f"{args.songs}: row {number}: {e}") from e
        name = settings.get("style") or (settings.get("lyrics") or "song").split("\n")[0]
        items.append(Item(safe_name(str(name), 60), args.songs, settings))
    return unique_ids(items)
