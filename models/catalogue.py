"""Which checkpoints this server offers its visitors, and how much memory a model needs: as whisper's
``available_models()``, the names a visitor may choose, decided by whoever runs the server.

A visitor chooses among ``available_models(role)`` and nothing else: any other name is refused with the list of
valid ones, before anything is looked up, downloaded or loaded (``check_offered``). The operator sets the list
(``--musicgen-models``, ``$MUSICGEN_MODELS``...); by default it is the app's own checkpoint plus the official ones
that this machine already holds (in the hub cache: nothing is downloaded for a visitor) and that fit its memory.
Local folders are offered only when the operator lists them.

The memory a model needs (``model_bytes``) is known for the official checkpoints, and counted for a folder from its
``config.json`` (the architecture built on torch's "meta" device: parameters counted, no memory taken), else from its
weight files. ``available_bytes`` is what the machine has free (``$MUSIC_DEMO_MODEL_MEMORY_GB`` caps what the
models may take altogether). The model cache (``models.cache.ModelCache``) compares the two before each load.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch

from models.musicgen.checkpoints import (
    DEFAULT_MELODY_MODEL,
    DEFAULT_MUSICGEN_MODEL,
    MELODY_CHECKPOINTS,
    TEXT_CHECKPOINTS,
    default_model_name,
)
from models.song.checkpoints import SONG_BILLIONS, SONG_CHECKPOINTS, default_song_name, hub_marker
from models.cache import short_name
from models.roles import resolve_name
from models.sources import _hub_is_cached, looks_like_path

logger = logging.getLogger(__name__)

CHOOSABLE_ROLES = ("text", "melody", "song")  # the roles whose model a visitor picks on the page
OFFERED_ENV_VARS = {"text": "MUSICGEN_MODELS", "melody": "MUSICGEN_MELODY_MODELS", "song": "SONG_MODELS"}
OFFERED_CLI_FLAGS = {"text": "--musicgen-models", "melody": "--melody-models", "song": "--song-models"}
OFFICIAL = {"text": TEXT_CHECKPOINTS, "melody": MELODY_CHECKPOINTS, "song": SONG_CHECKPOINTS}
MEMORY_BUDGET_ENV_VAR = "MUSIC_DEMO_MODEL_MEMORY_GB"  # what all loaded models may take together; unset = free memory
OFFICIAL_FITS_SHARE = 0.8  # an official checkpoint is offered by default when it needs at most this share of memory

# Whole checkpoints (decoder with its cross-attention, T5-base, EnCodec), in billions of parameters, counted from
# their configurations (musicgen-small: 587 M measured). The page's sizes (CHECKPOINT_BILLIONS) are the model cards'.
TOTAL_BILLIONS = {
    "facebook/musicgen-small": 0.59, "facebook/musicgen-medium": 1.98, "facebook/musicgen-large": 3.39,
    "facebook/musicgen-stereo-small": 0.59, "facebook/musicgen-stereo-medium": 1.98,
    "facebook/musicgen-stereo-large": 3.39, "facebook/musicgen-melody": 1.55, "facebook/musicgen-melody-large": 3.3,
    "facebook/musicgen-stereo-melody": 1.55, "facebook/musicgen-stereo-melody-large": 3.3,
    **SONG_BILLIONS,
}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".th", ".ckpt")
GB = 1e9

_offered: dict[str, tuple[str, ...] | None] = {role: None for role in CHOOSABLE_ROLES}  # None: the default offer


def split_names(value: str | None) -> list[str]:
    """Names from a flag or env var: separated by commas or whitespace."""
    return [part for part in (value or "").replace(",", " ").split() if part]


def offered_from_env(role: str) -> list[str] | None:
    """The operator's list for ``role`` from its env var (``$MUSICGEN_MODELS``...), or None when unset."""
    names = split_names(os.environ.get(OFFERED_ENV_VARS[role]))
    return names or None


def set_offered(role: str, names: list[str] | None) -> None:
    """The operator's list of checkpoints for ``role`` (hub ids, short names of official ones, or folders); None or
    empty: the default offer."""
    if role not in CHOOSABLE_ROLES:
        raise ValueError(f"Visitors choose no model for {role!r}; the roles they choose for: "
                         f"{', '.join(CHOOSABLE_ROLES)}.")
    _offered[role] = tuple(_full_name(role, n) for n in names) if names else None


def _full_name(role: str, name: str) -> str:
    """A name as the catalogue keeps it: a known checkpoint's hub id for its short name, a folder expanded."""
    name = name.strip()
    if looks_like_path(name):
        return str(Path(name).expanduser()).rstrip("/") or "/"
    return resolve_name(role, name)


def available_models(role: str = "text", own: str | None = None) -> list[str]:
    """The checkpoints visitors may choose for ``role`` ("text" or "melody"), the app's own first.

    Args:
        role: "text", "melody" or "song".
        own: the checkpoint the app was started with (None: the role's env var, else the official default).

    Returns:
        ``own``, then the operator's list (``set_offered``, ``$MUSICGEN_MODELS``...), or by default the official
        checkpoints of the role that are in this machine's hub cache and fit its memory.
    """
    if role not in CHOOSABLE_ROLES:
        raise ValueError(f"Unknown role {role!r}; visitors choose models for: {', '.join(CHOOSABLE_ROLES)}.")
    own = _full_name(role, own or (default_song_name() if role == "song"
                                   else default_model_name(melody=role == "melody")))
    listed = _offered[role] if _offered[role] is not None else offered_from_env(role)
    if listed is not None:
        others = [_full_name(role, n) for n in listed]
    else:
        others = [name for name in OFFICIAL[role] if _hub_is_cached(name, hub_marker(name)) and fits_here(name)]
    return list(dict.fromkeys([own, *others]))


def check_offered(role: str, name: str | None, own: str | None = None) -> str:
    """The full name of a visitor's choice ("" or None: the app's own), checked against ``available_models``.

    Nothing is looked up, downloaded or loaded for a name that is not offered.

    Raises:
        ValueError: the name is not offered here; the message lists the names that are.
    """
    offered = available_models(role, own)
    chosen = (name or "").strip()
    if not chosen:
        return offered[0]
    by_short = {short_name(n): n for n in offered if looks_like_path(n)}  # a folder by its name, as messages say it
    full = chosen if chosen in offered else by_short.get(chosen) or _full_name(role, chosen)
    if full not in offered:
        shown = ", ".join(f"“{short_name(n) if looks_like_path(n) else n}”" for n in offered)
        raise ValueError(f"The model “{chosen[:80]}” is not offered on this server. Choose one of: {shown} "
                         "(or leave it empty for the app's own model).")
    return full


# ------------------------------------------------------------------------------------------------------ memory
def device_kind(device: torch.device | str | None) -> str:
    """"cpu", "cuda", "mps"...: the kind of ``device``, or of the device models load on by default (None)."""
    return torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")


def bytes_per_parameter(device: torch.device | str | None) -> int:
    """Bytes a parameter takes while a model loads: float32 on the CPU (the int8 decoder is made from it), half
    precision on a GPU."""
    kind = device_kind(device)
    return 4 if kind == "cpu" else 2


@functools.lru_cache(maxsize=64)
def parameter_count(name: str) -> int | None:
    """Parameters of a checkpoint: the known official ones, a folder's ``config.json`` (its architecture built on
    the meta device) or its weight files, or one weight file (as float32); None when it cannot be told without
    loading."""
    if name in TOTAL_BILLIONS:
        return int(TOTAL_BILLIONS[name] * 1e9)
    folder = Path(name).expanduser()
    if folder.is_file() and folder.name.endswith(WEIGHT_SUFFIXES):  # one checkpoint file (Transkun's .pt)
        return folder.stat().st_size // 4
    if not folder.is_dir():
        return None
    if (folder / "config.json").is_file():
        try:
            from transformers import AutoConfig, AutoModel, AutoModelForTextToWaveform

            config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
            with torch.device("meta"):
                for auto in (AutoModelForTextToWaveform, AutoModel):
                    try:
                        model = auto.from_config(config)
                        break
                    except ValueError:
                        continue
                else:
                    model = None
            if model is not None:
                return sum(p.numel() for p in model.parameters())
        except Exception as e:  # noqa: BLE001 - fall back to the files' size
            logger.debug("Could not count %s's parameters from its config: %s", name, e)
    weights = [p for p in folder.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    return sum(p.stat().st_size for p in weights) // 4 if weights else None


def model_bytes(name: str, device: torch.device | str | None = None) -> int:
    """About how much memory ``name`` takes loaded on ``device`` (0 when it cannot be told)."""
    count = parameter_count(name)
    return 0 if count is None else count * bytes_per_parameter(device)


def _meminfo(field: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def memory_budget() -> int | None:
    """``$MUSIC_DEMO_MODEL_MEMORY_GB`` in bytes: what all loaded models may take together (None: unset)."""
    value = os.environ.get(MEMORY_BUDGET_ENV_VAR, "").strip()
    return int(float(value) * GB) if value else None


def total_bytes(device: torch.device | str | None = None) -> int | None:
    """The memory of the device models load on: the GPU's, else the machine's (or the budget, when smaller)."""
    kind = device_kind(device)
    if kind == "cuda":
        total = _gpu_memory(device, 1)
    else:
        total = _meminfo("MemTotal")
        if total is None and hasattr(os, "sysconf"):
            try:
                total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            except (ValueError, OSError):
                total = None
    budget = memory_budget()
    return min(x for x in (total, budget) if x is not None) if (total or budget) else None


def available_bytes(device: torch.device | str | None = None) -> int | None:
    """Memory free now on the device models load on (the GPU's free memory, else the machine's available memory);
    None when it cannot be read."""
    kind = device_kind(device)
    if kind == "cuda":
        return _gpu_memory(device, 0)
    return _meminfo("MemAvailable")


def _gpu_memory(device: torch.device | str | None, which: int) -> int | None:
    """The GPU's free (0) or total (1) memory; None where it cannot be asked now (no CUDA; on ZeroGPU the main
    process has no GPU outside a GPU call, and a model's size is then not checked against it)."""
    from models.devices import zero_gpu_env

    if zero_gpu_env() or not torch.cuda.is_available():
        return None
    try:
        return int(torch.cuda.mem_get_info(torch.device(device) if device is not None else None)[which])
    except Exception:  # noqa: BLE001 - a driver that cannot be asked: no check rather than no model
        return None


def fits_here(name: str, device: torch.device | str | None = None) -> bool:
    """Whether ``name`` needs at most OFFICIAL_FITS_SHARE of this machine's memory (unknown sizes fit)."""
    need, total = model_bytes(name, device), total_bytes(device)
    return not need or not total or need <= OFFICIAL_FITS_SHARE * total


__all__ = [
    "CHOOSABLE_ROLES", "DEFAULT_MELODY_MODEL", "DEFAULT_MUSICGEN_MODEL", "MEMORY_BUDGET_ENV_VAR",
    "OFFERED_CLI_FLAGS", "OFFERED_ENV_VARS", "available_bytes", "available_models", "check_offered", "fits_here",
    "memory_budget", "model_bytes", "set_offered", "total_bytes",
]
