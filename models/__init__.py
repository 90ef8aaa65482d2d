"""The models: thin wrappers (they know nothing of Gradio) over one runtime that owns all model compute
(``models.runtime``).

Importing this package, before anything loads torch, makes one OpenMP thread the default of every thread of the
process: libgomp reads that default once, when torch loads it, and it holds for every OpenMP user in the process
(torch's kernels, and native libraries such as FluidSynth). Only the model thread takes more: the cores, or
``$OMP_NUM_THREADS`` as the user set it, kept in ``$MODEL_KERNEL_THREADS`` (see ``models.runtime``).

Every model is had through one loader, ``models.load_model(role, name_or_path, device)`` (``models.loading``).
"""

import os
import sys

KERNEL_THREADS_ENV_VAR = "MODEL_KERNEL_THREADS"  # CPU kernel threads of the model thread; unset = the cores

if "torch" not in sys.modules:  # after torch has loaded, the default is fixed: models.runtime then says so
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault(KERNEL_THREADS_ENV_VAR, os.environ.get("OMP_NUM_THREADS", "").strip() or str(_cores))
    os.environ["OMP_NUM_THREADS"] = "1"


MALLOC_ENV_VAR = "MUSIC_DEMO_MALLOC"  # "0"/"off": keep glibc's own malloc settings
MALLOC_ARENA_MAX = 2  # glibc's default is 8 per core: each thread that allocates may get one and keep its free pages
MALLOC_MMAP_THRESHOLD = 1 << 20  # bytes: blocks from 1 MB up get pages of their own, handed back when freed


def tune_malloc() -> bool:
    """Keep the process's memory near what it holds (glibc only; returns whether it applied).

    With glibc's defaults a freed tensor's pages often stay with the process: the threshold above which a block
    gets pages of its own rises to 32 MB after the first large free, so later activations (EnCodec's, a cover's
    mel spectrogram) land in heaps that fragment, and every thread of the server (gradio's workers, the model
    thread) may grow an arena of its own. A fixed 1 MB threshold and two arenas keep the resident size near the
    live size: measured through the app in docs/PERFORMANCE.md (issue 35). ``$MUSIC_DEMO_MALLOC=0`` leaves them."""
    if not sys.platform.startswith("linux") or os.environ.get(MALLOC_ENV_VAR, "").strip().lower() in {
            "0", "off", "false", "no", "none"}:
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_mmap_threshold, m_arena_max = -3, -8  # mallopt parameters (malloc.h)
        return bool(libc.mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)) and bool(
            libc.mallopt(m_arena_max, MALLOC_ARENA_MAX))
    except (OSError, AttributeError):  # musl or another libc
        return False


MALLOC_TUNED = tune_malloc()


def __getattr__(name: str):  # noqa: ANN202 - ``models.load_model`` without importing torch with the package
    if name == "load_model":
        from models.loading import load_model

        return load_model
    if name == "available_models":
        from models.catalogue import available_models

        return available_models
    raise AttributeError(f"module 'models' has no attribute {name!r}")
