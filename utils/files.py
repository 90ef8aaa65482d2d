"""Output folders: one fresh folder per request, with old and excess folders swept away.

The app writes every request's files (WAV, MIDI, pictures) into its own folder under one root. The root is
kept bounded two ways: folders older than ``max_age_s`` go, and when the whole root is over ``max_bytes`` the
oldest folders go until it fits again. Sweeping runs before each new folder is made; a folder younger than
``MIN_KEEP_S`` is never removed, so a request's files stay put while its answer is being sent.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_ROOT = Path(tempfile.gettempdir()) / "music-demo-outputs"
DEFAULT_MAX_AGE_S = 2 * 3600.0  # run folders older than this are removed
DEFAULT_MAX_OUTPUT_MB = 2048.0  # the whole output root is kept under this (oldest folders go first)
MIN_KEEP_S = 60.0  # never remove a folder younger than this (its request may still be answering)


def folder_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it vanished meanwhile)."""
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file():
                total += item.stat().st_size
        except OSError:  # removed by a concurrent sweep
            pass
    return total


KEPT_FOLDERS = {"shared"}  # under the output root, swept by their own rules (shared results: products/shares.py)


def sweep(root: Path, max_age_s: float = DEFAULT_MAX_AGE_S, max_bytes: int | None = None,
          now: float | None = None) -> list[Path]:
    """Remove run folders under ``root`` older than ``max_age_s``, then the oldest while over ``max_bytes``.

    Args:
        root: the output root holding one folder per request.
        max_age_s: folders whose last change is older than this many seconds are removed.
        max_bytes: cap on the total size of ``root``; None = no cap.
        now: the current time (``time.time()``), for tests.

    Returns:
        The folders removed.
    """
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    folders = []
    for path in root.iterdir():
        try:
            if path.is_dir() and path.name not in KEPT_FOLDERS:
                folders.append((path.stat().st_mtime, path))
        except OSError:
            pass
    folders.sort()  # oldest first
    removed: list[Path] = []
    kept: list[tuple[float, Path, int]] = []
    for mtime, path in folders:
        if now - mtime > max_age_s:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        else:
            kept.append((mtime, path, folder_size(path) if max_bytes is not None else 0))
    if max_bytes is not None:
        total = sum(size for *_, size in kept)
        for mtime, path, size in kept:
            if total <= max_bytes:
                break
            if now - mtime < MIN_KEEP_S:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            total -= size
    if removed:
        logger.info("Removed %d old output folder(s) from %s", len(removed), root)
    return removed


def new_run_dir(prefix: str, root: Path = DEFAULT_OUTPUT_ROOT, max_age_s: float = DEFAULT_MAX_AGE_S,
                max_bytes: int | None = None) -> Path:
    """A fresh, empty folder for one request's files under ``root``, after sweeping old and excess ones."""
    root.mkdir(parents=True, exist_ok=True)
    sweep(root, max_age_s, max_bytes)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=root))


def safe_name(text: str, limit: int = 80, empty: str = "item") -> str:
    """A file-name-safe name from a path, a prompt or a label ("songs/A Song.mp3" -> "songs_A_Song.mp3"): letters,
    digits, ``-``, ``_`` and ``.`` kept, every other run of characters one ``_``, at most ``limit`` characters."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("._")
    while "__" in cleaned:
        cleaned = cleaned.replace("__", "_")
    return cleaned[:limit] or empty
