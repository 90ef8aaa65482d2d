"""The models on Ray Serve behind the same page (``serving/ray_serve.py``), driven as users drive the app: a Ray
cluster started as an operator starts one (``ray start --head``), front end A that deploys the text role as two
replicas of one thread and one request each, with two requests waiting at most (``--replicas 2 --ray-address``), front end B that joins the same
cluster and uses A's deployments, and gradio clients. Two clients at once are served by two replica processes
(their process ids are in the results' technical details); a piece streams through Serve and Stop keeps its
finished part; a killed replica ends its run with a plain message while the other run finishes and the next one is
served; a full queue says "busy"; and the same seed makes the same tokens in this process and through Serve."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.serve", reason="requirements-serve.txt installs ray[serve] (./run.sh test)")

from tests.live_app import free_port, start_app  # noqa: E402

RAY = Path(sys.executable).with_name("ray")
SERVED = re.compile(r"Ray Serve replica (\d+) \(music-demo-text\)")
TEXT_ARGS = ("", 2, 250, 0.0, 1.0, 3.0)  # model (the app's own), seconds, top-k, top-p, temperature, guidance


def processes_of(folder: str) -> list[int]:
    """The processes whose command line names ``folder`` (a Ray cluster's own: its GCS, raylet, agents)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if folder in (entry / "cmdline").read_bytes().decode(errors="ignore"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster of 2 CPUs, as ``ray start --head`` makes one, in a folder of its own; afterwards its own
    processes are stopped (``ray stop`` would stop every Ray cluster on the machine, this test process's too)."""
    port = free_port()
    folder = f"/tmp/ray-serve-test-{port}"  # short: Ray's sockets live under it
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "SONG_DTYPE": "float32"}  # replicas take the cluster's env
    # 3 CPUs on a 2-core machine: the text role's two replicas and the song role's one
    subprocess.run([str(RAY), "start", "--head", f"--port={port}", "--num-cpus=3", "--include-dashboard=false",
                    "--disable-usage-stats", f"--temp-dir={folder}"], check=True, env=env, capture_output=True,
                   timeout=120)
    yield f"127.0.0.1:{port}"
    # Ray's gcs_server and raylet sit out a SIGTERM for 10 s and more (seen 2026-12-06): a short grace, then SIGKILL
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        for pid in processes_of(folder):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while processes_of(folder) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="module")
def front_ends(cluster, tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir):
    """Front end A deploys the text role on the cluster; front end B joins it and uses A's deployments."""
    common = ["--ray-address", cluster, "--serve-roles", "text", "--concurrency", "6", "--runs-per-visitor", "2",
              "--unload-after", "0.3",  # 18 s: the replicas unload their idle models as the front end would
              "--separator-model", "off", "--translation-model", "off", "--watermark-model", "off"]
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}  # Ray's token authentication, on by default
    a = start_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, log_name="serve-front-a.log", env=env,
                  extra_args=[*common, "--replicas", "2", "--replica-threads", "1", "--replica-requests", "1",
                              "--replica-queue", "2"])
    try:
        b = start_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, log_name="serve-front-b.log",
                      env=env, extra_args=common)
    except BaseException:
        a.stop()
        raise
    yield a, b
    b.stop()
    a.stop()


def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def served_by(details: str) -> int:
    match = SERVED.search(details)
    assert match, details
    return int(match.group(1))


def replica_pids() -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if "ServeReplica:music-demo-text" in line]


def make(app, seconds: float, seed: str = "") -> list:
    return client(app).predict("lo fi piano", TEXT_ARGS[0], seconds, *TEXT_ARGS[2:], seed, 1,
                               api_name="/text_to_music")


def test_two_clients_at_once_are_served_by_two_replicas(front_ends):
    a, _ = front_ends
    results: list = [None, None]

    def run(i: int) -> None:
        results[i] = make(a, 20, str(i + 1))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    pids = {served_by(r[musicgen_details()]) for r in results}
    assert len(pids) == 2 and pids <= set(replica_pids())


def musicgen_details() -> int:
    """Where the details are among /text_to_music's outputs: 4 players, picture, params, details, downloads."""
    return 6


def making(job) -> bool:
    """Whether ``job``'s progress says seconds of music are being made (its first window has begun)."""
    return any(" s made" in (unit.desc or "") for unit in (job.status().progress_data or []))


def test_a_piece_streams_through_serve_and_stop_keeps_what_is_finished(front_ends):
    a, _ = front_ends
    c = client(a)
    job = c.submit("lo fi piano", "", 240, *TEXT_ARGS[2:], "5", 1, api_name="/text_to_music")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not making(job):  # music is being made (not the model loading)
        time.sleep(0.2)
    assert job.outputs(), "nothing streamed"
    c.predict(api_name="/text_to_music_stop")
    *_, params, details, _downloads = job.result(timeout=120)
    assert params["stopped"] and 0 < params["seconds"] < 240
    served_by(details)


def test_a_full_queue_says_busy(front_ends):
    a, _ = front_ends
    jobs = [client(a) for _ in range(6)]
    running = [(c, c.submit("lo fi piano", "", 240, *TEXT_ARGS[2:], "", 1, api_name="/text_to_music")) for c in jobs]
    said: list[str] = []
    try:  # two run, two wait for a replica, the others are told the servers are busy
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("busy" in s for s in said):
            said = []
            for _, job in running:
                if job.done():
                    try:
                        job.result(timeout=1)
                    except Exception as e:  # noqa: BLE001
                        said.append(str(e))
            time.sleep(0.2)
        assert any("busy" in s for s in said), (said, [job.status().code for _, job in running])
    finally:  # the others stop, so that the next test finds the replicas free
        for c, job in running:
            c.predict(api_name="/text_to_music_stop")
        for _, job in running:
            with contextlib.suppress(Exception):  # the refused ones
                job.result(timeout=120)


def test_a_killed_replica_ends_its_run_plainly_and_the_rest_are_served(front_ends):
    a, _ = front_ends
    clients = [client(a) for _ in range(2)]
    jobs = [c.submit("lo fi piano", TEXT_ARGS[0], 240, *TEXT_ARGS[2:], str(10 + i), 1, api_name="/text_to_music")
            for i, c in enumerate(clients)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(making(job) for job in jobs):
        time.sleep(0.2)  # both pieces are being made, one on each replica
    victim = replica_pids()[0]
    os.kill(victim, signal.SIGKILL)
    outcome: dict[int, object] = {}
    while len(outcome) < 2 and time.monotonic() < deadline + 60:
        for i, job in enumerate(jobs):
            if i not in outcome and job.done():
                try:
                    outcome[i] = job.result(timeout=1)
                except Exception as e:  # noqa: BLE001
                    outcome[i] = e
        if any(isinstance(v, Exception) for v in outcome.values()):  # the victim's run ended: the other stops
            for i, c in enumerate(clients):                          # (Stop keeps its finished part)
                if i not in outcome:
                    c.predict(api_name="/text_to_music_stop")
        time.sleep(0.2)
    failed = [v for v in outcome.values() if isinstance(v, Exception)]
    finished = [v for v in outcome.values() if not isinstance(v, Exception)]
    assert len(failed) == 1 and "restarted" in str(failed[0]), outcome
    assert len(finished) == 1 and served_by(finished[0][musicgen_details()]) != victim
    after = make(a, 2, "3")  # the next request is served (Serve brings the replica back)
    assert served_by(after[musicgen_details()])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(replica_pids()) < 2:
        time.sleep(1)
    assert len(replica_pids()) == 2 and victim not in replica_pids()


def test_a_second_front_end_uses_the_same_replicas(front_ends):
    _, b = front_ends
    details = make(b, 2, "4")[musicgen_details()]
    assert served_by(details) in replica_pids()
    # B's flags ask for one replica (no --replicas); it uses A's two as they are, and says so
    assert "music-demo-text is already deployed on this cluster with 2 replica(s), not the 1" in b.log.read_text()


def test_replicas_unload_idle_models_after_the_front_ends_unload_after(front_ends, cluster):
    a, _ = front_ends
    make(a, 2, "6")
    logs = Path(f"/tmp/ray-serve-test-{cluster.rsplit(':', 1)[1]}/session_latest/logs")
    deadline = time.monotonic() + 60
    while not any("(text): unused for" in f.read_text(errors="ignore") for f in logs.glob("*.err")):
        assert time.monotonic() < deadline, "no replica unloaded its idle model"
        time.sleep(1)


def test_replicas_the_cluster_cannot_place_end_the_start_plainly(cluster, tiny_pop2piano_dir, tiny_musicgen_dir,
                                                                 tiny_melody_dir):
    """Asking for more than the cluster has never hangs: the start ends at once with what was needed, what the
    cluster has free, and the flags to change."""
    started = time.monotonic()
    with pytest.raises(RuntimeError) as failed:
        start_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, log_name="serve-too-big.log",
                  env={"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"},
                  extra_args=["--ray-address", cluster, "--serve-roles", "piano", "--replicas", "2",
                              "--replica-threads", "8"])
    said = str(failed.value)
    assert "2 replica(s) of 8 CPU each need 16 CPU" in said and "free)" in said
    assert "--replicas" in said and "--serve-roles" in said
    assert time.monotonic() - started < 60


SAME_TOKENS = """
import sys
import numpy as np
import ray
from models import musicgen
from serving import InProcess, ray_serve
from serving.in_process import default_settings

cluster, model = sys.argv[1], sys.argv[2]
settings = default_settings()
settings.translation_model = settings.separator_model = "off"
here = InProcess(settings)
request = musicgen.MusicRequest("lo fi piano", musicgen.SamplingParams(duration=3.0, seed=21), 2)
served = ray_serve.start(ray_serve.ServeSettings(address=cluster, roles=("text",)), {}, here)
through = served.music("text", model, request)
ray.shutdown()
alone = here.music("text", model, request)
print("served by", through.params["served_by"])
print("same tokens", np.array_equal(np.asarray(through.codes), np.asarray(alone.codes)), through.seed, alone.seed)
"""


def test_the_same_seed_makes_the_same_tokens_in_process_and_through_serve(front_ends, cluster, tiny_musicgen_dir):
    """A third process joins the cluster (as a front end does) and makes the same request through Serve and on its
    own runtime: the same tokens."""
    from tests.live_app import ROOT

    done = subprocess.run([sys.executable, "-c", SAME_TOKENS, cluster, str(tiny_musicgen_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"})
    assert "same tokens True 21 21" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "Ray Serve replica" in done.stdout


SAME_SONG = """
import sys
import numpy as np
import ray
from models import song
from serving import InProcess, ray_serve
from serving.in_process import default_settings

cluster, model = sys.argv[1], sys.argv[2]
settings = default_settings()
settings.translation_model = settings.separator_model = "off"
here = InProcess(settings)
request = song.SongRequest("pop", "[verse]\\n月光洒在窗前", seconds=10, seed=21)
served = ray_serve.start(ray_serve.ServeSettings(address=cluster, roles=("song",)), vars(settings), here)
chunks = []
through = served.song(model, request, stream=lambda rate, audio: chunks.append(audio.shape[-1]))
ray.shutdown()
alone = here.song(model, request)
print("served by", through.params["served_by"], "streamed", sum(chunks))
print("same song", float(np.abs(through.audio - alone.audio).max()) < 1e-4, through.seed, alone.seed)
"""


def test_a_song_through_serve_is_the_song_made_here(front_ends, cluster, tiny_ace_step_dir):
    """The song role on Ray Serve: a third process deploys it on the cluster and makes the same song through Serve
    (streamed) and on its own runtime."""
    from tests.live_app import ROOT

    done = subprocess.run([sys.executable, "-c", SAME_SONG, cluster, str(tiny_ace_step_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
                               "SONG_DTYPE": "float32"})
    assert "same song True 21 21" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "Ray Serve replica" in done.stdout and "streamed 480000" in done.stdout


def test_a_cluster_that_cannot_be_reached_ends_the_start_plainly(tiny_pop2piano_dir, tiny_musicgen_dir,
                                                                  tiny_melody_dir):
    """``--ray-address`` to nowhere: the app says so and exits with a non-zero status (no half-started page)."""
    from tests.live_app import ROOT

    done = subprocess.run(
        [sys.executable, "app.py", "--ray-address", f"127.0.0.1:{free_port()}", "--replicas", "1",
         "--piano-model", str(tiny_pop2piano_dir), "--musicgen-model", str(tiny_musicgen_dir),
         "--melody-model", str(tiny_melody_dir), "--server-port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"})
    assert done.returncode != 0
    assert "The model server (Ray cluster) at 127.0.0.1:" in done.stderr and "cannot be reached" in done.stderr


def test_without_ray_serve_replicas_say_what_to_install(monkeypatch):
    from serving import InProcess, ray_serve

    monkeypatch.setattr(ray_serve, "serve_missing", lambda: f"{ray_serve.INSTALL_HINT} (No module named 'ray')")
    with pytest.raises(RuntimeError, match=r"pip install -r requirements-serve.txt"):
        ray_serve.start(ray_serve.ServeSettings(), {}, InProcess())


def test_each_deployment_asks_for_its_own_resources():
    """CPU threads and GPUs come per deployment: a replica gets the Ray CPUs of its threads, its threads as its
    model thread's team, and the GPUs asked for (the app asks one where its models would run on CUDA)."""
    from app import replica_gpus
    from serving import ray_serve

    made = ray_serve.deployment("text", replicas=3, threads=2, models_per_replica=2, max_ongoing=4, max_queued=8,
                                gpus=0.5)
    options = made.ray_actor_options
    assert made.num_replicas == 3 and options["num_cpus"] == 2 and options["num_gpus"] == 0.5
    assert options["runtime_env"]["env_vars"]["MODEL_KERNEL_THREADS"] == "2"
    assert made.max_ongoing_requests == 4 and made.max_queued_requests == 8
    assert replica_gpus(None, "cpu") == 0.0 and replica_gpus(None, "cuda:0") == 1.0 and replica_gpus(0.25, "cpu") == 0.25
