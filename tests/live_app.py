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
# The app's model thread's kernel threads (MODEL_KERNEL_THREADS), when set: None lets the app pick its own, as when a
# user starts it (the benchmarks). The test suite sets 1 (tests/conftest.py): its tiny models gain nothing from a team
# of threads, and the live tests run beside the other tests' process (run.sh).
KERNEL_THREADS: int | None = None


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


# Run app.py with `spaces` hidden, as on a machine where it is not installed (a meta-path entry refusing it).
WITHOUT_SPACES = (
    "import runpy, sys\n"
    "class NoSpaces:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'spaces' or name.startswith('spaces.'):\n"
    "            raise ModuleNotFoundError(\"No module named 'spaces'\", name='spaces')\n"
    "sys.meta_path.insert(0, NoSpaces())\n"
    "sys.argv[0] = 'app.py'\n"
    "runpy.run_path('app.py', run_name='__main__')\n"
)


def start_app(
    piano: Path,
    musicgen: Path,
    melody: Path,
    log_name: str = "app-server.log",
    extra_args: list[str] | None = None,
    without_spaces: bool = False,
    env: dict[str, str] | None = None,
    entry_code: str | None = None,
) -> LiveApp:
    """Launch app.py on 127.0.0.1 with the given model folders, as a user would.

    The piano model is given by its flag, the two MusicGen models by their env vars (``MUSICGEN_MODEL``,
    ``MUSICGEN_MELODY_MODEL``). ``without_spaces`` hides the `spaces` package (plain calls instead of
    ZeroGPU's decorator); ``env`` adds environment variables; ``entry_code`` is Python run with ``-c`` instead of
    ``app.py`` (it runs app.py itself, after its own set-up: a benchmark's probe). Waits until the page answers;
    raises RuntimeError with the server log if it dies or never answers.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / log_name
    inherited = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MODEL_KERNEL_THREADS")}
    env = inherited | {  # the app picks its own threads, as when a user starts it
        "GRADIO_ANALYTICS_ENABLED": "False",
        "MUSICGEN_MODEL": str(musicgen),
        "MUSICGEN_MELODY_MODEL": str(melody),
        "HF_HUB_OFFLINE": "1",
    } | ({"MODEL_KERNEL_THREADS": str(KERNEL_THREADS)} if KERNEL_THREADS else {}) | (env or {})
    entry = ["-c", entry_code] if entry_code else ["-c", WITHOUT_SPACES] if without_spaces else ["app.py"]
    command = [
        sys.executable, *entry, "--server-name", "127.0.0.1", "--server-port", str(port),
        "--piano-model", str(piano), "--device", "cpu", *(extra_args or []),
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
