"""The one cache of loaded models (``model_cache``), by role, and who is using them: a model in use is never let go
under a run; another checkpoint of a role loads beside it when memory allows, or waits its turn (see ``ModelCache``).
The wrappers reach it through ``models.loading`` (``load_model``, ``use_model``)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch

from models.devices import free_accelerator_memory

logger = logging.getLogger(__name__)


class Loadable(Protocol):
    """A model wrapper the cache holds: where it came from, where it runs, and how to let it go."""

    name: str
    device: torch.device

    def unload(self) -> None: ...


M = TypeVar("M", bound=Loadable)

# what the app and the command line hold a model for
ROLES = ("piano", "text", "melody", "separator", "translator", "watermark", "transcriber", "piano_transcriber",
         "song")


class ModelTooBig(ValueError):
    """A model that cannot fit in this machine's memory, even with every other model of its role let go."""


class ModelBusy(RuntimeError):
    """A helper model asked for without waiting (``use(wait=False)``) that cannot load now: the memory it needs is
    held by models in use (perhaps by the very run that asks)."""


@dataclass(eq=False)
class _Entry:
    model: Any
    need: int  # bytes it takes, about (0: not known)
    users: int = 0  # runs holding it now (``ModelCache.use``)
    last_used: float = 0.0


@dataclass(eq=False)
class _Ticket:
    name: str
    device: str | None


class ModelCache:
    """The loaded models of this process, by role, and who is using them.

    A model in use is never let go under a run: ``use`` holds it until the run ends. A request for another
    checkpoint of the same role loads beside it when memory allows (and the role holds fewer than
    ``per_role`` models), else waits until the runs on the others end; models nobody uses are let go first, least
    recently used first, the role's own before other roles'. Requests wait in turn, first come first served between
    checkpoints, so a stream of requests for the model in use cannot starve one that waits for another (they wait
    behind it); requests for the same model go in together and share passes. A model that would not fit even alone is refused at once
    (``ModelTooBig``), before anything is let go or built.

    Only the model thread lets a model go: a request that needs memory takes the idle models out of the cache at
    once (nobody can get them again), and their weights are unloaded by ``unload_on`` (the model thread's ``call``)
    before the request's own model is built and loaded there, after them.

    Args:
        per_role: models of one role held at once (``$MUSIC_DEMO_MODELS_PER_ROLE``, default 2).
        unload_on: runs an unload where the models compute (default: the process's model thread).
    """

    def __init__(self, per_role: int | None = None,
                 unload_on: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        self.per_role = max(1, per_role or int(os.environ.get(MODELS_PER_ROLE_ENV_VAR, "") or DEFAULT_MODELS_PER_ROLE))
        self._held: dict[str, list[_Entry]] = {}
        self._queues: dict[str, list[_Ticket]] = {}
        self._cond = threading.Condition()
        self._unload_on = unload_on or _on_the_model_thread

    @staticmethod
    def _matches(entry: _Entry, name: str, device: str | None) -> bool:
        return entry.model.name == name and (device is None or str(entry.model.device) == device)

    def held(self, role: str) -> list[Any]:
        """The models ``role`` holds now."""
        with self._cond:
            return [e.model for e in self._held.get(role, [])]

    def peek(self, role: str, name: str, device: str | None = None) -> Any | None:
        """The role's model ``name`` when it is held, else None (nothing is built, loaded or let go); a model
        found counts as used now (``unload_idle``)."""
        with self._cond:
            entry = next((e for e in self._held.get(role, []) if self._matches(e, name, device)), None)
            if entry is None:
                return None
            entry.last_used = time.monotonic()
            return entry.model

    def unload_idle(self, idle_s: float, now: float | None = None) -> list[str]:
        """Unload the weights of every model that no run holds and nobody has used for ``idle_s`` seconds; returns
        their names. The wrappers stay in the cache and load again on their next use (as on the first), so no
        second copy of a model can appear. Call it on the model thread (``start_unloading_idle`` does): every
        model's work runs there, one job at a time, so no job is computing with a model while it goes."""
        now = time.monotonic() if now is None else now
        with self._cond:
            idle = [(role, e) for role, held in self._held.items() for e in held
                    if not e.users and now - e.last_used >= idle_s and getattr(e.model, "loaded", True)]
        for role, entry in idle:
            entry.model.unload()
            logger.info("Unloaded %s (%s): unused for %.0f min; it loads again on its next use",
                        entry.model.name, role, (now - entry.last_used) / 60)
        if idle:
            free_accelerator_memory()
        return [entry.model.name for _, entry in idle]

    def in_use(self, role: str) -> dict[str, int]:
        """The runs on each model of ``role`` now, by model name."""
        with self._cond:
            return {e.model.name: e.users for e in self._held.get(role, []) if e.users}

    def get(self, role: str, name: str, device: str | None, build: Callable[[], M], need: int = 0,
            free: Callable[[], int | None] = lambda: None, budget: int | None = None) -> M:
        """The role's model ``name`` (on ``device``; None = any), built in its place when not held (see ``use``;
        nobody holds it after this returns: a run holds its model with ``use``)."""
        with self.use(role, name, device, build, need, free, budget) as model:
            return model

    @contextlib.contextmanager
    def use(self, role: str, name: str, device: str | None, build: Callable[[], M], need: int = 0,
            free: Callable[[], int | None] = lambda: None, budget: int | None = None,
            waiting: Callable[[str], None] | None = None, wait: bool = True) -> Iterator[M]:
        """Hold the role's model ``name`` for one run: it stays loaded until the block ends.

        Args:
            role, name, device: which model (device None = any).
            build: makes the wrapper when it is not held (cheap: the weights load on first use).
            need: bytes the model takes loaded, about (0: not known: no memory check).
            free: bytes free on its device now (None: not known).
            budget: bytes all models held may take together (None: no cap).
            waiting: told, while the run waits its turn, what it waits for ("waiting for 2 runs on ... to finish").
            wait: False for a helper a run asks for while it holds its own model (the translator, the separator):
                rather than wait, perhaps for itself, raise ``ModelBusy``.

        Raises:
            ValueError: an unknown role.
            ModelTooBig: it cannot fit even with every other model of its role let go.
            ModelBusy: ``wait`` is False and it cannot load now.
        """
        if role not in ROLES:
            raise ValueError(f"Unknown model role {role!r}; one of {', '.join(ROLES)}.")
        ticket = _Ticket(name, device)
        said = ""
        gone: list[_Entry] = []
        try:
            with self._cond:
                queue = self._queues.setdefault(role, [])
                queue.append(ticket)
                try:
                    while True:
                        entry = self._admit(role, ticket, queue, build, need, free, budget, gone)
                        if entry is not None:
                            break
                        message = self._waiting_for(role)
                        if not wait:
                            raise ModelBusy(f"“{short_name(name)}” cannot load now: the memory it needs is held by "
                                            f"runs in progress{': ' + message.removeprefix('Waiting for ') if message else ''}.")
                        if waiting is not None and message != said and message:
                            said = message
                            waiting(message)
                        self._cond.wait(timeout=5.0)
                finally:
                    queue.remove(ticket)
                    self._cond.notify_all()
                entry.users += 1
                entry.last_used = time.monotonic()
        except BaseException:
            self._unload(gone)
            raise
        try:
            self._unload(gone)  # before this run's model loads (on the model thread, after these)
            yield entry.model
        finally:
            with self._cond:
                entry.users -= 1
                entry.last_used = time.monotonic()
                self._cond.notify_all()

    def _waiting_for(self, role: str) -> str:
        """What a request of ``role`` waits for: the runs on its role's models, else on any (under the lock)."""
        def busy(entries: list[_Entry]) -> dict[str, int]:
            return {e.model.name: e.users for e in entries if e.users}

        runs = busy(self._held.get(role, [])) or busy([e for held in self._held.values() for e in held])
        if not runs:
            return ""
        return "Waiting for " + " and ".join(
            f"{n} run{'s' if n != 1 else ''} on “{short_name(m)}”" for m, n in runs.items()) + " to finish"

    def _admit(self, role: str, ticket: _Ticket, queue: list[_Ticket], build: Callable[[], Any], need: int,
               free: Callable[[], int | None], budget: int | None, going: list[_Entry]) -> _Entry | None:
        """The entry ``ticket`` may use now, built when needed; None when it must wait (called under the lock).
        Idle models taken out of the cache to make room are added to ``going``, for ``_unload``."""
        ahead = queue[: queue.index(ticket)]
        if any((t.name, t.device) != (ticket.name, ticket.device) for t in ahead):
            return None  # first come, first served between models
        entries = self._held.setdefault(role, [])
        for entry in entries:
            if self._matches(entry, ticket.name, ticket.device):
                return entry
        everyone = [e for held in self._held.values() for e in held]
        room = self._room(need, free, budget)
        taken = sum(e.need for e in everyone if getattr(e.model, "loaded", True))  # an unloaded one takes nothing
        if room is not None and need > room + taken:  # not even alone: refuse now
            raise ModelTooBig(_too_big(ticket.name, need, room + taken))
        # let idle models go, least recently used first, this role's before others': while the role holds its
        # most, or while the new model does not fit
        idle = sorted((e for e in everyone if not e.users), key=lambda e: (e not in entries, e.last_used))
        while idle and (len(entries) >= self.per_role or (room is not None and need > room)):
            gone = next((e for e in idle if e in entries), None) if len(entries) >= self.per_role else idle[0]
            if gone is None:
                break
            idle.remove(gone)
            self._take_out(gone)
            going.append(gone)
            if room is not None and getattr(gone.model, "loaded", True):  # an unloaded one freed nothing
                room += gone.need
        if len(entries) >= self.per_role or (room is not None and need > room):
            return None  # wait for runs to end
        entry = _Entry(build(), need)
        entries.append(entry)
        return entry

    def _room(self, need: int, free: Callable[[], int | None], budget: int | None) -> int | None:
        """Bytes a new model may take now, or None when no limit is known (no check)."""
        if not need:
            return None
        limits = []
        free_now = free()
        if free_now is not None:
            limits.append(free_now)
        if budget is not None:
            limits.append(budget - sum(e.need for entries in self._held.values() for e in entries
                                       if getattr(e.model, "loaded", True)))  # an unloaded one takes nothing
        return min(limits) if limits else None

    def _take_out(self, entry: _Entry) -> None:
        """Out of the cache (under the lock): nobody gets it again; ``_unload`` lets its weights go."""
        role = next(r for r, held in self._held.items() if entry in held)
        self._held[role].remove(entry)
        logger.info("Let go of %s (%s): not in use, and its memory was wanted", entry.model.name, role)

    def _unload(self, gone: list[_Entry]) -> None:
        """Unload the weights of models taken out (not under the lock: the model thread may be busy)."""
        if gone:
            def unload() -> None:
                for entry in gone:
                    entry.model.unload()
                free_accelerator_memory()

            self._unload_on(unload)


def _on_the_model_thread(fn: Callable[[], Any]) -> Any:
    """``fn`` on the process's model thread, where every model computes (so no weights go under a computation)."""
    from models.runtime import model_thread

    return model_thread().call(fn)


def short_name(name: str) -> str:
    """A model's name for a message: the hub id's last part, or the folder's name."""
    return name.rstrip("/").rsplit("/", 1)[-1] or name


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{max(n, 0) / 1e6:.0f} MB"


def _too_big(name: str, need: int, could: int) -> str:
    return (f"The model “{short_name(name)}” needs about {_size(need)} of memory, and this machine has "
            f"{_size(could)} for it. Choose a smaller model.")


UNLOAD_AFTER_ENV_VAR = "MUSIC_DEMO_UNLOAD_AFTER_MIN"  # minutes unused before a model's weights go; 0: never
DEFAULT_UNLOAD_AFTER_MIN = 15.0  # a free CPU Space has 16 GB for every model and every visitor
MODELS_PER_ROLE_ENV_VAR = "MUSIC_DEMO_MODELS_PER_ROLE"
DEFAULT_MODELS_PER_ROLE = 2  # the app's model and one more a visitor chose, loaded side by side when memory allows


_MODEL_CACHE = ModelCache()


def model_cache() -> ModelCache:
    """The process's model cache (the wrappers' ``get_*`` functions go through it)."""
    return _MODEL_CACHE


def unload_after_min(given: float | None = None) -> float:
    """Minutes a model may sit unused before its weights are unloaded: ``given`` (the ``--unload-after`` flag), else
    ``$MUSIC_DEMO_UNLOAD_AFTER_MIN``, else 15.

    Raises:
        ValueError: not a number of minutes >= 0 (the message names the flag or the variable).
    """
    source, value = ("--unload-after", str(given)) if given is not None else (
        UNLOAD_AFTER_ENV_VAR, os.environ.get(UNLOAD_AFTER_ENV_VAR, "").strip())
    try:
        minutes = float(value) if value else DEFAULT_UNLOAD_AFTER_MIN
    except ValueError:
        minutes = -1.0
    if minutes < 0:
        raise ValueError(f"{source}={value!r}: give the minutes a model may sit unused, >= 0 (0: never).")
    return minutes


_unloading: threading.Event | None = None  # stops the watch in progress


def start_unloading_idle(minutes: float, call: Callable[[Callable[[], Any]], Any],
                         cache: ModelCache | None = None) -> threading.Event | None:
    """From now on, unload every model of ``cache`` (the process's) unused for ``minutes``. A daemon thread looks
    a few times per period and hands the unloading to ``call`` (the model thread's ``call``), which returns the
    freed memory to the OS once it has been idle a second. The latest setting wins: a watch started
    before stops. Returns the event that stops this one (None for 0 minutes: never unload)."""
    global _unloading
    if _unloading is not None:
        _unloading.set()
        _unloading = None
    if minutes <= 0:
        return None
    idle_s = minutes * 60
    every = min(60.0, max(idle_s / 4, 0.01))
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(every):
            try:
                call(lambda: (cache or model_cache()).unload_idle(idle_s))
            except Exception:  # noqa: BLE001 - a failed unload must not end the watch
                logger.exception("Unloading idle models failed")

    threading.Thread(target=watch, name="unload-idle-models", daemon=True).start()
    _unloading = stop
    logger.info("Models unused for %g min are unloaded (%s)", minutes, UNLOAD_AFTER_ENV_VAR)
    return stop
