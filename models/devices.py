"""Where models run: the device, the weights' dtype, and handing GPU memory back after a model is dropped."""

from __future__ import annotations

import os

import torch

from models.sources import is_off

DEVICE_ENV_VAR = "MUSIC_DEMO_DEVICE"  # "cuda", "cuda:1", "mps" or "cpu"; unset = pick automatically


def env_flag(name: str, default: bool = True) -> bool:
    """A yes/no setting from the environment: one of ``sources.OFF_VALUES`` ("0", "false", "no", "off", "none")
    means no; unset means ``default``."""
    value = os.environ.get(name, "").strip()
    return default if not value else not is_off(value)


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


DTYPE_ENV_VAR = "MUSIC_DEMO_DTYPE"  # "float32", "bfloat16" or "float16" on a GPU; unset = pick per GPU
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_dtype(device: torch.device, float16_ok: bool = True) -> torch.dtype:
    """The weights' dtype on ``device``.

    bfloat16 on GPUs that have it in hardware; below that (T4, V100) float16 where ``float16_ok`` (MusicGen, as
    the official demo runs it), else float32 (T5-style models can overflow in float16); float16 on MPS;
    float32 on CPU. On a GPU ``$MUSIC_DEMO_DTYPE`` overrides the choice (float16 only where ``float16_ok``).

    Raises:
        ValueError: ``$MUSIC_DEMO_DTYPE`` names no dtype we know.
    """
    requested = os.environ.get(DTYPE_ENV_VAR, "").strip().lower()
    if requested and device.type != "cpu":
        if requested not in DTYPES:
            raise ValueError(f"{DTYPE_ENV_VAR}={requested!r}: use one of {', '.join(DTYPES)}.")
        return torch.float32 if requested == "float16" and not float16_ok else DTYPES[requested]
    if device.type == "cuda":
        if has_hardware_bf16(device):
            return torch.bfloat16
        return torch.float16 if float16_ok else torch.float32
    if device.type == "mps":
        return torch.float16 if float16_ok else torch.float32
    return torch.float32



CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo: bfloat16 products in hardware (Intel AMX, AVX-512 BF16)


def cpu_bf16_instructions() -> str | None:
    """The CPU's bfloat16 instructions, by name ("amx_bf16" before "avx512_bf16"), or None where it has neither
    (then torch emulates bfloat16, slower than float32). Read from /proc/cpuinfo; None off Linux."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo")
                      if line.startswith("flags")), [])
    except OSError:
        return None
    return next((flag for flag in CPU_BF16_FLAGS if flag in flags), None)


ZERO_GPU_ENV_VAR = "SPACES_ZERO_GPU"  # set by Hugging Face on a ZeroGPU Space
CUDNN_ATTENTION_ENV_VAR = "MUSIC_DEMO_CUDNN_ATTENTION"  # "1": let attention use cuDNN's kernels (off by default)


def zero_gpu_env() -> bool:
    """Whether the environment says this is a ZeroGPU Space (the GPU then exists only inside decorated calls)."""
    return os.environ.get(ZERO_GPU_ENV_VAR, "").strip().lower() in {"1", "t", "true"}


_attention_settled = False


def settle_attention_backend(device: torch.device) -> str:
    """Choose the attention kernels once for the process, before any model decodes on ``device``; returns what was
    chosen, for the log.

    On CUDA, PyTorch's attention (SDPA) picks cuDNN's kernel for bfloat16 on Hopper, and cuDNN builds an execution
    plan for every new shape: a decode whose key length grows each step paid 1.3 ms of host time per call (H200,
    2026-12-04, torch profiler: 3.64 s of 5.0 s). The other kernels (flash, memory-efficient, math) plan nothing, so
    cuDNN's is switched off for the whole process, stock ``generate`` included, unless
    ``$MUSIC_DEMO_CUDNN_ATTENTION`` turns it back on. Nothing changes on CPU or MPS."""
    global _attention_settled
    if device.type != "cuda":
        return "attention: PyTorch's default kernels"
    use_cudnn = env_flag(CUDNN_ATTENTION_ENV_VAR, default=False)
    if not _attention_settled:
        torch.backends.cuda.enable_cudnn_sdp(use_cudnn)
        _attention_settled = True
    return "attention: cuDNN allowed" if use_cudnn else "attention: flash / memory-efficient (no cuDNN plans)"


def free_accelerator_memory() -> None:
    """Return cached GPU memory to the driver after a model is dropped."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif torch.backends.mps.is_available():
        torch.mps.empty_cache()
