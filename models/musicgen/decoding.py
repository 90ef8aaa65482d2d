"""A decode's state, shared by the fast loop's rooms: one request's rows and cache (``Run``), where its passes are
counted (``PassCount``), its callbacks' types, and ``Loop``: what the rounds and the static step use of the loop that
owns them (``fast_loop.FastMusicgen``), so that each of those rooms reads alone and none imports the loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import LogitsProcessorList

StepCallback = Callable[[int], None]  # called with the number of steps done; may raise to stop
ScoresHook = Callable[[int, torch.Tensor], "torch.Tensor | None"]  # (step, scores [B*K, V]) -> forced tokens or None


@dataclass
class PassCount:
    """Decoder passes a request's rows went through, counted where the pass is made (``FastMusicgen._layers``):
    ``total`` of them, ``shared`` with at least one other request's rows."""

    total: int = 0
    shared: int = 0


@dataclass(eq=False)
class Run:
    """One request's decoding state (its rows: [conditional..., unconditional...] under guidance)."""

    batch: int  # prompts (variants) of the request
    guidance_scale: float | None  # None: no guidance
    do_sample: bool
    processors: LogitsProcessorList
    generator: torch.Generator | None
    tokens: torch.Tensor  # [batch * K, total] in the delay pattern
    pattern: torch.Tensor  # the delay pattern's fixed positions (-1 where a token is sampled)
    known: int  # positions fixed before sampling (start token and prompt)
    total: int
    done: int  # the last position whose token is decided
    offset: int  # positions taken by MusicGen-Melody's conditioning prefix (0 for MusicGen)
    prefix: torch.Tensor | None
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]] | None
    cross_mask: torch.Tensor | None
    self_k: list[torch.Tensor]  # per layer [rows, heads, offset + total, head_dim], written in place
    self_v: list[torch.Tensor]
    positions: torch.Tensor  # the sinusoidal position table
    position: int = 0  # the first position of the next pass's tokens
    begin: int = 0  # the first cache position of the current pass
    passes: PassCount | None = None  # where this request's passes are counted
    slots: tuple[int, int] | None = None  # its rows in the static step's pool (``static_step.StepPool``), if any

    @property
    def rows(self) -> int:
        """Rows through the decoder: conditional and unconditional ones under guidance."""
        return 2 * self.batch if self.guidance_scale is not None else self.batch


class Loop(Protocol):
    """What ``rounds`` and ``static_step`` use of the loop that owns them (``fast_loop.FastMusicgen``)."""

    decoder: torch.nn.Module
    plan: list[tuple[Any, ...]]
    pool: Any  # static_step.StepPool or None
    n_codebooks: int
    n_heads: int
    head_dim: int
    kv_dtype: torch.dtype

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    @staticmethod
    def block_pass(run: Run) -> bool: ...

    def step_ids(self, run: Run) -> torch.Tensor: ...

    def inputs(self, run: Run) -> torch.Tensor: ...

    def layers(self, runs: list[Run], hidden: torch.Tensor) -> torch.Tensor: ...

    def logits(self, hidden: torch.Tensor) -> torch.Tensor: ...

    def next_tokens(self, run: Run, hidden: torch.Tensor, on_scores: ScoresHook | None) -> None: ...

    def pick(self, run: Run, logits: torch.Tensor, on_scores: ScoresHook | None) -> None: ...

    def codes(self, run: Run) -> torch.Tensor: ...
