"""The in-process backend: the jobs run on this process's runtime (its model thread, its model cache), as they
always have. It is the default, and what each Ray Serve replica runs inside (``serving/ray_serve.py``)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

from models.progress import GenerationCancelled
from serving.seam import Progress, Stream


def default_settings() -> SimpleNamespace:
    """The settings a process has without the app's flags: the models' own defaults (env vars, else built in)."""
    from models import separator, translation

    return SimpleNamespace(device=None, translation_model=translation.default_translation_name(),
                           separator_model=separator.default_separator_name())


def stops_on(progress: Progress | None, cancel: threading.Event | None) -> Progress:
    """``progress`` that stops the work calling it (``GenerationCancelled``) once ``cancel`` is set."""
    def report(fraction: float, message: str) -> None:
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("The run was stopped.")
        if progress is not None:
            progress(fraction, message)

    return report


class InProcess:
    """Every job on this process's runtime. ``settings`` is read at each call (so the app's launch flags apply):
    any object with ``device``, ``translation_model`` and ``separator_model``."""

    name = "in-process"

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings if settings is not None else default_settings()

    def music(self, role: str, model: str, request: Any, *, cancel: threading.Event | None = None,
              progress: Progress | None = None, stream: Stream | None = None) -> Any:
        from models.loading import use_model

        report = progress or (lambda fraction, message: None)
        with use_model(role, model, self.settings.device, waiting=lambda message: report(0.0, message)) as loaded:
            return loaded.make(request, progress=report, cancel=cancel,
                               stream=None if stream is None else (lambda audio: stream(loaded.sample_rate, audio)),
                               translator=self.settings.translation_model, separator=self.settings.separator_model)

    def song(self, model: str, request: Any, *, cancel: threading.Event | None = None,
             progress: Progress | None = None, stream: Stream | None = None) -> Any:
        return self._song("make", model, request, cancel, progress, stream)

    def song_edit(self, model: str, edit: Any, *, cancel: threading.Event | None = None,
                  progress: Progress | None = None, stream: Stream | None = None) -> Any:
        return self._song("edit", model, edit, cancel, progress, stream)

    def _song(self, job: str, model: str, what: Any, cancel: threading.Event | None, progress: Progress | None,
              stream: Stream | None) -> Any:
        """The song model, held for the run (``use_model``), makes ``what`` (``make`` or ``edit``)."""
        from models.loading import use_model

        report = progress or (lambda fraction, message: None)
        with use_model("song", model, self.settings.device, waiting=lambda message: report(0.0, message)) as loaded:
            return getattr(loaded, job)(what, progress=report, cancel=cancel,
                                        stream=None if stream is None else
                                        (lambda audio: stream(loaded.sample_rate, audio)))

    def cover(self, model: str, song: np.ndarray, sample_rate: int, style: str, *,
              cancel: threading.Event | None = None, progress: Progress | None = None) -> Any:
        from models.loading import use_model

        report = progress or (lambda fraction, message: None)
        with use_model("piano", model, self.settings.device, waiting=lambda message: report(0.0, message)) as piano:
            return piano.cover_audio(song, sample_rate, style, progress=stops_on(progress, cancel))

    def piano_notes(self, model: str, audio: np.ndarray, sample_rate: int, *,
                    cancel: threading.Event | None = None, progress: Progress | None = None) -> Any:
        from models.loading import use_model

        report = progress or (lambda fraction, message: None)
        with use_model("piano_transcriber", model, self.settings.device,
                       waiting=lambda message: report(0.0, message)) as transcriber:
            if not transcriber.loaded:  # its first use, or unused for a while (unloaded)
                report(0.05, "Loading the model")
                transcriber.load()
            report(0.1, "Listening for the piano's notes")
            return transcriber.notes(audio, sample_rate, cancel=cancel)

    def music_notes(self, audio: np.ndarray, sample_rate: int) -> Any:
        from models.loading import use_model

        with use_model("transcriber") as transcriber:
            return transcriber.notes(audio, sample_rate)

    def detect_watermark(self, model: str | None, audio: np.ndarray, sample_rate: int) -> Any:
        from models.loading import use_model

        with use_model("watermark", model) as watermark:
            return watermark.detect(audio, sample_rate)

    def mark(self, model: str | None, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, str]:
        from models.watermark import mark_or_explain

        return mark_or_explain(audio, sample_rate, model)

    def estimate_seconds(self, role: str, model: str, **shape: Any) -> float | None:
        from models.cache import model_cache
        from models.roles import resolve_name

        loaded = model_cache().peek(role, resolve_name(role, model))  # never loads or lets go of a model
        return None if loaded is None else loaded.estimate_seconds(**shape)
