"""A lean greedy decode loop for Pop2Piano, computing exactly what ``generate`` computes.

Stock ``generate`` grows each decoder layer's key/value cache with ``torch.cat``: with all of a song's chunks in
one batch (84 for 3.5 minutes) that copies hundreds of megabytes per step by the 256th token. This loop uses the
model's own modules and weights (float32 or int8 alike) with a static cache written in place, the same
relative position bias and the same end-of-sequence handling; greedy decoding gives the same tokens (tested).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import Pop2PianoForConditionalGeneration

StepCallback = Callable[[int], None]  # called with the number of steps done; may raise to stop


class FastPop2Piano:
    """Greedy decoding over a loaded ``Pop2PianoForConditionalGeneration``."""

    def __init__(self, model: Pop2PianoForConditionalGeneration, static: bool | None = None) -> None:
        """``static``: every step attends over the whole cache with a mask built once (fixed shapes, so no attention
        kernel plans anew per step), instead of the cache sliced to the step's length; None: on CUDA only. The same
        tokens either way (tested)."""
        self.model = model
        self.static = model.device.type == "cuda" if static is None else static
        self.decoder = model.decoder  # Pop2PianoStack
        config = model.config
        self.n_heads = config.num_heads
        self.head_dim = config.d_kv

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, S, H*D] -> [B, H, S, D]."""
        return x.view(x.shape[0], -1, self.n_heads, self.head_dim).transpose(1, 2)

    @torch.inference_mode()
    def generate(
        self, input_features: torch.Tensor, composer: str, max_length: int, on_step: StepCallback | None = None
    ) -> torch.Tensor:
        """Token ids [B, L <= max_length] (start token first) for chunks of features [B, frames, d_model]."""
        model = self.model
        config = model.generation_config
        start, pad, eos = int(config.decoder_start_token_id), int(config.pad_token_id), int(config.eos_token_id)
        embeds, _ = model.get_mel_conditioner_outputs(
            input_features=input_features, composer=composer, generation_config=config, attention_mask=None
        )
        encoded = model.encoder(inputs_embeds=embeds).last_hidden_state
        batch, device, dtype = embeds.shape[0], embeds.device, encoded.dtype

        blocks = self.decoder.block
        cross_kv = [
            (self._heads(b.layer[1].EncDecAttention.k(encoded)), self._heads(b.layer[1].EncDecAttention.v(encoded)))
            for b in blocks
        ]
        cross_bias = torch.zeros((1, self.n_heads, 1, encoded.shape[1]), device=device, dtype=dtype)
        shape = (batch, self.n_heads, max_length, self.head_dim)
        self_k = [torch.zeros(shape, device=device, dtype=dtype) for _ in blocks]
        self_v = [torch.zeros(shape, device=device, dtype=dtype) for _ in blocks]
        bias_maker = blocks[0].layer[0].SelfAttention

        if self.static:  # relative position bias of every (query, key) pair, keys after the query at -inf
            table = bias_maker.compute_bias(max_length, max_length, device=device, past_seen_tokens=0)
            future = torch.ones(max_length, max_length, dtype=torch.bool, device=device).triu(1)
            table = table.masked_fill(future, -torch.inf).to(dtype)
        tokens = torch.full((batch, max_length), pad, dtype=torch.long, device=device)
        tokens[:, 0] = start
        unfinished = torch.ones(batch, dtype=torch.long, device=device)
        length = 1
        for t in range(max_length - 1):
            hidden = self.decoder.embed_tokens(tokens[:, t : t + 1])
            if self.static:
                keys, position_bias = max_length, table[:, :, t : t + 1]
            else:
                keys = t + 1
                position_bias = bias_maker.compute_bias(1, t + 1, device=device, past_seen_tokens=t)
            for i, block in enumerate(blocks):
                layer = block.layer[0]
                x = layer.layer_norm(hidden)
                attn = layer.SelfAttention
                self_k[i][:, :, t : t + 1] = self._heads(attn.k(x))
                self_v[i][:, :, t : t + 1] = self._heads(attn.v(x))
                out = F.scaled_dot_product_attention(
                    self._heads(attn.q(x)), self_k[i][:, :, :keys], self_v[i][:, :, :keys],
                    attn_mask=position_bias, scale=1.0,
                )
                hidden = hidden + attn.o(out.transpose(1, 2).reshape(batch, 1, -1))

                layer = block.layer[1]
                cross = layer.EncDecAttention
                out = F.scaled_dot_product_attention(
                    self._heads(cross.q(layer.layer_norm(hidden))), *cross_kv[i], attn_mask=cross_bias, scale=1.0
                )
                hidden = hidden + cross.o(out.transpose(1, 2).reshape(batch, 1, -1))
                hidden = block.layer[2](hidden)
            hidden = self.decoder.final_layer_norm(hidden)
            if model.config.scale_decoder_outputs:
                hidden = hidden * (model.model_dim**-0.5)
            scores = model.lm_head(hidden)[:, -1].to(torch.float32)
            next_tokens = torch.argmax(scores, dim=-1)
            next_tokens = next_tokens * unfinished + pad * (1 - unfinished)
            tokens[:, t + 1] = next_tokens
            length = t + 2
            unfinished = unfinished & (next_tokens != eos).long()
            if on_step is not None:
                on_step(t + 1)
            if int(unfinished.max()) == 0:
                break
        return tokens[:, :length]
