"""docs/OPERATING.md's one-machine Serve command, as written (``./run.sh app --replicas 2``), on whatever machine runs the
tests (2 cores here): every role's two replicas fit the local cluster by sharing its CPUs, the page comes up, music
is made through Serve, a replica killed mid-run ends only its run, and the next request is served. And the plain
arithmetic of fitting replicas to a machine, and a cluster too small for what is asked saying so at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

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


def busiest(pids: list[int], seconds: float = 1.0) -> int:
    """The process among ``pids`` that used the most CPU over ``seconds`` (the replica making music)."""
    def cpu(pid: int) -> int:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    before = {pid: cpu(pid) for pid in pids}
    time.sleep(seconds)
    return max(pids, key=lambda pid: cpu(pid) - before[pid])


def test_the_readmes_one_machine_command_serves_here_and_survives_a_killed_replica(
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
        outcome: dict[int, object] = {}

        def run(i: int) -> None:
            try:
                outcome[i] = Client(app.url, verbose=False).predict(
                    "lo fi piano", "", 120, 250, 0.0, 1.0, 3.0, str(10 + i), 1, api_name="/text_to_music")
            except Exception as e:  # noqa: BLE001
                outcome[i] = e

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(6)  # both pieces are being made (Serve's router may put both on one replica)
        victim = busiest(replica_pids())
        os.kill(victim, signal.SIGKILL)
        for t in threads:
            t.join(400)
        failed = [v for v in outcome.values() if isinstance(v, Exception)]
        assert failed and all("restarted" in str(e) for e in failed), outcome  # the victim's runs, said plainly
        for finished in (v for v in outcome.values() if not isinstance(v, Exception)):  # the others' went on
            assert int(SERVED.search(finished[DETAILS]).group(1)) != victim
        after = Client(app.url, verbose=False).predict("lo fi piano", "", 2, 250, 0.0, 1.0, 3.0, "3", 1,
                                                       api_name="/text_to_music")
        assert SERVED.search(after[DETAILS])  # the next request is served through Serve
    finally:
        app.stop()
    assert "each asks Ray for" in app.log.read_text()  # the log says how the replicas were fitted
