"""Shared fixtures: tiny real-architecture models and real music rendered to audio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from tests.music_fixtures import CLICK_BPM, click_track, render_corpus_piece  # noqa: E402
from tests.tiny_models import build_tiny_pop2piano  # noqa: E402

SAMPLE_RATE = 44100


@pytest.fixture(scope="session")
def tiny_pop2piano_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Pop2Piano checkpoint folder (model + feature extractor + tokenizer)."""
    return build_tiny_pop2piano(tmp_path_factory.mktemp("tiny-pop2piano"))


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


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
