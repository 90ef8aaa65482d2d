"""Tiny, randomly initialised models of the real architectures, saved like real checkpoints.

The app loads these through the very same ``from_pretrained`` code it uses for hub ids and local
folders; only the sizes differ.  Shared by the unit tests and the end-to-end tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    Pop2PianoConfig,
    Pop2PianoFeatureExtractor,
    Pop2PianoForConditionalGeneration,
    Pop2PianoTokenizer,
)

POP2PIANO_VOCAB_SIZE = 2400  # 4 special + 128 note + 2 velocity + 2266 time tokens, as in the real vocab
POP2PIANO_N_COMPOSERS = 21
POP2PIANO_FIRST_COMPOSER_TOKEN = 2052  # the real checkpoint's composer1 token


def _pop2piano_token(idx: int, n_special: int = 4, n_note: int = 128, n_velocity: int = 2) -> str:
    """Token string for id ``idx``, built the way transformers' conversion script builds the vocab."""
    if idx >= n_special + n_note + n_velocity:
        return f"{idx - (n_special + n_note + n_velocity)}_TOKEN_TIME"
    if idx >= n_special + n_note:
        return f"{idx - (n_special + n_note)}_TOKEN_VELOCITY"
    if idx >= n_special:
        return f"{idx - n_special}_TOKEN_NOTE"
    return f"{idx}_TOKEN_SPECIAL"


def build_tiny_pop2piano(folder: str | Path, d_model: int = 64, seed: int = 0) -> Path:
    """Write a tiny random Pop2Piano checkpoint (model, feature extractor, tokenizer) to ``folder``.

    Args:
        folder: destination folder, created if needed.
        d_model: hidden size; the feature extractor's mel bins (``feature_size``) must equal it.
        seed: torch seed for the random weights.

    Returns:
        The folder, loadable with ``from_pretrained``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = Pop2PianoConfig(
        vocab_size=POP2PIANO_VOCAB_SIZE,
        composer_vocab_size=POP2PIANO_N_COMPOSERS,
        d_model=d_model,
        d_kv=16,
        d_ff=2 * d_model,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        dropout_rate=0.0,
    )
    model = Pop2PianoForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        composer_to_feature_token={
            f"composer{i + 1}": POP2PIANO_FIRST_COMPOSER_TOKEN + i for i in range(POP2PIANO_N_COMPOSERS)
        },
    )
    model.save_pretrained(folder)

    Pop2PianoFeatureExtractor(feature_size=d_model).save_pretrained(folder)

    vocab = {_pop2piano_token(i): i for i in range(POP2PIANO_VOCAB_SIZE)}
    vocab_path = folder / "vocab.json"
    vocab_path.write_text(json.dumps(vocab))
    Pop2PianoTokenizer(vocab=str(vocab_path)).save_pretrained(folder)
    return folder
