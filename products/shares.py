"""Shared results: one result saved on the server under an id nobody can guess, for a link that opens it.

A share is a folder ``<root>/<id>/`` holding copies of the result's files, ``share.json`` (its tab, when it was made,
when it expires, and the values of the tab's result, files by name) and ``state.pkl`` (what the tab needs to work on
from it: a piece's codes for Extend, a cover's notes for another instrument or a video). Nothing else of the sharer's
session is saved. A share opens for anyone who has its id until it expires, after the sharer has left and after a
restart; expired shares are removed whenever one is made or opened, and the oldest go first while all of them take
more than their cap (``max_bytes``, the app's ``--max-share-mb``).

A share is written into a hidden folder and renamed into place once whole (``share.json`` last), so a failed copy
never leaves a half share; a hidden folder left by a crash is removed by the next sweep. A share that cannot be
read (its files gone, a state saved by an older version of the app) does not open, and the page says so.

The id is 144 random bits (``secrets``); an id that is not of that form is never looked up on disk. ``state.pkl`` is
written only by this server, in a folder no upload reaches.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.files import folder_size

logger = logging.getLogger(__name__)

DEFAULT_SHARE_DAYS = 7.0  # how long a link works
SHARE_ID = re.compile(r"^[A-Za-z0-9_-]{24}$")
MANIFEST = "share.json"
STATE = "state.pkl"
FILE_KINDS = ("file", "files", "gallery")  # a value that is one path, a list of paths, a list of (path, caption)
DEFAULT_MAX_SHARE_MB = 1024.0  # all shares together are kept under this (the oldest go first)
WRITING = ".writing-"  # the prefix of a share being written (renamed into place when whole)
STALE_WRITE_S = 3600.0  # a folder still being written after this long was left by a crash


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
    language: str = "en"  # the language the sharer's page said its words in


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
               days: float = DEFAULT_SHARE_DAYS, max_bytes: int | None = None, language: str = "en") -> Share:
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
        max_bytes: what all shares may take on disk (None: no cap); the oldest go first, this one stays.
        language: the language the values' words are in (the sharer's page's), so that a viewer can read them in
            theirs.

    Returns:
        The share, as ``open_share`` would give it.

    Raises:
        OSError: a file could not be copied (the disk full, say): nothing of this share is left behind.
    """
    sweep_shares(root)
    share_id = secrets.token_urlsafe(18)
    folder, writing = root / share_id, root / f"{WRITING}{share_id}"
    writing.mkdir(parents=True)
    try:
        copy = _Copier(writing)
        stored = [{"kind": kind, "value": _store(kind, value, copy)} for kind, value in values]
        if keep_state is not None and state is not None:  # the state names the files where they will be
            state = keep_state(state, lambda path: str(folder / copy(path)))
        with open(writing / STATE, "wb") as f:
            pickle.dump(state, f)
        now = time.time()
        manifest = {"tab": tab, "created": now, "expires": now + days * 86400, "values": stored,
                    "language": language}
        (writing / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, default=str))
        os.rename(writing, folder)  # whole, or not there at all
    except BaseException:
        shutil.rmtree(writing, ignore_errors=True)
        raise
    logger.info("Shared a %s result as %s (%d files)", tab, share_id, len(copy.done))
    if max_bytes is not None:
        sweep_shares(root, max_bytes=max_bytes, keep=share_id)
    return open_share(root, share_id)  # type: ignore[return-value]


def open_share(root: Path, share_id: str | None) -> Share | None:
    """The share ``share_id``, or None when it does not open (not an id, never made, expired and removed, its files
    gone, or a state this version of the app cannot read)."""
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
    except Exception as e:  # noqa: BLE001 - files gone, or a pickled class since moved or changed: it does not open
        logger.info("Share %s could not be opened: %s: %s", share_id, type(e).__name__, e)
        return None
    return Share(share_id, manifest["tab"], values, state, folder, manifest["expires"],
                 manifest.get("language", "en"))


def sweep_shares(root: Path, now: float | None = None, max_bytes: int | None = None,
                 keep: str | None = None) -> list[Path]:
    """Remove the shares past their time, folders left by a write that never finished (after an hour: one may be
    under way) and folders that are not shares; then the oldest shares while all of them take more than
    ``max_bytes`` (never ``keep``). Returns the folders removed."""
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    removed, kept = [], []
    for folder in root.iterdir():
        try:
            if folder.name.startswith(WRITING) or not (folder / MANIFEST).exists():
                if folder.is_dir() and now - folder.stat().st_mtime > STALE_WRITE_S:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
                continue
            expires = float(json.loads((folder / MANIFEST).read_text())["expires"])
        except (OSError, ValueError, KeyError, TypeError):
            expires = 0.0  # a manifest that cannot be read: the share cannot open, so it goes
        if expires < now:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        else:
            kept.append((expires, folder))
    if max_bytes is not None:
        sizes = {folder: folder_size(folder) for _, folder in kept}
        total = sum(sizes.values())
        for _, folder in sorted(kept):  # the soonest to expire are the oldest
            if total <= max_bytes:
                break
            if folder.name == keep:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            total -= sizes[folder]
    if removed:
        logger.info("Removed %d shared result(s) from %s (expired, over the cap, or never finished)", len(removed), root)
    return removed
