"""The seam between the page (and the API, MCP and the command line) and the models: one small interface,
``Backend``, with one method per job, and two implementations: ``InProcess`` (the runtime in this process, the
default) and ``ServeBackend`` (the same runtime in Ray Serve replicas, ``serving/ray_serve.py``). The page asks
``backend()`` for the one in use; ``use_backend`` sets it at start."""

from serving.current import backend, use_backend
from serving.in_process import InProcess
from serving.seam import Backend

__all__ = ["Backend", "InProcess", "backend", "use_backend"]
