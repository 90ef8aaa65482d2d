"""The seam: what the page, the API, MCP and the command line ask of the models, one method per job. Each takes
plain values (audio as numpy arrays, a ``MusicRequest``) and gives back results (audio, notes, a verdict), never
files: the products are written where the caller is. Each long job takes ``cancel`` (set it to stop: music keeps
the finished part) and ``progress`` (fraction, English message)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

Progress = Callable[[float, str], None]
Stream = Callable[[int, np.ndarray], None]  # (sample rate, audio [variants, channels, samples]) as it is finished


class Backend(Protocol):
    """Where model work runs (see the module docstring)."""

    name: str  # "in-process" or "ray-serve"

    def music(self, role: str, model: str, request: Any, *, cancel: threading.Event | None = None,
              progress: Progress | None = None, stream: Stream | None = None) -> Any:
        """MusicGen (``role`` "text") or MusicGen-Melody ("melody") checkpoint ``model`` makes ``request`` (a
        ``musicgen.MusicRequest``): a ``musicgen.MusicResult``; a stop keeps the finished part."""

    def cover(self, model: str, song: np.ndarray, sample_rate: int, style: str, *,
              cancel: threading.Event | None = None, progress: Progress | None = None) -> Any:
        """Pop2Piano ``model`` arranges ``song`` [T] (mono, ``sample_rate`` Hz, already checked) in ``style``: a
        ``pop2piano.PianoCover``."""

    def piano_notes(self, model: str, audio: np.ndarray, sample_rate: int, *,
                    cancel: threading.Event | None = None, progress: Progress | None = None) -> Any:
        """The notes a piano transcriber (Transkun) ``model`` hears in a piano recording [T]: ``Notes``;
        ``progress`` hears when the model must load first."""

    def song(self, model: str, request: Any, *, cancel: threading.Event | None = None,
             progress: Progress | None = None, stream: Stream | None = None) -> Any:
        """ACE-Step 1.5 checkpoint ``model`` makes ``request`` (a ``song.SongRequest``): a ``song.SongResult``; a stop
        keeps nothing (a diffusion has nothing half made)."""

    def song_edit(self, model: str, edit: Any, *, cancel: threading.Event | None = None,
                  progress: Progress | None = None, stream: Stream | None = None) -> Any:
        """ACE-Step 1.5 checkpoint ``model`` makes a part of a song made here again, or extends it (a
        ``song.SongEdit``): a ``song.SongResult``."""

    def music_notes(self, audio: np.ndarray, sample_rate: int) -> Any:
        """The notes basic-pitch hears in any music [T] (for "MIDI of this result"): ``Notes``."""

    def detect_watermark(self, model: str | None, audio: np.ndarray, sample_rate: int) -> Any:
        """Whether ``audio`` [T] carries the app's watermark (the detector of ``model``): a ``Detection``."""

    def mark(self, model: str | None, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, str]:
        """``audio`` [T] or [channels, T] with the app's watermark (the generator of ``model``) and "", or as it
        was and why it is unmarked (turned off, missing)."""

    def estimate_seconds(self, role: str, model: str, **shape: Any) -> float | None:
        """Roughly how long a run of ``role``'s checkpoint ``model`` takes where it runs (``shape``: the wrapper's
        ``estimate_seconds`` arguments), from the speed measured there; None before any run, or when the model is
        not loaded (nothing is loaded to answer)."""
