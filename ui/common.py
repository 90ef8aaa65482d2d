"""What every tab shares: launch settings, output folders, errors, progress, and ZeroGPU wrapping."""

from __future__ import annotations

import logging
import os
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

from models import musicgen, pop2piano, separator  # noqa: E402
from models.devices import DEVICE_ENV_VAR  # noqa: E402
from models.sources import ModelLoadError  # noqa: E402
from utils.files import DEFAULT_MAX_AGE_S, DEFAULT_MAX_OUTPUT_MB, DEFAULT_OUTPUT_ROOT  # noqa: E402
from utils.files import new_run_dir as make_run_dir  # noqa: E402

logger = logging.getLogger("music_demo")

OUTPUT_DIR_ENV_VAR = "MUSIC_DEMO_OUTPUT_DIR"  # where each request's files are written (a folder per request)
MAX_OUTPUT_MB_ENV_VAR = "MUSIC_DEMO_MAX_OUTPUT_MB"  # size cap of that folder; the oldest requests go first
MAX_UPLOAD_MB_ENV_VAR = "MUSIC_DEMO_MAX_UPLOAD_MB"
OUTPUT_MAX_AGE_S = DEFAULT_MAX_AGE_S  # run folders older than this are removed when a new run starts
DEFAULT_MAX_UPLOAD_MB = 200.0  # a 10-minute WAV at 48 kHz stereo is ~110 MB
DEFAULT_QUEUE_SIZE = 32  # requests waiting at once; more get "queue is full"
# Every model event shares one concurrency group: at most --concurrency of them run at once (gradio's workers), and
# their model work goes to the one model thread (models.runtime), where MusicGen requests share decode passes.
MODEL_QUEUE = "models"


@dataclass
class AppConfig:
    """Settings chosen at launch (env vars, then CLI flags); read by the event handlers at run time."""

    piano_model: str = field(default_factory=pop2piano.default_model_name)
    musicgen_model: str = field(default_factory=lambda: musicgen.default_model_name(melody=False))
    melody_model: str = field(default_factory=lambda: musicgen.default_model_name(melody=True))
    separator_model: str = field(default_factory=separator.default_separator_name)
    device: str | None = field(default_factory=lambda: os.environ.get(DEVICE_ENV_VAR) or None)
    max_song_seconds: float = field(default_factory=pop2piano.default_max_song_seconds)
    output_dir: Path = field(
        default_factory=lambda: Path(os.environ.get(OUTPUT_DIR_ENV_VAR, "").strip() or DEFAULT_OUTPUT_ROOT)
    )
    max_output_mb: float = field(
        default_factory=lambda: float(os.environ.get(MAX_OUTPUT_MB_ENV_VAR, "").strip() or DEFAULT_MAX_OUTPUT_MB)
    )
    max_upload_mb: float = field(
        default_factory=lambda: float(os.environ.get(MAX_UPLOAD_MB_ENV_VAR, "").strip() or DEFAULT_MAX_UPLOAD_MB)
    )


CONFIG = AppConfig()


def new_run_dir(prefix: str) -> Path:
    """A fresh folder for one request's files; folders over the age limit or the size cap are swept away."""
    return make_run_dir(prefix, CONFIG.output_dir, OUTPUT_MAX_AGE_S, int(CONFIG.max_output_mb * 1024 * 1024))


# ZeroGPU lends a GPU per call for at most this long (seconds); longer calls are cut off by the Space.
GPU_SECONDS = {"piano_cover": 120, "text_to_music": 120, "melody_to_music": 180}


def on_zero_gpu() -> bool:
    """Whether the app runs on a Hugging Face ZeroGPU Space (``spaces`` importable and ``SPACES_ZERO_GPU`` set)."""
    return spaces is not None and os.environ.get("SPACES_ZERO_GPU", "").lower() in {"1", "t", "true"}


def gpu_task(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a model event with ``spaces.GPU`` when `spaces` is importable (it does nothing off ZeroGPU)."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=GPU_SECONDS[name])


def runtime_line() -> str:
    """How model calls run: plain, or through ZeroGPU's decorator (for the status lines and the launch log)."""
    if spaces is None:
        return "ZeroGPU: off (`spaces` not installed: plain calls)"
    return "ZeroGPU: on" if on_zero_gpu() else "ZeroGPU: off (`spaces` installed, not on a ZeroGPU Space)"


def user_error(e: Exception) -> gr.Error:
    """Turn a failure into a message in the page; unexpected ones are logged with their traceback."""
    if isinstance(e, (ValueError, ModelLoadError)):
        return gr.Error(str(e), duration=None)
    logger.error("Unexpected failure:\n%s", traceback.format_exc())
    return gr.Error(f"Something went wrong ({type(e).__name__}: {e}). Please try again or try another file.")


def gradio_progress(progress: gr.Progress) -> Callable[[float, str], None]:
    """Adapt a gr.Progress to the models' ``(fraction, message)`` callback."""
    return lambda fraction, message: progress(fraction, desc=message)

