"""What every tab shares: launch settings, output folders, errors, progress, and ZeroGPU wrapping."""

from __future__ import annotations

import html
import logging
import os
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

try:  # Hugging Face ZeroGPU: `spaces` must be imported before torch (models/ imports torch)
    import spaces
except ImportError:  # not on a Space, and not installed: plain calls
    spaces = None

from models import (  # noqa: E402
    musicgen,
    song,
    piano_transcription,
    pop2piano,
    separator,
    transcription,
    translation,
    watermark,
)
from models.devices import DEVICE_ENV_VAR, zero_gpu_env  # noqa: E402
from models.progress import GenerationCancelled  # noqa: E402
from models.sources import ModelLoadError, describe_source, how_to_fix, is_off, looks_like_path  # noqa: E402
from products.shares import DEFAULT_MAX_SHARE_MB  # noqa: E402
from utils.files import DEFAULT_MAX_AGE_S, DEFAULT_MAX_OUTPUT_MB, DEFAULT_OUTPUT_ROOT  # noqa: E402
from utils.files import new_run_dir  # noqa: E402
from ui.i18n import catalogue, say, sayer  # noqa: E402
from ui.page_words import PAGE_WORDS_CSS  # noqa: E402
from serving import InProcess, backend, use_backend  # noqa: E402

logger = logging.getLogger("music_demo")

OUTPUT_DIR_ENV_VAR = "MUSIC_DEMO_OUTPUT_DIR"  # where each request's files are written (a folder per request)
MAX_OUTPUT_MB_ENV_VAR = "MUSIC_DEMO_MAX_OUTPUT_MB"  # size cap of that folder; the oldest requests go first
MAX_SHARE_MB_ENV_VAR = "MUSIC_DEMO_MAX_SHARE_MB"  # size cap of the shared results (their own); the oldest go first
MAX_UPLOAD_MB_ENV_VAR = "MUSIC_DEMO_MAX_UPLOAD_MB"
OUTPUT_MAX_AGE_S = DEFAULT_MAX_AGE_S  # run folders older than this are removed when a new run starts
DEFAULT_MAX_UPLOAD_MB = 200.0  # a 10-minute WAV at 48 kHz stereo is ~110 MB
DEFAULT_QUEUE_SIZE = 32  # requests waiting at once; more get "queue is full"
# Every model event shares one concurrency group: at most --concurrency of them run at once (gradio's workers), and
# their model work goes to the one model thread (models.runtime), where MusicGen requests share decode passes.
MODEL_QUEUE = "models"
PAPER_CHOICES = [("A4", "a4"), ("Letter", "letter")]  # the score's paper, as the page offers it


@dataclass
class AppConfig:
    """Settings chosen at launch (env vars, then CLI flags); read by the event handlers at run time."""

    piano_model: str = field(default_factory=pop2piano.default_model_name)
    musicgen_model: str = field(default_factory=lambda: musicgen.default_model_name(melody=False))
    melody_model: str = field(default_factory=lambda: musicgen.default_model_name(melody=True))
    song_model: str = field(default_factory=song.default_song_name)
    separator_model: str = field(default_factory=separator.default_separator_name)
    translation_model: str = field(default_factory=translation.default_translation_name)
    watermark_model: str = field(default_factory=watermark.default_watermark_name)
    piano_transcription_model: str = field(default_factory=piano_transcription.default_piano_transcription_name)
    device: str | None = field(default_factory=lambda: os.environ.get(DEVICE_ENV_VAR) or None)
    max_song_seconds: float = field(default_factory=pop2piano.default_max_song_seconds)
    output_dir: Path = field(
        default_factory=lambda: Path(os.environ.get(OUTPUT_DIR_ENV_VAR, "").strip() or DEFAULT_OUTPUT_ROOT)
    )
    max_output_mb: float = field(
        default_factory=lambda: float(os.environ.get(MAX_OUTPUT_MB_ENV_VAR, "").strip() or DEFAULT_MAX_OUTPUT_MB)
    )
    max_share_mb: float = field(
        default_factory=lambda: float(os.environ.get(MAX_SHARE_MB_ENV_VAR, "").strip() or DEFAULT_MAX_SHARE_MB)
    )
    max_upload_mb: float = field(
        default_factory=lambda: float(os.environ.get(MAX_UPLOAD_MB_ENV_VAR, "").strip() or DEFAULT_MAX_UPLOAD_MB)
    )


CONFIG = AppConfig()
use_backend(InProcess(CONFIG))  # model work reads the launch settings; app.main may put Ray Serve in its place


def run_folder(prefix: str) -> Path:
    """A fresh folder for one request's files under the page's output folder (``--output-dir``); folders over the age
    limit or the size cap are swept away (``utils.files.new_run_dir``)."""
    return new_run_dir(prefix, CONFIG.output_dir, OUTPUT_MAX_AGE_S, int(CONFIG.max_output_mb * 1024 * 1024))


# ZeroGPU lends a GPU per call for at most this long (seconds); longer calls are cut off by the Space.
GPU_SECONDS = {"piano_cover": 120, "piano_to_sheet_music": 120, "text_to_music": 120, "melody_to_music": 180,
               "song": 120}


def on_zero_gpu() -> bool:
    """Whether the app runs on a Hugging Face ZeroGPU Space (``spaces`` importable and ``SPACES_ZERO_GPU`` set)."""
    return spaces is not None and zero_gpu_env()


def gpu_task(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a model event with ``spaces.GPU`` when `spaces` is importable (it does nothing off ZeroGPU)."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=GPU_SECONDS[name])


class ModelSteps:
    """The backend in use, with some of its jobs' calls made by the page's own functions instead (their model steps
    under ZeroGPU's lease, ``gpu_task``, defined at import as ZeroGPU wants): a job function given it as its
    ``through`` holds the GPU for the model's step only, not while it writes the files."""

    def __init__(self, **calls: Callable[..., Any]) -> None:
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        return self._calls.get(name) or getattr(backend(), name)


def runtime_line() -> str:
    """How model calls run: plain, or through ZeroGPU's decorator (for the status lines and the launch log)."""
    if spaces is None:
        return "ZeroGPU: off (`spaces` not installed: plain calls)"
    return "ZeroGPU: on" if on_zero_gpu() else "ZeroGPU: off (`spaces` installed, not on a ZeroGPU Space)"


ERROR_SECONDS = 12  # a message stays this long (or until closed), so that old ones do not pile up
MODEL_MISSING = ("This part of the app cannot run right now: its model is not available on this server. Whoever "
                 "runs the app will find why, and how to fix it, under Technical details and in the app's log.")


def plain(text: str) -> str:
    """A message as plain text: no markdown marks (backticks, bold) shown literally in a toast."""
    return re.sub(r"\*\*|`", "", text)


def page_error(message: str) -> gr.Error:
    """An error for the page, said in the request's language (its words and its title), as plain text."""
    return gr.Error(plain(say(message)), duration=ERROR_SECONDS, title=say("Error"))


def page_info(message: str) -> None:
    """A note for the page, said in the request's language (its words and its title)."""
    gr.Info(plain(say(message)), duration=ERROR_SECONDS, title=say("Note"))


def user_error(e: Exception) -> gr.Error:
    """Turn a failure into a short plain message in the page; setup problems and unexpected failures go to the log
    in full (with the traceback for the unexpected ones)."""
    if isinstance(e, GenerationCancelled):  # its Stop, or its page closed: nobody waits for a traceback
        logger.info("A run stopped before its end: %s", e)
        return page_error("Stopped before the end.")
    if isinstance(e, ModelLoadError):
        logger.warning("A model could not be loaded: %s", e)
        return page_error(MODEL_MISSING)
    if isinstance(e, gr.Error):
        return page_error(e.message)
    if isinstance(e, ValueError):
        return page_error(str(e))
    logger.error("Unexpected failure:\n%s", traceback.format_exc())
    return page_error(f"Something went wrong ({type(e).__name__}). Please try again or try another file.")


def technical_details(tab: str) -> gr.Markdown:
    """A tab's collapsed "Technical details": where its models come from, the device, missing libraries and how to
    fix them (for whoever runs the app). Returns the Markdown the page fills in when it loads."""
    with gr.Accordion("Technical details", open=False, elem_id=f"{tab}-technical"):
        return gr.Markdown(elem_id=f"{tab}-status")


def _optional_model_status(label: str, name: str, off: bool, marker: str, env_var: str, flag: str,
                           without: str) -> str:
    if off:
        return f"**{label}:** off (`{env_var}`): {without}"
    source = describe_source(name, marker)
    line = f"**{label}:** {source}"
    if "missing" in source or not looks_like_path(name):
        line += f"; without it {without} ({how_to_fix(name, env_var, flag)})"
    return line


def translation_status() -> str:
    """Where the prompt translator comes from, and what happens without it (no network)."""
    name = CONFIG.translation_model
    return _optional_model_status(
        "Prompt translation", name, is_off(name), "config.json", translation.TRANSLATION_ENV_VAR,
        translation.TRANSLATION_CLI_FLAG, "prompts in other languages go to the model as written")


def watermark_status() -> str:
    """Where the watermark model comes from, and what happens without it (no network)."""
    name = CONFIG.watermark_model
    return _optional_model_status(
        "Watermark", name, is_off(name), watermark.GENERATOR_FILE, watermark.WATERMARK_ENV_VAR,
        watermark.WATERMARK_CLI_FLAG, "audio files are written unmarked and say so")


def transcription_status() -> str:
    """Whether "MIDI of this" can run (basic-pitch ships its model; only the package can be missing)."""
    if transcription.transcriber_installed():
        return f"**MIDI of results:** {transcription.TRANSCRIBER_LABEL}, installed"
    return f"**MIDI of results:** ⚠️ not installed. {transcription.INSTALL_HINT}"


def with_technical(summary: str, lines: list[str]) -> str:
    """A result's details: a plain summary, then its technical lines in a collapsed section."""
    if not lines:
        return summary
    items = "".join(f"<li>{html.escape(plain(line))}</li>" for line in lines)
    return f"{summary}\n\n<details><summary>{html.escape(say('Technical details'))}</summary><ul>{items}</ul></details>"


# The page's own styles: players and pictures that keep to the screen, downloads without remove buttons and with
# their whole names, a quiet Stop, and a phone layout whose first screen shows the upload.
PAGE_CSS = """
#piano-video video, #piano-video .wrap { max-height: 80vh; }
#piano-video video { width: auto; max-width: 100%; margin: 0 auto; display: block; }
#piano-score .grid-wrap, #piano-score .grid-container { max-height: none !important; height: auto !important; }
#piano-score img { width: 100%; height: auto !important; object-fit: contain; }
.downloads button[aria-label*="emove"], .downloads .label-clear-button,
.downloads td:last-child button { display: none; }
.downloads td.filename { display: table-cell !important; }
.downloads td.filename, .downloads td.filename span { white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; overflow-wrap: anywhere; max-width: none !important; }
.tab-intro p { margin: 0 0 0.4em 0; }
.run-progress-box { display: flex; align-items: center; gap: 0.6em; font-size: 0.95em; }
.run-progress-box progress { flex: 0 0 30%; height: 0.7em; accent-color: var(--color-accent); }
.played-out { display: none !important; }
@media (max-width: 600px) {
  /* a run's Stop stays in reach on a phone: while it can be pressed it floats at the foot of the screen */
  button.stop-button:enabled { position: fixed; left: 12px; right: 12px; bottom: 12px; width: auto !important;
    z-index: 60; box-shadow: 0 2px 12px rgba(0, 0, 0, 0.35); }
  .app-intro p ~ p { display: none; }
  .tab-wrapper .tab-container button { padding: 4px 4px !important; font-size: 12px !important; }
  .tab-intro { display: none; }
  #piano-examples table, #melody-example-tunes table { table-layout: fixed; width: 100% !important; }
  #piano-examples th, #piano-examples td, #melody-example-tunes th, #melody-example-tunes td {
    white-space: normal !important; overflow-wrap: anywhere; font-size: 13px; padding: 4px !important; }
}
"""
# gradio 6.31's page titles every error toast with the word "Error", whatever title the server gives it
# (ui/gradio_checks.py); a Chinese page (gradio sets <html lang>) shows its own word there instead.
PAGE_CSS += """
html:lang(zh) .toast-title.error { font-size: 0; }
html:lang(zh) .toast-title.error::before { content: "%s"; font-size: var(--text-lg); }
""" % catalogue()["Error"] + PAGE_WORDS_CSS


def gradio_progress(progress: gr.Progress) -> Callable[[float, str], None]:
    """Adapt a gr.Progress to the models' ``(fraction, message)`` callback, said in this request's language (the
    callback runs on the model thread, so the language is fixed here, in the request's)."""
    said = sayer()
    return lambda fraction, message: progress(fraction, desc=said(message))

