"""The static decode step (fixed buffers, a mask instead of a cache sliced to each length: what a GPU replays as a
CUDA graph) gives exactly the tokens of the sliced step, alone and sharing passes; its shapes never change from one
step to the next; rows change hands without one request's cache reaching another's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer

from models.musicgen.decoding import PassCount
from models.musicgen.fast_loop import FastMusicgen
from models.musicgen.rounds import Decoding
from models.musicgen import static_step
from models.musicgen.static_step import GRAPH_BUCKETS, StepPool, bucket_for
from tests.test_fast_musicgen import chroma_features, load, load_melody
from tests.test_model_thread import check_shared_equals_alone, decode, request


def both_steps(model, req: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The request's codes from the sliced step (today's CPU path) and from the static step."""
    sliced = FastMusicgen(model, static=False)
    static = FastMusicgen(model, static=True)
    assert sliced.pool is None and static.pool is not None and not static.pool.graphs_on
    return decode(sliced, req, None), decode(static, req, None)


@pytest.mark.parametrize("weights", ["fp32", "int8"])
@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
@pytest.mark.parametrize("seed", [None, 7], ids=["greedy", "seeded"])
def test_static_step_gives_the_sliced_steps_tokens(tiny_musicgen_dir, tiny_musicgen_stereo_dir, weights, stereo,
                                                   seed):
    folder = tiny_musicgen_stereo_dir if stereo else tiny_musicgen_dir
    model, _ = load(folder, weights)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    req = request(tokenizer, "lo fi hip hop warm piano", variants=2, steps=60, seed=seed)
    sliced, static = both_steps(model, req)
    assert static.shape == (2, 8 if stereo else 4, 60 - 3)
    assert torch.equal(sliced, static)
    # the comparison can fail: another seed (or greedy against sampled) gives other tokens
    other = request(tokenizer, "lo fi hip hop warm piano", variants=2, steps=60, seed=99)
    assert not torch.equal(decode(FastMusicgen(model, static=True), other, None), static)


@pytest.mark.parametrize("weights", ["fp32", "int8"])
@pytest.mark.parametrize("chroma", ["melody", "none"])
def test_static_step_melody_and_audio_prompt(tiny_melody_dir, tiny_musicgen_dir, weights, chroma):
    """MusicGen-Melody's prefix, and a MusicGen audio prompt, go through the block pass into the pool's rows."""
    model, _ = load_melody(tiny_melody_dir, weights)
    tokenizer = AutoTokenizer.from_pretrained(tiny_melody_dir)
    features = chroma_features(37, batch=1) if chroma == "melody" else None
    req = request(tokenizer, "sad jazz", steps=40, seed=3, features=features)
    sliced, static = both_steps(model, req)
    assert torch.equal(sliced, static)

    model, _ = load(tiny_musicgen_dir, weights)
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    clip = torch.randint(0, 2048, (1, 4, 9), generator=torch.Generator().manual_seed(1))
    req = request(tokenizer, "epic drums", steps=35, seed=None, prompt_codes=clip)
    sliced, static = both_steps(model, req)
    assert torch.equal(sliced, static) and static.shape[-1] == 9 + 35 - 3


def test_static_step_shapes_never_change(tiny_musicgen_dir, monkeypatch):
    """Every one-token step hands attention the same shapes (what a CUDA graph and a cached attention plan need),
    where the sliced step's key length grows by one each step."""
    model, _ = load(tiny_musicgen_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    req = request(tokenizer, "lo fi hip hop", steps=30, seed=1)
    seen: list[tuple] = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        mask = kwargs.get("attn_mask")
        seen.append((tuple(q.shape), tuple(k.shape), None if mask is None else tuple(mask.shape)))
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(static_step, "F", SimpleNamespace(scaled_dot_product_attention=spy))
    loop = FastMusicgen(model, static=True)
    decode(loop, req, None)
    assert len(seen) == 30 * 2 * 2  # every step (no prompt: the first is one token too) x layers x (self + cross)
    assert len(set(seen)) == 2, set(seen)  # one shape for self-attention, one for cross-attention
    self_shape = seen[0]
    assert self_shape[1][2] == loop.pool.length >= 30  # the whole pool length, masked


def test_requests_sharing_the_static_step_get_their_own_tokens(tiny_musicgen_dir):
    """On the model thread, requests of different lengths, variants, guidance and a stop share static passes; each
    gets exactly what it gets alone (float32: a shared product rounds each row as alone on this CPU)."""
    model, _ = load(tiny_musicgen_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    loop = FastMusicgen(model, static=True)
    clip = torch.randint(0, 2048, (1, 4, 9), generator=torch.Generator().manual_seed(1))
    requests = [
        request(tokenizer, "lo fi hip hop warm piano", steps=40, seed=1),
        request(tokenizer, "sad jazz", variants=2, steps=30, seed=2),
        request(tokenizer, "epic drums", steps=35, seed=None, prompt_codes=clip),
        request(tokenizer, "calm", steps=25, seed=4, guidance=1.0),
        request(tokenizer, "rock", steps=40, seed=5, stop_after=12),
    ]
    shared, _ = check_shared_equals_alone(loop, requests)
    assert shared[4].shape[-1] == 12 - 3
    assert not any(loop.pool.owners), "every request handed its rows back"


def test_melody_requests_sharing_the_static_step(tiny_melody_dir):
    model, _ = load_melody(tiny_melody_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_melody_dir)
    loop = FastMusicgen(model, static=True)
    earlier = torch.randint(0, 2048, (1, 4, 13), generator=torch.Generator().manual_seed(4))
    requests = [
        request(tokenizer, "lo fi hip hop warm piano", steps=30, seed=1, features=chroma_features(37, batch=1)),
        request(tokenizer, "", steps=30, seed=6, prompt_codes=earlier, features=chroma_features(50, batch=1, seed=2)),
        request(tokenizer, "no melody at all", steps=20, seed=7),
    ]
    check_shared_equals_alone(loop, requests)


def start(loop: FastMusicgen, tokenizer, prompt: str, steps: int, seed: int, features=None) -> Decoding:
    inputs = tokenizer([prompt], return_tensors="pt", padding=True)
    run = loop._start(inputs["input_ids"], inputs["attention_mask"], steps, True, 1.0, 50, 1.0, 3.0, None, features,
                      torch.Generator().manual_seed(seed), PassCount())
    return Decoding(loop, run)


def test_rows_change_hands_safely_while_others_decode(tiny_melody_dir):
    """A request takes rows freed below a running one, and the pool grows under a running one (a longer piece):
    the running request's step covers the newcomer's rows during its first pass, and neither is disturbed."""
    model, _ = load_melody(tiny_melody_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_melody_dir)
    alone_loop = FastMusicgen(model, static=False)

    def alone(prompt: str, steps: int, seed: int, features=None) -> torch.Tensor:
        d = start(alone_loop, tokenizer, prompt, steps, seed, features)
        while not d.finished:
            Decoding.advance([d])
            d.finished = d.run.done + 1 >= d.run.total
        return alone_loop.codes(d.run)

    loop = FastMusicgen(model, static=True)
    pool = loop.pool
    short = start(loop, tokenizer, "short one", 10, 1)  # rows 0-1
    long = start(loop, tokenizer, "long one", 80, 2)  # rows 2-3
    assert short.run.slots == (0, 2) and long.run.slots == (2, 4)
    active = [short, long]
    newcomer = longer = None
    for step in range(200):
        Decoding.advance(active)
        for d in list(active):
            if d.run.done + 1 >= d.run.total:
                active.remove(d)
                loop.release(d.run)
        if newcomer is None and short not in active:
            # rows 0-1 are free again: the newcomer takes them, below the running request; its first pass
            # (the melody prefix, many positions) runs in the same round as the long request's one-token step
            newcomer = start(loop, tokenizer, "newcomer", 30, 3, chroma_features(40, batch=1, seed=5))
            assert newcomer.run.slots == (0, 2)
            active.append(newcomer)
        elif newcomer is not None and longer is None:
            length_before = pool.length
            longer = start(loop, tokenizer, "longer still", 600, 4)  # needs a longer pool: it grows
            assert pool.length > length_before
            active.append(longer)
        if not active:
            break
    assert active == [longer]  # the longest is still decoding at the loop's end
    loop.release(longer.run)
    assert not any(pool.owners)
    assert torch.equal(loop.codes(short.run), alone("short one", 10, 1))
    assert torch.equal(loop.codes(long.run), alone("long one", 80, 2))
    assert torch.equal(loop.codes(newcomer.run), alone("newcomer", 30, 3, chroma_features(40, batch=1, seed=5)))
    assert longer.run.done > 150


def test_buckets_and_pool_growth(tiny_musicgen_dir):
    assert [bucket_for(n) for n in (1, 2, 3, 5, 8, 9)] == [1, 2, 4, 8, 8, 16]
    assert bucket_for(GRAPH_BUCKETS[-1] + 1) == GRAPH_BUCKETS[-1] + 1
    model, _ = load(tiny_musicgen_dir)
    loop = FastMusicgen(model, static=True)
    assert isinstance(loop.pool, StepPool) and loop.pool.rows == 0  # nothing is allocated before a request
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    d = start(loop, tokenizer, "lo fi", 20, 1)
    assert loop.pool.rows == 2 and loop.pool.length == static_step.LENGTH_ROUND
    loop.release(d.run)
    assert d.run.slots is None and loop.pool.rows == 2  # kept for the next request


def test_graphs_need_cuda(tiny_musicgen_dir):
    model, _ = load(tiny_musicgen_dir)
    with pytest.raises(ValueError, match="CUDA"):
        FastMusicgen(model, static=True, graphs=True)
    assert FastMusicgen(model).pool is None  # on a CPU nothing changes: the sliced step


def test_float32_parts_under_a_narrower_decoder(tiny_musicgen_dir, tiny_melody_dir):
    """On a GPU the decoder runs in bfloat16/float16 while T5 and EnCodec stay float32, cast once from the
    checkpoint's float32 weights: the conditioning is then exactly the float32 model's, and the loop decodes."""
    from models.musicgen.checkpoints import load_checkpoint
    from models.musicgen.codec import decode_codes
    from models.sources import ModelSource

    for folder, melody in ((tiny_musicgen_dir, False), (tiny_melody_dir, True)):
        source = ModelSource(name=str(folder), location=str(folder), is_local=True, local_files_only=True)
        cpu = torch.device("cpu")
        mixed, tokenizer, _, _ = load_checkpoint(source, "tiny", melody, cpu, torch.bfloat16, False,
                                                 float32_parts=True)
        plain, _, _, _ = load_checkpoint(source, "tiny", melody, cpu, torch.float32, False)
        assert next(mixed.text_encoder.parameters()).dtype == torch.float32
        assert next(mixed.audio_encoder.parameters()).dtype == torch.float32
        assert next(mixed.decoder.parameters()).dtype == torch.bfloat16
        inputs = tokenizer(["lo fi hip hop"], return_tensors="pt")
        with torch.inference_mode():
            assert torch.equal(mixed.text_encoder(**inputs).last_hidden_state,
                               plain.text_encoder(**inputs).last_hidden_state)
            loop = FastMusicgen(mixed, static=True)
            features = chroma_features(20, batch=1).to(torch.bfloat16) if melody else None
            codes = loop.generate_codes(inputs["input_ids"], inputs["attention_mask"], 20, do_sample=False,
                                        input_features=features)
            audio = decode_codes(mixed, codes)
        assert codes.shape == (1, 4, 20 - 3) and audio.dtype == torch.float32 and torch.isfinite(audio).all()


def test_zero_gpu_lets_the_pool_go_when_the_request_ends(tiny_musicgen_dir):
    """With ``drop_when_idle`` (ZeroGPU) the buffers stay through a request's windows and go when it ends, unless
    another request still decodes."""
    model, _ = load(tiny_musicgen_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    loop = FastMusicgen(model, static=True, drop_when_idle=True)
    first = start(loop, tokenizer, "lo fi", 10, 1)
    second = start(loop, tokenizer, "jazz", 10, 2)
    loop.release(first.run)
    loop.let_go()  # the first request ended; the second still holds rows
    assert loop.pool.rows == 4
    loop.release(second.run)
    assert loop.pool.rows == 4  # released between windows: kept
    loop.let_go()
    assert loop.pool.rows == 0 and not loop.pool.graphs
    kept = FastMusicgen(model, static=True)  # elsewhere the pool stays for the next request
    d = start(kept, tokenizer, "lo fi", 10, 1)
    kept.release(d.run)
    kept.let_go()
    assert kept.pool.rows == 2


# ------------------------------------------------------------------------------ the CUDA graphs' safety net
def graphs_as_on_a_gpu(loop: FastMusicgen, capture) -> None:
    """The pool as on CUDA with graphs on, its warm-up and capture replaced by CPU stand-ins: the warm-up is the
    eager step (as on a GPU, without streams), the capture is ``capture``."""
    pool = loop.pool
    pool.graphs_on = True
    pool._warm_up = lambda n: pool._step(n).clone()
    pool._capture = lambda n: capture(pool, n)


def wrong_graph(pool: StepPool, n: int):
    """A "graph" whose logits are off: it replays the eager step and then spoils its output."""
    out = pool._step(n)

    def replay() -> None:
        out.copy_(pool._step(n) + 5.0)

    return replay, out


def broken_capture(pool: StepPool, n: int):
    raise RuntimeError("operation not permitted when stream is capturing")


@pytest.mark.parametrize("capture", [broken_capture, wrong_graph], ids=["capture-fails", "graph-disagrees"])
def test_a_failing_cuda_graph_falls_back_to_the_eager_step(tiny_musicgen_dir, capture, caplog):
    """A capture that raises, or a graph whose logits disagree with the eager step on the same inputs: that step's
    result is the eager one, the model's later steps run eagerly, one log line says why, and the tokens are those of
    the eager step."""
    model, _ = load(tiny_musicgen_dir, "fp32")
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    req = request(tokenizer, "lo fi hip hop warm piano", variants=2, steps=40, seed=5)
    eager = decode(FastMusicgen(model, static=True), req, None)
    loop = FastMusicgen(model, static=True)
    graphs_as_on_a_gpu(loop, capture)
    with caplog.at_level("WARNING", logger="models.musicgen.static_step"):
        safe = decode(loop, req, None)
    assert torch.equal(safe, eager)
    assert not loop.pool.graphs_on and not loop.pool.graphs and loop.pool.graph_failure
    said = [r.getMessage() for r in caplog.records if "CUDA graphs off" in r.getMessage()]
    assert len(said) == 1
    assert ("disagreed" in said[0]) == (capture is wrong_graph)


def test_a_graph_that_agrees_is_kept_and_replayed(tiny_musicgen_dir):
    """The self-check passes a graph that computes what the eager step does (here the eager step itself)."""
    model, _ = load(tiny_musicgen_dir, "fp32")
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    req = request(tokenizer, "sad jazz", steps=30, seed=2)
    eager = decode(FastMusicgen(model, static=True), req, None)
    loop = FastMusicgen(model, static=True)
    replays = []

    def faithful(pool: StepPool, n: int):
        out = pool._step(n)

        def replay() -> None:
            replays.append(n)
            out.copy_(pool._step(n))

        return replay, out

    graphs_as_on_a_gpu(loop, faithful)
    assert torch.equal(decode(loop, req, None), eager)
    assert loop.pool.graphs_on and loop.pool.graph_failure is None and len(replays) > 20


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_the_graph_self_check_allows_each_dtypes_rounding_and_no_more(dtype):
    """``_check_agreement`` takes its tolerance from the dtype the step computed in (bf16/fp16 steps round far more
    than float32's), and refuses a gap past it or a non-finite logit where the eager step had none."""
    check = StepPool._check_agreement
    eager = (torch.linspace(-20, 20, 2048, dtype=torch.float32).reshape(2, 1024)).to(dtype)
    tolerance = static_step.GRAPH_TOLERANCE[dtype] * 20  # relative to the logits' scale
    check(eager + torch.tensor(0.5 * tolerance, dtype=torch.float32).to(dtype) * (eager != 0), eager, 2)
    with pytest.raises(static_step.GraphMismatch, match="differs from the eager step"):
        check(eager + torch.tensor(3 * tolerance, dtype=torch.float32).to(dtype), eager, 2)
    broken = eager.clone()
    broken[0, 3] = float("nan")
    with pytest.raises(static_step.GraphMismatch, match="non-finite"):
        check(broken, eager, 2)
