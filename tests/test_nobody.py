"""Nothing computes for nobody: an API client that goes away in the middle of a long job (its process killed, as a
closed laptop or a dropped connection does), in every long job: text, melody, a piano cover, sheet music of a
recording, the video. Its session closes, the job stops at its next step, and the server goes back to idle while
the job alone would have gone on far longer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf

IDLE_CPU_S = 0.25  # CPU seconds the server may spend in a 2 s window and count as idle (its heartbeat, polling)
STOP_WITHIN_S = 45.0


@pytest.fixture(scope="module")
def long_song(chorale, tmp_path_factory) -> Path:
    """The chorale looped to three minutes: a cover or a transcription of it runs far past the test's wait."""
    audio, rate = sf.read(str(chorale[0]), always_2d=True)
    repeats = int(np.ceil(180 * rate / len(audio)))
    path = tmp_path_factory.mktemp("long") / "long_song.wav"
    sf.write(str(path), np.tile(audio, (repeats, 1))[: 180 * rate], rate)
    return path


CLIENT = textwrap.dedent("""
    import sys, time
    from gradio_client import Client, handle_file
    url, job, song, melody = sys.argv[1:5]
    client = Client(url, verbose=False)
    if job == "text":
        run = client.submit("pop", "", 240, 250, 0.0, 1.0, 3.0, "3", 1, 18, api_name="/text_to_music")
    elif job == "melody":
        run = client.submit(handle_file(melody), 0, 0, "jazz", "", 240, 250, 0.0, 1.0, 3.0, "3", 1,
                            api_name="/melody_to_music")
    elif job == "cover":
        run = client.submit(handle_file(song), "composer1", api_name="/piano_cover")
    elif job == "sheet":
        run = client.submit(handle_file(song), api_name="/piano_to_sheet_music")
    elif job == "video":
        client.predict(handle_file(song), "composer1", api_name="/piano_cover")
        run = client.submit("Acoustic grand piano", 0.5, "landscape", api_name="/piano_cover_video")
    while run.status().code.name not in ("PROCESSING", "ITERATING", "PROGRESS"):
        time.sleep(0.05)
    print("started", flush=True)
    time.sleep(3600)
""")


def server_cpu(pid: int) -> float:
    """CPU seconds the server and its children (ffmpeg) have used."""
    process = psutil.Process(pid)
    total = sum(process.cpu_times()[:2])
    for child in process.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


def wait_until_idle(pid: int, within_s: float) -> float:
    """Seconds until the server spends under IDLE_CPU_S in a 2 s window (fails after ``within_s``)."""
    began = time.monotonic()
    while time.monotonic() - began < within_s:
        before = server_cpu(pid)
        time.sleep(2.0)
        if server_cpu(pid) - before < IDLE_CPU_S:
            return time.monotonic() - began
    raise AssertionError(f"the server was still computing {within_s:.0f} s after its client went away")


@pytest.mark.parametrize("job, stopped", [
    ("text", "(text)"), ("melody", "(melody)"), ("cover", "(piano)"), ("sheet", "(piano-sheet)"),
    ("video", "(piano-video)"),
])
def test_a_client_that_goes_away_stops_its_job(live_app, long_song, chorale, hummed_melody, job, stopped, tmp_path):
    song = chorale[0] if job == "video" else long_song
    wait_until_idle(live_app.process.pid, 60)  # whatever ran before this test is over
    client = subprocess.Popen([sys.executable, "-c", CLIENT, live_app.url, job, str(song), str(hummed_melody)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert client.stdout.readline().strip() == "started"
        time.sleep(1.0)  # well into the job
        before = server_cpu(live_app.process.pid)
        time.sleep(2.0)  # (beside the other tests' process it gets about half a core; idle, it uses 0.125 s a second)
        assert server_cpu(live_app.process.pid) - before > 0.5  # it is computing
        log_before = live_app.log.read_text()
    finally:
        os.killpg(client.pid, signal.SIGKILL)
        client.wait(10)
    began = time.monotonic()  # the log first: on a busy machine a starved server can look idle before it noticed
    while not ("A session closed" in (said := live_app.log.read_text()[len(log_before):]) and stopped in said):
        assert time.monotonic() - began < STOP_WITHIN_S, said[-2000:]  # stopped because nobody is left, not finished
        time.sleep(0.2)
    wait_until_idle(live_app.process.pid, STOP_WITHIN_S)
