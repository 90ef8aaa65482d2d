"""The song model's CPU fast path, each a change to a loaded ``AceStepPipeline``'s parts that ``SongModel`` applies
when ``$SONG_FAST_PATH`` is on: prompt encodings kept, the DiT's rows in order, Snake in fewer passes (all three the
same numbers as stock), and int8 linear layers on a CPU (an approximation, measured in docs/performance-history.md)."""

from __future__ import annotations

import collections
import types
from typing import Any

import torch


def int8_on_cpu(pipe: Any) -> None:
    """The linear layers of the DiT and of the condition encoder (its lyric and timbre encoders, run once a song) as
    int8 (per-channel weights, activations quantised per call: fbgemm's VNNI kernels), their other parts in float32,
    converted block by block so that the load's peak stays near the final size. On 2 cores at 30 s (full size, random
    weights, 2026-12-07): a DiT step 2.3 s against 3.6 s in bfloat16 and 9.8 s in float32, its output 35.5 dB from
    float32's (bfloat16: 37.1 dB); the condition encoder's weights ~0.6 GB instead of 1.2 GB. The whole song's SNR
    against stock float32 is measured through the app (docs/performance-history.md)."""
    from models.int8 import quantize_int8, return_freed_memory

    encoder = pipe.condition_encoder
    parts = ((pipe.transformer, list(pipe.transformer.layers)),
             (encoder, [*encoder.lyric_encoder.layers, *encoder.timbre_encoder.layers]))
    for part, blocks in parts:
        for block in [*blocks, part]:  # one block in float32 at a time, then what is left
            quantize_int8(block.float())
            return_freed_memory()
        # the pipeline hands every part the DiT's dtype: both now take float32
        part.register_forward_pre_hook(as_float32, with_kwargs=True)


def as_float32(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A forward pre-hook: the floating-point tensors among a call's keyword arguments in float32."""
    return args, {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in kwargs.items()}


def snake_in_fewer_passes(vae: Any) -> None:
    """The VAE decoder's Snake activations (x + sin(a x)^2 / b, on every sample of every channel: a third of the
    decode's time) in four passes over the audio instead of five, squaring and adding in place; the constants
    a and 1/b computed once per call on the [channels] vectors, as before."""
    def snake(module: Any, hidden_states: torch.Tensor) -> torch.Tensor:
        alpha = torch.exp(module.alpha) if module.logscale else module.alpha
        beta = torch.exp(module.beta) if module.logscale else module.beta
        shape = hidden_states.shape
        x = hidden_states.reshape(shape[0], shape[1], -1)
        wave = torch.sin(alpha * x)
        wave.mul_(wave)
        return torch.addcmul(x, (beta + 1e-9).reciprocal(), wave).reshape(shape)

    for module in vae.modules():
        if type(module).__name__ == "Snake1d":
            module.forward = types.MethodType(snake, module)


def rows_in_order(transformer: Any) -> None:
    """The DiT's residual stream in row order: its ``proj_in`` convolution gives [batch, channels, frames] and
    the model transposes it, so every later activation keeps a transposed layout, and each linear layer then
    copies its weight to multiply it (``bmm`` on an expanded weight: measured 3.6 s of an 8.2 s bfloat16 step at
    30 s on 2 cores). The convolution's output is laid out so that the transpose is contiguous: the same
    values, one small copy a step."""
    def in_row_order(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        return output.transpose(1, 2).contiguous().transpose(1, 2)

    transformer.proj_in_conv.register_forward_hook(in_row_order)


def cache_encodings(pipe: Any, kept: collections.OrderedDict, size: int) -> None:
    """The same prompt and lyrics give the same encodings: keep the last size (exactly what
    ``encode_prompt`` would compute again; the cache goes with the model)."""
    original = pipe.encode_prompt

    def encode_prompt(prompt: Any, lyrics: Any, device: Any, **kwargs: Any) -> Any:
        key = (repr(prompt), repr(lyrics), str(device), repr(sorted(kwargs.items())))
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
        encoded = original(prompt, lyrics, device, **kwargs)
        kept[key] = encoded
        while len(kept) > size:
            kept.popitem(last=False)
        return encoded

    pipe.encode_prompt = encode_prompt
