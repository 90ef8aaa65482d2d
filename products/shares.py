"""Shared results: one result saved on the server under an id nobody can guess, for a link that opens it.

A share is a folder ``<root>/<id>/`` holding copies of the result's files, ``share.json`` (its tab, when it was made,
when it expires, and the values of the tab's result, files by name) and ``state.pkl`` (what the tab needs to work on
from it: a piece's codes for Extend, a cover's notes for another instrument or a video). Nothing else of the sharer's
session is saved. A share opens for anyone who has its id until it expires, after the sharer has left and after a
restart; expired shares are removed whenever one is made or opened.

The id is 144 random bits (``secrets``); an id that is not of that form is never looked up on disk. ``state.pkl`` is
written only by this server, in a folder no upload reaches.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_SHARE_DAYS = 7.0  # how long a link works
SHARE_ID = re.compile(r"^[A-Za-z0-9_-]{24}$")
MANIFEST = "share.json"
STATE = "state.pkl"
FILE_KINDS = ("file", "files", "gallery")  # a value that is one path, a list of paths, a list of (path, caption)


@dataclass
class Share:
    """A shared result as opened: its tab, the values of its result components (files as paths in its folder), and
    the tab's state."""

    id: str
    tab: str
    values: list[Any]
    state: Any
    folder: Path
    expires: float


class _Copier:
    """Copies a result's files into a share's folder, each once, under names that do not collide."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.done: dict[str, str] = {}

    def __call__(self, path: str | Path) -> str:
        """The copy's name in the folder (copied on first sight)."""
        source = Path(path)
        if str(source) in self.done:
            return self.done[str(source)]
        name = source.name
        n = 1
        while (self.folder / name).exists():
            name = f"{source.stem}_{n}{source.suffix}"
            n += 1
        shutil.copy2(source, self.folder / name)
        self.done[str(source)] = name
        return name


def _store(kind: str, value: Any, copy: _Copier) -> Any:
    if value is None or kind not in FILE_KINDS:
        return value
    if kind == "file":
        return {"file": copy(value)}
    if kind == "files":
        return [{"file": copy(v)} for v in value]
    return [{"file": copy(v[0] if isinstance(v, (list, tuple)) else v),
             "caption": v[1] if isinstance(v, (list, tuple)) and len(v) > 1 else None} for v in value]


def _load(kind: str, value: Any, folder: Path) -> Any:
    if value is None or kind not in FILE_KINDS:
        return value
    if kind == "file":
        return str(folder / value["file"])
    if kind == "files":
        return [str(folder / v["file"]) for v in value]
    return [(str(folder / v["file"]), v.get("caption")) for v in value]


def save_share(root: Path, tab: str, values: list[tuple[str, Any]], state: Any = None,
               keep_state: Callable[[Any, Callable[[str | Path], str]], Any] | None = None,
               days: float = DEFAULT_SHARE_DAYS) -> Share:
    """Save one result for a link.

    Args:
        root: the folder of all shares.
        tab: which tab the result belongs to.
        values: (kind, value) for each result component: kind "file", "files" or "gallery" for files (copied), any
            other kind for a value kept as it is (text, numbers, JSON).
        state: the tab's state for this result (pickled).
        keep_state: copies the files the state refers to, through the function it is given (it returns the copy's
            path), and returns the state to save.
        days: how long the link works.

    Returns:
        The share, as ``open_share`` would give it.
    """
    sweep_shares(root)
    share_id = secrets.token_urlsafe(18)
    folder = root / share_id
    folder.mkdir(parents=True)
    copy = _Copier(folder)
    stored = [{"kind": kind, "value": _store(kind, value, copy)} for kind, value in values]
    if keep_state is not None and state is not None:
        state = keep_state(state, lambda path: str(folder / copy(path)))
    with open(folder / STATE, "wb") as f:
        pickle.dump(state, f)
    now = time.time()
    manifest = {"tab": tab, "created": now, "expires": now + days * 86400, "values": stored}
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, default=str))
    logger.info("Shared a %s result as %s (%d files)", tab, share_id, len(copy.done))
    return open_share(root, share_id)  # type: ignore[return-value]


def open_share(root: Path, share_id: str | None) -> Share | None:
    """The share ``share_id``, or None when there is none (not an id, never made, expired and removed, or its
    files gone)."""
    if not share_id or not SHARE_ID.match(share_id):
        return None
    folder = root / share_id
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest["expires"] < time.time():
            shutil.rmtree(folder, ignore_errors=True)
            return None
        values = [_load(v["kind"], v["value"], folder) for v in manifest["values"]]
        with open(folder / STATE, "rb") as f:
            state = pickle.load(f)  # noqa: S301 - written by this server only (see the module's docstring)
    except (OSError, ValueError, KeyError, pickle.UnpicklingError, EOFError) as e:
        logger.info("Share %s could not be opened: %s", share_id, e)
        return None
    return Share(share_id, manifest["tab"], values, state, folder, manifest["expires"])


def sweep_shares(root: Path, now: float | None = None) -> list[Path]:
    """Remove the shares past their time. Returns the folders removed."""
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for folder in root.iterdir():
        try:
            expires = json.loads((folder / MANIFEST).read_text())["expires"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if expires < now:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
