"""The backend every job goes through: the in-process runtime by default, or the one ``use_backend`` set at start
(Ray Serve: ``serving/ray_serve.py``)."""

from __future__ import annotations

import threading

from serving.in_process import InProcess
from serving.seam import Backend

_backend: Backend | None = None
_lock = threading.Lock()


def backend() -> Backend:
    """The backend in use: the one ``use_backend`` set, else the in-process runtime."""
    global _backend
    with _lock:
        if _backend is None:
            _backend = InProcess()
        return _backend


def use_backend(chosen: Backend | None) -> Backend | None:
    """Make ``chosen`` the backend every job goes through (None: the in-process one again); returns the old one."""
    global _backend
    with _lock:
        old, _backend = _backend, chosen
    return old
