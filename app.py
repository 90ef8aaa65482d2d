"""Music demo: turn a pop song into a piano cover.

Run ``python app.py --help`` for the launch flags. The UI is built here; the models live in ``models/``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from models import pop2piano  # noqa: E402
from models.common import DEVICE_ENV_VAR, ModelLoadError, describe_source, pick_device  # noqa: E402
from utils.audio import OUTPUT_SAMPLE_RATE, fit_length, load_audio, mix, write_wav  # noqa: E402
from utils.beats import essentia_available  # noqa: E402
from utils.midi import fluidsynth_available, render_midi  # noqa: E402
from utils.plots import piano_roll_png  # noqa: E402

logger = logging.getLogger("music_demo")

DESCRIPTION = """\
# 🎹 Music demo
Upload a pop song (or record one) and get a **piano cover**: listen to it, mix it with the original,
download the MIDI (it carries the song's tempo, so it lines up in a DAW) and see the notes.
"""
PIANO_COVER_HELP = """\
Arranged by [Pop2Piano](https://huggingface.co/sweetcocoa/pop2piano) in one of 21 arrangers' styles.
Songs are cut into four-beat chunks at the detected beats; long songs take a while on a CPU, and the progress bar
shows how far it has got.
"""
DEFAULT_BALANCE = 0.7  # 1 = piano only, 0 = original only
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "music-demo-outputs"
OUTPUT_MAX_AGE_S = 2 * 3600
MAX_UPLOAD_SIZE = "200mb"  # a 10-minute WAV at 48 kHz stereo is ~110 MB  # run folders older than this are removed when a new run starts


@dataclass
class AppConfig:
    """Settings chosen at launch (env vars, then CLI flags); read by the event handlers at run time."""

    piano_model: str = field(default_factory=pop2piano.default_model_name)
    device: str | None = field(default_factory=lambda: os.environ.get(DEVICE_ENV_VAR) or None)
    max_song_seconds: float = field(default_factory=pop2piano.default_max_song_seconds)


CONFIG = AppConfig()


def new_run_dir(prefix: str) -> Path:
    """A fresh folder for one request's files; old ones are swept away."""
    OUTPUT_ROOT.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in OUTPUT_ROOT.iterdir():
        if old.is_dir() and now - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=OUTPUT_ROOT))


def user_error(e: Exception) -> gr.Error:
    """Turn a failure into a message in the page; unexpected ones are logged with their traceback."""
    if isinstance(e, (ValueError, ModelLoadError)):
        return gr.Error(str(e), duration=None)
    logger.error("Unexpected failure:\n%s", traceback.format_exc())
    return gr.Error(f"Something went wrong ({type(e).__name__}: {e}). Please try again or try another file.")


def gradio_progress(progress: gr.Progress) -> Callable[[float, str], None]:
    """Adapt a gr.Progress to the models' ``(fraction, message)`` callback."""
    return lambda fraction, message: progress(fraction, desc=message)


# ---------------------------------------------------------------------------------------------- piano cover
STYLE_CHOICES = [(pop2piano.composer_label(c), c) for c in (*pop2piano.COMPOSERS, pop2piano.RANDOM_COMPOSER)]


def piano_cover_status() -> str:
    """One line on where the piano model comes from and what renders the audio (no network)."""
    try:
        device = str(pick_device(CONFIG.device))
    except ValueError as e:
        device = f"⚠️ {e}"
    lines = [f"**Model:** {describe_source(CONFIG.piano_model)} · **device:** {device}"]
    if not essentia_available():
        lines.append("⚠️ essentia is not installed: beats are tracked with librosa (less accurate).")
    if not fluidsynth_available():
        lines.append("⚠️ FluidSynth is not installed: the piano is rendered with sine tones (`apt-get install libfluidsynth3`).")
    return "  \n".join(lines)


def piano_cover(
    song_path: str | None,
    style: str,
    balance: float = DEFAULT_BALANCE,
    progress: gr.Progress = gr.Progress(),
) -> tuple[str, str, str, str, float, str, dict[str, Any]]:
    """Arrange a song for piano.

    Returns:
        piano WAV, MIDI file, piano+original mix WAV, piano-roll PNG, tempo (BPM), details (markdown),
        and the state the balance slider needs to re-mix.
    """
    try:
        model = pop2piano.get_piano_cover_model(CONFIG.piano_model, CONFIG.device)
        cover, song, sr = model.cover_file(
            song_path, style, max_seconds=CONFIG.max_song_seconds, progress=gradio_progress(progress)
        )
        progress(0.95, desc="Rendering the piano")
        rendered = render_midi(cover.midi, OUTPUT_SAMPLE_RATE)
        piano = fit_length(rendered.audio, int(round(song.shape[0] / sr * OUTPUT_SAMPLE_RATE)))
        out = new_run_dir("piano-cover")
        stem = Path(song_path).stem[:60] if song_path else "song"
        piano_wav = write_wav(out / f"{stem}_piano_{cover.composer}.wav", piano, OUTPUT_SAMPLE_RATE)
        midi_path = out / f"{stem}_piano_{cover.composer}.mid"
        cover.midi.write(str(midi_path))
        song_wav = write_wav(out / f"{stem}_original.wav", song, sr)
        mix_wav = write_wav(out / f"{stem}_mix.wav", mix(piano, song, balance), OUTPUT_SAMPLE_RATE)
        roll = piano_roll_png(
            cover.midi,
            out / f"{stem}_piano_roll.png",
            beat_times=cover.beats.times,
            title=f"{pop2piano.composer_label(cover.composer)} · {cover.beats.bpm:.1f} BPM · {cover.n_notes} notes",
        )
    except Exception as e:  # noqa: BLE001 - every failure becomes a message; the app keeps serving
        raise user_error(e) from e
    details = [
        f"**{pop2piano.composer_label(cover.composer)}** (`{cover.composer}`) · {cover.n_notes} notes · "
        f"{cover.beats.bpm:.1f} BPM from {cover.beats.backend} (first beat at {cover.beats.times[0]:.2f} s) · "
        f"{cover.n_chunks} chunks of {pop2piano.BEATS_PER_CHUNK} beats",
        f"Rendered with {rendered.renderer}" + (f" ({rendered.soundfont.name})" if rendered.soundfont else ""),
        *(f"⚠️ {w}" for w in (*cover.warnings, rendered.warning) if w),
    ]
    state = {"piano": str(piano_wav), "song": str(song_wav), "out": str(out), "stem": stem}
    return (
        str(piano_wav),
        str(midi_path),
        str(mix_wav),
        str(roll),
        round(cover.beats.bpm, 2),
        "  \n".join(details),
        state,
    )


def remix(state: dict[str, Any] | None, balance: float) -> str | None:
    """Re-mix the last cover with the original at a new balance (0 = original, 1 = piano)."""
    if not state:
        return None
    try:
        piano, _ = load_audio(state["piano"], OUTPUT_SAMPLE_RATE)
        song, _ = load_audio(state["song"], OUTPUT_SAMPLE_RATE)
        path = Path(state["out"]) / f"{state['stem']}_mix_{int(round(balance * 100))}.wav"
        return str(write_wav(path, mix(piano, song, balance), OUTPUT_SAMPLE_RATE))
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e


def build_piano_cover_tab() -> gr.Markdown:
    """The "Piano cover" tab: song in, piano audio / MIDI / mix / picture / tempo out. Returns its status line."""
    gr.Markdown(PIANO_COVER_HELP)
    status = gr.Markdown(elem_id="piano-cover-status")
    with gr.Row():
        with gr.Column():
            song = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Song (wav, mp3, flac, ogg)")
            style = gr.Dropdown(STYLE_CHOICES, value="composer1", label="Arranger style")
            balance = gr.Slider(0.0, 1.0, value=DEFAULT_BALANCE, step=0.05, label="Mix balance: original ↔ piano")
            run = gr.Button("Make a piano cover", variant="primary")
        with gr.Column():
            piano_audio = gr.Audio(type="filepath", label="Piano cover", interactive=False)
            mix_audio = gr.Audio(type="filepath", label="Piano + original", interactive=False)
            with gr.Row():
                midi_file = gr.File(label="MIDI download", interactive=False, height=90, scale=3)
                tempo = gr.Number(value=None, label="Detected tempo (BPM)", interactive=False, scale=1)
            details = gr.Markdown(elem_id="piano-cover-details")
    roll = gr.Image(type="filepath", label="Piano roll", interactive=False)
    state = gr.State(None)

    run.click(
        piano_cover,
        inputs=[song, style, balance],
        outputs=[piano_audio, midi_file, mix_audio, roll, tempo, details, state],
        api_name="piano_cover",
        show_progress_on=[piano_audio, roll],
    )
    balance.release(remix, inputs=[state, balance], outputs=mix_audio, api_name="piano_cover_remix")
    return status


with gr.Blocks(title="Music demo", delete_cache=(3600, OUTPUT_MAX_AGE_S)) as demo:
    gr.Markdown(DESCRIPTION)
    with gr.Tab("Piano cover"):
        piano_status = build_piano_cover_tab()
    demo.load(piano_cover_status, outputs=piano_status, api_name=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--server-name", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--server-port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login")
    parser.add_argument("--device", default=CONFIG.device, help="cuda, cuda:N, mps or cpu (default: best available)")
    parser.add_argument(pop2piano.PIANO_COVER_CLI_FLAG, default=CONFIG.piano_model,
                        help=f"Pop2Piano hub id or local folder (env {pop2piano.PIANO_COVER_ENV_VAR})")
    parser.add_argument("--max-song-seconds", type=float, default=CONFIG.max_song_seconds,
                        help=f"longest song accepted (env {pop2piano.MAX_SONG_SECONDS_ENV_VAR})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    CONFIG.piano_model = args.piano_model
    CONFIG.device = args.device
    CONFIG.max_song_seconds = args.max_song_seconds
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            raise SystemExit("--auth wants USER:PASS")
        auth = (user, password)
    demo.queue(default_concurrency_limit=1, max_size=32).launch(
        share=args.share,
        server_name=args.server_name,
        server_port=args.server_port,
        auth=auth,
        max_file_size=MAX_UPLOAD_SIZE,
    )


if __name__ == "__main__":
    main()
