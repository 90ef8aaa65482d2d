"""docs/OPERATING.md's one-machine Serve command, as written (``./run.sh app --replicas 2``), on whatever machine runs the
tests (2 cores here): every role's two replicas fit the local cluster by sharing its CPUs, the page comes up, music
is made through Serve (a replica killed mid-run: tests/test_serve.py, on a cluster of its own). And the plain
arithmetic of fitting replicas to a machine, and a cluster too small for what is asked saying so at once."""

from __future__ import annotations

import re
import subprocess

import pytest

pytest.importorskip("ray.serve", reason="requirements-serve.txt installs ray[serve] (./run.sh test)")

from serving import placement, ray_serve  # noqa: E402
from tests.live_app import start_app  # noqa: E402

SERVED = re.compile(r"Ray Serve replica (\d+) \(music-demo-text\)")
DETAILS = 6  # /text_to_music's outputs: 4 players, picture, params, details, downloads


def test_replicas_share_a_machine_with_fewer_cores_than_they_would_ask_for():
    count = len(ray_serve.ROLES) * 2  # every role, 2 replicas of 1 thread and 1 GPU each, on 2 cores and 1 GPU
    cpus, gpus, said = placement.fit_to_machine(len(ray_serve.ROLES), 2, 1, 1.0, cpus=2, gpus=1)
    assert cpus * count <= 2 and cpus == pytest.approx(2 / count, abs=0.01) and gpus * count <= 1
    assert f"{count} replicas on 2 CPU(s)" in said and "--serve-roles" in said
    assert placement.fit_to_machine(1, 2, 1, 0.0, cpus=3, gpus=0) == (1.0, 0.0, "")  # as asked where it fits


def replica_pids(role: str = "text") -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if f"ServeReplica:music-demo-{role}" in line]


def test_the_readmes_one_machine_command_serves_here(
        tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, tiny_htdemucs_dir, tiny_translator_dir,
        tiny_watermark_dir, tiny_ace_step_dir):
    from gradio_client import Client

    app = start_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, log_name="serve-one-machine.log",
                    extra_args=["--replicas", "2",  # OPERATING's command, with the tiny models
                                "--separator-model", str(tiny_htdemucs_dir),
                                "--translation-model", str(tiny_translator_dir),
                                "--watermark-model", str(tiny_watermark_dir), "--song-model", str(tiny_ace_step_dir)],
                    env={"RAY_USAGE_STATS_ENABLED": "0"})
    try:
        assert len(replica_pids()) == 2 and len(replica_pids("song")) == 2  # every role, two replicas
        made = Client(app.url, verbose=False).predict("lo fi piano", "", 2, 250, 0.0, 1.0, 3.0, "3", 1,
                                                      api_name="/text_to_music")
        assert int(SERVED.search(made[DETAILS]).group(1)) in replica_pids()  # made by one of them, through Serve
    finally:
        app.stop()
    assert "each asks Ray for" in app.log.read_text()  # the log says how the replicas were fitted
