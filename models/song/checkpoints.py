"""Which ACE-Step 1.5 checkpoints the song tab knows, and turning the official 2B release into diffusers' layout.

``AceStepPipeline.from_pretrained`` reads diffusers' layout (``model_index.json`` and a folder per part). diffusers'
doc page lists ``ACE-Step/acestep-v15-xl-turbo-diffusers`` (5B) in that layout; the 2B turbo, the one a 16 GB CPU
Space can hold, ships only in ACE-Step's own layout (``ACE-Step/Ace-Step1.5``: ``acestep-v15-turbo/`` with one
``model.safetensors`` for the DiT and the condition encoder, ``vae/``, ``Qwen3-Embedding-0.6B/``). The app converts
that layout on first use, as diffusers' ``scripts/convert_ace_step_to_diffusers.py`` does (the same key names and
configs), and keeps the result in ``$SONG_CONVERTED_DIR`` (default ``~/.cache/music-demo/ace-step``), so it happens
once per machine. A folder in either layout works the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SONG_ENV_VAR = "SONG_MODEL"
SONG_CLI_FLAG = "--song-model"
RELEASE_2B = "ACE-Step/Ace-Step1.5"  # the official release: the 2B turbo DiT, the VAE and Qwen3-Embedding-0.6B
DEFAULT_SONG_MODEL = RELEASE_2B
XL_TURBO = "ACE-Step/acestep-v15-xl-turbo-diffusers"
BASE = "ACE-Step/acestep-v15-base"
SFT = "ACE-Step/acestep-v15-sft"
SONG_CHECKPOINTS = (RELEASE_2B, XL_TURBO, BASE, SFT)
# Whole pipelines (DiT + condition encoder + Qwen3-Embedding-0.6B + VAE), billions of parameters
SONG_BILLIONS = {RELEASE_2B: 2.4, XL_TURBO: 5.4, BASE: 2.4, SFT: 2.4}
# The page's names and each checkpoint's own defaults (diffusers' doc page: turbo 8 steps and no guidance pass;
# base and sft guided, users raise the steps to 30-60 for quality)
CHECKPOINT_LABELS = {RELEASE_2B: "2B turbo (8 steps)", XL_TURBO: "XL 5B turbo (8 steps) · needs ~12 GB",
                     BASE: "2B base (guided, 30 steps) · slow", SFT: "2B SFT (guided, 30 steps) · slow"}
DIT_SUBFOLDERS = {RELEASE_2B: "acestep-v15-turbo", BASE: "acestep-v15-base", SFT: "acestep-v15-sft"}
TEXT_ENCODER_DIR = "Qwen3-Embedding-0.6B"
CONVERTED_ENV_VAR = "SONG_CONVERTED_DIR"

_ATTENTION_RENAMES = ((".q_proj.", ".to_q."), (".k_proj.", ".to_k."), (".v_proj.", ".to_v."),
                      (".o_proj.", ".to_out.0."), (".q_norm.", ".norm_q."), (".k_norm.", ".norm_k."))


def default_song_name() -> str:
    """The song model from ``$SONG_MODEL``, else the official 2B turbo release."""
    return os.environ.get(SONG_ENV_VAR, "").strip() or DEFAULT_SONG_MODEL


def hub_marker(name: str) -> str:
    """The file that marks a hub repository of ``name``'s layout as cached ("config.json" for other models)."""
    if name in DIT_SUBFOLDERS:
        return f"{DIT_SUBFOLDERS[name]}/config.json" if name == RELEASE_2B else "config.json"
    return "model_index.json" if name in SONG_CHECKPOINTS else "config.json"


def converted_root() -> Path:
    return Path(os.environ.get(CONVERTED_ENV_VAR, "") or "~/.cache/music-demo/ace-step").expanduser()


def is_diffusers_layout(folder: Path) -> bool:
    return (folder / "model_index.json").is_file()


def original_dit_folder(folder: Path) -> Path | None:
    """The DiT folder of ACE-Step's own layout inside ``folder`` (``acestep-v15-*/`` with config.json and weights),
    or ``folder`` itself when it is one; None when it is neither."""
    def is_dit(path: Path) -> bool:
        return (path / "config.json").is_file() and (any(path.glob("model*.safetensors")))

    if is_dit(folder) and not is_diffusers_layout(folder):
        return folder
    found = sorted(p for p in folder.glob("acestep-v15-*") if is_dit(p))
    turbo = [p for p in found if p.name.endswith("turbo")]
    return (turbo or found or [None])[0]


def _rename(key: str) -> str:
    for old, new in _ATTENTION_RENAMES:
        key = key.replace(old, new)
    return key


def split_state_dict(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ACE-Step's one state dict split into the pipeline's parts, with diffusers' key names (``decoder.`` -> the
    DiT, ``encoder.`` and ``null_condition_emb`` -> the condition encoder, ``tokenizer.`` / ``detokenizer.`` -> the
    audio tokenizer pair; attention projections renamed, the DiT's Sequential proj_in/out unwrapped)."""
    parts: dict[str, dict[str, Any]] = {"transformer": {}, "condition_encoder": {}, "audio_tokenizer": {},
                                        "audio_token_detokenizer": {}}
    for key, value in state.items():
        if key.startswith("decoder."):
            new = key[len("decoder."):].replace("proj_in.1.", "proj_in_conv.").replace("proj_out.1.", "proj_out_conv.")
            parts["transformer"][_rename(new)] = value
        elif key.startswith("encoder."):
            parts["condition_encoder"][_rename(key[len("encoder."):])] = value
        elif key == "null_condition_emb":
            parts["condition_encoder"]["null_condition_emb"] = value
        elif key.startswith("tokenizer."):
            parts["audio_tokenizer"][_rename(key[len("tokenizer."):])] = value
        elif key.startswith("detokenizer."):
            parts["audio_token_detokenizer"][_rename(key[len("detokenizer."):])] = value
    return parts


def part_configs(original: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The parts' configs from ACE-Step's DiT config.json (as diffusers' converter writes them)."""
    enc = {k: original.get(f"encoder_{k}", original[k])
           for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads")}
    shared = {k: original[k] for k in ("head_dim", "rope_theta", "attention_bias", "attention_dropout",
                                       "rms_norm_eps", "sliding_window")}
    pooler_layers = original.get("num_attention_pooler_hidden_layers", 2)
    transformer = {k: original[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                            "num_attention_heads", "num_key_value_heads", "in_channels",
                                            "audio_acoustic_hidden_dim", "patch_size")}
    transformer["layer_types"] = original.get("layer_types")
    transformer.update(shared, encoder_hidden_size=enc["hidden_size"],
                       is_turbo=bool(original.get("is_turbo", False)), model_version=original.get("model_version"))
    condition = dict(enc, **shared, text_hidden_dim=original["text_hidden_dim"],
                     timbre_hidden_dim=original["timbre_hidden_dim"],
                     num_lyric_encoder_hidden_layers=original["num_lyric_encoder_hidden_layers"],
                     num_timbre_encoder_hidden_layers=original["num_timbre_encoder_hidden_layers"])
    pooled = dict(enc, **shared, audio_acoustic_hidden_dim=original["audio_acoustic_hidden_dim"],
                  pool_window_size=original.get("pool_window_size", 5),
                  num_attention_pooler_hidden_layers=pooler_layers,
                  layer_types=(original.get("layer_types") or [])[:pooler_layers] or None)
    tokenizer = dict(pooled, fsq_dim=original.get("fsq_dim", enc["hidden_size"]),
                     fsq_input_levels=original.get("fsq_input_levels", [8, 8, 8, 5, 5, 5]),
                     fsq_input_num_quantizers=original.get("fsq_input_num_quantizers", 1))
    return {"transformer": transformer, "condition_encoder": condition, "audio_tokenizer": tokenizer,
            "audio_token_detokenizer": pooled}


def convert_original(dit_dir: Path, vae_dir: Path, text_dir: Path, out: Path,
                     report: Callable[[str], None] = lambda message: None) -> Path:
    """Write the diffusers layout of an ACE-Step checkpoint in its own layout to ``out`` (atomically: a half-written
    conversion is never loaded), keeping the weights' dtype.

    Raises:
        ValueError: a part is missing, or the weights do not fit the config.
    """
    import torch
    from diffusers import AceStepPipeline, AceStepTransformer1DModel, AutoencoderOobleck
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.pipelines.ace_step import (
        AceStepAudioTokenDetokenizer,
        AceStepAudioTokenizer,
        AceStepConditionEncoder,
    )
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    for path, what in ((dit_dir / "config.json", "the DiT's config"), (vae_dir, "the VAE"),
                       (text_dir, "the text encoder")):
        if not path.exists():
            raise ValueError(f"Converting ACE-Step: {what} is missing ({path}).")
    report("Converting the song model to diffusers' layout (once on this machine)")
    original = json.loads((dit_dir / "config.json").read_text())
    state: dict[str, Any] = {}
    for file in sorted(dit_dir.glob("model*.safetensors")):
        state.update(load_file(str(file)))
    parts = split_state_dict(state)
    del state
    silence = dit_dir / "silence_latent.pt"
    if silence.is_file():
        parts["condition_encoder"]["silence_latent"] = torch.load(silence, weights_only=True,
                                                                  map_location="cpu").transpose(1, 2).contiguous()
    dtype = next(iter(parts["transformer"].values())).dtype
    configs = part_configs(original)
    classes = {"transformer": AceStepTransformer1DModel, "condition_encoder": AceStepConditionEncoder,
               "audio_tokenizer": AceStepAudioTokenizer, "audio_token_detokenizer": AceStepAudioTokenDetokenizer}
    built: dict[str, Any] = {}
    for name, cls in classes.items():
        if not parts[name] and name.startswith("audio_"):
            built[name] = None  # optional parts (cover tasks only)
            continue
        with torch.device("meta"):
            module = cls(**configs[name])
        module.load_state_dict(parts[name], strict=True, assign=True)
        built[name] = module.to(dtype)
    pipe = AceStepPipeline(vae=AutoencoderOobleck.from_pretrained(str(vae_dir), torch_dtype=dtype),
                           text_encoder=AutoModel.from_pretrained(str(text_dir), dtype=dtype),
                           tokenizer=AutoTokenizer.from_pretrained(str(text_dir)),
                           scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0), **built)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    pipe.save_pretrained(str(partial), safe_serialization=True)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    logger.info("Converted ACE-Step %s to diffusers' layout in %s", dit_dir, out)
    return out


def diffusers_folder(name: str, location: str, is_local: bool, local_files_only: bool,
                     report: Callable[[str], None] = lambda message: None) -> str:
    """What to hand ``AceStepPipeline.from_pretrained`` for ``name``: a diffusers-layout folder or hub id as it is;
    ACE-Step's own layout (a folder, or the official release on the hub) converted once and cached.

    Raises:
        ValueError: a folder in neither layout.
    """
    if is_local:
        folder = Path(location).expanduser()
        if is_diffusers_layout(folder):
            return str(folder)
        dit = original_dit_folder(folder)
        if dit is None:
            raise ValueError(f"`{name}` holds neither diffusers' layout (model_index.json) nor ACE-Step's own "
                             "(acestep-v15-*/config.json with model.safetensors, vae/, Qwen3-Embedding-0.6B/).")
        root = dit.parent
    elif name in DIT_SUBFOLDERS:
        from huggingface_hub import snapshot_download

        sub = DIT_SUBFOLDERS[name]
        report("Downloading the song model (once on this machine)")
        if name == RELEASE_2B:
            root = Path(snapshot_download(name, allow_patterns=[f"{sub}/*", "vae/*", f"{TEXT_ENCODER_DIR}/*"],
                                          local_files_only=local_files_only))
            dit = root / sub
        else:  # a DiT-only release: the VAE and text encoder come from the 2B release
            dit = Path(snapshot_download(name, local_files_only=local_files_only))
            root = Path(snapshot_download(RELEASE_2B, allow_patterns=["vae/*", f"{TEXT_ENCODER_DIR}/*"],
                                          local_files_only=local_files_only))
    else:
        return location  # a diffusers-layout hub repo
    digest = hashlib.sha1(str(dit.resolve()).encode()).hexdigest()[:10]
    out = converted_root() / f"{Path(name).name}-{digest}"
    if is_diffusers_layout(out):
        return str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return str(convert_original(dit, root / "vae", root / TEXT_ENCODER_DIR, out, report))
