"""Nothing one user does reaches another: Stop stops only the run of the tab whose Stop was pressed, in that browser
session; a loaded parameters file gives its English to that tab's runs only; Extend works from that tab's own last
result; a run's Stop flag goes when the run ends, and a session's when it closes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf
from gradio_client import Client, handle_file

from tests.test_app import FakeRequest, text_event, tiny_app  # noqa: F401 - the fixture
from ui import music, runs


def started_run(app, session: str | None, seconds: float = 30) -> tuple[threading.Thread, list, threading.Event]:
    """A text run of ``seconds`` in ``session``'s text tab, in its own thread; returns once music is being made."""
    results: list = []
    going = threading.Event()

    def progress(fraction, desc=""):
        if " s made" in desc:
            going.set()

    worker = threading.Thread(target=lambda: results.append(
        text_event(app, "pop", "", seconds, 250, 0, 1.0, 3.0, "5", 1, session=session, progress=progress)))
    worker.start()
    assert going.wait(60)
    return worker, results, going


def test_stop_reaches_only_its_own_tab_and_session(tiny_app):  # noqa: F811
    worker, results, _ = started_run(tiny_app, "alice")
    music.stop_generation(FakeRequest("bob"), "text")  # another session's Stop
    music.stop_melody(FakeRequest("alice"))  # alice's other tab's Stop
    worker.join(120)
    *_, params, details, _downloads, _state, _live, _line = results[0]
    assert not params.get("stopped") and params["seconds"] == pytest.approx(30, abs=0.01)
    assert len(runs._cancel_events) == 0  # the finished run's flag went with it

    worker, results, _ = started_run(tiny_app, "alice")
    music.stop_text(FakeRequest("alice"))  # her own tab's Stop
    worker.join(120)
    *_, params, details, _downloads, _state, _live, _line = results[0]
    assert params["stopped"] and params["seconds"] < 30 and "Stopped" in details
    assert len(runs._cancel_events) == 0


def test_a_closed_session_leaves_nothing_behind(tiny_app):  # noqa: F811
    worker, results, _ = started_run(tiny_app, "carol")
    assert len(runs._cancel_events) == 1
    runs.forget_session(FakeRequest("carol"))  # the page closed: its run stops, its flag goes
    assert len(runs._cancel_events) == 0
    worker.join(120)
    assert results[0][-6]["stopped"]


def test_each_run_has_its_own_stop_and_a_sessions_stop_or_close_reaches_all_of_its_runs(tiny_app):  # noqa: F811
    for end in (lambda: music.stop_text(FakeRequest("dave")), lambda: runs.forget_session(FakeRequest("dave"))):
        first, first_results, _ = started_run(tiny_app, "dave")
        second, second_results, _ = started_run(tiny_app, "dave")  # the fair share allows two
        assert len(runs._cancel_events[("dave", "text")]) == 2  # two flags: the second did not replace the first
        end()
        for worker in (first, second):
            worker.join(120)
        assert first_results[0][-6]["stopped"] and second_results[0][-6]["stopped"]
        assert len(runs._cancel_events) == 0


def test_callers_without_a_session_are_kept_apart(tiny_app):  # noqa: F811
    worker, results, _ = started_run(tiny_app, None, seconds=10)
    music.stop_text(FakeRequest(None))  # another caller without a session: its Stop cannot reach this run
    runs.forget_session(FakeRequest(None))
    worker.join(120)
    assert not results[0][-6].get("stopped") and results[0][-6]["seconds"] == pytest.approx(10, abs=0.01)


# ------------------------------------------------------------------------------------- two clients, one app
@pytest.fixture()
def two_clients(live_app, tmp_path_factory) -> tuple[Client, Client]:
    return tuple(Client(live_app.url, verbose=False, download_files=str(tmp_path_factory.mktemp(f"user{i}")))
                 for i in (1, 2))


TEXT_ARGS = ("", 1, 250, 0.0, 1.0, 3.0, "9", 1, 18)  # model, duration, top_k, top_p, temperature, guidance, seed...


def test_two_clients_do_not_reach_each_other(two_clients, tmp_path):
    ana, ben = two_clients
    # Stop: ben's Stop while ana's 30 s run is going leaves it whole
    job = ana.submit("pop", "", 30, 250, 0.0, 1.0, 3.0, "4", 1, 18, api_name="/text_to_music")
    while not job.outputs() and not job.done():  # her first streamed chunk: the run is going
        threading.Event().wait(0.05)
    ben.predict(api_name="/text_to_music_stop")
    ben.predict(api_name="/melody_to_music_stop")
    *audios, _picture, params, _details, _downloads = job.result()
    assert not params.get("stopped") and sf.info(audios[0]).duration == pytest.approx(30, abs=0.01)

    # Extend: ben has no result of his own, so Extend refuses; it never continues ana's
    with pytest.raises(Exception, match="Generate something first"):
        ben.predict(10, api_name="/text_to_music_extend")

    # A loaded parameters file: ben's English for a prompt reaches his runs of it, not ana's
    prompt = "安静的夜晚 piano"
    record = {"task": "text_to_music", "prompt": prompt, "prompt_english": "quiet night piano", "seed": 3}
    path = tmp_path / "params.json"
    path.write_text(json.dumps(record, ensure_ascii=False))
    ben.predict(handle_file(str(path)), api_name="/text_to_music_load_params")
    *_, ana_params, ana_details, _ = ana.predict(prompt, *TEXT_ARGS, api_name="/text_to_music")
    *_, ben_params, ben_details, _ = ben.predict(prompt, *TEXT_ARGS, api_name="/text_to_music")
    assert ben_params["prompt_english"] == "quiet night piano"
    assert ana_params["prompt_english"] != "quiet night piano"  # translated for her, as before ben's file
    assert "Made from: quiet night piano" in ben_details and "quiet night piano" not in ana_details


def test_stock_generate_draws_from_the_requests_own_random_numbers():
    """Stock ``generate`` samples with torch's global generator, which every request shares: each request's draws
    come from its own seeded generator instead, whoever draws in between, and the global state is left as it was."""
    import torch

    from models.musicgen.backends import own_random_numbers

    g = torch.Generator().manual_seed(3)
    first = own_random_numbers(g, torch.rand, 4)
    torch.manual_seed(99)
    torch.rand(10)  # another request draws from the global generator meanwhile
    before = torch.get_rng_state()
    second = own_random_numbers(g, torch.rand, 4)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(torch.cat([first, second]), torch.rand(8, generator=torch.Generator().manual_seed(3)))


def test_stock_requests_at_once_each_get_their_seeds_music(tiny_musicgen_dir, monkeypatch):
    """Two stock requests (``MUSICGEN_FAST_PATH=0``) in flight together: each gets the music its seed gives alone."""
    import numpy as np

    from models import musicgen

    monkeypatch.setenv("MUSICGEN_FAST_PATH", "0")
    model = musicgen.MusicGenModel(str(tiny_musicgen_dir), "cpu")
    asks = [("lo fi", musicgen.SamplingParams(duration=2.0, seed=1)),
            ("rock", musicgen.SamplingParams(duration=2.0, seed=2, stride=10))]
    alone = [model.generate(p, s).codes for p, s in asks]
    together: list = [None, None]
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, model.generate(*asks[i]).codes))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(np.array_equal(a, b) for a, b in zip(alone, together))


# ------------------------------------------------------------------ a client that goes away, Stop over the API
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time the process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def cores_used(pid: int, seconds: float = 2.0) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


GREEDY_CLIENT = """
import sys, time
from gradio_client import Client
client = Client(sys.argv[1], verbose=False)
jobs = [client.submit("pop", "", 240, 250, 0.0, 1.0, 3.0, str(seed), 1, 18, api_name="/text_to_music")
        for seed in (1, 2)]
while not all(job.outputs() for job in jobs):  # both streaming: both runs are computing
    time.sleep(0.05)
print("both going", flush=True)
time.sleep(600)
"""


def test_a_client_killed_with_two_runs_in_flight_leaves_the_server_idle(live_app):
    """The issue-42 check: a client with two long runs is killed; both runs stop, and the server falls to idle."""
    client = subprocess.Popen([sys.executable, "-c", GREEDY_CLIENT, live_app.url], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert client.stdout.readline().strip() == "both going"
        assert cores_used(live_app.process.pid, 1.0) > 0.5  # computing
    finally:
        client.kill()
        client.wait(10)
    deadline = time.monotonic() + 60  # gradio may notice a dropped client only at its next heartbeat
    while (used := cores_used(live_app.process.pid)) > 0.2:
        assert time.monotonic() < deadline, f"still computing at {used:.2f} cores after the client went away"
    assert "its 2 run(s)" in live_app.log.read_text()


def test_stop_over_the_api_stops_generate_and_extend_in_flight(two_clients):
    ana, _ = two_clients
    ana.predict("pop", *TEXT_ARGS, api_name="/text_to_music")  # a result to extend
    jobs = [ana.submit("pop", "", 120, 250, 0.0, 1.0, 3.0, "4", 1, 18, api_name="/text_to_music"),
            ana.submit(120, api_name="/text_to_music_extend")]
    while not all(job.outputs() for job in jobs):  # both are making music
        time.sleep(0.05)
    ana.predict(api_name="/text_to_music_stop")
    for job in jobs:  # each kept what it had finished, or said that nothing was
        try:
            params = job.result()[-3]
            assert params["stopped"] and params["seconds"] < 120
        except Exception as e:  # noqa: BLE001 - gradio_client raises the app's message
            assert "Stopped before any music was finished" in str(e)


def test_a_run_whose_event_is_closed_early_stops_its_work():
    """gradio closes an event's generator when its client is gone, before the session itself is seen to close: the
    work in the run's thread is told to stop then, not left computing for nobody."""
    from ui.runs import page_run

    stopped = threading.Event()

    def work(hooks):
        hooks["progress"](0.1, "working")
        if hooks["cancel"].wait(10):
            stopped.set()
        return ["done"]

    run = page_run(None, "text", 1, lambda fraction, desc=None: None, work)
    next(run)  # the run is going (its first update came)
    run.close()  # what gradio does with the event of a client that went away
    assert stopped.wait(10)
