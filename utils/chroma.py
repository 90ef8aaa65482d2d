"""Melody chroma for MusicGen-Melody, computed without torchaudio.

``MusicgenMelodyFeatureExtractor`` in transformers needs torchaudio (for its resampler and spectrogram),
which has no CPU build here. This module computes the same features with plain torch:
- the Hann-windowed sinc resampler torchaudio uses (``rolloff=0.945, lowpass_filter_width=24`` as the
  extractor calls it), written out from its published formula;
- ``torch.stft`` with a periodic Hann window, centred with reflect padding, power 2, normalised by the
  window's energy (torchaudio ``Spectrogram(normalized=True)``);
- transformers' ``chroma_filter_bank``, max-normalisation, then a one-hot of the loudest pitch class per frame.
Where torchaudio is importable the tests compare it with the official extractor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers.audio_utils import chroma_filter_bank

from utils.audio import sinc_resample
from utils.notes import NOTE_NAMES

CHROMA_NAMES = NOTE_NAMES  # the chroma bins, C first


@dataclass(frozen=True)
class ChromaExtractor:
    """MusicGen-Melody's chroma features; settings as in the checkpoint's ``preprocessor_config.json``.

    Attributes:
        sampling_rate: Hz the model's features are computed at (32 kHz).
        n_fft: STFT size in samples (16384).
        hop_length: STFT hop in samples (4096 -> 7.8 frames/s at 32 kHz).
        num_chroma: pitch classes (12).
        chunk_length: longest melody used, in seconds (30).
    """

    sampling_rate: int = 32000
    n_fft: int = 16384
    hop_length: int = 4096
    num_chroma: int = 12
    chunk_length: int = 30

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> ChromaExtractor:
        """Read the settings from a local folder's ``preprocessor_config.json`` (defaults where absent)."""
        path = Path(folder) / "preprocessor_config.json"
        config = json.loads(path.read_text()) if path.is_file() else {}
        fields = {k: config[k] for k in ("sampling_rate", "n_fft", "hop_length", "num_chroma", "chunk_length") if k in config}
        return cls(**fields)

    @property
    def max_samples(self) -> int:
        return self.chunk_length * self.sampling_rate

    def filters(self) -> torch.Tensor:
        """Chroma filter bank [num_chroma, n_fft // 2 + 1]."""
        bank = chroma_filter_bank(
            sampling_rate=self.sampling_rate, num_frequency_bins=self.n_fft, tuning=0, num_chroma=self.num_chroma
        )
        return torch.from_numpy(bank).float()

    def raw_chroma(self, audio: np.ndarray | torch.Tensor, sampling_rate: int) -> torch.Tensor:
        """Max-normalised chroma energy [frames, num_chroma] of mono ``audio`` [T] (before the one-hot)."""
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio).float()
        if wav.ndim != 1:
            raise ValueError(f"Expected mono audio of shape [T], got {tuple(wav.shape)}.")
        if sampling_rate != self.sampling_rate:
            wav = sinc_resample(wav, sampling_rate, self.sampling_rate, lowpass_filter_width=24, rolloff=0.945)
        wav = wav[: self.max_samples]
        if wav.shape[-1] < self.n_fft:
            pad = self.n_fft - wav.shape[-1]
            wav = torch.nn.functional.pad(wav, (pad // 2, pad // 2 + pad % 2))
        window = torch.hann_window(self.n_fft)
        spec = torch.stft(
            wav[None], n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.n_fft, window=window,
            center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
        )
        spec = spec / window.pow(2.0).sum().sqrt()
        power = spec.abs().pow(2.0)
        chroma = torch.einsum("cf,...ft->...ct", self.filters(), power)
        chroma = torch.nn.functional.normalize(chroma, p=float("inf"), dim=-2, eps=1e-6)
        return chroma[0].transpose(0, 1)

    def __call__(self, audio: np.ndarray | torch.Tensor, sampling_rate: int) -> torch.Tensor:
        """One-hot chroma [1, frames, num_chroma]: the loudest pitch class of each frame, as the model expects."""
        raw = self.raw_chroma(audio, sampling_rate)
        one_hot = torch.zeros_like(raw)
        one_hot.scatter_(-1, raw.argmax(-1, keepdim=True), 1.0)
        return one_hot[None]
