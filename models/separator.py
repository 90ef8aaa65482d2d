"""Melody stems with Demucs, as audiocraft's melody conditioner hears a song.

audiocraft does not take MusicGen-Melody's chroma from the raw mix: its chroma-stem conditioner first runs the
HTDemucs source separator and keeps the ``vocals`` + ``other`` stems, so that drums and bass do not dominate the
chroma. This wrapper does the same with demucs 4.1, which loads HTDemucs from the hub (``adefossez/HTDemucs``: a
bag yaml and one safetensors file per model) or from a local folder holding the same files.

Differences from audiocraft, on purpose: the separation is deterministic (``shifts=0``; audiocraft's default of
one random shift makes two runs differ), and it runs once per melody (at most 30 s), not per window.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.runtime import model_thread
from models.loading import LoadedModel
from models.sources import ModelSource

logger = logging.getLogger(__name__)

SEPARATOR_ENV_VAR = "MELODY_SEPARATOR_MODEL"  # hub id or folder; "off" turns separation off
SEPARATOR_CLI_FLAG = "--separator-model"
DEFAULT_SEPARATOR_MODEL = "adefossez/HTDemucs"
MELODY_STEMS = ("vocals", "other")  # what audiocraft's ChromaStemConditioner keeps
BAG_MARKER = "*.yaml"  # a demucs model folder: a bag yaml (its models' signatures) + one safetensors per model
CACHE_ITEMS = 4  # separated melodies kept (the same melody is often used again with other prompts)

# The melody source control: values (API) and what the page shows.
SOURCE_SEPARATED = "separated"
SOURCE_MIX = "mix"
MELODY_SOURCES = {
    SOURCE_SEPARATED: "Melody only (drums and bass taken out first)",
    SOURCE_MIX: "Whole mix",
}
DEFAULT_MELODY_SOURCE = SOURCE_SEPARATED


def default_separator_name() -> str:
    """The separator from ``$MELODY_SEPARATOR_MODEL``, else audiocraft's HTDemucs on the hub."""
    return os.environ.get(SEPARATOR_ENV_VAR, "").strip() or DEFAULT_SEPARATOR_MODEL


def demucs_installed() -> bool:
    """Whether the demucs package can be imported here (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("demucs") is not None


def check_melody_source(source: str | None) -> str:
    """A melody source value (``separated`` or ``mix``; empty means the default); raises ValueError otherwise."""
    value = (source or DEFAULT_MELODY_SOURCE).strip().lower()
    for key, label in MELODY_SOURCES.items():
        if value in (key, label.lower()):
            return key
    raise ValueError(f"The melody source must be one of {', '.join(MELODY_SOURCES)}, got {source!r}.")


def load_bag(folder: str | Path) -> Any:
    """A demucs model (``BagOfModels``) from a folder as the hub holds it: ``NAME.yaml`` listing the models'
    signatures (and optional weights and segment) and ``SIG.safetensors`` for each, read by demucs' own loader."""
    import yaml
    from demucs.apply import BagOfModels
    from demucs.hf import load_safetensors_model

    folder = Path(folder)
    bags = sorted(folder.glob(BAG_MARKER))
    if len(bags) != 1:
        raise ValueError(f"expected one bag .yaml file in {folder}, found {len(bags)}")
    bag = yaml.safe_load(bags[0].read_text())
    models = [load_safetensors_model(folder / f"{sig}.safetensors") for sig in bag["models"]]
    return BagOfModels(models, bag.get("weights"), bag.get("segment"))


class StemSeparator(LoadedModel):
    """HTDemucs (or another demucs bag), loaded on first use and kept.

    Args:
        name: hub id or local folder; default from ``$MELODY_SEPARATOR_MODEL``; "off" disables separation.
        device: "cuda", "cpu"...; default: the best available.
    """

    what = "Melody separator (Demucs)"
    job = "Melody separation"
    env_var = SEPARATOR_ENV_VAR
    cli_flag = SEPARATOR_CLI_FLAG
    marker = BAG_MARKER
    optional = True
    checkpoints = (DEFAULT_SEPARATOR_MODEL,)

    def __init__(self, name: str | None = None, device: str | None = None) -> None:
        super().__init__(name, device)
        self.model: Any = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @classmethod
    def default_name(cls) -> str:
        return default_separator_name()

    def missing_package(self) -> str | None:
        if demucs_installed():
            return None
        return "Melody separator: the `demucs` package is not installed (`pip install demucs==4.1.0`)."

    def _keep(self, parts: Any) -> None:
        self.model = parts

    def _drop(self) -> None:
        self.model = None
        self._cache.clear()

    def _from_source(self, source: ModelSource) -> Any:
        folder = source.location
        if not source.is_local:
            from huggingface_hub import snapshot_download

            folder = snapshot_download(source.location, allow_patterns=[BAG_MARKER, "*.safetensors"],
                                       local_files_only=source.local_files_only)
        model = load_bag(folder)
        missing = [stem for stem in MELODY_STEMS if stem not in model.sources]
        if missing:
            raise ValueError(f"`{self.name}` has no {' or '.join(missing)} stem (its stems: {', '.join(model.sources)})")
        return model.to(self.device).eval()

    def melody_stems(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono audio [T] at ``sample_rate`` Hz -> the sum of its vocals and other stems, mono [T] at the same rate
        (computed on the model thread).

        Raises:
            ModelLoadError: the separator cannot be loaded.
        """
        return model_thread().call(self._melody_stems, audio, sample_rate)

    @torch.inference_mode()
    def _melody_stems(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        key = hashlib.sha1(audio.tobytes() + str(sample_rate).encode()).hexdigest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        self.load()
        from demucs.apply import apply_model
        from demucs.audio import convert_audio

        model = self.model
        wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, None]  # [1, 1, T]
        wav = convert_audio(wav, sample_rate, model.samplerate, model.audio_channels)
        stems = apply_model(model, wav, shifts=0, split=True, overlap=0.25, progress=False, device=self.device)
        indices = [model.sources.index(stem) for stem in MELODY_STEMS]
        mix = stems[:, indices].sum(1)  # [1, channels, T']
        mix = convert_audio(mix, model.samplerate, sample_rate, 1)[0, 0].float().cpu().numpy()
        mix = np.pad(mix, (0, max(0, audio.shape[0] - mix.shape[0])))[: audio.shape[0]]
        self._cache[key] = mix
        while len(self._cache) > CACHE_ITEMS:
            self._cache.popitem(last=False)
        return mix
