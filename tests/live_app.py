"""Start the app as its own process, the way a user does, and stop it by its process id."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored: screenshots, server logs
START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveApp:
    """A running ``python app.py`` process."""

    process: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(15)


def start_app(piano: Path, musicgen: Path, melody: Path, log_name: str = "app-server.log") -> LiveApp:
    """Launch app.py on 127.0.0.1 with the given model folders (flags and env vars, as a user would).

    Waits until the page answers; raises RuntimeError with the server log if it dies or never answers.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / log_name
    env = os.environ | {
        "GRADIO_ANALYTICS_ENABLED": "False",
        "MUSICGEN_MELODY_MODEL": str(melody),  # one model by env var, the others by flags
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        sys.executable, "app.py", "--server-name", "127.0.0.1", "--server-port", str(port),
        "--piano-model", str(piano), "--musicgen-model", str(musicgen), "--device", "cpu",
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return LiveApp(process, url, log)
        except OSError:
            time.sleep(0.5)
    app = LiveApp(process, url, log)
    app.stop()
    raise RuntimeError(f"app.py did not answer on {url} within {START_TIMEOUT_S:.0f} s:\n{log.read_text()[-4000:]}")
