"""utils.chroma: musical facts, the resampler, and (where torchaudio imports) the official extractor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from utils.audio import sinc_resample
from utils.chroma import CHROMA_NAMES, ChromaExtractor

SR = 32000


def sine(freqs: list[float], seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs) * 0.8).astype(np.float32)


# torchaudio's own Python code, unpacked by ``./run.sh test`` from its wheel without the compiled extension (the
# registry's builds link CUDA and do not import on a CPU machine; resample and Spectrogram need no extension).
TORCHAUDIO_PYTHON = Path(sys.prefix) / "torchaudio-python"
OFFICIAL = """
import sys
import numpy as np
import torch
from transformers import MusicgenMelodyFeatureExtractor

extractor = MusicgenMelodyFeatureExtractor()
signals = np.load(sys.argv[1])
out = {}
for name in signals.files:
    rate = int(name.split("_")[-1])
    # a tensor: given a numpy array at another rate, transformers hands torchaudio a numpy dtype and fails
    out[name] = extractor(torch.from_numpy(signals[name]), sampling_rate=rate, return_tensors="pt").input_features.numpy()
np.savez(sys.argv[2], **out)
"""


def official_chroma(signals: dict[str, np.ndarray], tmp_path: Path) -> dict[str, np.ndarray]:
    """transformers' ``MusicgenMelodyFeatureExtractor`` on each signal (named ``..._{rate}``), run with torchaudio in
    a process of its own: the installed torchaudio where it imports, else its Python code from ``run.sh``."""
    env = dict(os.environ)
    try:
        import torchaudio  # noqa: F401
    except Exception as e:  # noqa: BLE001 - a CUDA-only build raises OSError, a missing one ImportError
        if not (TORCHAUDIO_PYTHON / "torchaudio" / "__init__.py").is_file():
            if os.environ.get("CI"):
                pytest.fail(f"torchaudio's Python code is missing from {TORCHAUDIO_PYTHON}: ./run.sh test unpacks it")
            pytest.skip(f"torchaudio does not import here ({type(e).__name__}) and ./run.sh test has not unpacked it")
        env["PYTHONPATH"] = os.pathsep.join([str(TORCHAUDIO_PYTHON), env.get("PYTHONPATH", "")])
    np.savez(tmp_path / "in.npz", **signals)
    subprocess.run([sys.executable, "-c", OFFICIAL, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")], env=env,
                   check=True, capture_output=True, timeout=300)
    with np.load(tmp_path / "out.npz") as made:
        return {name: made[name] for name in made.files}


@pytest.mark.parametrize(("freq", "name"), [(440.0, "A"), (261.63, "C"), (392.0, "G"), (277.18, "C#")])
def test_a_sine_lights_its_pitch_class(freq, name):
    chroma = ChromaExtractor()(sine([freq]), SR)
    assert chroma.shape == (1, 24, 12)  # 3 s at 32 kHz, hop 4096, centred frames
    assert torch.all(chroma.sum(-1) == 1)  # one-hot per frame
    assert {CHROMA_NAMES[i] for i in chroma[0].argmax(-1).tolist()} == {name}


def test_c_major_triad_lights_c_e_g():
    raw = ChromaExtractor().raw_chroma(sine([261.63, 329.63, 392.0]), SR).mean(0)
    top3 = {CHROMA_NAMES[i] for i in torch.topk(raw, 3).indices.tolist()}
    assert top3 == {"C", "E", "G"}


def test_other_rates_are_resampled_first():
    at_44k = ChromaExtractor()(sine([440.0], sr=44100), 44100)
    assert at_44k.shape == (1, 24, 12)
    assert set(at_44k[0].argmax(-1).tolist()) == {9}


def test_melody_longer_than_30_s_is_cut():
    assert ChromaExtractor()(sine([440.0], seconds=40.0), SR).shape[1] == 30 * SR // 4096 + 1


def test_very_short_clip_is_padded_to_one_window():
    assert ChromaExtractor()(sine([440.0], seconds=0.2), SR).shape == (1, 5, 12)


def test_stereo_is_refused():
    with pytest.raises(ValueError, match="mono"):
        ChromaExtractor().raw_chroma(np.zeros((2, 100), dtype=np.float32), SR)


def test_settings_come_from_the_checkpoint(tiny_melody_dir):
    assert ChromaExtractor.from_pretrained(tiny_melody_dir) == ChromaExtractor()


def test_sinc_resample_keeps_a_tone_and_the_length():
    x = torch.from_numpy(sine([1000.0], seconds=1.0, sr=44100))
    y = sinc_resample(x, 44100, 32000, lowpass_filter_width=24, rolloff=0.945)
    assert y.shape == (32000,)
    spectrum = torch.fft.rfft(y).abs()
    assert int(spectrum.argmax()) == 1000  # 1 s at 32 kHz: 1 Hz bins
    assert sinc_resample(x, 44100, 44100) is x
    # A tone above the new Nyquist (16 kHz) is filtered out, not folded back.
    high = torch.from_numpy(sine([20000.0], seconds=1.0, sr=44100))
    assert sinc_resample(high, 44100, 32000, 24, 0.945)[1000:-1000].abs().max() < 0.01  # edges ring


def test_equals_the_official_extractor(hummed_melody, tmp_path):
    """The same one-hot chroma as transformers' extractor running torchaudio, frame for frame: tones with noise at
    three rates, a hummed melody, a 40 s piece (cut at 30 s) and a clip shorter than one window."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    hummed, hummed_rate = sf.read(str(hummed_melody), dtype="float32")
    signals = {f"tones_{sr}": sine([220.0, 330.0], seconds=5.0, sr=sr)
               + 0.05 * rng.standard_normal(5 * sr).astype(np.float32) for sr in (32000, 44100, 48000)}
    signals[f"hummed_{hummed_rate}"] = hummed if hummed.ndim == 1 else hummed.mean(axis=1)
    signals["long_32000"] = sine([261.63, 392.0], seconds=40.0)
    signals["short_22050"] = sine([440.0], seconds=0.2, sr=22050)
    expected = official_chroma(signals, tmp_path)
    for name, audio in signals.items():
        ours = ChromaExtractor()(audio, int(name.split("_")[-1])).numpy()
        assert ours.shape == expected[name].shape, name
        assert np.array_equal(ours, expected[name].astype(ours.dtype)), name
