"""Model memory on CPU: int8 linear layers, loading them with a low peak, and returning freed memory to the OS."""

from __future__ import annotations

import torch


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
