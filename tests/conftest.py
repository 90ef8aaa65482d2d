"""Shared fixtures: tiny real-architecture models and real music rendered to audio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # noqa: E402 - before torch loads OpenMP (see below)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Tests compute on the main thread (fixtures, the loops compared with stock) and on the model thread (the
# wrappers). Two threads with OpenMP teams of 2 on 2 cores sleep between kernels (docs/performance-history.md, "Many
# users"): with one kernel thread each there are no teams, and the tiny models lose nothing (measured: 55 s
# instead of 94 s for the MusicGen tests). The apps the tests start get one too (below).
os.environ["MODEL_KERNEL_THREADS"] = "1"  # the model thread's too, in this process (models/__init__.py)
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# In this process the translator and the watermark are off unless a test names one (the tiny ones below): other
# tests compare written audio with the model's output, and prompts with what the model was given. The live app gets
# both tiny models, so the browser and API tests see the whole path.
os.environ.setdefault("PROMPT_TRANSLATION_MODEL", "off")
os.environ.setdefault("WATERMARK_MODEL", "off")

import tests.live_app  # noqa: E402
from tests.music_fixtures import CLICK_BPM, click_track, render_corpus_piece  # noqa: E402
from tests.tiny_models import (  # noqa: E402
    build_tiny_htdemucs,
    build_tiny_musicgen,
    build_tiny_pop2piano,
    build_tiny_translator,
    build_tiny_watermarker,
)

SAMPLE_RATE = 44100
# The apps the tests start compute with one kernel thread (measured 2026-12-08: the API client tests 74 s instead of
# 83 s with the app's own two), and leave the other core to the tests that run beside them (run.sh).
tests.live_app.KERNEL_THREADS = 1


@pytest.fixture(scope="session")
def tiny_pop2piano_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Pop2Piano checkpoint folder (model + feature extractor + tokenizer)."""
    return build_tiny_pop2piano(tmp_path_factory.mktemp("tiny-pop2piano"))


@pytest.fixture(scope="session")
def tiny_musicgen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random MusicGen (text) checkpoint folder: T5 tokenizer + T5 + 32 kHz EnCodec + decoder."""
    return build_tiny_musicgen(tmp_path_factory.mktemp("tiny-musicgen"))


@pytest.fixture(scope="session")
def tiny_musicgen_stereo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random stereo MusicGen checkpoint folder (8 codebooks, 2 channels)."""
    return build_tiny_musicgen(tmp_path_factory.mktemp("tiny-musicgen-stereo"), stereo=True)


@pytest.fixture(scope="session")
def tiny_melody_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random MusicGen-Melody checkpoint folder."""
    return build_tiny_musicgen(tmp_path_factory.mktemp("tiny-musicgen-melody"), melody=True)


@pytest.fixture(scope="session")
def tiny_melody_stereo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random stereo MusicGen-Melody checkpoint folder (8 codebooks, 2 channels)."""
    return build_tiny_musicgen(tmp_path_factory.mktemp("tiny-musicgen-melody-stereo"), melody=True, stereo=True)


@pytest.fixture(scope="session")
def tiny_htdemucs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random HTDemucs in the hub's format (bag .yaml + .safetensors), as `adefossez/HTDemucs` holds it."""
    return build_tiny_htdemucs(tmp_path_factory.mktemp("tiny-htdemucs"))


@pytest.fixture(scope="session")
def tiny_translator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_translator(tmp_path_factory.mktemp("tiny_translator"))


@pytest.fixture(scope="session")
def tiny_watermark_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_watermarker(tmp_path_factory.mktemp("tiny_watermark"))


@pytest.fixture(scope="session")
def tiny_transkun_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transkun", reason="requirements-transcribe.txt installs it (./run.sh)")
    from tests.tiny_models import build_tiny_transkun

    return build_tiny_transkun(tmp_path_factory.mktemp("tiny_transkun"))


@pytest.fixture(scope="session")
def hummed_melody(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four seconds of a sung-like melody (A3 C4 E4 A4 with vibrato and harmonics) at 44.1 kHz."""
    import soundfile as sf

    sr = SAMPLE_RATE
    notes = [220.0, 261.63, 329.63, 440.0]
    t = np.arange(sr) / sr
    parts = []
    for f in notes:
        phase = 2 * np.pi * f * t + 0.3 * np.sin(2 * np.pi * 5 * t)
        parts.append(np.hanning(sr) ** 0.2 * (0.5 * np.sin(phase) + 0.15 * np.sin(2 * phase)))
    path = tmp_path_factory.mktemp("melody") / "hum.wav"
    sf.write(str(path), np.concatenate(parts).astype(np.float32), sr)
    return path


@pytest.fixture(scope="session")
def chorale(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """Bach's chorale BWV 66.6 (music21 corpus) with a pop drum beat, rendered by FluidSynth: (wav, bpm)."""
    path = tmp_path_factory.mktemp("music") / "bwv66.6_with_drums.wav"
    bpm = render_corpus_piece("bach/bwv66.6", path, SAMPLE_RATE, with_drums=True)
    return path, bpm


@pytest.fixture(scope="session")
def clicks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """Eight seconds of clicks at 120 BPM over a quiet A3 tone: (wav, bpm)."""
    import soundfile as sf

    path = tmp_path_factory.mktemp("clicks") / "clicks_120bpm.wav"
    sf.write(str(path), click_track(8.0, SAMPLE_RATE), SAMPLE_RATE)
    return path, CLICK_BPM


@pytest.fixture(scope="session")
def tiny_ace_step_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ACE-Step 1.5 pipeline in diffusers' layout (model_index.json and a folder per part)."""
    from tests.tiny_models import build_tiny_ace_step

    return build_tiny_ace_step(tmp_path_factory.mktemp("tiny-ace-step"))


@pytest.fixture(scope="session")
def live_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, tiny_htdemucs_dir, tiny_translator_dir,
             tiny_watermark_dir, tiny_ace_step_dir):
    """The app running as its own process on 127.0.0.1 with the tiny model folders; stopped afterwards. Its song
    model computes in float32 (``SONG_DTYPE``), so its songs can be compared with stock float32 ones."""
    from tests.live_app import start_app

    app = start_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir,
                    extra_args=["--separator-model", str(tiny_htdemucs_dir),
                                "--translation-model", str(tiny_translator_dir),
                                "--watermark-model", str(tiny_watermark_dir),
                                "--song-model", str(tiny_ace_step_dir)],
                    env={"SONG_DTYPE": "float32"})
    yield app
    app.stop()


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ------------------------------------------------------------------------------------------------ the two tiers
# A test is "live" when it starts an app process, a browser or a Ray cluster: through one of these fixtures (pytest
# lists the fixtures a test needs, however indirectly), or by starting one itself (marked in its module).
# `./run.sh test --quick` runs the others, for the edit-test loop; `./run.sh test` runs everything, the live tests
# in one process and the others beside them (run.sh).
LIVE_FIXTURES = {"live_app", "browser", "small_queue_app", "mcp_app", "newcomer_app", "cluster", "front_ends"}
LIVE_MODULES = {"test_serve_one_machine", "test_notebook"}  # they start the app themselves
LIVE_TESTS = {"test_workers_and_ray_give_the_same_midi_as_one_worker",  # starts a local Ray cluster
              "test_a_cluster_that_cannot_be_reached_ends_the_start_plainly"}  # starts app.py (which looks for one)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live: starts an app process, a browser or a Ray cluster (left out by --quick)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        fixtures = set(getattr(item, "fixturenames", ()))
        if (LIVE_FIXTURES & fixtures) or module in LIVE_MODULES or item.originalname in LIVE_TESTS:
            item.add_marker(pytest.mark.live)
