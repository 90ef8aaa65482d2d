"""Progress and Stop inside a decode loop, for every model: one watcher called after each step."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
from transformers.generation.stopping_criteria import StoppingCriteria

from utils.progress import Progress


class GenerationCancelled(RuntimeError):
    """The user stopped a generation."""


class StepWatcher(StoppingCriteria):
    """Runs after every decode step: reports progress on the part ``span`` of the bar, and stops the generation
    (``GenerationCancelled``) when ``cancel`` is set.

    Fast loops call ``tick``; stock ``generate`` calls it as a stopping criterion (rather than a streamer: MusicGen's
    ``generate`` in transformers 5.23 hands its streamer only the prompt, never the steps), which also keeps the
    ids it saw last (``last_ids``).

    Args:
        total: steps expected in all.
        progress: receives (fraction, message).
        span: the part of the progress bar these steps fill, (start, end) in [0, 1].
        describe: the message for a step, from (step, total); default: ``label``.
        label: the message for every step when there is no ``describe``.
        cancel: set from another thread to stop at the next step.
        reports: about how many progress reports to make over ``total`` steps.
        done: steps already done before this watcher (a later batch of the same work).
    """

    def __init__(self, total: int, progress: Progress, span: tuple[float, float] = (0.0, 1.0),
                 describe: Callable[[int, int], str] | None = None, cancel: threading.Event | None = None,
                 reports: int = 100, done: int = 0, label: str = "") -> None:
        self.total = max(1, total)
        self.progress = progress
        self.span = span
        self.describe = describe or (lambda step, total: label)
        self.cancel = cancel
        self.step = done
        self.every = max(1, self.total // reports)
        self.last_ids: torch.Tensor | None = None

    def tick(self, *_: Any) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise GenerationCancelled("Generation was stopped.")
        self.step += 1
        if self.step % self.every == 0 or self.step == self.total:
            start, end = self.span
            self.progress(start + (end - start) * min(1.0, self.step / self.total),
                          self.describe(self.step, self.total))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        self.last_ids = input_ids
        self.tick()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
