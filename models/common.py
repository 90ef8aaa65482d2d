"""What every model wrapper shares: device choice, model sources, load errors and int8 layers (the model thread
lives in ``models.runtime``)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import torch

logger = logging.getLogger(__name__)

DEVICE_ENV_VAR = "MUSIC_DEMO_DEVICE"  # "cuda", "cuda:1", "mps" or "cpu"; unset = pick automatically
HUB_PROBE_TIMEOUT_S = 3.0  # how long we wait to learn whether the Hugging Face Hub is reachable

T = TypeVar("T")


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which, why, and how to fix it."""


def env_flag(name: str, default: bool = True) -> bool:
    """A yes/no setting from the environment: "0", "false", "no" or "off" mean no; unset means ``default``."""
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value not in {"0", "false", "no", "off"}


def pick_device(requested: str | None = None) -> torch.device:
    """The device to run on: ``requested`` (or ``$MUSIC_DEMO_DEVICE``), else CUDA, else MPS, else CPU."""
    requested = requested or os.environ.get(DEVICE_ENV_VAR) or None
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"Device {requested!r} was asked for, but CUDA is not available on this machine.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"Device {requested!r} was asked for, but MPS is not available on this machine.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


BF16_MIN_CAPABILITY = (8, 0)  # Ampere: the first NVIDIA GPUs with bfloat16 in hardware


def has_hardware_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware.

    ``torch.cuda.is_bf16_supported()`` also says True on older GPUs (a T4, compute capability 7.5, the free
    Colab GPU) where bfloat16 is only emulated, slowly; the compute capability tells the truth.
    """
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= BF16_MIN_CAPABILITY


def pick_dtype(device: torch.device, float16_ok: bool = True) -> torch.dtype:
    """The weights' dtype on ``device``.

    bfloat16 on GPUs that have it in hardware; below that (T4, V100) float16 where ``float16_ok`` (MusicGen, as
    the official demo runs it), else float32 (T5-style models can overflow in float16); float16 on MPS;
    float32 on CPU.
    """
    if device.type == "cuda":
        if has_hardware_bf16(device):
            return torch.bfloat16
        return torch.float16 if float16_ok else torch.float32
    if device.type == "mps":
        return torch.float16 if float16_ok else torch.float32
    return torch.float32


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is meant as a local folder rather than a hub id like ``owner/model``."""
    return (
        name.startswith((".", "/", "~"))
        or os.path.isabs(name)
        or Path(name).expanduser().exists()
        or name.count("/") > 1
        or ("/" in name and Path(name.split("/")[0]).is_dir())  # "weights/pop2piano" beside a weights/ folder
    )


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files come from.

    Attributes:
        name: the hub id or folder as the user gave it.
        location: what to hand to ``from_pretrained``.
        is_local: True for a local folder.
        local_files_only: True when the hub must not be contacted (a folder, the cache, or offline mode).
    """

    name: str
    location: str
    is_local: bool
    local_files_only: bool


def _hub_is_cached(repo_id: str, marker: str = "config.json") -> bool:
    """Whether the hub cache holds ``repo_id``'s ``marker`` file (a glob pattern such as ``*.yaml`` works too)."""
    try:
        if any(c in marker for c in "*?["):
            from huggingface_hub import snapshot_download

            folder = snapshot_download(repo_id, allow_patterns=[marker], local_files_only=True)
            return any(Path(folder).glob(marker))
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, marker), str)
    except Exception:  # noqa: BLE001 - an odd cache layout just means "not cached"
        return False


def hub_is_reachable(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hugging Face Hub (``$HF_ENDPOINT``) opens within ``timeout_s``."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def how_to_fix(name: str, env_var: str, cli_flag: str) -> str:
    """The standard advice for pointing the app at a model's weights."""
    repo = name if not looks_like_path(name) else "<hub id>"
    return (
        f"To use a local copy, download it where the hub is reachable "
        f"(`huggingface-cli download {repo} --local-dir ./weights/{repo.split('/')[-1]}`), then start the app "
        f"with `{cli_flag} ./weights/{repo.split('/')[-1]}` or set `{env_var}=./weights/{repo.split('/')[-1]}`."
    )


def resolve_source(name: str, what: str, env_var: str, cli_flag: str, marker: str = "config.json") -> ModelSource:
    """Check that ``name`` (hub id or local folder) can be loaded, without hanging on an unreachable hub.

    Args:
        name: hub id (``owner/model``) or a local folder.
        what: the model's role, for messages (e.g. "Piano cover model").
        env_var: the environment variable that sets this model.
        cli_flag: the command-line flag that sets this model.
        marker: the file (glob pattern in a folder) that marks a saved model of this kind.

    Raises:
        ModelLoadError: the folder is missing, or the hub is unreachable and the model is not cached.
    """
    name = (name or "").strip()
    if not name:
        raise ModelLoadError(f"{what}: no model was given. Set `{env_var}` or pass `{cli_flag}`.")
    if looks_like_path(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(
                f"{what} `{name}`: the local folder does not exist. Point `{cli_flag}` or `{env_var}` "
                f"at a folder holding the model files (config.json, weights, preprocessor files)."
            )
        if not any(folder.glob(marker)):
            raise ModelLoadError(
                f"{what} `{name}`: the folder has no {marker}, so it is not a saved model. "
                f"Save one there with `save_pretrained` or `huggingface-cli download ... --local-dir {name}`."
            )
        return ModelSource(name, str(folder), is_local=True, local_files_only=True)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if _hub_is_cached(name, marker) and (offline or not hub_is_reachable()):
        return ModelSource(name, name, is_local=False, local_files_only=True)
    if offline:
        raise ModelLoadError(
            f"{what} `{name}`: HF_HUB_OFFLINE is set and the model is not in the local cache. "
            + how_to_fix(name, env_var, cli_flag)
        )
    if not hub_is_reachable():
        raise ModelLoadError(
            f"{what} `{name}`: the Hugging Face Hub cannot be reached from this machine and the model is not "
            "in the local cache. " + how_to_fix(name, env_var, cli_flag)
        )
    return ModelSource(name, name, is_local=False, local_files_only=False)


def load_or_explain(what: str, name: str, env_var: str, cli_flag: str, load: Callable[[ModelSource], T],
                    marker: str = "config.json") -> T:
    """Resolve ``name`` and run ``load(source)``; any failure becomes a ModelLoadError saying what and how to fix.

    Args:
        what: the model's role, for messages (e.g. "Piano cover model").
        name: hub id or local folder.
        env_var: the environment variable that sets this model.
        cli_flag: the command-line flag that sets this model.
        load: builds the model objects from a resolved source (``from_pretrained`` calls).
        marker: the file that marks a saved model of this kind (see ``resolve_source``).
    """
    source = resolve_source(name, what, env_var, cli_flag, marker)
    try:
        return load(source)
    except (ModelLoadError, ValueError):
        raise
    except Exception as e:  # noqa: BLE001 - any loader failure becomes one clear message
        raise ModelLoadError(
            f"{what} `{name}` could not be loaded: {type(e).__name__}: {e}. Check that the folder or hub id holds "
            f"the right kind of checkpoint; set it with `{cli_flag}` or `{env_var}`."
        ) from e


def describe_source(name: str, marker: str = "config.json") -> str:
    """A one-line, network-free description of where a model will come from, for the page."""
    if looks_like_path(name):
        folder = Path(name).expanduser()
        state = "found" if folder.is_dir() and any(folder.glob(marker)) else "missing or not a saved model"
        return f"local folder `{name}` ({state})"
    cached = " (in the local cache)" if _hub_is_cached(name, marker) else " (downloaded on first use)"
    return f"hub id `{name}`{cached}"


def quantize_int8(module: torch.nn.Module) -> torch.nn.Module:
    """Swap ``module``'s ``nn.Linear`` layers, in place, for int8 ones (per-channel weights, dynamic activations).

    CPU only. Activations are quantised per call, so a row's result depends on the other rows of its batch.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    return quantize_dynamic(module, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


CHECKPOINT_SUFFIX = ".safetensors"
MADV_PAGEOUT = 21  # Linux >= 5.4: reclaim these pages now (clean file pages are dropped, contents never change)


def _mapped_checkpoints() -> list[tuple[int, int]]:
    """Address ranges where this process maps checkpoint files (Linux; [] elsewhere)."""
    ranges = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)  # the path (field 6) may hold spaces
                if len(fields) == 6 and fields[5].rstrip("\n").endswith(CHECKPOINT_SUFFIX):
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    ranges.append((start, end))
    except OSError:
        pass
    return ranges


def page_out_checkpoints() -> None:
    """Let the kernel reclaim the checkpoint files' pages read so far (they are read again if touched).

    ``from_pretrained`` maps the safetensors file; converting the decoder to int8 reads every float32 weight, and
    those pages would all stay resident until loading ends. Paging them out after each step keeps the load's peak
    near the final footprint. No-op where ``madvise(MADV_PAGEOUT)`` is missing.
    """
    import ctypes

    ranges = _mapped_checkpoints()
    if not ranges:
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        for start, end in ranges:
            libc.madvise(start, end - start, MADV_PAGEOUT)
    except (OSError, AttributeError):
        pass


def own_memory(module: torch.nn.Module) -> torch.nn.Module:
    """Copy the parameters and buffers of ``module`` that live in a mapped checkpoint file into memory of their
    own, in place (ties kept).

    ``from_pretrained`` maps the safetensors file and its tensors point into that mapping; as long as one does
    (the T5 encoder's, say, after the decoder went int8), the file's pages stay resident. Buffers are replaced,
    not re-pointed: a buffer that is a view would keep its base, and so the mapping, alive.
    """
    ranges = _mapped_checkpoints()

    def mapped(tensor: torch.Tensor) -> bool:
        base = tensor._base if tensor._base is not None else tensor
        pointer = base.untyped_storage().data_ptr()
        return any(start <= pointer < end for start, end in ranges)

    copies: dict[int, torch.Tensor] = {}  # a buffer shared by two modules stays shared
    with torch.no_grad():
        for parameter in module.parameters():
            if mapped(parameter):
                parameter.data = parameter.data.clone()
        for sub in module.modules():
            for name, buffer in sub._buffers.items():
                if buffer is not None and (mapped(buffer) or buffer._base is not None):
                    if id(buffer) not in copies:
                        copies[id(buffer)] = buffer.clone()
                    sub._buffers[name] = copies[id(buffer)]
    return module


def quantize_int8_in_steps(target: torch.nn.Module, steps: list[torch.nn.Module], owner: torch.nn.Module,
                           keep_float: list[torch.nn.Module] | None = None) -> torch.nn.Module:
    """``quantize_int8(target)`` with a low memory peak when the weights come from a mapped checkpoint.

    First the float parts that stay (``keep_float``) get memory of their own; then each of ``steps`` (submodules
    of ``target``, e.g. its layers) is converted in turn and the file pages it read are paged out; then whatever
    is left in ``target``; finally ``owner`` (the whole model) lets go of the file. The int8 layers are the same as
    one ``quantize_int8(target)`` call makes: each linear layer is quantised on its own either way.
    """
    for module in keep_float or []:
        own_memory(module)
    page_out_checkpoints()
    for step in steps:
        quantize_int8(step)
        page_out_checkpoints()
    quantize_int8(target)
    own_memory(owner)
    page_out_checkpoints()
    return_freed_memory()
    return target


def return_freed_memory() -> None:
    """Hand memory freed by Python/torch back to the OS (glibc keeps freed heap pages otherwise: after the int8
    conversion replaces float32 weights, the process would go on holding their pages). No-op off glibc."""
    import ctypes
    import gc
    import sys

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # musl or another libc: nothing to trim
            pass


def free_accelerator_memory() -> None:
    """Return cached GPU memory to the driver after a model is dropped."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif torch.backends.mps.is_available():
        torch.mps.empty_cache()
