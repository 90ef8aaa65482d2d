"""Layer calls for the fast loop: linear layers without nn.Module overhead, the int8 q/k/v projections fused into
one call (exact), layer norms, and the decoder's int8 conversion on CPU."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration

from models.int8 import quantize_int8_in_steps

Fn = Callable[[torch.Tensor], torch.Tensor]


def linear_fn(module: torch.nn.Module) -> Fn:
    """``module(x)`` without nn.Module call overhead (a few microseconds, 200 times a step): the same kernel."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    if isinstance(module, DynamicQuantizedLinear) and module._packed_params.dtype == torch.qint8:
        packed = module._packed_params._packed_params
        reduce_range = not (module.version is None or module.version < 4)
        return lambda x: torch.ops.quantized.linear_dynamic(x, packed, reduce_range=reduce_range)
    if type(module) is torch.nn.Linear:
        weight, bias = module.weight, module.bias
        return lambda x: F.linear(x, weight, bias)
    return module


def _int8_packed(module: torch.nn.Module) -> torch.nn.Module | None:
    """The packed int8 weights of a dynamically quantised linear layer (per-channel qint8), or None."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    if not isinstance(module, DynamicQuantizedLinear) or module._packed_params.dtype != torch.qint8:
        return None
    weight, _ = module._packed_params._weight_bias()
    return module._packed_params if weight.qscheme() == torch.per_channel_affine else None


def fused_linear_fn(modules: list[torch.nn.Module]) -> Fn | None:
    """One call computing ``torch.cat([m(x) for m in modules], -1)`` for int8 layers that read the same input (the
    q, k and v projections), or None when they are not all per-channel int8 layers.

    Exact: the layers' int8 weights and per-channel scales are stacked as they are, and the input is quantised once
    with the parameters each layer computes from it anyway (they depend on the input only); every output channel
    is then an exact int32 sum and the same float epilogue as in its own layer's call (tested against stock).
    """
    packed = [_int8_packed(m) for m in modules]
    if any(p is None for p in packed):
        return None
    weights, biases = zip(*(p._weight_bias() for p in packed))
    if any(b is None for b in biases) and not all(b is None for b in biases):
        return None
    weight = torch._make_per_channel_quantized_tensor(
        torch.cat([w.int_repr() for w in weights]), torch.cat([w.q_per_channel_scales() for w in weights]),
        torch.cat([w.q_per_channel_zero_points() for w in weights]), axis=0)
    bias = None if biases[0] is None else torch.cat(biases)
    fused = torch.ops.quantized.linear_prepack(weight, bias)
    reduce_range = not (modules[0].version is None or modules[0].version < 4)
    return lambda x: torch.ops.quantized.linear_dynamic(x, fused, reduce_range=reduce_range)


def layer_norm_fn(module: torch.nn.LayerNorm) -> Fn:
    shape, weight, bias, eps = module.normalized_shape, module.weight, module.bias, module.eps
    return lambda x: F.layer_norm(x, shape, weight, bias, eps)


AnyMusicgen = MusicgenForConditionalGeneration | MusicgenMelodyForConditionalGeneration


def quantize_decoder_int8(model: AnyMusicgen) -> AnyMusicgen:
    """Swap the decoder's ``nn.Linear`` layers for int8 ones (per-channel weights, dynamic activations), in place,
    layer by layer so that loading from a checkpoint file peaks near the final footprint. CPU only."""
    quantize_int8_in_steps(model.decoder, list(model.decoder.model.decoder.layers), owner=model,
                           keep_float=[model.text_encoder, model.audio_encoder])
    return model
