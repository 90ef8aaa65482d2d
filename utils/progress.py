"""How long-running work reports progress: one callback shape for every model, product and page."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that reports nowhere."""
