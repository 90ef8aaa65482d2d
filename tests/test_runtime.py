"""The model runtime: one OpenMP team in the process whoever computes with torch, and faults that reach the requests
in flight without stopping the next one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from models.musicgen.fast_loop import FastMusicgen
from models.runtime import ModelThread, RuntimeFailure
from tests.test_fast_musicgen import load
from tests.test_model_thread import decode, in_threads, request

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter (the test process set one kernel thread for itself in conftest.py). Counts the
# process's threads: libgomp starts a pool of worker threads for every thread that opens a parallel region.
ONE_TEAM_PROBE = r"""
import ctypes, json, os, threading
from concurrent.futures import ThreadPoolExecutor
from models.runtime import model_thread  # first, as app.py and cli.py do: before torch loads OpenMP
import torch

def threads():
    return len(os.listdir("/proc/self/task"))

def big_ops():  # large enough for ATen to split across threads: copies, reductions, matrix products
    x = torch.randn(1500, 1500)
    for _ in range(3):
        (x @ x).sum(); x.to(torch.float64).mean(); x.clone().add_(1)

runtime = model_thread()
runtime.call(big_ops)  # the model thread opens its team
after_model = threads()
kernel_threads = {"model": runtime.call(torch.get_num_threads)}
big_ops()  # the main thread (where the CLI runs, and the app's start-up)
with ThreadPoolExecutor(4) as pool:  # like transformers' weight loading threads, or gradio's workers
    list(pool.map(lambda _: big_ops(), range(8)))
    kernel_threads["pool"] = pool.submit(torch.get_num_threads).result()
t = threading.Thread(target=big_ops); t.start(); t.join()
# a native library using OpenMP itself (as FluidSynth renders a cover) in a thread that stays (a gradio worker)
gomp = ctypes.CDLL("libgomp.so.1")
region = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: None)
done, stay = threading.Event(), threading.Event()
def native_user():
    gomp.GOMP_parallel(region, None, 0, 0)  # 0 threads: the thread's OpenMP default
    done.set(); stay.wait()
worker = threading.Thread(target=native_user); worker.start(); done.wait()
runtime.call(big_ops)
after_others = threads()
# the control: a thread that takes two kernel threads for itself does get a team of its own, and it shows; counted
# while that thread is alive (libgomp lets a thread's pool go when the thread ends), not counting the thread itself
ready, release = threading.Event(), threading.Event()
def control_user():
    torch.set_num_threads(2); big_ops(); ready.set(); release.wait()
t = threading.Thread(target=control_user); t.start(); ready.wait()
control = threads() - 1
release.set(); t.join()
stay.set(); worker.join()
print(json.dumps({"after_model": after_model, "after_others": after_others, "control": control,
                  "kernel_threads": kernel_threads, "main": torch.get_num_threads()}))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc (Linux)")
def test_only_the_model_thread_has_an_openmp_team():
    env = os.environ | {"MODEL_KERNEL_THREADS": "2", "OMP_NUM_THREADS": "2"}  # a user's 2 for the model thread
    out = subprocess.run([sys.executable, "-c", ONE_TEAM_PROBE], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["kernel_threads"] == {"model": 2, "pool": 1}
    assert seen["main"] == 1
    # the main thread, a pool of four, another thread and a native OpenMP user all computed, and no new OpenMP
    # worker thread started
    assert seen["after_others"] == seen["after_model"] + 1, seen  # + the native user's own thread, still there
    assert seen["control"] > seen["after_others"], seen  # a second team would have shown


def tiny_loop(tiny_musicgen_dir) -> tuple[FastMusicgen, object]:
    model, _ = load(tiny_musicgen_dir, "int8")
    return FastMusicgen(model), AutoTokenizer.from_pretrained(tiny_musicgen_dir)


def test_a_failed_pass_fails_its_requests_and_the_next_request_is_served(tiny_musicgen_dir, monkeypatch):
    loop, tokenizer = tiny_loop(tiny_musicgen_dir)
    asks = [request(tokenizer, "lo fi hip hop", steps=30, seed=1), request(tokenizer, "sad jazz", steps=30, seed=2)]
    expected = [decode(loop, a, None) for a in asks]
    joint = ModelThread()
    layers, passes = loop.layers, []

    def failing(runs, hidden):
        passes.append(len(runs))
        if len(passes) == 12:  # mid-request, in a pass both requests share
            raise MemoryError("out of memory in a decoder pass")
        return layers(runs, hidden)

    monkeypatch.setattr(loop, "layers", failing)
    got = in_threads([lambda a=a: decode(loop, a, joint) for a in asks])
    assert all(isinstance(g, MemoryError) for g in got), got
    assert passes[11] == 2  # the failed pass held both
    monkeypatch.setattr(loop, "layers", layers)
    again = in_threads([lambda a=a: decode(loop, a, joint) for a in asks])
    assert all(torch.equal(e, g) for e, g in zip(expected, again))
    assert joint.failures == 0  # the runtime itself went on


def test_a_dead_model_thread_fails_requests_in_flight_and_a_new_one_serves(tiny_musicgen_dir, monkeypatch):
    loop, tokenizer = tiny_loop(tiny_musicgen_dir)
    ask = request(tokenizer, "lo fi hip hop", steps=30, seed=1)
    expected = decode(loop, ask, None)
    joint = ModelThread()
    finished_before = decode(loop, ask, joint)  # a request that finished before the failure keeps its result
    rounds = [0]
    real_round = ModelThread._round

    def dying_round(self):
        rounds[0] += 1
        if rounds[0] == 10:
            raise SystemExit("the model thread was torn down")  # escapes every per-request handler
        real_round(self)

    monkeypatch.setattr(ModelThread, "_round", dying_round)
    def slow_job():
        threading.Event().wait(0.2)
        return "done"

    got = in_threads([lambda: decode(loop, ask, joint), lambda: decode(loop, ask, joint)])
    assert all(isinstance(g, RuntimeFailure) for g in got), got
    assert "try again" in str(got[0]) and "SystemExit" in str(got[0])
    assert joint.failures == 1
    monkeypatch.setattr(ModelThread, "_round", real_round)
    assert joint.call(slow_job) == "done"  # a fresh model thread takes the next work
    assert torch.equal(decode(loop, ask, joint), expected)
    assert torch.equal(finished_before, expected)


def test_a_job_that_runs_out_of_memory_is_the_callers_error_only():
    joint = ModelThread()

    def huge():
        raise MemoryError("cannot allocate 1 TB")

    with pytest.raises(MemoryError):
        joint.call(huge)
    assert joint.call(lambda: 2 + 2) == 4 and joint.failures == 0


def test_the_thread_hands_freed_memory_back_once_after_each_burst_of_work(monkeypatch):
    """Out of work for a second, the model thread returns the freed memory to the OS once; idle, it does not keep
    trying (the process's own model thread may do the same meanwhile: only this thread's are counted)."""
    import time

    from models import runtime

    handed_back: list[threading.Thread] = []
    monkeypatch.setattr(runtime, "return_freed_memory", lambda: handed_back.append(threading.current_thread()))
    thread = ModelThread()

    def ours() -> int:
        return sum(1 for t in handed_back if t is thread._worker)

    for burst in (1, 2):
        for _ in range(3):
            thread.call(lambda: torch.ones(1000).sum())
        deadline = time.monotonic() + 10
        while ours() < burst:
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)
        time.sleep(0.2)
        assert ours() == burst  # once after the burst, not again while idle
