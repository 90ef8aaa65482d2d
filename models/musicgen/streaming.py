"""Streaming: the codes finished so far turned into audio chunks while a piece is made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from models.musicgen.codec import decode_codes
from models.runtime import model_thread


STREAM_FIRST_S = 1.0  # streaming: the first chunk as soon as this much music is finished
STREAM_EVERY_S = 2.0  # ... then a chunk every this much
STREAM_CONTEXT_S = 1.0  # each chunk is decoded with this much of the music before it, for a seamless join


class AudioStream:
    """Turns the codes finished so far into new audio while a piece is made (for players that start at once).

    Each chunk decodes the new frames together with up to STREAM_CONTEXT_S of the frames before them and hands on
    only the new part, so chunks join without clicks. It is a preview: the final file is decoded in one go from
    the same codes, as without streaming.

    Args:
        model: the loaded MusicGen (its EnCodec decodes).
        send: receives each chunk, float32 [variants, channels, samples].
        limit: frames to stream at most (the piece's length; codes past it are the delay pattern's tail).
    """

    def __init__(self, model: Any, send: Callable[[np.ndarray], None], limit: int | None = None) -> None:
        self.model = model
        self.send = send
        rate = model.config.audio_encoder.frame_rate
        self.hop = int(model.config.audio_encoder.sampling_rate // rate)  # samples per frame
        self.context = int(STREAM_CONTEXT_S * rate)
        self.first = int(STREAM_FIRST_S * rate)
        self.every = int(STREAM_EVERY_S * rate)
        self.sent = 0
        self.limit = limit

    def __call__(self, codes: torch.Tensor, final: bool = False) -> None:
        """Offer the codes [B, K, frames] finished so far; a chunk goes out when enough new frames are there."""
        frames = codes.shape[-1] if self.limit is None else min(codes.shape[-1], self.limit)
        threshold = self.first if self.sent == 0 else self.every
        if frames <= self.sent or (frames - self.sent < threshold and not final):
            return
        start = max(0, self.sent - self.context)
        audio = model_thread().call(decode_codes, self.model, codes[..., start:frames]).float().cpu().numpy()
        audio = audio[..., (self.sent - start) * self.hop : (frames - start) * self.hop]
        self.sent = frames
        self.send(np.clip(audio, -1.0, 1.0).astype(np.float32))
