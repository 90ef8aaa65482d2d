"""The models: thin wrappers (they know nothing of Gradio) over one runtime that owns all model compute
(``models.runtime``).

Importing this package, before anything loads torch, makes one OpenMP thread the default of every thread of the
process: libgomp reads that default once, when torch loads it, and it holds for every OpenMP user in the process
(torch's kernels, and native libraries such as FluidSynth). Only the model thread takes more: the cores, or
``$OMP_NUM_THREADS`` as the user set it, kept in ``$MODEL_KERNEL_THREADS`` (see ``models.runtime``).

Every model is had through one loader, ``models.loading.load_model(role, name_or_path, device)``, and the checkpoints
visitors may choose are ``models.catalogue.available_models(role)``.
"""

import os
import sys

KERNEL_THREADS_ENV_VAR = "MODEL_KERNEL_THREADS"  # CPU kernel threads of the model thread; unset = the cores

if "torch" not in sys.modules:  # after torch has loaded, the default is fixed: models.runtime then says so
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault(KERNEL_THREADS_ENV_VAR, os.environ.get("OMP_NUM_THREADS", "").strip() or str(_cores))
    os.environ["OMP_NUM_THREADS"] = "1"

