"""MusicGen and MusicGen-Melody, shaped as audiocraft's ``MusicGen`` (one file per job):

- ``checkpoints``: which checkpoint (hub ids, env vars) and how it loads;
- ``request``: ``MusicRequest`` (what one call makes, checked once) and ``MusicResult``;
- ``model``: the model object, its entry points, the windowed token loop, and the role's cache entry;
- ``inputs``: settings, prompt and seed checks, ``SamplingParams``, the melody and clip inputs;
- ``windows``: window planning for pieces past 30 s;
- ``codec``: the delay pattern, EnCodec, and frozen parts shared between checkpoints;
- ``backends``: how a window decodes (the fast loop, or stock ``generate``), chosen once at load;
- ``fast_loop``, ``layers``, ``rounds``: the fast loop, its layer calls, and its rounds on the model thread;
- ``streaming``: audio chunks while a piece is made.
"""

from models.musicgen.checkpoints import (
    CHECKPOINT_BILLIONS,
    CPU_INT8_ENV_VAR,
    DEFAULT_MELODY_MODEL,
    DEFAULT_MUSICGEN_MODEL,
    FAST_PATH_ENV_VAR,
    MELODY_CHECKPOINTS,
    MELODY_CLI_FLAG,
    MELODY_ENV_VAR,
    MUSICGEN_CLI_FLAG,
    MUSICGEN_ENV_VAR,
    TEXT_CHECKPOINTS,
    default_model_name,
)
from models.musicgen.inputs import (
    DEFAULT_DURATION_S,
    DEFAULT_GUIDANCE_SCALE,
    DEFAULT_STRIDE_S,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    MAX_CLIP_SECONDS,
    MAX_DURATION_S,
    MAX_GUIDANCE_SCALE,
    MAX_MELODY_FILE_SECONDS,
    MAX_MELODY_SECONDS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STRIDE_S,
    MAX_TOP_K,
    MAX_UNKNOWN_PARTS_SHOWN,
    MAX_VARIANTS,
    MIN_CLIP_SECONDS,
    MIN_DURATION_S,
    MIN_MELODY_SECONDS,
    MIN_STRIDE_S,
    WINDOW_S,
    Clip,
    Melody,
    SamplingParams,
    check_prompt,
    check_variants,
    parse_seed,
    unknown_prompt_note,
    unknown_prompt_parts,
)
from models.musicgen.model import MusicGenModel
from models.musicgen.request import MusicRequest, MusicResult
from models.musicgen.streaming import AudioStream
from models.musicgen.windows import Window, plan_windows, window_count
from models.progress import GenerationCancelled

__all__ = [
    "CHECKPOINT_BILLIONS",
    "CPU_INT8_ENV_VAR",
    "AudioStream",
    "Clip",
    "DEFAULT_DURATION_S",
    "DEFAULT_GUIDANCE_SCALE",
    "DEFAULT_MELODY_MODEL",
    "DEFAULT_MUSICGEN_MODEL",
    "DEFAULT_STRIDE_S",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TOP_K",
    "DEFAULT_TOP_P",
    "FAST_PATH_ENV_VAR",
    "GenerationCancelled",
    "MAX_CLIP_SECONDS",
    "MAX_DURATION_S",
    "MAX_GUIDANCE_SCALE",
    "MAX_MELODY_FILE_SECONDS",
    "MAX_MELODY_SECONDS",
    "MAX_PROMPT_CHARS",
    "MAX_SEED",
    "MAX_STRIDE_S",
    "MAX_TOP_K",
    "MAX_UNKNOWN_PARTS_SHOWN",
    "MAX_VARIANTS",
    "MELODY_CHECKPOINTS",
    "MELODY_CLI_FLAG",
    "MELODY_ENV_VAR",
    "MIN_CLIP_SECONDS",
    "MIN_DURATION_S",
    "MIN_MELODY_SECONDS",
    "MIN_STRIDE_S",
    "MUSICGEN_CLI_FLAG",
    "MUSICGEN_ENV_VAR",
    "Melody",
    "MusicGenModel",
    "MusicRequest",
    "MusicResult",
    "SamplingParams",
    "TEXT_CHECKPOINTS",
    "WINDOW_S",
    "Window",
    "check_prompt",
    "check_variants",
    "default_model_name",
    "parse_seed",
    "plan_windows",
    "unknown_prompt_note",
    "unknown_prompt_parts",
    "window_count",
]
