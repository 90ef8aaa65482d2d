"""The Ray Serve backend: each model role a Serve deployment of N replicas, each replica running the in-process
backend (its own model thread, model cache and shared passes), reached through ``DeploymentHandle``s. The page, the
API and MCP call it through the same seam as the in-process backend (``serving.seam.Backend``).

- ``./run.sh app --replicas N`` starts a local Ray cluster (or joins one with ``--ray-address``) and deploys the
  roles; ``--replica-threads`` sets each replica's CPU threads (and ``num_cpus``), so replicas do not fight over
  cores; ``--serve-roles`` picks the roles that go to Serve (the others run in the front end). On a local cluster
  with fewer CPUs (or GPUs) than the replicas ask for, each replica asks for an equal share of them instead
  (``placement.fit_to_machine``): they share the cores, and the page comes up. A deployment that still cannot be placed ends
  the start with what it needs, what the cluster has, and the flag to change (``placement.wait_until_placed``).
- Model choice goes by Serve's multiplexing: a request for a checkpoint goes to a replica that serves it. The
  multiplexed getter returns the checkpoint's name, not the model: Serve's LRU evicts a model without knowing the
  runs in flight on it, so the replica's model cache is the one owner of what is kept (it never lets a model go
  under a run, and unloads idle ones after ``--unload-after``); Serve's count per replica is set to the cache's
  (``MUSIC_DEMO_MODELS_PER_ROLE``), so routing and what is held agree.
- Backpressure (``max_queued_requests``) reaches the visitor as a plain "busy" message. Stop reaches the replica
  through a small named actor (``StopBoard``) so that music keeps its finished part; a front end that goes away
  cancels its calls (``DeploymentResponse.cancel``, which the replica sees as ``asyncio.CancelledError``).
- A replica killed mid-run ends that run with "the model server restarted; run it again"; Serve starts another.

Needs ``ray[serve]`` (``requirements-serve.txt``); without it the app runs in-process and ``--replicas`` says what
to install.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.cache import ROLES as MODEL_ROLES
from serving.in_process import InProcess
from serving.placement import check_reachable, check_room, fit_to_machine, replicas_of, wait_until_placed
from serving.seam import Progress, Stream

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SERVE_REQUIREMENTS = "requirements-serve.txt"
INSTALL_HINT = f"Ray Serve is not installed: pip install -r {SERVE_REQUIREMENTS} (ray[serve])"
HELPER_ROLES = ("separator", "translator")  # used inside a music run, so they run where it runs (its replica)
APP_PREFIX = "music-demo-"
BOARD_NAME = "music-demo-stops"
NAMESPACE = "music-demo"
ROLES = tuple(role for role in MODEL_ROLES if role not in HELPER_ROLES)  # the roles that can be deployments
DEFAULT_MAX_ONGOING = 4  # requests in flight on one replica (they share its passes), as the app's --concurrency
DEFAULT_MAX_QUEUED = 8  # requests waiting for a replica, per front end; past it a visitor is told the app is busy
STOP_POLL_S = 0.25
BUSY = ("The music servers are all busy right now, and the queue is full. Please try again in a minute.")
RESTARTED = "The model server restarted in the middle of this run, so it was lost. Please run it again."
UNREACHABLE = ("The model server (Ray cluster) at {} cannot be reached: {}. (A cluster with Ray's token "
               "authentication, the default, needs RAY_AUTH_MODE=token and its token here.)")


def serve_missing() -> str:
    """Why Ray Serve cannot be used here ("" when it can)."""
    try:
        from ray import serve  # noqa: F401
    except ImportError as e:
        return f"{INSTALL_HINT} ({e})."
    return ""


# --- in the replica ---------------------------------------------------------------------------------------------


LONG_JOBS = ("music", "cover", "piano_notes", "song", "song_edit")  # the jobs with progress and Stop
QUICK_S = 2.0  # an estimate that takes longer (replicas busy) is not given
STREAMING_JOBS = ("music", "song", "song_edit")  # ... and with audio while they work


class StopBoard:
    """The runs whose Stop was pressed (a named actor every replica can read): Stop keeps a piece's finished part,
    which a cancelled call could not return."""

    def __init__(self) -> None:
        self.stopped: dict[str, float] = {}

    def stop(self, run_id: str) -> None:
        self.stopped[run_id] = time.time()
        for old in [r for r, t in self.stopped.items() if time.time() - t > 3600]:
            del self.stopped[old]

    def is_stopped(self, run_id: str) -> bool:
        return run_id in self.stopped


@dataclass(frozen=True)
class Checkpoint:
    """What Serve's multiplexing keeps per replica: the name of a role's checkpoint this replica serves (the model
    itself lives in the replica's model cache, which never lets it go under a run)."""

    role: str
    name: str


class ModelServer:
    """One role's replica: the in-process backend, whose jobs' events (progress, streamed audio, the result) it
    streams to the caller."""

    def __init__(self, role: str, settings: dict[str, Any], requests: int = DEFAULT_MAX_ONGOING) -> None:
        from types import SimpleNamespace

        import ray

        from models import runtime

        from models import cache

        # the models' log lines (loaded, unloaded, let go) in the replica's log, as in the app's
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        runtime.set_concurrency(requests)  # the requests this replica takes at once share its passes, as in one process
        settings = dict(settings)
        unload_after = settings.pop("unload_after_min", None)
        if unload_after is not None:  # --unload-after, as in the front end
            cache.start_unloading_idle(unload_after, runtime.model_thread().call)
        self.role = role
        self.backend = InProcess(SimpleNamespace(**settings))
        self.board = ray.get_actor(BOARD_NAME, namespace=NAMESPACE)

    async def checkpoint(self, model_id: str) -> Checkpoint:  # made @serve.multiplexed in ``deployment``
        return Checkpoint(self.role, model_id)

    async def _watch(self, run_id: str, cancel: threading.Event) -> None:
        while not cancel.is_set():
            if await self.board.is_stopped.remote(run_id):
                cancel.set()
                return
            await asyncio.sleep(STOP_POLL_S)

    async def run(self, job: str, run_id: str, args: tuple, kwargs: dict):
        """Run ``job`` of the in-process backend, streaming ("progress", fraction, message), ("audio", rate,
        chunk) and finally ("done", result, process id)."""
        from ray import serve

        model_id = serve.get_multiplexed_model_id()
        if model_id:
            await self.checkpoint(model_id)  # Serve's routing: this replica now serves this checkpoint
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def emit(*event: Any) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def work() -> None:
            try:
                hooks: dict[str, Any] = {}
                if job in LONG_JOBS:
                    hooks["progress"] = lambda fraction, message: emit("progress", fraction, message)
                if job in STREAMING_JOBS and kwargs.pop("streamed", False):
                    hooks["stream"] = lambda rate, audio: emit("audio", rate, audio)
                if job in LONG_JOBS:
                    hooks["cancel"] = cancel
                emit("done", getattr(self.backend, job)(*args, **kwargs, **hooks), os.getpid())
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                emit("error", e)

        worker = threading.Thread(target=work, daemon=True, name=f"serve-{job}")
        worker.start()
        watcher = asyncio.create_task(self._watch(run_id, cancel))
        try:
            while True:
                event = await events.get()
                if event[0] == "error":
                    raise event[1]
                yield event
                if event[0] == "done":
                    return
        except asyncio.CancelledError:  # the caller went away: stop the work at its next step
            cancel.set()
            raise
        finally:
            watcher.cancel()


def deployment(role: str, replicas: int, threads: int, models_per_replica: int, max_ongoing: int,
               max_queued: int, gpus: float = 0.0, cpus: float | None = None) -> Any:
    """``ModelServer`` as the Serve deployment of ``role``: ``threads`` CPU threads a replica, asking Ray for
    ``cpus`` (default: ``threads``) and ``gpus``."""
    from ray import serve

    server = type(f"ModelServer_{role}", (ModelServer,), {
        "checkpoint": serve.multiplexed(max_num_models_per_replica=models_per_replica)(ModelServer.checkpoint)})
    env = {"PYTHONPATH": str(ROOT), "MODEL_KERNEL_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    return serve.deployment(server, name=f"{APP_PREFIX}{role}", num_replicas=replicas,
                            max_ongoing_requests=max_ongoing, max_queued_requests=max_queued,
                            ray_actor_options={"num_cpus": threads if cpus is None else cpus, "num_gpus": gpus,
                                               "runtime_env": {"env_vars": env}})


# --- in the front end -------------------------------------------------------------------------------------------


def _unwrap(e: BaseException) -> BaseException:
    """The exception a replica raised, from Ray's wrapper around it; Ray's own failures as plain messages."""
    from ray import exceptions as ray_errors
    from ray.serve import exceptions as serve_errors

    if isinstance(e, serve_errors.BackPressureError):
        return ValueError(BUSY)
    died = tuple(t for t in (getattr(ray_errors, n, None) for n in (
        "ActorDiedError", "RayActorError", "ActorUnavailableError", "WorkerCrashedError")) if t) + tuple(
        t for t in (getattr(serve_errors, n, None) for n in ("ReplicaUnavailableError",
                                                              "DeploymentUnavailableError")) if t)
    if isinstance(e, died):
        return ValueError(RESTARTED)
    if isinstance(e, ray_errors.RayTaskError) and isinstance(e.cause, BaseException):
        return _unwrap(e.cause)
    return e


class ServeBackend:
    """The seam's jobs on Ray Serve deployments (``roles``); the other roles in this process."""

    name = "ray-serve"

    def __init__(self, handles: dict[str, Any], local: InProcess) -> None:
        import ray

        self.handles = handles
        self.local = local
        self.board = ray.get_actor(BOARD_NAME, namespace=NAMESPACE)

    def _call(self, role: str, job: str, model_id: str, args: tuple, kwargs: dict,
              cancel: threading.Event | None = None, progress: Progress | None = None,
              stream: Stream | None = None) -> tuple[Any, int]:
        run_id = uuid.uuid4().hex
        handle = self.handles[role].options(stream=True, multiplexed_model_id=model_id or "")
        response = handle.run.remote(job, run_id, args, {**kwargs, **({"streamed": True} if stream else {})})
        finished = threading.Event()

        def stop_when_asked() -> None:  # Stop (or a closed page): the replica stops at its next step
            while cancel is not None and not finished.is_set():
                if cancel.wait(0.1):
                    self.board.stop.remote(run_id)
                    return

        if cancel is not None:
            threading.Thread(target=stop_when_asked, daemon=True).start()
        try:
            for event in response:
                if event[0] == "progress" and progress is not None:
                    progress(event[1], event[2])
                elif event[0] == "audio" and stream is not None:
                    stream(event[1], event[2])
                elif event[0] == "done":
                    return event[1], event[2]
            raise ValueError(RESTARTED)  # the stream ended without a result
        except BaseException as e:  # noqa: BLE001
            raise _unwrap(e) from e
        finally:
            finished.set()

    def music(self, role: str, model: str, request: Any, *, cancel: threading.Event | None = None,
              progress: Progress | None = None, stream: Stream | None = None) -> Any:
        if role not in self.handles:
            return self.local.music(role, model, request, cancel=cancel, progress=progress, stream=stream)
        result, pid = self._call(role, "music", model, (role, model, request), {}, cancel, progress, stream)
        result.params["served_by"] = f"Ray Serve replica {pid} ({APP_PREFIX}{role})"
        return result

    def song(self, model: str, request: Any, *, cancel: threading.Event | None = None,
             progress: Progress | None = None, stream: Stream | None = None) -> Any:
        return self._song("song", model, request, cancel, progress, stream)

    def song_edit(self, model: str, edit: Any, *, cancel: threading.Event | None = None,
                  progress: Progress | None = None, stream: Stream | None = None) -> Any:
        return self._song("song_edit", model, edit, cancel, progress, stream)

    def _song(self, job: str, model: str, what: Any, cancel: threading.Event | None, progress: Progress | None,
              stream: Stream | None) -> Any:
        if "song" not in self.handles:
            return getattr(self.local, job)(model, what, cancel=cancel, progress=progress, stream=stream)
        result, pid = self._call("song", job, model, (model, what), {}, cancel, progress, stream)
        result.params["served_by"] = f"Ray Serve replica {pid} ({APP_PREFIX}song)"
        return result

    def cover(self, model: str, song: np.ndarray, sample_rate: int, style: str, *,
              cancel: threading.Event | None = None, progress: Progress | None = None) -> Any:
        if "piano" not in self.handles:
            return self.local.cover(model, song, sample_rate, style, cancel=cancel, progress=progress)
        return self._call("piano", "cover", model, (model, song, sample_rate, style), {}, cancel, progress)[0]

    def piano_notes(self, model: str, audio: np.ndarray, sample_rate: int, *,
                    cancel: threading.Event | None = None, progress: Progress | None = None) -> Any:
        if "piano_transcriber" not in self.handles:
            return self.local.piano_notes(model, audio, sample_rate, cancel=cancel, progress=progress)
        return self._call("piano_transcriber", "piano_notes", model, (model, audio, sample_rate), {}, cancel,
                          progress)[0]

    def music_notes(self, audio: np.ndarray, sample_rate: int) -> Any:
        if "transcriber" not in self.handles:
            return self.local.music_notes(audio, sample_rate)
        return self._call("transcriber", "music_notes", "", (audio, sample_rate), {})[0]

    def detect_watermark(self, model: str | None, audio: np.ndarray, sample_rate: int) -> Any:
        if "watermark" not in self.handles:
            return self.local.detect_watermark(model, audio, sample_rate)
        return self._call("watermark", "detect_watermark", model or "", (model, audio, sample_rate), {})[0]

    def mark(self, model: str | None, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, str]:
        if "watermark" not in self.handles:
            return self.local.mark(model, audio, sample_rate)
        return self._call("watermark", "mark", model or "", (model, audio, sample_rate), {})[0]

    def estimate_seconds(self, role: str, model: str, **shape: Any) -> float | None:
        """From a replica that serves ``model`` (the speed is measured there); None when none answers at once."""
        if role not in self.handles:
            return self.local.estimate_seconds(role, model, **shape)
        answer: list[float | None] = []
        asking = threading.Thread(target=lambda: answer.append(
            self._call(role, "estimate_seconds", model, (role, model), shape)[0]), daemon=True)
        asking.start()
        asking.join(QUICK_S)
        return answer[0] if answer else None


@dataclass
class ServeSettings:
    """How the front end reaches or starts the deployments (the app's flags)."""

    replicas: int = 1
    address: str | None = None  # an existing cluster ("ray://host:10001" or "auto"); None: start one here
    threads: int = 1  # CPU threads (and Ray CPUs) per replica
    gpus: float = 0.0  # GPUs per replica (Ray shows a replica only the GPUs it was given; a fraction shares one)
    roles: tuple[str, ...] = ROLES
    models_per_replica: int = 2
    max_ongoing: int = DEFAULT_MAX_ONGOING
    max_queued: int = DEFAULT_MAX_QUEUED
    num_cpus: int | None = None  # a local cluster's CPUs (None: this machine's)


def start(settings: ServeSettings, model_settings: dict[str, Any], local: InProcess) -> ServeBackend:
    """Join or start the cluster and make sure each role's deployment runs; the backend that calls them.

    Raises:
        RuntimeError: Ray Serve is not installed, the cluster cannot be reached, or a deployment cannot be placed.
    """
    missing = serve_missing()
    if missing:
        raise RuntimeError(missing)
    import ray
    from ray import serve

    try:
        if not ray.is_initialized():
            if settings.address:
                check_reachable(settings.address)
                ray.init(address=settings.address, namespace=NAMESPACE, log_to_driver=False)
            else:  # replicas at the front end's priority (Ray's default niceness would slow them behind it)
                os.environ.setdefault("RAY_worker_niceness", "0")
                # address "local": a new one here, never the latest cluster started on this machine (Ray's default)
                ray.init(address="local", num_cpus=settings.num_cpus, namespace=NAMESPACE, include_dashboard=False,
                         log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - said plainly, and the app exits
        raise RuntimeError(UNREACHABLE.format(settings.address or "this machine", e)) from e
    try:
        ray.get_actor(BOARD_NAME, namespace=NAMESPACE)
    except ValueError:
        ray.remote(num_cpus=0)(StopBoard).options(name=BOARD_NAME, namespace=NAMESPACE, lifetime="detached",
                                                  get_if_exists=True).remote()
    total = ray.cluster_resources()
    cpus, gpus, fitted = float(settings.threads), settings.gpus, ""
    if not settings.address:  # a cluster of this machine alone: fit the replicas to it
        cpus, gpus, fitted = fit_to_machine(len(settings.roles), settings.replicas, settings.threads, settings.gpus,
                                            total.get("CPU", 0.0), total.get("GPU", 0.0))
        if fitted:
            logger.warning("Ray Serve: %s", fitted)
    running = serve.status().applications if settings.address else {}
    targets, names = [], []
    for role in settings.roles:
        name = f"{APP_PREFIX}{role}"
        names.append(name)
        if name in running:  # a second front end on the same cluster uses the deployments already there
            if replicas_of(running[name]) != settings.replicas:
                logger.warning("Ray Serve: %s is already deployed on this cluster with %d replica(s), not the %d of "
                               "--replicas; it is used as it is (`serve shutdown` on the cluster redeploys)", name,
                               replicas_of(running[name]), settings.replicas)
            continue
        app = deployment(role, settings.replicas, settings.threads, settings.models_per_replica,
                         settings.max_ongoing, settings.max_queued, gpus, cpus).bind(role, model_settings,
                                                                                    settings.max_ongoing)
        targets.append(serve.RunTarget(app, name=name, route_prefix=None))
    need = f"{cpus:g} CPU" + (f" and {gpus:g} GPU" if gpus else "")
    check_room(len(targets) * settings.replicas, cpus, gpus, need)
    if targets:  # all at once: the replicas start side by side
        serve.run_many(targets, wait_for_applications_running=False)
    wait_until_placed(names, need)
    handles = {role: serve.get_app_handle(name) for role, name in zip(settings.roles, names)}
    logger.info("Ray Serve: %s, %d replica(s) each, %d thread(s) a replica", ", ".join(settings.roles),
                settings.replicas, settings.threads)
    return ServeBackend(handles, local)


def stop() -> None:
    """Leave the cluster (a local one stops with it)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
