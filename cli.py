"""Batch command line for the three jobs, on the same model wrappers and product writers as the app.

    python cli.py piano-cover songs/ --out covers/ --products midi audio score video --workers 2
    python cli.py piano-cover catalogue.csv --out covers/ --ray auto        # on a Ray cluster
    python cli.py text-to-music prompts.txt --out music/ --duration 8 --variants 2 --seed 42
    python cli.py melody-to-music hums/ --prompts styles.txt --out restyled/

Each item gets a folder under ``--out`` (written under a hidden name and renamed when complete), and a row in
``--out/manifest.jsonl`` (input, settings, status, timings, files, error). A rerun skips what is done; a bad input
is recorded with the app's message and the batch goes on; the exit code is 0 when every item succeeded, 1 when
any failed, 2 for a usage error. Model flags and env vars are the app's (``--piano-model`` / ``PIANO_COVER_MODEL``
and so on).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PIANO_PRODUCTS = ("midi", "audio", "mix", "score", "video")
DEFAULT_PIANO_PRODUCTS = ("midi", "audio")
AUDIO_FORMATS = ("wav", "mp3")


def env_default(name: str, fallback: str) -> str:
    return os.environ.get(name, "").strip() or fallback


# ------------------------------------------------------------------------------------------- the job workers
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

    def __call__(self):
        from models import pop2piano

        model = pop2piano.get_piano_cover_model(self.model, self.device)
        model.load()

        def work(item, folder: Path) -> tuple[list[str], dict[str, Any]]:
            return self.cover(model, item, folder)

        return work

    def cover(self, model, item, folder: Path) -> tuple[list[str], dict[str, Any]]:
        from models import pop2piano
        from utils import cover as products
        from utils.audio import write_wav

        timings: dict[str, float] = {}
        t = time.perf_counter()
        cover, song, sr = model.cover_file(item.input, item.settings["style"], max_seconds=self.max_seconds)
        timings["cover"] = time.perf_counter() - t
        stem = Path(item.input).stem[:60] or "song"
        song_wav = write_wav(folder / ".original.wav", song, sr)  # for mixes and the video; not a product
        job = products.CoverJob(cover.grid, cover.beats.bpm, pop2piano.composer_label(cover.composer), self.model,
                                stem, folder, song_wav, song.shape[0] / sr)
        files: list[Path] = []
        t = time.perf_counter()
        if "midi" in self.products:
            midis = products.write_midis(job, self.instrument)
            files += [midis.tempo_map, midis.constant]
        if "audio" in self.products or "mix" in self.products:
            audio = products.write_audio(job, self.instrument, self.balance)
            files += [audio.cover] if "audio" in self.products else []
            files += [audio.mix] if "mix" in self.products else []
            if "audio" not in self.products:
                audio.cover.unlink()
        timings["midi_audio"] = time.perf_counter() - t
        if "score" in self.products:
            t = time.perf_counter()
            score = products.write_score(job, self.easier)
            for page in score.pages:  # the PDF holds the pages
                page.unlink()
            files += [score.musicxml, score.pdf]
            timings["score"] = time.perf_counter() - t
        if "video" in self.products:
            t = time.perf_counter()
            files.append(products.write_video(job, self.instrument, 1.0, self.video_format))
            timings["video"] = time.perf_counter() - t
        if self.audio_format == "mp3":
            files = [to_mp3(f, job.provenance(self.instrument).tags()) if f.suffix == ".wav" else f for f in files]
        song_wav.unlink()
        for leftover in folder.glob("*.wav"):  # renders kept only when asked for
            if leftover not in files:
                leftover.unlink()
        extra = {"style": cover.composer, "bpm": round(cover.beats.bpm, 2), "notes": len(job.grid),
                 "timings": {k: round(v, 2) for k, v in timings.items()}, "warnings": cover.warnings}
        return [f.name for f in files], extra


def to_mp3(wav: Path, tags: dict[str, str]) -> Path:
    """Re-encode a WAV as MP3 with the same tags; the WAV is removed."""
    import soundfile as sf

    from utils.audio import write_mp3

    data, sr = sf.read(str(wav), dtype="float32")
    mp3 = write_mp3(wav.with_suffix(".mp3"), data, sr, tags)
    wav.unlink()
    return mp3


@dataclass(frozen=True)
class MusicWork:
    """Loads MusicGen (or MusicGen-Melody) once and returns the per-item work function."""

    model: str
    device: str | None
    melody: bool
    separator: str | None = None

    def __call__(self):
        from models import musicgen

        model = musicgen.get_musicgen_model(self.model, self.device, melody=self.melody)
        model.load()

        def work(item, folder: Path) -> tuple[list[str], dict[str, Any]]:
            return self.generate(model, item, folder)

        return work

    def generate(self, model, item, folder: Path) -> tuple[list[str], dict[str, Any]]:
        from models import musicgen
        from utils.audio import write_wav
        from utils.provenance import music_provenance

        s = item.settings
        params = musicgen.SamplingParams(
            duration=float(s["duration"]), top_k=int(s["top_k"]), top_p=float(s["top_p"]),
            temperature=float(s["temperature"]), guidance_scale=float(s["guidance_scale"]),
            seed=musicgen.parse_seed(s.get("seed")), stride=float(s.get("stride", musicgen.DEFAULT_STRIDE_S)),
        ).validated()
        melody = musicgen.Melody.from_file(s["melody"]) if self.melody else None
        t = time.perf_counter()
        result = model.generate(s["prompt"], params, int(s["variants"]), melody=melody,
                                melody_source=s.get("melody_source", "mix"), separator=self.separator)
        seconds = time.perf_counter() - t
        tags = music_provenance(result.params, result.seed).tags()
        files = []
        for i in range(result.audio.shape[0]):
            name = f"{item.id}_seed{result.seed}_v{i + 1}.wav"
            write_wav(folder / name, result.audio[i].T, result.sample_rate, tags)
            files.append(name)
        (folder / "params.json").write_text(json.dumps(result.params, indent=2, ensure_ascii=False))
        files.append("params.json")
        return files, {"seed": result.seed, "timings": {"generate": round(seconds, 2)}, "notes": result.notes}


# ------------------------------------------------------------------------------------------------- items
def piano_items(inputs: list[str], style: str) -> list:
    """Songs from files, folders (recursive) and CSV/JSONL lists (columns: path, optional style)."""
    from utils.batch import Item, find_audio, read_table, safe_id, unique_ids

    entries: list[tuple[str, str, str]] = []  # (path, style, id)
    plain = []
    for raw in inputs:
        if Path(raw).suffix.lower() in {".csv", ".jsonl", ".ndjson"} and Path(raw).is_file():
            for row in read_table(raw):
                path = str(row.get("path") or row.get("song") or row.get("file") or "")
                base = Path(raw).parent
                full = path if not path or Path(path).is_absolute() else str(base / path)
                entries.append((full, str(row.get("style") or style), safe_id(Path(path).stem or "row")))
        else:
            plain.append(raw)
    for file, root in find_audio(plain):
        relative = file.relative_to(root.resolve()) if file.is_relative_to(root.resolve()) else Path(file.name)
        entries.append((str(file), style, safe_id(str(relative.with_suffix("")))))
    items = []
    for path, item_style, item_id in entries:
        if item_style == "random":  # drawn now, so the settings (and a rerun) know which style it was
            from models.pop2piano import COMPOSERS

            item_style = random.choice(COMPOSERS)
        items.append(Item(item_id, path, {"style": item_style}))
    return unique_ids(items)


def prompt_rows(path: str) -> list[dict[str, Any]]:
    """Prompts from a .txt (one a line), .csv or .jsonl file (column ``prompt``; optional seed, duration...)."""
    from utils.batch import read_table

    rows = read_table(path)
    for number, row in enumerate(rows, start=1):
        if not str(row.get("prompt", "")).strip():
            raise ValueError(f"{path}: row {number} has no prompt.")
    return rows


def music_items(args: argparse.Namespace, melody: bool) -> list:
    """text-to-music: one item per prompt; melody-to-music: one per melody x prompt."""
    from utils.batch import Item, find_audio, safe_id, unique_ids

    base = {"duration": args.duration, "top_k": args.top_k, "top_p": args.top_p, "temperature": args.temperature,
            "guidance_scale": args.guidance_scale, "variants": args.variants, "seed": args.seed,
            "stride": args.stride}
    if melody:
        base["melody_source"] = args.melody_source
    items = []
    if not melody:
        for row in prompt_rows(args.prompts):
            settings = base | {k: row[k] for k in base if row.get(k) not in (None, "")} | {"prompt": row["prompt"]}
            items.append(Item(safe_id(row["prompt"], 60), row["prompt"], settings))
        return unique_ids(items)
    prompts = prompt_rows(args.prompts) if args.prompts else [{"prompt": ""}]
    for file, _root in find_audio(args.inputs):
        for row in prompts:
            settings = base | {k: row[k] for k in base if row.get(k) not in (None, "")}
            settings |= {"prompt": row["prompt"], "melody": str(file)}
            name = f"{file.stem}__{row['prompt']}" if row["prompt"] else file.stem
            items.append(Item(safe_id(name, 80), str(file), settings))
    return unique_ids(items)


# --------------------------------------------------------------------------------------------- arguments
def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder: a folder per item, manifest.jsonl")
    parser.add_argument("--workers", type=int, default=1, help="processes (or Ray actors), each loads the model once")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run on Ray: no value = a local Ray, 'auto' = the running cluster, or ray://host:port")
    parser.add_argument("--shared-dir", type=Path,
                        help="with --ray: a folder all nodes can write; workers write there, not back to --out")
    parser.add_argument("--device", default=os.environ.get("MUSIC_DEMO_DEVICE") or None, help="cuda, mps or cpu")


def add_sampling(parser: argparse.ArgumentParser) -> None:
    from models import musicgen

    parser.add_argument("--duration", type=float, default=musicgen.DEFAULT_DURATION_S, help="seconds per piece")
    parser.add_argument("--variants", type=int, default=1, help=f"pieces per prompt, 1-{musicgen.MAX_VARIANTS}")
    parser.add_argument("--seed", default="", help="a whole number for reproducible results; empty = random")
    parser.add_argument("--top-k", type=int, default=musicgen.DEFAULT_TOP_K)
    parser.add_argument("--top-p", type=float, default=musicgen.DEFAULT_TOP_P)
    parser.add_argument("--temperature", type=float, default=musicgen.DEFAULT_TEMPERATURE)
    parser.add_argument("--guidance-scale", type=float, default=musicgen.DEFAULT_GUIDANCE_SCALE)
    parser.add_argument("--stride", type=float, default=musicgen.DEFAULT_STRIDE_S,
                        help=f"past {musicgen.WINDOW_S:g} s: seconds each window adds, "
                             f"{musicgen.MIN_STRIDE_S:g}-{musicgen.MAX_STRIDE_S:g}")


def build_parser() -> argparse.ArgumentParser:
    from models import musicgen, pop2piano, separator
    from utils.midi import DEFAULT_INSTRUMENT, INSTRUMENTS
    from utils.video import DEFAULT_FORMAT, FORMATS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs = parser.add_subparsers(dest="job", required=True)

    piano = jobs.add_parser("piano-cover", help="songs -> piano covers (MIDI, audio, score, video)")
    piano.add_argument("inputs", nargs="+", help="songs, folders (searched recursively), or a .csv/.jsonl list "
                       "with a 'path' column and an optional 'style' column")
    piano.add_argument(pop2piano.PIANO_COVER_CLI_FLAG, dest="piano_model",
                       default=pop2piano.default_model_name(), help=f"env {pop2piano.PIANO_COVER_ENV_VAR}")
    piano.add_argument("--style", default="composer1", help="composer1..composer21 or random (a list's column wins)")
    piano.add_argument("--products", nargs="+", choices=PIANO_PRODUCTS, default=list(DEFAULT_PIANO_PRODUCTS),
                       help="midi: tempo-mapped + constant-tempo MIDI; audio: the cover; mix: cover + original; "
                            "score: MusicXML + PDF; video: falling-notes MP4")
    piano.add_argument("--instrument", default=DEFAULT_INSTRUMENT, choices=list(INSTRUMENTS))
    piano.add_argument("--balance", type=float, default=0.7, help="mix: 0 = original only, 1 = cover only")
    piano.add_argument("--easier", action="store_true", help="score: at most 4 notes per hand, within a tenth")
    piano.add_argument("--video-format", default=DEFAULT_FORMAT, choices=list(FORMATS))
    piano.add_argument("--audio-format", default="wav", choices=AUDIO_FORMATS)
    piano.add_argument("--max-song-seconds", type=float, default=pop2piano.default_max_song_seconds())
    add_common(piano)

    text = jobs.add_parser("text-to-music", help="prompts -> music")
    text.add_argument("prompts", help=".txt (a prompt a line), .csv or .jsonl (column 'prompt', optional 'seed', "
                      "'duration', 'variants')")
    text.add_argument(musicgen.MUSICGEN_CLI_FLAG, dest="musicgen_model",
                      default=musicgen.default_model_name(melody=False), help=f"env {musicgen.MUSICGEN_ENV_VAR}")
    add_sampling(text)
    add_common(text)

    melody = jobs.add_parser("melody-to-music", help="melodies x prompts -> music")
    melody.add_argument("inputs", nargs="+", help="melody files or folders")
    melody.add_argument("--prompts", help="styles to apply to every melody (.txt, .csv or .jsonl)")
    melody.add_argument(musicgen.MELODY_CLI_FLAG, dest="melody_model",
                        default=musicgen.default_model_name(melody=True), help=f"env {musicgen.MELODY_ENV_VAR}")
    melody.add_argument("--melody-source", choices=list(separator.MELODY_SOURCES),
                        default=separator.DEFAULT_MELODY_SOURCE,
                        help="separated: drums and bass removed with Demucs first, as audiocraft; mix: as given")
    melody.add_argument(separator.SEPARATOR_CLI_FLAG, dest="separator_model",
                        default=separator.default_separator_name(), help=f"env {separator.SEPARATOR_ENV_VAR}")
    add_sampling(melody)
    add_common(melody)
    return parser


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    from utils.batch import run_batch

    try:
        if args.job == "piano-cover":
            from models.pop2piano import check_composer

            if args.style != "random":
                check_composer(args.style)
            items = piano_items(args.inputs, args.style)
            factory = PianoCoverWork(args.piano_model, args.device, args.max_song_seconds, tuple(args.products),
                                     args.instrument, args.balance, args.easier, args.video_format,
                                     args.audio_format)
            settings = {"products": sorted(args.products), "instrument": args.instrument, "balance": args.balance,
                        "easier": args.easier, "video_format": args.video_format, "audio_format": args.audio_format,
                        "model": args.piano_model}
            from utils.batch import Item

            items = [Item(i.id, i.input, i.settings | settings) for i in items]
            noun = "songs"
        else:
            melody = args.job == "melody-to-music"
            items = music_items(args, melody)
            model = args.melody_model if melody else args.musicgen_model
            factory = MusicWork(model, args.device, melody, getattr(args, "separator_model", None))
            from utils.batch import Item

            items = [Item(i.id, i.input, i.settings | {"model": model}) for i in items]
            noun = "pieces"
    except ValueError as e:
        parser.error(str(e))
    if not items:
        parser.error("nothing to do: no inputs found")
    summary = run_batch(items, args.out, factory, args.workers, args.ray, args.shared_dir, noun)
    print(f"{args.job}: {summary.line(noun)}; manifest: {args.out / 'manifest.jsonl'}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
