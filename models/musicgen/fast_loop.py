"""A lean decode loop for MusicGen and MusicGen-Melody, computing exactly what ``generate`` computes.

Stock ``MusicgenForConditionalGeneration.generate`` spends much of each step outside the matrix products:
it grows every layer's key/value cache with ``torch.cat`` (copying the whole cache each step: O(T^2) over a
30 s piece), recomputes masks, and runs generic generation machinery. This loop keeps the model's own modules
and weights (fp32, bf16 or int8 alike) and changes only the bookkeeping:
- a static key/value cache, allocated once and written in place;
- the conditioning computed once: cross-attention keys/values from the text encoder's output (MusicGen), or the
  prefix of projected chroma + text states that MusicGen-Melody puts before the audio tokens, run through the
  decoder in the first pass together with any audio prompt;
- classifier-free guidance in one batched pass (conditional and unconditional rows together), as stock does;
- the same logits processing (guidance, temperature, top-k, top-p, in that order) and the same delay pattern.
With greedy decoding it yields the same tokens as stock ``generate`` on the same weights (tested); with
sampling and a seed it is reproducible.

On CPU the fast path also replaces the decoder's linear layers by int8 dynamically quantised ones
(``layers.quantize_decoder_int8``): weights are read once per step, so a quarter of the bytes of float32.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import (
    MusicgenForConditionalGeneration,
    MusicgenMelodyForConditionalGeneration,
)
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from models.devices import env_flag
from models.musicgen.codec import codebook_delays, undelay
from models.musicgen.decoding import PassCount, Run, ScoresHook, StepCallback
from models.musicgen.rounds import Decoding
from models.musicgen.layers import AnyMusicgen, fused_linear_fn, layer_norm_fn, linear_fn
from models.musicgen.static_step import StepPool
from models.runtime import ModelThread

CUDA_GRAPHS_ENV_VAR = "MUSICGEN_CUDA_GRAPHS"  # "0"/"off": the static step runs eagerly on CUDA

def supports_fast_path(model: torch.nn.Module) -> bool:
    """The loop covers MusicGen and MusicGen-Melody, mono and stereo."""
    return isinstance(model, (MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration))


def sampling_processors(do_sample: bool, temperature: float, top_k: int, top_p: float) -> LogitsProcessorList:
    """The warpers stock ``generate`` applies after guidance, in its order."""
    processors = LogitsProcessorList()
    if do_sample:
        if temperature is not None and temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if top_k is not None and top_k != 0:
            processors.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
        if top_p is not None and top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
    return processors


class FastMusicgen:
    """Decode loop over a loaded MusicGen or MusicGen-Melody model (its modules are used as they are)."""

    def __init__(self, model: AnyMusicgen, kv_dtype: torch.dtype | None = None, static: bool | None = None,
                 graphs: bool | None = None, drop_when_idle: bool = False) -> None:
        """Args:
            kv_dtype: the self-attention key/value cache's dtype; None = the model's (exact, as stock). A
                narrower one (bfloat16 under float32 weights) halves the bytes attention reads each step: an
                approximation, measured in docs/performance-history.md.
            static: one-token steps over fixed buffers with a mask (``static_step.StepPool``) instead of each
                request's cache sliced to its length; None: on CUDA only (the same tokens; see that module).
            graphs: replay the static step as CUDA graphs; None: on CUDA unless ``$MUSICGEN_CUDA_GRAPHS`` is off.
            drop_when_idle: free the static step's buffers and graphs when no request is decoding (ZeroGPU).
        """
        if not supports_fast_path(model):
            raise TypeError(f"The fast path covers MusicGen and MusicGen-Melody, not {type(model).__name__}.")
        self.model = model
        self.prefix = isinstance(model, MusicgenMelodyForConditionalGeneration)  # conditioning as a prefix
        self.decoder = model.decoder.model.decoder  # MusicgenDecoder: embeddings, layers, final norm
        self.lm_heads = model.decoder.lm_heads
        config = model.config.decoder
        self.n_codebooks = config.num_codebooks
        self.audio_channels = config.audio_channels
        self.n_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.plan = [
            (
                layer_norm_fn(layer.self_attn_layer_norm),
                self._qkv_fn(layer.self_attn),
                linear_fn(layer.self_attn.out_proj),
                None if self.prefix else layer_norm_fn(layer.encoder_attn_layer_norm),
                None if self.prefix else linear_fn(layer.encoder_attn.q_proj),
                None if self.prefix else linear_fn(layer.encoder_attn.out_proj),
                layer_norm_fn(layer.final_layer_norm),
                linear_fn(layer.fc1),
                layer.activation_fn,
                linear_fn(layer.fc2),
            )
            for layer in self.decoder.layers
        ]
        self.heads_fns = [linear_fn(head) for head in self.lm_heads]
        self.final_norm = layer_norm_fn(self.decoder.layer_norm)
        self.kv_dtype = kv_dtype or self.dtype
        cuda = self.device.type == "cuda"
        static = cuda if static is None else static
        graphs = static and cuda and env_flag(CUDA_GRAPHS_ENV_VAR) if graphs is None else graphs
        self.pool = StepPool(self, graphs=graphs, drop_when_idle=drop_when_idle) if static else None

    def _qkv_fn(self, attention: torch.nn.Module) -> Callable[[torch.Tensor], tuple[torch.Tensor, ...]]:
        """x [rows, S, d] -> q, k, v [rows, S, heads, head_dim]: int8 layers in one call (``fused_linear_fn``),
        others one by one."""
        fused = fused_linear_fn([attention.q_proj, attention.k_proj, attention.v_proj])
        if fused is not None:
            return lambda x: fused(x).view(x.shape[0], x.shape[1], 3, self.n_heads, self.head_dim).unbind(2)
        q_fn, k_fn, v_fn = (linear_fn(m) for m in (attention.q_proj, attention.k_proj, attention.v_proj))

        def separate(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            heads = (x.shape[0], x.shape[1], self.n_heads, self.head_dim)
            return q_fn(x).view(heads), k_fn(x).view(heads), v_fn(x).view(heads)

        return separate

    @property
    def device(self) -> torch.device:
        return self.decoder.layer_norm.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.layer_norm.weight.dtype

    def _encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, guidance_scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text encoder output [B', S, d] (unconditional zero rows appended under guidance) and its mask [B', S]."""
        model = self.model
        hidden = model.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = hidden.to(self.dtype)  # T5 may run in float32 under a narrower decoder (checkpoints.FLOAT32_PARTS)
        if guidance_scale is not None and guidance_scale > 1:
            hidden = torch.cat([hidden, torch.zeros_like(hidden)], dim=0)
            attention_mask = torch.cat([attention_mask, torch.zeros_like(attention_mask)], dim=0)
        if (
            model.text_encoder.config.hidden_size != model.decoder.config.hidden_size
            and model.decoder.config.cross_attention_hidden_size is None
        ):
            hidden = model.enc_to_dec_proj(hidden)
        hidden = hidden * attention_mask[..., None]
        return hidden.to(self.dtype), attention_mask

    def _prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, guidance_scale: float,
                input_features: torch.Tensor | None) -> torch.Tensor:
        """MusicGen-Melody's conditioning prefix [B', chroma_length + S, d]: the projected chroma (repeated or cut to
        ``chroma_length`` frames), then the masked text states; unconditional rows (a one-hot "no chroma" and zero
        text) appended under guidance. The same steps, in the same order, as stock ``generate``."""
        model = self.model
        guided = guidance_scale is not None and guidance_scale > 1
        text = model.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        text = text.to(self.dtype)  # T5 may run in float32 under a narrower decoder
        if model.text_encoder.config.hidden_size != model.decoder.config.hidden_size:
            text = model.enc_to_dec_proj(text)
        if guided:
            text = torch.cat([text, torch.zeros_like(text)], dim=0)
            attention_mask = torch.cat([attention_mask, torch.zeros_like(attention_mask)], dim=0)
        text = text * attention_mask[..., None]

        if input_features is not None:
            null = torch.zeros_like(input_features)
        else:
            null = torch.zeros((input_ids.shape[0], 1, model.config.num_chroma), device=self.device, dtype=self.dtype)
        null[:, :, 0] = 1
        chroma = input_features if input_features is not None else null
        if guided:
            chroma = torch.cat([chroma, null], dim=0)
        if model.config.num_chroma != model.decoder.config.hidden_size:
            chroma = model.audio_enc_to_dec_proj(chroma)
        length = model.config.chroma_length
        if chroma.shape[1] < length:
            chroma = chroma.repeat(1, int(math.ceil(length / chroma.shape[1])), 1)
        return torch.cat([chroma[:, :length], text], dim=1).to(self.dtype)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, S, d] -> [B, H, S, D]."""
        return x.view(x.shape[0], -1, self.n_heads, self.head_dim).transpose(1, 2)

    def layers(self, runs: list[Run], hidden: torch.Tensor) -> torch.Tensor:
        """Run the decoder layers over ``hidden`` [rows of every run, S, d], each run at its own positions
        ``run.begin..run.begin+S-1``, writing each run's key/value cache in place; S > 1 only for a run's first pass
        (causal attention within the block), which runs alone.

        Several runs share a pass row-wise only where the arithmetic of a row cannot depend on its neighbours
        (layer norms, residual additions); every matrix product and attention is done run by run, so a run computes
        exactly what it computes alone (int8 layers quantise their input over the rows of one call)."""
        sizes = [run.rows for run in runs]
        length = hidden.shape[1]
        for run in runs:
            if run.passes is not None:
                run.passes.total += 1
                run.passes.shared += len(runs) > 1

        def each(fn: Callable[[Run, torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            if len(runs) == 1:
                return fn(runs[0], x)
            return torch.cat([fn(run, part) for run, part in zip(runs, x.split(sizes))])

        for i, (ln1, qkv_fn, o_fn, ln2, cq_fn, co_fn, ln3, fc1, act, fc2) in enumerate(self.plan):

            def self_attention(run: Run, x: torch.Tensor) -> torch.Tensor:
                end = run.begin + length
                q, k, v = qkv_fn(x)
                run.self_k[i][:, :, run.begin : end] = k.transpose(1, 2)
                run.self_v[i][:, :, run.begin : end] = v.transpose(1, 2)
                q = q.transpose(1, 2)
                out = F.scaled_dot_product_attention(q.to(self.kv_dtype), run.self_k[i][:, :, :end],
                                                     run.self_v[i][:, :, :end], is_causal=length > 1).to(x.dtype)
                return o_fn(out.transpose(1, 2).reshape(run.rows, length, -1))

            def cross_attention(run: Run, x: torch.Tensor) -> torch.Tensor:
                q = cq_fn(x).view(run.rows, length, self.n_heads, self.head_dim).transpose(1, 2)
                out = F.scaled_dot_product_attention(q, *run.cross_kv[i], attn_mask=run.cross_mask)
                return co_fn(out.transpose(1, 2).reshape(run.rows, length, -1))

            hidden = hidden + each(self_attention, ln1(hidden))
            if ln2 is not None:  # cross-attention (MusicGen; MusicGen-Melody has none)
                hidden = hidden + each(cross_attention, ln2(hidden))
            hidden = hidden + each(lambda run, x: fc2(act(fc1(x))), ln3(hidden))
        return hidden

    def _start(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_new_tokens: int,
        do_sample: bool,
        temperature: float,
        top_k: int,
        top_p: float,
        guidance_scale: float,
        prompt_codes: torch.Tensor | None,
        input_features: torch.Tensor | None,
        generator: torch.Generator | None,
        passes: PassCount | None = None,
    ) -> Run:
        """A request's decoding state: its conditioning, key/value cache and tokens (start token and prompt)."""
        model = self.model
        config = model.generation_config
        start = int(config.decoder_start_token_id)
        batch = input_ids.shape[0]
        k = self.n_codebooks
        guided = guidance_scale is not None and guidance_scale > 1

        first = torch.full((batch * k, 1), start, dtype=torch.long, device=self.device)
        if prompt_codes is not None:
            first = torch.cat([first, prompt_codes.reshape(batch * k, -1).to(self.device)], dim=1)
        total = first.shape[1] + max_new_tokens  # stock's max_length: the prompt, then one token per step
        first, pattern = model.decoder.build_delay_pattern_mask(first, pad_token_id=start, max_length=total)
        known = first.shape[1]  # positions fixed before sampling starts (start token and prompt)

        prefix, cross_kv, cross_mask = None, None, None
        if self.prefix:
            prefix = self._prefix(input_ids, attention_mask, guidance_scale, input_features)
        else:
            if input_features is not None:
                raise ValueError("A text-only MusicGen takes no melody (input_features); use a MusicGen-Melody model.")
            encoder_hidden, encoder_mask = self._encode(input_ids, attention_mask, guidance_scale)
            min_value = torch.finfo(self.dtype).min
            cross_mask = ((1.0 - encoder_mask[:, None, None, :].to(self.dtype)) * min_value).to(self.dtype)
            cross_kv = [
                (self._heads(layer.encoder_attn.k_proj(encoder_hidden)),
                 self._heads(layer.encoder_attn.v_proj(encoder_hidden)))
                for layer in self.decoder.layers
            ]
        offset = 0 if prefix is None else prefix.shape[1]  # the prefix takes the first positions
        rows = 2 * batch if guided else batch
        cache_shape = (rows, self.n_heads, offset + total, self.head_dim)
        embed_positions = self.decoder.embed_positions
        if offset + total > embed_positions.weights.shape[0]:  # as stock: grow the sinusoidal table when needed
            embed_positions.make_weights(offset + total, embed_positions.embedding_dim)
        tokens = torch.full((batch * k, total), int(config.pad_token_id), dtype=torch.long, device=self.device)
        tokens[:, :known] = first
        def own_cache() -> list[torch.Tensor]:  # the sliced step's; the static step's lives in the pool's rows
            if self.pool is not None:
                return []
            return [torch.zeros(cache_shape, dtype=self.kv_dtype, device=self.device) for _ in self.decoder.layers]

        run = Run(
            batch=batch, guidance_scale=guidance_scale if guided else None, do_sample=do_sample,
            processors=sampling_processors(do_sample, temperature, top_k, top_p), generator=generator,
            tokens=tokens, pattern=pattern, known=known, total=total, done=known - 1, offset=offset,
            prefix=prefix, cross_kv=cross_kv, cross_mask=cross_mask, self_k=own_cache(), self_v=own_cache(),
            positions=embed_positions.weights.to(self.dtype), passes=passes,
        )
        if self.pool is not None:
            self.pool.reserve(run, offset + total, cross_kv, cross_mask)
        return run

    def let_go(self) -> None:
        """A request ended: with ``drop_when_idle`` (ZeroGPU), free the static step's buffers and graphs when no
        other request is decoding."""
        if self.pool is not None:
            self.pool.free_if_idle()

    def release(self, run: Run) -> None:
        """Hand back ``run``'s rows of the static step's pool (nothing to do for the sliced step)."""
        if self.pool is not None:
            self.pool.release(run)

    @staticmethod
    def block_pass(run: Run) -> bool:
        """Whether ``run``'s next pass is its first one over several positions (an audio prompt, or
        MusicGen-Melody's conditioning prefix): it runs alone, through ``layers``."""
        return run.done > run.position or (run.position == 0 and run.prefix is not None)

    def step_ids(self, run: Run) -> torch.Tensor:
        """The codes ``run``'s next pass embeds [rows, K, S] (the delay pattern applied; guidance rows repeated)."""
        span = slice(run.position, run.done + 1)
        step_ids = torch.where(run.pattern[:, span] == -1, run.tokens[:, span], run.pattern[:, span])
        if run.guidance_scale is not None:
            step_ids = step_ids.repeat(2, 1)
        return step_ids.view(run.rows, self.n_codebooks, -1)

    def inputs(self, run: Run) -> torch.Tensor:
        """The decoder's input for ``run``'s next pass [rows, S, d]: the prompt (and prefix) in one pass at first,
        then the newest token; sets ``run.begin``, the pass's first position."""
        codes = self.step_ids(run)
        hidden = sum(self.decoder.embed_tokens[c](codes[:, c]) for c in range(self.n_codebooks))
        first_pass = run.position == 0
        if first_pass and run.prefix is not None:
            hidden = torch.cat([run.prefix, hidden], dim=1)
        run.begin = 0 if first_pass else run.offset + run.position
        return hidden + run.positions[run.begin : run.offset + run.done + 1]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The heads' logits [rows, K, 1, V] at the last position of a pass's output [rows, S, d]."""
        hidden = self.final_norm(hidden[:, -1:])
        return torch.stack([head(hidden) for head in self.heads_fns], dim=1)

    def next_tokens(self, run: Run, hidden: torch.Tensor, on_scores: ScoresHook | None) -> None:
        """Pick ``run``'s next tokens from its pass's output [rows, S, d] (guidance, warpers, sampling)."""
        self.pick(run, self.logits(hidden), on_scores)

    def pick(self, run: Run, logits: torch.Tensor, on_scores: ScoresHook | None) -> None:
        """Pick ``run``'s next tokens from its logits [rows, K, 1, V] (guidance, warpers, sampling)."""
        k = self.n_codebooks
        scores = logits.reshape(run.rows * k, -1).float()
        if run.guidance_scale is not None:
            cond, uncond = scores.split(run.batch * k, dim=0)
            scores = uncond + (cond - uncond) * run.guidance_scale
        scores = run.processors(run.tokens[:, : run.done + 1], scores)
        if run.do_sample:
            probs = F.softmax(scores, dim=-1)
            next_tokens = torch.multinomial(probs, num_samples=1, generator=run.generator).squeeze(1)
        else:
            next_tokens = torch.argmax(scores, dim=-1)
        if on_scores is not None:
            forced = on_scores(run.done - run.known + 2, scores)
            next_tokens = next_tokens if forced is None else forced
        run.position = run.done + 1
        run.done += 1
        run.tokens[:, run.done] = next_tokens

    def codes(self, run: Run) -> torch.Tensor:
        """[B, K, frames] the frames of ``run`` complete in every codebook so far (the prompt's included)."""
        tokens = self.model.decoder.apply_delay_pattern_mask(run.tokens[:, : run.done + 1],
                                                             run.pattern[:, : run.done + 1])
        return undelay(tokens.view(run.batch, self.n_codebooks, -1), codebook_delays(self.model.config.decoder))

    @torch.inference_mode()
    def generate_codes(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_new_tokens: int,
        do_sample: bool = True,
        temperature: float = 1.0,
        top_k: int = 250,
        top_p: float = 1.0,
        guidance_scale: float = 3.0,
        on_step: StepCallback | None = None,
        prompt_codes: torch.Tensor | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_frames: Callable[[torch.Tensor], None] | None = None,
        frames_every: int = 50,
        input_features: torch.Tensor | None = None,
        on_scores: ScoresHook | None = None,
        generator: torch.Generator | None = None,
        joint: ModelThread | None = None,
        passes: PassCount | None = None,
    ) -> torch.Tensor:
        """Audio codes [B, K, frames] for a batch of tokenised prompts (the same codes stock ``generate`` makes).

        Args:
            prompt_codes: [B, K, P] codes to continue (an audio prompt, or the previous window of a long piece);
                the result starts with them, as stock ``generate`` given ``decoder_input_ids`` does. The prompt goes
                through the decoder in one pass, as in stock.
            should_stop: polled after every step; when it returns True the loop ends early and the frames that
                are complete in every codebook so far are returned (fewer than asked for).
            on_frames: called with the codes [B, K, frames] complete so far (the prompt's included) each time
                ``frames_every`` more frames are complete in every codebook (for streaming).
            input_features: MusicGen-Melody only: the melody's chroma [B, frames, 12] in the model's dtype (None:
                no melody, as stock).
            on_scores: for measurements: called each step with (step, the processed scores [B*K, V]); a tensor it
                returns [B*K] replaces the sampled tokens (teacher forcing).
            generator: the random numbers for sampling (None: torch's global generator, as stock ``generate``).
                Give each request its own when several run at once, so that a seed reproduces.
            joint: the model thread (``models.runtime.model_thread()``): the request's work and callbacks run there,
                and its steps share each pass with the other requests decoding on this model at that moment.
                In float32 (the CPU, tests/test_musicgen.py; a GPU, tests/test_gpu.py) every request gets exactly
                the tokens it gets alone; in bfloat16 or float16 on a GPU a shared matrix product may round a row
                differently than alone (bench/gpu_bench.py measures how often a token changes).
            passes: counts the decoder passes of this request, and those it shared with other requests.
        """
        guided = guidance_scale is not None and guidance_scale > 1
        seat = joint.seat(input_ids.shape[0] * (2 if guided else 1)) if joint is not None else contextlib.nullcontext()
        with seat:
            start = (self._start if joint is None else functools.partial(joint.call, self._start))
            run = start(input_ids, attention_mask, max_new_tokens, do_sample, temperature, top_k, top_p,
                        guidance_scale, prompt_codes, input_features, generator, passes)
            decoding = Decoding(self, run, on_scores, on_step, on_frames, frames_every, should_stop,
                                 finished=run.done + 1 >= run.total)
            try:
                if joint is not None:
                    decoding.context = contextvars.copy_context()
                    joint.run(decoding)
                else:
                    while not decoding.finished:
                        Decoding.advance([decoding])
                        if decoding.error is not None:
                            raise decoding.error
            finally:
                if joint is not None:
                    joint.call(self.release, run)
                else:
                    self.release(run)
        return self.codes(run)
