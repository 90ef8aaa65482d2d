"""One loader for every model of the app, as whisper's ``load_model``: ``load_model(role, name_or_path, device)``, and
the base class every wrapper shares (its lock, load and unload on the model thread, the "off" check, and the memory of
a recent failure). Each wrapper keeps only what differs: where its files come from and what it keeps of them."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from models.devices import pick_device
from models.cache import model_cache
from models.roles import resolve_name, wrapper_class
from models.runtime import model_thread
from models.sources import (
    FailureMemory,
    ModelLoadError,
    ModelSource,
    is_off,
    load_or_explain,
    looks_like_path,
    resolve_source,
)

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 600.0  # after an optional model failed to load, the app goes on without it this long before retrying



class LoadedModel:
    """A model of one role, loaded on first use (on the model thread) and kept until the cache lets it go.

    A wrapper sets the class attributes and implements ``_from_source`` (the ``from_pretrained`` calls), ``_keep``
    and ``_drop``; ``_after_load`` and ``missing_package`` when it needs them.

    Args:
        name: hub id, local folder (or "off" for an optional model); None: the role's default.
        device: "cuda", "mps", "cpu"...; None: the best available (``default_device`` when the wrapper sets one).
    """

    what: ClassVar[str] = "Model"  # for messages: "Piano cover model"
    job: ClassVar[str] = "This model"  # what turning it off stops: "Melody separation"
    env_var: ClassVar[str] = ""  # the environment variable that sets it
    cli_flag: ClassVar[str] = ""  # the command-line flag that sets it
    marker: ClassVar[str] = "config.json"  # the file that marks a saved model of this kind in a folder
    optional: ClassVar[bool] = False  # optional: may be turned off, and a failed load is remembered, not retried
    checkpoints: ClassVar[tuple[str, ...]] = ()  # the checkpoints known to fit the role
    default_device: ClassVar[str | None] = None

    def __init__(self, name: str | None = None, device: str | None = None) -> None:
        self.name = (name or self.default_name()).strip()
        self.device = pick_device(device or self.default_device)
        self._lock = threading.Lock()
        self._failure = FailureMemory(RETRY_AFTER_S)
        self._loaded = False

    @classmethod
    def default_name(cls) -> str:
        """The model the app uses when none is given (an env var, else the official checkpoint)."""
        raise NotImplementedError

    @classmethod
    def setting(cls) -> tuple[str, str]:
        """(the environment variable, the command-line flag) that choose this model."""
        return cls.env_var, cls.cli_flag

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def disabled(self) -> bool:
        """Turned off by its setting (an optional model only)."""
        return self.optional and is_off(self.name)

    def missing_package(self) -> str | None:
        """Why the package this model needs cannot be used here (install hint), or None."""
        return None

    def check_before_load(self) -> None:
        """Checks that need no loading (a known checkpoint of the wrong kind); raises ValueError."""

    def where_from(self) -> None:
        """Check, without loading, that the weights can be had: a folder with its files, or a hub id cached or
        reachable (this asks the hub).

        Raises:
            ModelLoadError: why not, and how to point the app at a local copy.
        """
        resolve_source(self.name, self.what, self.env_var, self.cli_flag, self.marker)

    def load(self) -> None:
        """Load the model once, on the model thread.

        Raises:
            ValueError: the checkpoint does not fit the role.
            ModelLoadError: turned off, its package missing, or which model failed, why, and how to point the app
                at a local folder (an optional model's recent failure is said again without retrying).
        """
        self.check_before_load()
        model_thread().call(self._load)

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            if self.disabled:
                raise ModelLoadError(f"{self.job} is turned off (`{self.env_var}={self.name}`).")
            if self.optional:
                self._failure.raise_recent()
            try:
                missing = self.missing_package()
                if missing:
                    raise ModelLoadError(missing)
                self._keep(self._load_parts())
            except (ModelLoadError, ValueError) as e:
                e = self._with_known_names(e)
                if self.optional:
                    raise self._failure.failed(str(e)) from e
                raise e
            self._failure.clear()
            self._loaded = True
            started = time.perf_counter()
            self._after_load()
            logger.info("Loaded %s %s on %s (%.1f s after its weights)", self.what, self.name, self.device,
                        time.perf_counter() - started)

    def _load_parts(self) -> Any:
        """The model's parts, from a hub id or folder (``_from_source``), failures explained."""
        return load_or_explain(self.what, self.name, self.env_var, self.cli_flag, self._from_source, self.marker)

    def _with_known_names(self, error: Exception) -> Exception:
        """A failed load of a name the role does not know: the error lists the checkpoints it does."""
        if not self.checkpoints or self.name in self.checkpoints or looks_like_path(self.name):
            return error
        return type(error)(f"{error} Known checkpoints for this role: {', '.join(self.checkpoints)}.")

    def _from_source(self, source: ModelSource) -> Any:
        raise NotImplementedError

    def _keep(self, parts: Any) -> None:
        """Hold the loaded parts (called under the lock, on the model thread)."""
        raise NotImplementedError

    def _after_load(self) -> None:
        """Work once the parts are held (a warm-up, the attention kernels' choice)."""

    def _drop(self) -> None:
        """Let the parts go."""
        raise NotImplementedError

    def unload(self) -> None:
        """Drop the model (the runtime's cache returns its memory)."""
        with self._lock:
            self._drop()
            self._loaded = False


FLAG_HELP = {  # what each role's command-line flag takes, for app.py and cli.py alike
    "piano": "Pop2Piano hub id or local folder",
    "text": "MusicGen for text to music: hub id, short name (small, medium, large, stereo-small...) or local folder",
    "melody": "MusicGen-Melody: hub id, short name (melody, melody-large...) or local folder",
    "separator": "Demucs melody separator: hub id or local folder, or 'off'",
    "translator": "MarianMT for prompts in other languages: hub id or local folder, or 'off'",
    "watermark": "AudioSeal watermark: hub id or a folder with generator_base.pth and detector_base.pth, or 'off'",
    "piano_transcriber": "Transkun for sheet music of piano recordings: 'transkun' (the weights its package ships), "
                         "a .pt checkpoint with its .conf beside it, a folder holding both, or 'off'",
    "song": "ACE-Step 1.5 for songs with lyrics: hub id (diffusers' layout, or the official ACE-Step/Ace-Step1.5 "
            "release, converted once) or local folder in either layout",
}


def add_model_flags(parser: Any, *roles: str, defaults: dict[str, str | None] | None = None) -> None:
    """Add each role's model flag (``--piano-model``, ``--musicgen-model``...) to an ``argparse`` parser: the one
    definition app.py and cli.py share. The default is ``defaults[role]``, else the role's default model (its env
    var, else the official checkpoint); the value lands in ``args.<flag without dashes>``."""
    for role in roles:
        cls, options = wrapper_class(role)
        env_var, flag = cls.setting(**options)
        default = (defaults or {}).get(role) or cls.default_name(**options)
        parser.add_argument(flag, default=default, help=f"{FLAG_HELP[role]} (env {env_var}; default {default})")


def _cache_args(role: str, name: str, device: str | None) -> dict[str, Any]:
    """What the cache needs to hold the role's model ``name`` (a full name: ``resolve_name``): its builder and, for
    the memory check, its size and the memory free on its device."""
    # imported here: the catalogue reads models.musicgen's checkpoints, and that package's facade imports the
    # wrappers, which import this module (no module imports this one back: tests/test_architecture.py)
    from models.catalogue import available_bytes, memory_budget, model_bytes

    cls, options = wrapper_class(role)
    target = pick_device(device or cls.default_device)
    return {"build": lambda: cls(name, device, **options), "need": model_bytes(name, target),
                  "free": lambda: available_bytes(target), "budget": memory_budget()}


def load_model(role: str, name_or_path: str | None = None, device: str | None = None) -> Any:
    """The model of ``role`` for ``name_or_path``, from the runtime's cache, for preloading (``.load()``) and for
    looking (its name, whether it is loaded). Nobody holds it after this returns, so it may be let go at any time:
    every job that computes with a model holds it with ``use_model`` instead.

    Args:
        role: one of ``models.cache.ROLES``: piano, text, melody, separator, translator, watermark, transcriber.
        name_or_path: a hub id, a known checkpoint's short name ("small", "melody"), or a local folder; None or "":
            the role's default (its env var, else the official checkpoint).
        device: "cuda", "cpu"...; None: the best available (any, for a model already loaded).

    Raises:
        ValueError: an unknown role (the message lists the roles).
        models.cache.ModelTooBig: it cannot fit in this machine's memory.
    """
    cache = model_cache()
    name = resolve_name(role, name_or_path)
    held = cache.peek(role, name, device)
    if held is not None:
        return held
    return cache.get(role, name, device, **_cache_args(role, name, device))


@contextlib.contextmanager
def use_model(role: str, name_or_path: str | None = None, device: str | None = None,
              waiting: Callable[[str], None] | None = None, wait: bool = True) -> Iterator[Any]:
    """Hold the model of ``role`` for one job, the one way every job gets its model: nobody's choice lets it go
    before the block ends (its weights load on first use, on the model thread). When another checkpoint of the role
    is in use and this one cannot load beside it, this waits its turn, telling ``waiting`` what it waits for.

    Args:
        wait: False for a helper model that a run asks for while holding its own (the translator, the separator):
            when it cannot load now, ``ModelBusy`` is raised instead of waiting, perhaps for that same run.

    Raises:
        ValueError: an unknown role.
        models.cache.ModelTooBig: it cannot fit in this machine's memory, even alone.
        models.cache.ModelBusy: ``wait`` is False and it cannot load now.
    """
    name = resolve_name(role, name_or_path)
    with model_cache().use(role, name, device, waiting=waiting, wait=wait,
                           **_cache_args(role, name, device)) as model:
        yield model


_availability: dict[tuple[str, str], tuple[float, str]] = {}  # (role, name) -> (when, why not): alike for everyone
AVAILABILITY_TTL_S = 60.0


def unavailable(role: str, name_or_path: str | None = None) -> str:
    """Why the model of ``role`` cannot be used here, or "" when it can (as far as can be told without loading it):
    turned off, its package missing, a folder without its files, or a hub id neither cached nor reachable (the hub's
    answer is kept for a minute). For the page to say so before anyone presses a button."""
    cls, options = wrapper_class(role)
    name = resolve_name(role, name_or_path)
    model = cls(name, "cpu", **options)
    if model.disabled:
        return f"{model.job} is turned off (`{model.env_var}={name}`)."
    missing = model.missing_package()
    if missing:
        return missing
    known = _availability.get((role, name))
    if known is not None and time.monotonic() - known[0] < AVAILABILITY_TTL_S:
        return known[1]
    try:
        model.where_from()
        why = ""
    except ModelLoadError as e:
        why = str(e)
    _availability[(role, name)] = (time.monotonic(), why)
    return why
