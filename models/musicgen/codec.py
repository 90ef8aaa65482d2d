"""MusicGen's audio codes: the delay pattern, EnCodec decoding and encoding, EnCodec's weight norm folded once,
and the frozen parts (T5, EnCodec) shared between loaded checkpoints."""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref

import torch

logger = logging.getLogger(__name__)


def fold_weight_norm(module: torch.nn.Module) -> torch.nn.Module:
    """Compute the weight-normed convolution weights of ``module`` (EnCodec) once, in place, instead of on every call.

    A weight-norm parametrisation recomputes ``g * v / |v|`` each time the layer runs: a 30 s decode took 7.2 s
    with it and 5.6 s folded here (``bench/encodec_bench.py``). The folded weight is that same computation done
    once, so the audio is bit-identical (tested).
    """
    from torch.nn.utils import parametrize

    for sub in module.modules():
        if parametrize.is_parametrized(sub, "weight"):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)
    return module


def codebook_delays(decoder_config) -> list[int]:
    """Each codebook's delay in steps in MusicGen's delay pattern (stereo: a level's left and right share one)."""
    k, channels = decoder_config.num_codebooks, decoder_config.audio_channels
    return [c // 2 if channels == 2 else c for c in range(k)]


def undelay(tokens: torch.Tensor, delays: list[int]) -> torch.Tensor:
    """[B, K, T] tokens in the delay pattern (start token first) -> [B, K, frames] aligned codes.

    Keeps the frames complete in every codebook: ``T - 1 - max(delays)`` of them, which is what stock ``generate``
    returns after a full run, and what was finished when a run stopped early.
    """
    frames = tokens.shape[-1] - 1 - max(delays)
    return torch.stack([tokens[:, c, 1 + d : 1 + d + frames] for c, d in enumerate(delays)], dim=1)


# The final decode goes through EnCodec's upsampling stack in pieces of this many frames (5 s at 50 Hz), each with
# CHUNK_CONTEXT_FRAMES of true neighbours on both sides (their output is dropped): the samples of one pass over the
# whole piece to float32 rounding (the convolutions may round a sum differently for another length: at most 3.7e-8
# on the full-size codec, a 16-bit file's step being 3.1e-5; docs/performance-history.md, issue 35; tested within 1e-6),
# without a whole piece's activations at full rate (64 channels x 960,000 samples for 30 s: 245 MB each). A 30 s
# decode's peak: +0.41 GB instead of +1.21 GB.
DECODE_CHUNK_FRAMES = 250
CHUNK_CONTEXT_FRAMES = 8  # well past the stack's reach (about 2 frames: the upsampling and residual convolutions)


def _decode_one(encoder, codes: torch.Tensor, chunk_frames: int | None) -> torch.Tensor:
    """Codes [1, B, K, frames] of one channel -> waveform [B, 1, T]: EnCodec's own decode, or the same computation
    in chunks (``chunk_frames``; None: whole)."""
    layers = encoder.decoder.layers
    frames = codes.shape[-1]
    chunked = (
        chunk_frames is not None
        and encoder.config.chunk_length is None  # the 32 kHz codec of MusicGen: one frame, no overlap-add
        and frames > chunk_frames + 2 * CHUNK_CONTEXT_FRAMES
        and type(layers[1]).__name__ == "EncodecLSTM"
    )
    if not chunked:
        return encoder.decode(codes, audio_scales=[None] * codes.shape[0]).audio_values
    hidden = layers[1](layers[0](encoder.quantizer.decode(codes[0].transpose(0, 1))))  # conv + LSTM: whole piece
    hop = int(torch.prod(torch.tensor(encoder.config.upsampling_ratios)))
    pieces = []
    for start in range(0, frames, chunk_frames):
        end = min(start + chunk_frames, frames)
        low, high = max(0, start - CHUNK_CONTEXT_FRAMES), min(frames, end + CHUNK_CONTEXT_FRAMES)
        x = hidden[..., low:high]
        for layer in layers[2:]:
            x = layer(x)
        pieces.append(x[..., (start - low) * hop : (end - low) * hop])
    return torch.cat(pieces, dim=-1)


@torch.inference_mode()
def decode_codes(model, codes: torch.Tensor, chunk_frames: int | None = DECODE_CHUNK_FRAMES) -> torch.Tensor:
    """Audio codes [B, K, frames] -> waveform [B, channels, T] with the model's EnCodec, as stock ``generate`` does
    (stereo: even codebooks are the left channel, odd the right); in chunks of ``chunk_frames`` past the LSTM (the
    same samples to float32 rounding; None: the whole piece at once, as stock)."""
    codes = codes[None, ...]
    encoder = model.audio_encoder
    if model.config.decoder.audio_channels == 1:
        return _decode_one(encoder, codes, chunk_frames)
    left = _decode_one(encoder, codes[:, :, ::2, :], chunk_frames)
    right = _decode_one(encoder, codes[:, :, 1::2, :], chunk_frames)
    return torch.cat([left, right], dim=1)


@torch.inference_mode()
def encode_audio(model, audio: torch.Tensor) -> torch.Tensor:
    """Waveform [B, channels, T] at the model's rate -> audio codes [B, K, frames] (an audio prompt).

    Stereo checkpoints code each channel on its own and interleave the codebooks (left, right, left...); a mono
    clip given to a stereo model is used for both channels.
    """
    encoder = model.audio_encoder
    if model.config.decoder.audio_channels == 1:
        return encoder.encode(audio.mean(dim=1, keepdim=True)).audio_codes[0]
    if audio.shape[1] == 1:
        audio = audio.repeat(1, 2, 1)
    left = encoder.encode(audio[:, :1]).audio_codes[0]
    right = encoder.encode(audio[:, 1:2]).audio_codes[0]
    return torch.stack([left, right], dim=2).flatten(1, 2)


SHARED_PARTS = ("text_encoder", "audio_encoder")  # frozen T5 and EnCodec: the same in many checkpoints
_parts: weakref.WeakValueDictionary[str, torch.nn.Module] = weakref.WeakValueDictionary()
_parts_lock = threading.Lock()


def fingerprint(module: torch.nn.Module) -> str:
    """A hash of a module's class, parameter and buffer names, dtypes, shapes, devices and values."""
    digest = hashlib.blake2b(type(module).__name__.encode(), digest_size=20)
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|{tensor.device}".encode())
        digest.update(tensor.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def share_frozen_parts(model: torch.nn.Module) -> list[str]:
    """Point ``model``'s text encoder and audio codec at an already loaded model's when their tensors are equal
    (checked by hash, never assumed): the MusicGen checkpoints share T5-base and the 32 kHz EnCodec, so the text
    and melody tabs then hold one copy. Returns the parts that were shared."""
    shared = []
    with _parts_lock:
        for part in SHARED_PARTS:
            module = getattr(model, part, None)
            if module is None:
                continue
            key = f"{part}:{fingerprint(module)}"
            existing = _parts.get(key)
            if existing is not None and existing is not module:
                setattr(model, part, existing)
                shared.append(part)
                logger.info("Sharing the %s with an already loaded model (equal tensors)", part)
            else:
                _parts[key] = module
    return shared
