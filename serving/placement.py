"""Where the Ray Serve replicas go: what each asks Ray for on the machine it starts on (``fit_to_machine``), whether
the cluster has room for them (``check_room``), and waiting until Ray has placed them (``wait_until_placed``), each
failure said with what a replica needs, what the cluster has free and the flag to change. Ray is imported inside
the functions that ask it."""

from __future__ import annotations

import math
import time
from typing import Any

CONNECT_TIMEOUT_S = 5.0


def check_reachable(address: str) -> None:
    """Fail at once when a ``host:port`` cluster address answers nothing (Ray itself would keep trying for
    minutes); other forms ("auto", "ray://...") are left to Ray.

    Raises:
        ConnectionError: nothing listens there.
    """
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
        pass


def share(have: float, replicas: int) -> float:
    """An equal share of ``have`` (CPUs or GPUs) for each of ``replicas``, rounded down to what Ray takes."""
    return math.floor(have / replicas * 100) / 100


def fit_to_machine(roles: int, replicas: int, threads: int, gpus_each: float, cpus: float,
                   gpus: float) -> tuple[float, float, str]:
    """What each replica (``replicas`` of each of ``roles`` roles) asks Ray for on a cluster of ``cpus`` and ``gpus``:
    its ``threads`` and ``gpus_each``, or, where all the replicas would ask for more than the cluster has, an equal
    share (the replicas then share the cores or the GPU). Returns (CPUs, GPUs, a line for the log: "" when nothing
    was changed)."""
    count = roles * replicas
    want_cpus, want_gpus = float(threads), gpus_each
    notes = []
    if count * want_cpus > cpus and share(cpus, count) > 0:
        want_cpus = share(cpus, count)
        notes.append(f"{want_cpus:g} CPU")
    if want_gpus and count * want_gpus > gpus and share(gpus, count) > 0:
        want_gpus = share(gpus, count)
        notes.append(f"{want_gpus:g} GPU")
    if not notes:
        return want_cpus, want_gpus, ""
    return want_cpus, want_gpus, (
        f"{roles} role(s) x {replicas} replica(s) = {count} replicas on {cpus:g} CPU(s)"
        f"{f' and {gpus:g} GPU(s)' if want_gpus else ''}: each asks Ray for {' and '.join(notes)} and they share "
        f"them ({threads} thread(s) a replica); --serve-roles deploys fewer roles")


PLACE_TIMEOUT_S = 60.0  # a replica not placed by then will not be: Ray says so after 30 s
START_TIMEOUT_S = 900.0  # replicas placed but still starting (importing torch) after this long: something is wrong


def wait_until_placed(names: list[str], need: str, timeout_s: float = PLACE_TIMEOUT_S) -> None:
    """Wait for the applications ``names`` to run. A replica that Ray cannot place (too few CPUs, GPUs or memory
    on the cluster) ends the wait within ``timeout_s``, saying what each replica needs (``need``), what the
    cluster has and which flag to change; so does a deployment that fails.

    Raises:
        RuntimeError: a deployment failed or cannot be placed.
    """
    import ray
    from ray import serve

    started = time.monotonic()
    while True:
        applications = serve.status().applications
        waiting = []
        for name in names:
            app = applications.get(name)
            if app is not None and app.status == "RUNNING":
                continue
            messages = [] if app is None else [d.message for d in app.deployments.values() if d.message]
            if app is not None and app.status in ("DEPLOY_FAILED", "UNHEALTHY"):
                raise RuntimeError(f"the deployment {name} failed: {' '.join(messages) or app.message}")
            unplaced = (app is None or any("to be scheduled" in m or "Resources required" in m for m in messages)
                        or not any(d.replica_states.get("STARTING") or d.replica_states.get("RUNNING")
                                   for d in app.deployments.values()))
            waiting.append((name, unplaced))
        if not waiting:
            return
        elapsed = time.monotonic() - started
        if (elapsed > timeout_s and any(unplaced for _, unplaced in waiting)) or elapsed > START_TIMEOUT_S:
            free = ray.available_resources()
            have = ", ".join(f"{free.get(k, 0):g} {k}" for k in ("CPU", "GPU") if k in ray.cluster_resources())
            raise RuntimeError(
                f"{', '.join(n for n, _ in waiting)} could not be placed on the cluster within {elapsed:.0f} s: "
                f"each replica needs {need}, and the cluster has {have or 'nothing'} free. Lower --replicas or "
                "--replica-threads (--replica-gpus on GPUs), deploy fewer roles with --serve-roles, or add nodes.")
        time.sleep(1.0)


def unplaceable(replicas: int, cpus: float, gpus: float) -> str:
    """Why ``replicas`` new replicas of ``cpus`` CPUs and ``gpus`` GPUs each cannot be placed on the cluster now
    ("" when they can), from what it has free."""
    import ray

    free = ray.available_resources()
    short = [f"{replicas * want:g} {kind} ({free.get(kind, 0.0):g} free)" for kind, want in (("CPU", cpus), ("GPU", gpus))
             if want and replicas * want > free.get(kind, 0.0) + 1e-6]
    return " and ".join(short)


def check_room(replicas: int, cpus: float, gpus: float, need: str) -> None:
    """Fail at once, plainly, when the new replicas cannot fit the cluster's free CPUs and GPUs.

    Raises:
        RuntimeError: what they need, what the cluster has, and which flag to change.
    """
    short = unplaceable(replicas, cpus, gpus) if replicas else ""
    if short:
        raise RuntimeError(
            f"{replicas} replica(s) of {need} each need {short} on the cluster. Lower --replicas or "
            "--replica-threads (--replica-gpus on GPUs), deploy fewer roles with --serve-roles, or add nodes.")


def replicas_of(app: Any) -> int:
    """The replicas an application runs (or is starting)."""
    return sum(count for d in app.deployments.values() for state, count in d.replica_states.items()
               if state in ("RUNNING", "STARTING", "UPDATING"))
