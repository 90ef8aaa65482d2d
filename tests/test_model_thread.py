"""Requests decoding at the same time on the model thread share each step's pass, and each still gets exactly its own
tokens: the same as alone, on the same weights, whoever shares its passes."""

from __future__ import annotations

import threading

import pytest
import torch
from transformers import AutoTokenizer

from models.runtime import ModelThread
from models.musicgen.decoding import PassCount
from models.musicgen.fast_loop import FastMusicgen
from tests.test_fast_musicgen import chroma_features, load, load_melody


def request(tokenizer, prompt: str, variants: int = 1, steps: int = 30, seed: int | None = 0, guidance: float = 3.0,
            prompt_codes: torch.Tensor | None = None, features: torch.Tensor | None = None,
            stop_after: int | None = None) -> dict:
    inputs = tokenizer([prompt] * variants, return_tensors="pt", padding=True)
    sampling = dict(do_sample=False) if seed is None else dict(do_sample=True, top_k=50, top_p=0.95, temperature=1.2)
    return dict(inputs=inputs, steps=steps, seed=seed, sampling=dict(guidance_scale=guidance, **sampling),
                prompt_codes=prompt_codes, features=features, stop_after=stop_after)


def decode(loop: FastMusicgen, req: dict, joint: ModelThread | None, passes: PassCount | None = None) -> torch.Tensor:
    generator = torch.Generator().manual_seed(req["seed"]) if req["seed"] is not None else None
    seen: list[int] = []
    stop = (lambda: len(seen) >= req["stop_after"]) if req["stop_after"] else None
    return loop.generate_codes(req["inputs"]["input_ids"], req["inputs"]["attention_mask"], req["steps"],
                               prompt_codes=req["prompt_codes"], input_features=req["features"], generator=generator,
                               on_step=seen.append, should_stop=stop, joint=joint, passes=passes, **req["sampling"])


def in_threads(fns: list) -> list:
    """Run each function in a thread of its own, all started at once (as the app's workers run requests); their
    results, or the errors they raised."""
    results: list = [None] * len(fns)
    gate = threading.Barrier(len(fns))

    def work(i: int) -> None:
        gate.wait()
        try:
            results[i] = fns[i]()
        except BaseException as e:  # noqa: BLE001 - returned for the caller to look at
            results[i] = e

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a request never got its answer"
    return results


def together(loop: FastMusicgen, requests: list[dict], joint: ModelThread,
             passes: list[PassCount] | None = None) -> list[torch.Tensor]:
    """Every request in its own thread, all started at once; ``passes`` receives each one's pass count, as
    ``FastMusicgen.layers`` counts them. An error in any of them is raised."""
    counts = passes if passes is not None else [PassCount() for _ in requests]
    results = in_threads([lambda i=i: decode(loop, requests[i], joint, counts[i]) for i in range(len(requests))])
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def check_shared_equals_alone(loop: FastMusicgen, requests: list[dict]) -> tuple[list[torch.Tensor], ModelThread]:
    """Each request alone, then all at once on a model thread: the same codes, and passes really shared."""
    alone = [decode(loop, r, None) for r in requests]
    joint = ModelThread()
    passes = [PassCount() for _ in requests]
    shared = together(loop, requests, joint, passes)
    for i, (a, s) in enumerate(zip(alone, shared)):
        assert torch.equal(a, s), f"request {i} changed when it shared its passes"
    # counted in the pass itself: every request went through layer passes that held another request's rows too
    assert all(p.shared > 0 for p in passes), passes
    return shared, joint


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_text_requests_sharing_passes_get_their_own_tokens(tiny_musicgen_dir, weights):
    model, _ = load(tiny_musicgen_dir, weights)
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    loop = FastMusicgen(model)
    clip = torch.randint(0, 2048, (1, 4, 9), generator=torch.Generator().manual_seed(1))
    requests = [
        request(tokenizer, "lo fi hip hop warm piano", steps=40, seed=1),
        request(tokenizer, "sad jazz", variants=2, steps=30, seed=2),  # two variants: four rows
        request(tokenizer, "epic drums", steps=35, seed=None, prompt_codes=clip),  # greedy, continues a clip
        request(tokenizer, "calm", steps=25, seed=4, guidance=1.0),  # no guidance: one row
        request(tokenizer, "rock", steps=40, seed=5, stop_after=12),  # stopped by its user
    ]
    shared, _ = check_shared_equals_alone(loop, requests)
    assert shared[4].shape[-1] == 12 - 3  # the stopped one kept what it finished
    # and the comparison can fail: a different seed gives different tokens
    other = dict(requests[0], seed=99)
    assert not torch.equal(decode(loop, other, ModelThread()), shared[0])


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_melody_requests_sharing_passes_get_their_own_tokens(tiny_melody_dir, weights):
    model, _ = load_melody(tiny_melody_dir, weights)
    tokenizer = AutoTokenizer.from_pretrained(tiny_melody_dir)
    loop = FastMusicgen(model)
    earlier = torch.randint(0, 2048, (1, 4, 13), generator=torch.Generator().manual_seed(4))
    requests = [
        request(tokenizer, "lo fi hip hop warm piano", steps=30, seed=1, features=chroma_features(37, batch=1)),
        request(tokenizer, "sad jazz", steps=25, seed=None, features=chroma_features(300, batch=1, seed=3)),
        request(tokenizer, "", steps=30, seed=6, prompt_codes=earlier, features=chroma_features(50, batch=1, seed=2)),
        request(tokenizer, "no melody at all", steps=20, seed=7),
    ]
    check_shared_equals_alone(loop, requests)


def test_max_rows_lets_requests_in_one_after_another(tiny_musicgen_dir):
    model, _ = load(tiny_musicgen_dir, "int8")
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    loop = FastMusicgen(model)
    requests = [request(tokenizer, "lo fi hip hop", seed=1), request(tokenizer, "sad jazz", seed=2)]
    alone = [decode(loop, r, None) for r in requests]
    joint = ModelThread(max_rows=2)  # room for one guided request (two rows)
    passes = [PassCount(), PassCount()]
    shared = together(loop, requests, joint, passes)
    assert all(torch.equal(a, s) for a, s in zip(alone, shared))
    assert all(p.total > 0 and p.shared == 0 for p in passes), passes


def test_an_error_in_one_request_leaves_the_others_running(tiny_musicgen_dir):
    model, _ = load(tiny_musicgen_dir, "int8")
    tokenizer = AutoTokenizer.from_pretrained(tiny_musicgen_dir)
    loop = FastMusicgen(model)
    good = request(tokenizer, "lo fi hip hop", steps=30, seed=1)
    expected = decode(loop, good, None)
    joint = ModelThread()

    class Gone(Exception):
        pass

    def failing() -> None:
        def on_step(step: int) -> None:
            if step == 5:
                raise Gone  # e.g. the user closed the page
        ids = tokenizer(["sad jazz"], return_tensors="pt")
        loop.generate_codes(ids["input_ids"], ids["attention_mask"], 30, on_step=on_step, joint=joint)

    # the failing request's error is returned from its thread and checked here (an assertion inside a worker
    # thread would only make pytest warn)
    failed, got = in_threads([failing, lambda: decode(loop, good, joint)])
    assert isinstance(failed, Gone), failed
    assert torch.equal(got, expected)
