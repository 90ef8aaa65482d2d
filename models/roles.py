"""Which wrapper serves each role of the one loader, and the full name of a model asked for by a short name, a hub
id or a folder. The wrappers are imported when their role is first asked for, so that importing this module loads no
wrapper (and no wrapper imports another through it)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from models.cache import ROLES

# role -> (module, class, options) of its wrapper (a models.loading.LoadedModel)
_WRAPPERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "piano": ("models.pop2piano", "PianoCoverModel", {}),
    "text": ("models.musicgen.model", "MusicGenModel", {"melody": False}),
    "melody": ("models.musicgen.model", "MusicGenModel", {"melody": True}),
    "separator": ("models.separator", "StemSeparator", {}),
    "translator": ("models.translation", "PromptTranslator", {}),
    "watermark": ("models.watermark", "Watermarker", {}),
    "transcriber": ("models.transcription", "Transcriber", {}),
    "piano_transcriber": ("models.piano_transcription", "PianoTranscriber", {}),
    "song": ("models.song.model", "SongModel", {}),
}
assert tuple(_WRAPPERS) == ROLES


def wrapper_class(role: str) -> tuple[type, dict[str, Any]]:
    """The wrapper class of ``role`` (a ``models.loading.LoadedModel``) and the options it is built with.

    Raises:
        ValueError: an unknown role (the message lists the roles).
    """
    if role not in _WRAPPERS:
        raise ValueError(f"Unknown model role {role!r}; the roles are: {', '.join(_WRAPPERS)}.")
    module, name, options = _WRAPPERS[role]
    return getattr(importlib.import_module(module), name), options


def known_checkpoints(role: str) -> tuple[str, ...]:
    """The checkpoints known to fit ``role`` (others may too: any folder or hub id of the same kind)."""
    cls, options = wrapper_class(role)
    return cls.known(**options) if hasattr(cls, "known") else cls.checkpoints


def resolve_name(role: str, name_or_path: str | None) -> str:
    """The full name for ``name_or_path``: the role's default when empty, a known checkpoint's hub id for its short
    name (``small`` -> ``facebook/musicgen-small``), else the name as given."""
    cls, options = wrapper_class(role)
    name = (name_or_path or "").strip()
    if not name:
        return cls.default_name(**options)
    if "/" not in name and not Path(name).expanduser().exists():
        short = {checkpoint.split("/")[-1]: checkpoint for checkpoint in known_checkpoints(role)}
        for prefix in ("", "musicgen-"):
            if prefix + name in short:
                return short[prefix + name]
    return name
