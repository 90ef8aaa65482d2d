"""The fast loop on the model thread: each round steps every request decoding on one loop, their one-token passes
together (``FastMusicgen.layers`` keeps each request's arithmetic its own), then each request's callbacks in its
own context (progress reaches its page, Stop is polled, streamed frames go out)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass

import torch

from models.musicgen.decoding import Loop, Run, ScoresHook, StepCallback


@dataclass(eq=False)
class Decoding:
    """A run in progress with its callbacks: what the model thread steps (decodes of one loop step together)."""

    loop: Loop
    run: Run
    on_scores: ScoresHook | None = None
    on_step: StepCallback | None = None
    on_frames: Callable[[torch.Tensor], None] | None = None
    frames_every: int = 50
    should_stop: Callable[[], bool] | None = None
    context: contextvars.Context | None = None  # the request's, for its callbacks (progress reaches its page)
    steps: int = 0
    finished: bool = False
    error: BaseException | None = None

    @property
    def group(self) -> Loop:
        return self.loop

    def _after_step(self) -> None:
        """The request's callbacks after a step; ends the decode when the run is complete or asked to stop."""
        self.steps += 1
        if self.on_step is not None:
            self.on_step(self.steps)
        if self.on_frames is not None and self.steps % self.frames_every == 0:
            self.on_frames(self.loop.codes(self.run))
        self.finished = (self.run.done + 1 >= self.run.total
                         or (self.should_stop is not None and self.should_stop()))

    @staticmethod
    def advance(batch: list[Decoding]) -> None:
        """One step for every decode of ``batch`` (all on one loop): one-token passes together, a first pass (many
        positions) alone; then each one's callbacks. Errors are kept per decode, to be raised in its own thread."""
        loop = batch[0].loop
        ready, inputs, stepped = [], [], []
        for d in batch:
            try:
                if loop.block_pass(d.run):
                    loop.next_tokens(d.run, loop.layers([d.run], loop.inputs(d.run)), d.on_scores)
                    stepped.append(d)
                else:
                    ready.append(d)
                    if loop.pool is None:
                        inputs.append(loop.inputs(d.run))
            except BaseException as e:  # noqa: BLE001
                d.error = e
        if ready:
            try:
                if loop.pool is not None:  # the static step: fixed buffers, a CUDA graph on a GPU
                    logits = loop.pool.step([d.run for d in ready])
                else:  # the sliced step: the rows of every run in one pass, each run's arithmetic its own
                    outs = loop.layers([d.run for d in ready], torch.cat(inputs)).split([d.run.rows for d in ready])
                    logits = [loop.logits(out) for out in outs]
            except BaseException as e:  # noqa: BLE001
                for d in ready:
                    d.error = e
                logits = []
            for d, out in zip(ready, logits):
                try:
                    loop.pick(d.run, out, d.on_scores)
                    stepped.append(d)
                except BaseException as e:  # noqa: BLE001
                    d.error = e
        for d in stepped:
            try:
                if d.context is None:
                    d._after_step()
                else:
                    d.context.run(d._after_step)
            except BaseException as e:  # noqa: BLE001
                d.error = e
