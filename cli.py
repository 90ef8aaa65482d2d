"""Batch command line for the three jobs, on the same model wrappers and product writers as the app.

    python cli.py piano-cover songs/ --out covers/ --products midi audio score video --workers 2
    python cli.py piano-cover catalogue.csv --out covers/ --ray auto        # on a Ray cluster
    python cli.py piano-sheet-music recordings/ --out scores/ --products midi score --paper letter
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
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from batch.jobs import (  # noqa: E402
    MusicWork,
    PianoCoverWork,
    PianoSheetWork,
    music_items,
    piano_items,
    recording_items,
)
from batch.runner import Item, run_batch  # noqa: E402
from products.music import BATCH_MUSIC_PRODUCTS, MUSIC_PRODUCTS  # noqa: E402 - one home for product names
from products.piano import AUDIO_FORMATS, BATCH_COVER_PRODUCTS, COVER_PRODUCTS  # noqa: E402
from products.piano_sheet import BATCH_SHEET_PRODUCTS, SHEET_PRODUCTS  # noqa: E402


# --------------------------------------------------------------------------------------------- arguments
def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder: a folder per item, manifest.jsonl")
    parser.add_argument("--workers", type=int, default=1, help="processes (or Ray actors), each loads the model once")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run on Ray: no value = a local Ray, 'auto' = the running cluster, or ray://host:port")
    parser.add_argument("--shared-dir", type=Path,
                        help="with --ray: a folder all nodes can write; workers write there, not back to --out")
    parser.add_argument("--device", default=os.environ.get("MUSIC_DEMO_DEVICE") or None, help="cuda, mps or cpu")


def add_music_extras(parser: argparse.ArgumentParser) -> None:
    from models.loading import add_model_flags
    from utils.engraving import DEFAULT_PAPER, PAPERS

    parser.add_argument("--products", nargs="+", choices=MUSIC_PRODUCTS, default=list(BATCH_MUSIC_PRODUCTS),
                        help="wav, mp3: each variant's audio; params: the settings (always written); picture: "
                             "waveform and spectrogram; midi: each variant's notes as a tempo-mapped MIDI (transcribed "
                             "with basic-pitch); score: variant 1's notes as MusicXML + PDF")
    parser.add_argument("--paper", default=DEFAULT_PAPER, choices=list(PAPERS), help="score: the page size")
    add_model_flags(parser, "translator")


def add_watermark(parser: argparse.ArgumentParser) -> None:
    from models.loading import add_model_flags

    add_model_flags(parser, "watermark")


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
    from models import pop2piano, separator
    from models.loading import add_model_flags
    from products.piano import DEFAULT_BALANCE
    from utils.engraving import DEFAULT_PAPER, PAPERS
    from utils.midi import DEFAULT_INSTRUMENT, INSTRUMENTS
    from utils.video import DEFAULT_FORMAT, FORMATS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs = parser.add_subparsers(dest="job", required=True)

    piano = jobs.add_parser("piano-cover", help="songs -> piano covers (MIDI, audio, score, video)")
    piano.add_argument("inputs", nargs="+", help="songs, folders (searched recursively), or a .csv/.jsonl list "
                       "with a 'path' column and an optional 'style' column")
    add_model_flags(piano, "piano")
    piano.add_argument("--style", default=pop2piano.DEFAULT_COMPOSER,
                       help="composer1..composer21 or random (a list's column wins)")
    piano.add_argument("--products", nargs="+", choices=COVER_PRODUCTS, default=list(BATCH_COVER_PRODUCTS),
                       help="midi: tempo-mapped + constant-tempo MIDI; audio: the cover; mix: cover + original; "
                            "score: MusicXML + PDF; pages: the score's pages as pictures; video: falling-notes MP4")
    piano.add_argument("--instrument", default=DEFAULT_INSTRUMENT, choices=list(INSTRUMENTS))
    piano.add_argument("--balance", type=float, default=DEFAULT_BALANCE, help="mix: 0 = original only, 1 = cover only")
    piano.add_argument("--easier", action="store_true", help="score: at most 4 notes per hand, within a tenth")
    piano.add_argument("--paper", default=DEFAULT_PAPER, choices=list(PAPERS), help="score: the page size")
    piano.add_argument("--video-format", default=DEFAULT_FORMAT, choices=list(FORMATS))
    piano.add_argument("--audio-format", default="wav", choices=AUDIO_FORMATS)
    piano.add_argument("--max-song-seconds", type=float, default=pop2piano.default_max_song_seconds())
    add_watermark(piano)
    add_common(piano)

    sheet = jobs.add_parser("piano-sheet-music", help="piano recordings -> sheet music (MIDI, score, video)")
    sheet.add_argument("inputs", nargs="+", help="piano recordings, or folders of them (searched recursively)")
    add_model_flags(sheet, "piano_transcriber")
    sheet.add_argument("--products", nargs="+", choices=SHEET_PRODUCTS, default=list(BATCH_SHEET_PRODUCTS),
                       help="midi: tempo-mapped + constant-tempo MIDI; score: MusicXML + PDF; pages: the score's pages "
                            "as pictures; video: falling notes over the recording")
    sheet.add_argument("--easier", action="store_true", help="score: at most 4 notes per hand, within a tenth")
    sheet.add_argument("--paper", default=DEFAULT_PAPER, choices=list(PAPERS), help="score: the page size")
    sheet.add_argument("--video-format", default=DEFAULT_FORMAT, choices=list(FORMATS))
    sheet.add_argument("--max-song-seconds", type=float, default=pop2piano.default_max_song_seconds())
    add_watermark(sheet)
    add_common(sheet)

    text = jobs.add_parser("text-to-music", help="prompts -> music")
    text.add_argument("prompts", help=".txt (a prompt a line), .csv or .jsonl (column 'prompt', optional 'seed', "
                      "'duration', 'variants')")
    add_model_flags(text, "text")
    add_sampling(text)
    add_music_extras(text)
    add_watermark(text)
    add_common(text)

    melody = jobs.add_parser("melody-to-music", help="melodies x prompts -> music")
    melody.add_argument("inputs", nargs="+", help="melody files or folders")
    melody.add_argument("--prompts", help="styles to apply to every melody (.txt, .csv or .jsonl)")
    add_model_flags(melody, "melody")
    melody.add_argument("--melody-source", choices=list(separator.MELODY_SOURCES),
                        default=separator.DEFAULT_MELODY_SOURCE,
                        help="separated: drums and bass removed with Demucs first, as audiocraft; mix: as given")
    add_model_flags(melody, "separator")
    add_sampling(melody)
    add_music_extras(melody)
    add_watermark(melody)
    add_common(melody)

    from models import song
    from products.song import BATCH_SONG_PRODUCTS, SONG_PRODUCTS

    songs = jobs.add_parser("song", help="styles and lyrics -> songs with lyrics (ACE-Step 1.5)")
    songs.add_argument("songs", help=".csv or .jsonl: columns style, lyrics or lyrics_file (a .txt beside the list), "
                       "optional language, seconds, seed, bpm, key, time_signature, variants, instrumental")
    add_model_flags(songs, "song", "translator")
    songs.add_argument("--seconds", type=float, default=song.DEFAULT_SECONDS,
                       help=f"seconds per song, {song.MIN_SECONDS:g}-{song.MAX_SECONDS:g} (a row's column wins)")
    songs.add_argument("--language", default=song.AUTO, help="the lyrics' language code, or auto (from the script)")
    songs.add_argument("--variants", type=int, default=1, help=f"songs per row, 1-{song.MAX_VARIANTS}")
    songs.add_argument("--seed", default="", help="a whole number for reproducible songs; empty = random per row")
    songs.add_argument("--products", nargs="+", choices=SONG_PRODUCTS, default=list(BATCH_SONG_PRODUCTS),
                       help="wav, mp3: each variant; lyrics: the lyrics as text; params: the settings (always "
                            "written); picture: waveform and spectrogram")
    add_watermark(songs)
    add_common(songs)

    check = jobs.add_parser("check-watermark", help="files -> whether each carries this app's watermark")
    check.add_argument("files", nargs="+", help="WAV, MP3, FLAC, OGG or MP4 files")
    add_watermark(check)
    return parser


def check_watermarks(files: list[str], model: str) -> int:
    """Print one line per file: whether it carries this app's mark, the detector's score and the message; exit 1
    when a file cannot be checked."""
    from models.sources import ModelLoadError
    from products.checking import check_file

    failed = 0
    for path in files:
        try:
            print(f"{path}: {check_file(path, model).describe()}")
        except (ValueError, ModelLoadError) as e:
            print(f"{path}: cannot check: {e}")
            failed += 1
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.job == "check-watermark":
        return check_watermarks(args.files, args.watermark_model)
    try:
        if args.job == "piano-cover":
            from models.pop2piano import check_composer

            if args.style != "random":
                check_composer(args.style)
            items = piano_items(args.inputs, args.style)
            factory = PianoCoverWork(args.piano_model, args.device, args.max_song_seconds, tuple(args.products),
                                     args.instrument, args.balance, args.easier, args.video_format,
                                     args.audio_format, args.paper, args.watermark_model)
            settings = {"products": sorted(args.products), "instrument": args.instrument, "balance": args.balance,
                        "easier": args.easier, "paper": args.paper, "video_format": args.video_format,
                        "audio_format": args.audio_format,
                        "model": args.piano_model}
            items = [Item(i.id, i.input, i.settings | settings) for i in items]
            noun = "songs"
        elif args.job == "piano-sheet-music":
            factory = PianoSheetWork(args.piano_transcription_model, args.device, args.max_song_seconds,
                                     tuple(args.products), args.easier, args.paper, args.video_format,
                                     args.watermark_model)
            settings = {"products": sorted(args.products), "easier": args.easier, "paper": args.paper,
                        "video_format": args.video_format, "model": args.piano_transcription_model}
            items = [Item(i.id, i.input, settings) for i in recording_items(args.inputs)]
            noun = "recordings"
        elif args.job == "song":
            from batch.jobs import SongWork, song_items

            factory = SongWork(args.song_model, args.device, args.translation_model, args.watermark_model,
                               tuple(args.products))
            extras = {"model": args.song_model, "products": sorted(args.products)}
            items = [Item(i.id, i.input, i.settings | extras) for i in song_items(args)]
            noun = "songs"
        else:
            melody = args.job == "melody-to-music"
            items = music_items(args, melody)
            model = args.melody_model if melody else args.musicgen_model
            factory = MusicWork(model, args.device, melody, getattr(args, "separator_model", None),
                                args.translation_model, args.watermark_model, tuple(args.products), args.paper)
            extras = {"model": model, "products": sorted(args.products), "paper": args.paper}
            items = [Item(i.id, i.input, i.settings | extras) for i in items]
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
