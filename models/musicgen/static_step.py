"""The one-token decode step with no per-step shapes, replayed as a CUDA graph on a GPU.

Why: on a GPU the step is host-bound. Slicing each request's cache to its current length gave attention a new shape
every step, and cuDNN's attention built a new plan for each (1.3 ms of host time per call on an H200, bfloat16);
and the ~25 kernels a layer were launched one by one from Python (2 ms of kernels took 11-64 ms a step).

What: every request decoding on one loaded model keeps its self-attention cache in rows of one pool
([pool rows, heads, length, head_dim] per layer, allocated once, grown only when a longer piece or more rows come),
and MusicGen's cross-attention keys/values in rows of a second pool. A one-token step for all the requests at that
moment reads fixed buffers: the tokens and cache positions of every pool row, then attention over the whole pool
length with a mask (key position <= the row's position). Its shapes depend only on the number of pool rows the step
covers, rounded up to a bucket (``GRAPH_BUCKETS``), so on a GPU the step is captured once per bucket as a CUDA graph
and replayed: one launch a step, and requests that share the pass replay one graph together.

Exactness: positions past a row's own are masked (their weight is exactly 0), and text padding in the
cross-attention pool is masked with -inf, below the model's own mask value, so a request computes the same
arithmetic as the sliced step: the same tokens, tested on CPU (``tests/test_static_step.py``). Rows of several
requests go through each matrix product together; on a GPU a product's kernel may differ with the number of rows, so
a shared pass can round differently from a pass alone (measured by ``bench/gpu_bench.py``). Sampling stays per
request, outside the graph, with each request's own generator.

On CPU the fast loop keeps the sliced step by default (it reads only the rows' own length, and int8 layers quantise
their input over the rows of one call); ``FastMusicgen(model, static=True)`` runs this step eagerly there, which is
how the tests check it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from models.musicgen.decoding import Loop, Run

logger = logging.getLogger(__name__)

class GraphMismatch(RuntimeError):
    """A captured step whose logits disagree with the eager step's on the same inputs."""


# How far a captured step's logits may be from the eager step's, relative to their largest magnitude. The same kernels
# run in both, so they agree to the last bit in practice; the margin is for kernels that pick another algorithm
# under capture.
GRAPH_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 1e-2}

GRAPH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)  # pool rows one captured step covers (a request's rows: variants x 2 with guidance)
LENGTH_ROUND = 512  # the pool's cache length grows in these steps (30 s of MusicGen is 1504 positions)
TEXT_ROUND = 64  # the cross-attention pool's text length grows in these steps (tokens)


def bucket_for(rows: int) -> int:
    """The smallest graph bucket holding ``rows`` pool rows (beyond the largest: ``rows`` itself)."""
    return next((b for b in GRAPH_BUCKETS if b >= rows), rows)


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


class StepPool:
    """The fixed buffers of one loaded model's decode step, the requests' places in them, and the captured graphs.

    Used on the model thread only (the fast loop reserves, steps and releases there).

    Args:
        loop: the fast loop whose modules and weights the step runs.
        graphs: capture the step as a CUDA graph per bucket (CUDA only); False: run it eagerly (same shapes).
        drop_when_idle: ``free_if_idle`` frees the buffers and graphs when no request is decoding (ZeroGPU: the
            GPU exists only during a call, so nothing is kept between calls).
    """

    def __init__(self, loop: Loop, graphs: bool = False, drop_when_idle: bool = False) -> None:
        if graphs and loop.device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device.")
        self.loop = loop
        self.graphs_on = graphs
        self.drop_when_idle = drop_when_idle
        self.rows = 0  # pool rows allocated
        self.length = 0  # cache positions per row
        self.text = 0  # cross-attention positions per row (MusicGen; 0 for MusicGen-Melody)
        self.owners: list[Run | None] = []
        self.self_k: list[torch.Tensor] = []
        self.self_v: list[torch.Tensor] = []
        self.cross_k: list[torch.Tensor] = []
        self.cross_v: list[torch.Tensor] = []
        self.cross_mask: torch.Tensor | None = None  # [rows, 1, 1, text] additive
        self.ids: torch.Tensor | None = None  # [rows, K] the tokens each row embeds next
        self.pos: torch.Tensor | None = None  # [rows] the cache position each row writes next
        self.key_positions: torch.Tensor | None = None  # [length] 0, 1, 2...
        self.positions: torch.Tensor | None = None  # [length, d] the sinusoidal position table
        self.graphs: dict[int, tuple[Callable[[], None], torch.Tensor]] = {}  # bucket -> (replay, its logits)
        self.graph_failure: str | None = None  # why the graphs went off (a failed capture or self-check)
        self.captures = 0  # graphs captured so far (each pool growth drops them)
        self.capture_seconds = 0.0  # time spent capturing (warm-up step included)

    # ---------------------------------------------------------------------------------------------- places
    def reserve(self, run: Run, length: int, cross_kv: list[tuple[torch.Tensor, torch.Tensor]] | None,
                cross_mask: torch.Tensor | None) -> None:
        """Give ``run`` contiguous pool rows for ``length`` cache positions and its cross-attention keys/values
        ([rows, heads, S, head_dim] per layer, mask [rows, 1, 1, S]). Sets ``run.slots`` and makes ``run.self_k``,
        ``run.self_v``, ``run.cross_kv`` and ``run.cross_mask`` views into the pool (the block pass uses them as
        the sliced step does)."""
        text = 0 if cross_kv is None else cross_kv[0][0].shape[2]
        start = self._free_rows(run.rows)
        if start is None or length >= self.length or text > self.text:  # the last position is the parking one
            start = self._grow(run.rows, length, text)
        self.owners[start : start + run.rows] = [run] * run.rows
        run.slots = (start, start + run.rows)
        self._park(slice(*run.slots))
        if cross_kv is not None:
            rows = slice(*run.slots)
            for i, (k, v) in enumerate(cross_kv):
                self.cross_k[i][rows] = 0
                self.cross_v[i][rows] = 0
                self.cross_k[i][rows, :, :text] = k
                self.cross_v[i][rows, :, :text] = v
            self.cross_mask[rows] = -torch.inf  # padding: below the model's own mask value, weight exactly 0
            self.cross_mask[rows, :, :, :text] = cross_mask
        self._point(run)

    def release(self, run: Run) -> None:
        """Hand ``run``'s rows back (its cache is left as it is: a new owner overwrites each position before it
        reads it)."""
        if run.slots is None:
            return
        start, stop = run.slots
        if self.owners[start:stop] == [run] * (stop - start):
            self.owners[start:stop] = [None] * (stop - start)
            self._park(slice(start, stop))
            if self.cross_mask is not None:
                # an idle row all -inf would turn NaN and write NaN at the parking position; a later owner's
                # attention multiplies that masked position by 0, and 0 x NaN is NaN
                self.cross_mask[start:stop] = 0
        run.slots = None

    def free_if_idle(self) -> None:
        """With ``drop_when_idle``: free everything once no request holds rows (a ZeroGPU call ends). Called when a
        request ends, not after each of its windows, so a long piece captures its graphs once."""
        if self.drop_when_idle and self.rows and not any(self.owners):
            self.free()

    def free(self) -> None:
        """Drop every buffer and graph (no request may be decoding)."""
        failure = self.graph_failure
        self.__init__(self.loop, self.graphs_on, self.drop_when_idle)
        self.graph_failure = failure

    def _park(self, rows: slice) -> None:
        """Point ``rows`` at the parking position (the pool's last, never read by a request: each reads only up to
        its own position, which stays below it). A step covering rows that are not stepping (free ones in the
        bucket, a request still before its first pass) then writes there, never into a position a request uses."""
        self.pos[rows] = self.length - 1

    def _free_rows(self, rows: int) -> int | None:
        """The first start of ``rows`` free contiguous pool rows, or None."""
        run_start, run_len = 0, 0
        for i, owner in enumerate(self.owners):
            if owner is None:
                run_start, run_len = (run_start, run_len + 1) if run_len else (i, 1)
                if run_len == rows:
                    return run_start
            else:
                run_len = 0
        return None

    def _grow(self, rows: int, length: int, text: int) -> int:
        """Reallocate the pool with ``rows`` more rows past the last used one and room for ``length`` positions and
        ``text`` tokens; the rows in use are copied and their runs re-pointed; captured graphs are dropped. Returns
        the first of the new rows."""
        loop = self.loop
        used = max((i + 1 for i, owner in enumerate(self.owners) if owner is not None), default=0)
        new_rows = max(self.rows, bucket_for(used + rows))
        new_length = max(self.length, _round_up(length, LENGTH_ROUND))
        new_text = max(self.text, _round_up(text, TEXT_ROUND)) if text or self.text else 0
        heads, head_dim, device = loop.n_heads, loop.head_dim, loop.device

        def grown(old: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype, fill: float = 0.0
                  ) -> torch.Tensor:
            new = torch.full(shape, fill, dtype=dtype, device=device)
            if old is not None and old.numel():
                new[tuple(slice(0, n) for n in old.shape)] = old
            return new

        n_layers = len(loop.plan)
        cache = (new_rows, heads, new_length, head_dim)
        self.self_k = [grown(self.self_k[i] if self.self_k else None, cache, loop.kv_dtype) for i in range(n_layers)]
        self.self_v = [grown(self.self_v[i] if self.self_v else None, cache, loop.kv_dtype) for i in range(n_layers)]
        if new_text:
            cross = (new_rows, heads, new_text, head_dim)
            self.cross_k = [grown(self.cross_k[i] if self.cross_k else None, cross, loop.dtype)
                            for i in range(n_layers)]
            self.cross_v = [grown(self.cross_v[i] if self.cross_v else None, cross, loop.dtype)
                            for i in range(n_layers)]
            self.cross_mask = grown(self.cross_mask, (new_rows, 1, 1, new_text), loop.dtype, -torch.inf)
            for i, owner in enumerate(self.owners + [None] * (new_rows - self.rows)):
                if owner is None:
                    self.cross_mask[i] = 0  # idle rows stay finite (see release)
        self.ids = grown(self.ids, (new_rows, loop.n_codebooks), torch.long)
        self.pos = grown(self.pos, (new_rows,), torch.long)
        self.key_positions = torch.arange(new_length, device=device)
        embed_positions = loop.decoder.embed_positions
        if new_length > embed_positions.weights.shape[0]:  # the sinusoidal table, grown as stock grows it
            embed_positions.make_weights(new_length, embed_positions.embedding_dim)
        self.positions = embed_positions.weights[:new_length].to(device=device, dtype=loop.dtype)
        self.owners = self.owners + [None] * (new_rows - self.rows)
        self.rows, self.length, self.text = new_rows, new_length, new_text
        self.graphs.clear()
        for i, owner in enumerate(self.owners):
            if owner is None or owner.position == 0:  # free, or before its first pass: park at the new end
                self._park(slice(i, i + 1))
        for run in {id(o): o for o in self.owners if o is not None}.values():
            self._point(run)
        logger.info("Decode pool: %d rows x %d positions (text %d)", new_rows, new_length, new_text)
        return self._free_rows(rows)

    def _point(self, run: Run) -> None:
        """Make ``run``'s cache fields views of its pool rows."""
        rows = slice(*run.slots)
        run.self_k = [k[rows] for k in self.self_k]
        run.self_v = [v[rows] for v in self.self_v]
        if self.cross_k and run.cross_kv is not None:
            text = run.cross_kv[0][0].shape[2]
            run.cross_kv = [(k[rows, :, :text], v[rows, :, :text]) for k, v in zip(self.cross_k, self.cross_v)]
            run.cross_mask = self.cross_mask[rows, :, :, :text]

    # ---------------------------------------------------------------------------------------------- the step
    def step(self, runs: list[Run]) -> list[torch.Tensor]:
        """One one-token pass for ``runs`` together: their logits, each [rows, K, 1, V] (views of the step's
        output, valid until the next step)."""
        loop = self.loop
        for run in runs:
            start, stop = run.slots
            self.ids[start:stop] = loop.step_ids(run)[:, :, 0]
            run.begin = run.offset + run.position
            self.pos[start:stop] = run.begin
            if run.passes is not None:
                run.passes.total += 1
                run.passes.shared += len(runs) > 1
        used = max(run.slots[1] for run in runs)
        if self.graphs_on:
            logits = self._replay(bucket_for(used))
        else:
            logits = self._step(used)
        return [logits[slice(*run.slots)] for run in runs]

    def _step(self, n: int) -> torch.Tensor:
        """The step over pool rows ``[0, n)``: fixed shapes for a given ``n``, no host synchronisation (so it can be
        captured). Writes each row's key/value at its position, returns logits [n, K, 1, V]."""
        loop = self.loop
        ids, pos = self.ids[:n], self.pos[:n]
        hidden = sum(loop.decoder.embed_tokens[c](ids[:, c]) for c in range(loop.n_codebooks))
        hidden = (hidden + self.positions[pos])[:, None]  # [n, 1, d]
        mask = (self.key_positions[None, :] <= pos[:, None])[:, None, None]  # [n, 1, 1, length]
        index = pos.view(n, 1, 1, 1).expand(n, loop.n_heads, 1, loop.head_dim)
        for i, (ln1, qkv_fn, o_fn, ln2, cq_fn, co_fn, ln3, fc1, act, fc2) in enumerate(loop.plan):
            q, k, v = qkv_fn(ln1(hidden))  # [n, 1, H, D] each
            self_k, self_v = self.self_k[i][:n], self.self_v[i][:n]
            self_k.scatter_(2, index, k.transpose(1, 2).to(loop.kv_dtype))
            self_v.scatter_(2, index, v.transpose(1, 2).to(loop.kv_dtype))
            out = F.scaled_dot_product_attention(q.transpose(1, 2).to(loop.kv_dtype), self_k, self_v,
                                                 attn_mask=mask).to(hidden.dtype)
            hidden = hidden + o_fn(out.transpose(1, 2).reshape(n, 1, -1))
            if ln2 is not None:  # cross-attention (MusicGen)
                q = cq_fn(ln2(hidden)).view(n, 1, loop.n_heads, loop.head_dim).transpose(1, 2)
                out = F.scaled_dot_product_attention(q, self.cross_k[i][:n], self.cross_v[i][:n],
                                                     attn_mask=self.cross_mask[:n])
                hidden = hidden + co_fn(out.transpose(1, 2).reshape(n, 1, -1))
            hidden = hidden + fc2(act(fc1(ln3(hidden))))
        return loop.logits(hidden)

    def _replay(self, n: int) -> torch.Tensor:
        """The step over ``n`` pool rows as a CUDA graph, captured on first use of the bucket and checked then
        against the eager step on the same inputs (``_capture``); where the capture fails or disagrees, this model's
        step runs eagerly from then on (``graphs_on`` off), and the log says why once."""
        n = min(n, self.rows)
        if n not in self.graphs:
            eager = self._warm_up(n)  # the eager step, as the replay will compute it: its logits are this step's
            try:
                replay, out = self._capture(n)
                replay()
                self._check_agreement(out, eager, n)
            except Exception as e:  # noqa: BLE001 - any failure of the graph path: the eager step is exact
                self.graphs.clear()
                self.graphs_on = False
                self.graph_failure = f"{type(e).__name__}: {e}"
                logger.warning("CUDA graphs off for this model: the captured decode step for %d rows %s; every "
                               "step runs eagerly now (same results, slower)", n,
                               "disagreed with the eager step" if isinstance(e, GraphMismatch) else
                               f"could not be captured ({self.graph_failure})")
                return eager
            self.graphs[n] = (replay, out)
            return out
        replay, out = self.graphs[n]
        replay()
        return out

    def _warm_up(self, n: int) -> torch.Tensor:
        """The eager step over ``n`` rows on a side stream before a capture (library handles, workspaces): it writes
        the same keys/values at the same positions as the replay that follows. Returns its logits (a copy)."""
        torch.cuda.synchronize()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            logits = self._step(n).clone()
        torch.cuda.current_stream().wait_stream(side)
        return logits

    def _capture(self, n: int) -> tuple[Callable[[], None], torch.Tensor]:
        """Capture the step over ``n`` rows as a CUDA graph: (its replay, the logits buffer it writes)."""
        began = time.perf_counter()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self._step(n)
        torch.cuda.synchronize()
        self.captures += 1
        self.capture_seconds += time.perf_counter() - began
        logger.info("Captured the decode step for %d rows in %.3f s", n, time.perf_counter() - began)
        return graph.replay, out

    @staticmethod
    def _check_agreement(graph_logits: torch.Tensor, eager_logits: torch.Tensor, n: int) -> None:
        """The self-check of a new graph: its logits against the eager step's on the same inputs.

        Raises:
            GraphMismatch: not finite where the eager ones are, or further apart than the dtype's rounding allows.
        """
        dtype = eager_logits.dtype  # the tolerance is the dtype the step computed in, read before the cast
        tolerance = GRAPH_TOLERANCE.get(dtype, GRAPH_TOLERANCE[torch.float32])
        graph_logits, eager_logits = graph_logits.float(), eager_logits.float()
        if bool(torch.isfinite(graph_logits).ne(torch.isfinite(eager_logits)).any()):
            raise GraphMismatch(f"the graph for {n} rows gave non-finite logits where the eager step did not")
        finite = torch.isfinite(eager_logits)
        gap = float((graph_logits - eager_logits).abs()[finite].max()) if bool(finite.any()) else 0.0
        scale = max(1.0, float(eager_logits[finite].abs().max())) if bool(finite.any()) else 1.0
        if gap > tolerance * scale:
            raise GraphMismatch(f"the graph for {n} rows differs from the eager step by {gap:.3g} (scale {scale:.3g})")
