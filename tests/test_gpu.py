"""On a GPU: the decode step replayed as CUDA graphs gives the tokens of the same step run eagerly, the dtype is the
one the GPU computes in hardware, attention plans nothing per shape. Skipped where there is no CUDA (CI, the CPU
machine): ``bash bench/gpu_kit.sh run`` runs these on a GPU machine, then the GPU benchmark."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from models.devices import has_hardware_bf16, pick_dtype, settle_attention_backend
from models.musicgen.fast_loop import FastMusicgen
from models.runtime import ModelThread
from tests.test_model_thread import decode, request, together

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA here: the GPU tests run on a GPU machine (bench/gpu_kit.sh)")
CUDA = torch.device("cuda")


def load_cuda(folder, dtype: torch.dtype, melody: bool = False):
    from transformers import MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration

    cls = MusicgenMelodyForConditionalGeneration if melody else MusicgenForConditionalGeneration
    model = cls.from_pretrained(folder).eval().to(CUDA, dtype)
    return model, AutoTokenizer.from_pretrained(folder)


def on_cuda(req: dict) -> dict:
    """A request whose inputs (and seeded generator) live on the GPU."""
    req = dict(req, inputs={k: v.to(CUDA) for k, v in req["inputs"].items()})
    if req["features"] is not None:
        req["features"] = req["features"].to(CUDA)
    return req


def decode_cuda(loop: FastMusicgen, req: dict) -> torch.Tensor:
    generator = torch.Generator(CUDA).manual_seed(req["seed"]) if req["seed"] is not None else None
    return loop.generate_codes(req["inputs"]["input_ids"], req["inputs"]["attention_mask"], req["steps"],
                               input_features=req["features"], generator=generator, **req["sampling"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("seed", [None, 7], ids=["greedy", "seeded"])
def test_graph_replay_gives_the_eager_steps_tokens(tiny_musicgen_dir, dtype, seed):
    settle_attention_backend(CUDA)
    model, tokenizer = load_cuda(tiny_musicgen_dir, dtype)
    req = on_cuda(request(tokenizer, "lo fi hip hop warm piano", variants=2, steps=80, seed=seed))
    graphs = FastMusicgen(model)  # CUDA: the static step, captured
    assert graphs.pool is not None and graphs.pool.graphs_on
    eager = FastMusicgen(model, static=True, graphs=False)
    sliced = FastMusicgen(model, static=False)
    with torch.inference_mode():
        replayed, stepped, cut = decode_cuda(graphs, req), decode_cuda(eager, req), decode_cuda(sliced, req)
    assert graphs.pool.captures == 1  # one bucket (4 rows), captured once for 80 steps
    assert torch.equal(replayed, stepped)
    assert torch.equal(stepped, cut)  # the mask instead of the slice: the same tokens on this GPU too
    with torch.inference_mode():
        decode_cuda(graphs, req)
    assert graphs.pool.captures == 1  # the next request of the same size replays the same graph


def test_melody_graph_replay(tiny_melody_dir):
    from tests.test_fast_musicgen import chroma_features

    model, tokenizer = load_cuda(tiny_melody_dir, torch.bfloat16, melody=True)
    req = on_cuda(request(tokenizer, "sad jazz", steps=40, seed=3,
                          features=chroma_features(37, batch=1).to(torch.bfloat16)))
    with torch.inference_mode():
        replayed = decode_cuda(FastMusicgen(model), req)
        stepped = decode_cuda(FastMusicgen(model, static=True, graphs=False), req)
    assert torch.equal(replayed, stepped)


def test_requests_sharing_a_graph_get_their_own_tokens(tiny_musicgen_dir):
    """Float32: requests sharing one replay get what each gets alone. (A row's rounding can depend on how many rows
    a GPU matrix product holds; bench/gpu_bench.py reports what sharing changes in bfloat16.)"""
    model, tokenizer = load_cuda(tiny_musicgen_dir, torch.float32)
    loop = FastMusicgen(model)
    requests = [on_cuda(request(tokenizer, "lo fi hip hop", steps=40, seed=None)),
                on_cuda(request(tokenizer, "sad jazz", variants=2, steps=30, seed=None)),
                on_cuda(request(tokenizer, "rock", steps=35, seed=None, stop_after=12))]
    alone = [decode(loop, r, None) for r in requests]
    shared = together(loop, requests, ModelThread())
    for a, s in zip(alone, shared):
        assert torch.equal(a, s)


def test_pop2piano_static_step_on_cuda(tiny_pop2piano_dir):
    from transformers import Pop2PianoForConditionalGeneration

    from models.fast_pop2piano import FastPop2Piano

    model = Pop2PianoForConditionalGeneration.from_pretrained(tiny_pop2piano_dir).eval().to(CUDA)
    features = torch.randn(6, 30, 64, generator=torch.Generator().manual_seed(1)).to(CUDA)
    with torch.inference_mode():
        static = FastPop2Piano(model).generate(features, "composer2", 64)
        sliced = FastPop2Piano(model, static=False).generate(features, "composer2", 64)
    assert FastPop2Piano(model).static
    assert torch.equal(static, sliced)


def test_dtype_and_attention_choice():
    """bfloat16 only where the GPU has it in hardware (a T4 says is_bf16_supported() through emulation), and
    cuDNN's attention (a plan per shape) is off for the process."""
    capability = torch.cuda.get_device_capability(CUDA)
    assert has_hardware_bf16(CUDA) == (capability >= (8, 0))
    assert pick_dtype(CUDA) == (torch.bfloat16 if capability >= (8, 0) else torch.float16)
    settle_attention_backend(CUDA)
    assert not torch.backends.cuda.cudnn_sdp_enabled()
