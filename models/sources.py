"""Where a model's weights come from (a hub id or a local folder), and load errors that say how to fix them."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT_S = 3.0  # how long we wait to learn whether the Hugging Face Hub is reachable

T = TypeVar("T")


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which, why, and how to fix it."""



# The one set of words that turn a setting off: an optional model's flag or env var (separator, translator,
# watermark) and a yes/no switch (``env_flag``: MUSICGEN_FAST_PATH=0, MUSICGEN_CUDA_GRAPHS=off...).
OFF_VALUES = {"off", "none", "0", "no", "false"}


def is_off(name: str | None) -> bool:
    """Whether a setting's value turns it off (an optional model, or a yes/no switch)."""
    return (name or "").strip().lower() in OFF_VALUES


class FailureMemory:
    """The last failed load of an optional model (separator, translator, watermark), said again at once rather than
    retried for ``retry_after_s``: a page that cannot reach the hub does not wait on it at every request."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        self._last: tuple[float, str] | None = None  # (when, why)

    def raise_recent(self) -> None:
        """Raise the last failure again if it is recent.

        Raises:
            ModelLoadError: the load failed less than ``retry_after_s`` ago.
        """
        if self._last is not None and time.monotonic() - self._last[0] < self.retry_after_s:
            raise ModelLoadError(self._last[1])

    def failed(self, why: str) -> ModelLoadError:
        """Remember (and log) a failure; returns the error to raise."""
        self._last = (time.monotonic(), why)
        logger.warning("%s", why)
        return ModelLoadError(why)

    def clear(self) -> None:
        self._last = None


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is meant as a local folder rather than a hub id like ``owner/model``."""
    return (
        name.startswith((".", "/", "~"))
        or os.path.isabs(name)
        or Path(name).expanduser().exists()
        or name.count("/") > 1
        or ("/" in name and Path(name.split("/")[0]).is_dir())  # "weights/pop2piano" beside a weights/ folder
    )


def public_name(name: str | None) -> str | None:
    """A model's name as a visitor may read it (results, parameters files, audio tags): a hub id as it is, a folder
    on the server by its own name, never its path. The server's model choice takes it back (``check_offered``)."""
    if not name or not looks_like_path(name):
        return name
    return name.rstrip("/").rsplit("/", 1)[-1] or name


NOT_HERE = "not available on this server"  # what a visitor reads when an optional model cannot be used; the log says why


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files come from.

    Attributes:
        name: the hub id or folder as the user gave it.
        location: what to hand to ``from_pretrained``.
        is_local: True for a local folder.
        local_files_only: True when the hub must not be contacted (a folder, the cache, or offline mode).
    """

    name: str
    location: str
    is_local: bool
    local_files_only: bool


def _hub_is_cached(repo_id: str, marker: str = "config.json") -> bool:
    """Whether the hub cache holds ``repo_id``'s ``marker`` file (a glob pattern such as ``*.yaml`` works too)."""
    try:
        if any(c in marker for c in "*?["):
            from huggingface_hub import snapshot_download

            folder = snapshot_download(repo_id, allow_patterns=[marker], local_files_only=True)
            return any(Path(folder).glob(marker))
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, marker), str)
    except Exception:  # noqa: BLE001 - an odd cache layout just means "not cached"
        return False


def hub_is_reachable(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hugging Face Hub (``$HF_ENDPOINT``) opens within ``timeout_s``."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def how_to_fix(name: str, env_var: str, cli_flag: str) -> str:
    """The standard advice for pointing the app at a model's weights."""
    repo = name if not looks_like_path(name) else "<hub id>"
    return (
        f"To use a local copy, download it where the hub is reachable "
        f"(`huggingface-cli download {repo} --local-dir ./weights/{repo.split('/')[-1]}`), then start the app "
        f"with `{cli_flag} ./weights/{repo.split('/')[-1]}` or set `{env_var}=./weights/{repo.split('/')[-1]}`."
    )


def resolve_source(name: str, what: str, env_var: str, cli_flag: str, marker: str = "config.json") -> ModelSource:
    """Check that ``name`` (hub id or local folder) can be loaded, without hanging on an unreachable hub.

    Args:
        name: hub id (``owner/model``) or a local folder.
        what: the model's role, for messages (e.g. "Piano cover model").
        env_var: the environment variable that sets this model.
        cli_flag: the command-line flag that sets this model.
        marker: the file (glob pattern in a folder) that marks a saved model of this kind.

    Raises:
        ModelLoadError: the folder is missing, or the hub is unreachable and the model is not cached.
    """
    name = (name or "").strip()
    if not name:
        raise ModelLoadError(f"{what}: no model was given. Set `{env_var}` or pass `{cli_flag}`.")
    if looks_like_path(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(
                f"{what} `{name}`: the local folder does not exist. Point `{cli_flag}` or `{env_var}` "
                f"at a folder holding the model files (config.json, weights, preprocessor files)."
            )
        if not any(folder.glob(marker)):
            raise ModelLoadError(
                f"{what} `{name}`: the folder has no {marker}, so it is not a saved model. "
                f"Save one there with `save_pretrained` or `huggingface-cli download ... --local-dir {name}`."
            )
        return ModelSource(name, str(folder), is_local=True, local_files_only=True)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if _hub_is_cached(name, marker) and (offline or not hub_is_reachable()):
        return ModelSource(name, name, is_local=False, local_files_only=True)
    if offline:
        raise ModelLoadError(
            f"{what} `{name}`: HF_HUB_OFFLINE is set and the model is not in the local cache. "
            + how_to_fix(name, env_var, cli_flag)
        )
    if not hub_is_reachable():
        raise ModelLoadError(
            f"{what} `{name}`: the Hugging Face Hub cannot be reached from this machine and the model is not "
            "in the local cache. " + how_to_fix(name, env_var, cli_flag)
        )
    return ModelSource(name, name, is_local=False, local_files_only=False)


def load_or_explain(what: str, name: str, env_var: str, cli_flag: str, load: Callable[[ModelSource], T],
                    marker: str = "config.json") -> T:
    """Resolve ``name`` and run ``load(source)``; any failure becomes a ModelLoadError saying what and how to fix.

    Args:
        what: the model's role, for messages (e.g. "Piano cover model").
        name: hub id or local folder.
        env_var: the environment variable that sets this model.
        cli_flag: the command-line flag that sets this model.
        load: builds the model objects from a resolved source (``from_pretrained`` calls).
        marker: the file that marks a saved model of this kind (see ``resolve_source``).
    """
    source = resolve_source(name, what, env_var, cli_flag, marker)
    try:
        return load(source)
    except (ModelLoadError, ValueError):
        raise
    except Exception as e:  # noqa: BLE001 - any loader failure becomes one clear message
        raise ModelLoadError(
            f"{what} `{name}` could not be loaded: {type(e).__name__}: {e}. Check that the folder or hub id holds "
            f"the right kind of checkpoint; set it with `{cli_flag}` or `{env_var}`."
        ) from e


def describe_source(name: str, marker: str = "config.json") -> str:
    """A one-line, network-free description of where a model will come from, for the page."""
    if looks_like_path(name):
        folder = Path(name).expanduser()
        state = "found" if folder.is_dir() and any(folder.glob(marker)) else "missing or not a saved model"
        return f"local folder `{name}` ({state})"
    cached = " (in the local cache)" if _hub_is_cached(name, marker) else " (downloaded on first use)"
    return f"hub id `{name}`{cached}"
