"""Which MusicGen checkpoint, and how it loads: the hub ids and env vars, the text-only/melody check, and loading
a checkpoint as the app runs it (int8 decoder on CPU, EnCodec's weight norm folded, frozen parts shared, chroma
extractor for melody checkpoints)."""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoTokenizer,
    MusicgenForConditionalGeneration,
    MusicgenMelodyForConditionalGeneration,
)

from models.int8 import return_freed_memory
from models.musicgen.codec import fold_weight_norm, share_frozen_parts
from models.musicgen.layers import quantize_decoder_int8
from models.sources import ModelSource
from utils.chroma import ChromaExtractor

FAST_PATH_ENV_VAR = "MUSICGEN_FAST_PATH"  # "0" = stock transformers generate
CPU_INT8_ENV_VAR = "MUSICGEN_CPU_INT8"  # "0" = keep float32 decoder weights on CPU
MUSICGEN_ENV_VAR = "MUSICGEN_MODEL"
MUSICGEN_CLI_FLAG = "--musicgen-model"
DEFAULT_MUSICGEN_MODEL = "facebook/musicgen-small"
MELODY_ENV_VAR = "MUSICGEN_MELODY_MODEL"
MELODY_CLI_FLAG = "--melody-model"
DEFAULT_MELODY_MODEL = "facebook/musicgen-melody"

TEXT_CHECKPOINTS = (
    "facebook/musicgen-small",
    "facebook/musicgen-medium",
    "facebook/musicgen-large",
    "facebook/musicgen-stereo-small",
    "facebook/musicgen-stereo-medium",
    "facebook/musicgen-stereo-large",
)
CHECKPOINT_BILLIONS = {  # parameters of the official checkpoints, in billions (the page shows their size)
    "facebook/musicgen-small": 0.3, "facebook/musicgen-medium": 1.5, "facebook/musicgen-large": 3.3,
    "facebook/musicgen-stereo-small": 0.3, "facebook/musicgen-stereo-medium": 1.5,
    "facebook/musicgen-stereo-large": 3.3, "facebook/musicgen-melody": 1.5, "facebook/musicgen-melody-large": 3.3,
    "facebook/musicgen-stereo-melody": 1.5, "facebook/musicgen-stereo-melody-large": 3.3,
}
MELODY_CHECKPOINTS = (
    "facebook/musicgen-melody",
    "facebook/musicgen-melody-large",
    "facebook/musicgen-stereo-melody",
    "facebook/musicgen-stereo-melody-large",
)



def default_model_name(melody: bool) -> str:
    """The checkpoint from ``$MUSICGEN_MODEL`` / ``$MUSICGEN_MELODY_MODEL``, else the official default."""
    env, default = (MELODY_ENV_VAR, DEFAULT_MELODY_MODEL) if melody else (MUSICGEN_ENV_VAR, DEFAULT_MUSICGEN_MODEL)
    return os.environ.get(env, "").strip() or default


def check_kind_by_name(name: str, melody: bool) -> None:
    """Fail early, without loading, when a known text-only checkpoint is chosen for the melody role."""
    if melody and name in TEXT_CHECKPOINTS:
        raise ValueError(
            f"`{name}` is a text-only MusicGen checkpoint; melody conditioning needs a MusicGen-Melody "
            f"checkpoint: {', '.join(MELODY_CHECKPOINTS)}."
        )


FLOAT32_PARTS = ("text_encoder", "audio_encoder")  # T5 and EnCodec, kept in float32 under a narrower decoder


def load_checkpoint(source: ModelSource, name: str, melody: bool, device: torch.device, dtype: torch.dtype,
                    int8: bool, float32_parts: bool = False) -> tuple[Any, Any, ChromaExtractor | None, list[str]]:
    """A checkpoint as the app runs it: (model, tokenizer, chroma extractor or None, parts shared with an already
    loaded model).

    ``float32_parts``: the decoder (and the projections into it) in ``dtype``, the text encoder and EnCodec in
    float32, each cast once from the checkpoint's float32 weights. They run once a request (T5) or once a piece
    (EnCodec), so float32 costs little there, and keeps the conditioning and the audio as the reference computes
    them (docs/performance-history.md, "Dtype per part"). Only the fast loop takes a model of two dtypes.

    Raises:
        ValueError: not a MusicGen checkpoint, or a text-only one for the melody role.
    """
    kwargs = {"local_files_only": source.local_files_only}
    config = AutoConfig.from_pretrained(source.location, **kwargs)
    if config.model_type not in {"musicgen", "musicgen_melody"}:
        raise ValueError(f"`{name}` is a `{config.model_type}` checkpoint, not MusicGen.")
    is_melody = config.model_type == "musicgen_melody"
    if melody and not is_melody:
        raise ValueError(
            f"`{name}` is a text-only MusicGen checkpoint; melody conditioning needs a MusicGen-Melody "
            f"checkpoint: {', '.join(MELODY_CHECKPOINTS)}."
        )
    model_class = MusicgenMelodyForConditionalGeneration if is_melody else MusicgenForConditionalGeneration
    load_dtype = torch.float32 if float32_parts else dtype
    model = model_class.from_pretrained(source.location, dtype=load_dtype, **kwargs).to(device).eval()
    if float32_parts:
        for part, module in model.named_children():
            if part not in FLOAT32_PARTS:
                module.to(dtype)
    if int8:
        model = quantize_decoder_int8(model)  # layer by layer; the model lets go of the mapped checkpoint
    fold_weight_norm(model.audio_encoder)  # EnCodec's weights computed once, not at every decode (exact)
    shared = share_frozen_parts(model)
    return_freed_memory()  # the float32 layers the int8 ones replaced, and any duplicate T5/EnCodec
    tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
    chroma = None
    if is_melody:
        folder = source.location
        if not source.is_local:
            from huggingface_hub import snapshot_download

            folder = snapshot_download(source.location, allow_patterns=["preprocessor_config.json"], **kwargs)
        chroma = ChromaExtractor.from_pretrained(folder)
    return model, tokenizer, chroma, shared
