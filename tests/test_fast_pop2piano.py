"""The fast Pop2Piano decode loop gives the tokens stock ``generate`` gives, on the same weights."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import Pop2PianoForConditionalGeneration

from models.int8 import quantize_int8
from models.fast_pop2piano import FastPop2Piano


def load(folder, weights: str, eos_boost: float = 1.0) -> Pop2PianoForConditionalGeneration:
    model = Pop2PianoForConditionalGeneration.from_pretrained(folder).eval()
    with torch.no_grad():
        model.lm_head.weight[1] *= eos_boost  # a larger end-token row: some or all chunks finish early
    if weights == "int8":
        model = quantize_int8(model)
    return model


@pytest.mark.parametrize("weights", ["fp32", "int8"])
@pytest.mark.parametrize(
    ("eos_boost", "finished"), [(1.0, "none"), (1.5, "some"), (4.0, "all")], ids=["no-end", "some-end", "all-end"]
)
def test_greedy_tokens_equal_stock_generate(tiny_pop2piano_dir, weights, eos_boost, finished):
    model = load(tiny_pop2piano_dir, weights, eos_boost)
    torch.manual_seed(0)
    features = torch.randn(6, 30, 64)  # 6 chunks, 30 frames, d_model 64
    config = copy.deepcopy(model.generation_config)
    config.max_length = 64
    with torch.inference_mode():
        stock = model.generate(input_features=features, composer="composer2", generation_config=config)
        fast = FastPop2Piano(model).generate(features, "composer2", 64)
    assert torch.equal(stock, fast)
    rows_done = int((fast == 1).any(dim=1).sum())
    assert {"none": rows_done == 0, "some": 0 < rows_done < 6, "all": rows_done == 6}[finished]
    if finished == "all":
        assert fast.shape[1] < 64  # stopped early, as stock does


@pytest.mark.parametrize("weights", ["fp32", "int8"])
@pytest.mark.parametrize("eos_boost", [1.0, 1.5], ids=["no-end", "some-end"])
def test_static_step_gives_the_sliced_steps_tokens(tiny_pop2piano_dir, weights, eos_boost):
    """Attention over the whole cache with a mask built once (the GPU's step: fixed shapes) gives the tokens of the
    cache sliced to each step's length (the CPU's)."""
    model = load(tiny_pop2piano_dir, weights, eos_boost)
    features = torch.randn(6, 30, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        sliced = FastPop2Piano(model, static=False).generate(features, "composer2", 64)
        static = FastPop2Piano(model, static=True).generate(features, "composer2", 64)
    assert FastPop2Piano(model).static is False  # CPU: sliced by default
    assert torch.equal(sliced, static)
    other = FastPop2Piano(model, static=True).generate(features + 1, "composer2", 64)
    assert not torch.equal(other, static)  # the comparison can fail


def test_steps_are_reported(tiny_pop2piano_dir):
    model = load(tiny_pop2piano_dir, "fp32")
    seen: list[int] = []
    FastPop2Piano(model).generate(torch.zeros(2, 10, 64), "composer1", 20, on_step=seen.append)
    assert seen == list(range(1, 20))
