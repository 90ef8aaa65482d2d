"""Where models run: the device, the weights' dtype, and handing GPU memory back after a model is dropped."""

from __future__ import annotations

import os

import torch

DEVICE_ENV_VAR = "MUSIC_DEMO_DEVICE"  # "cuda", "cuda:1", "mps" or "cpu"; unset = pick automatically


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



def free_accelerator_memory() -> None:
    """Return cached GPU memory to the driver after a model is dropped."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif torch.backends.mps.is_available():
        torch.mps.empty_cache()
