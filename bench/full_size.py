"""Full-size models of the real architectures with random weights (speed does not depend on weight values).

The configs mirror the published checkpoints' config.json files: musicgen-small (T5-base text encoder,
32 kHz EnCodec, 24 x 1024 decoder), musicgen-melody (48 x 1536 decoder) and pop2piano (T5-like, d_model 512).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    EncodecConfig,
    GenerationConfig,
    MusicgenConfig,
    MusicgenDecoderConfig,
    MusicgenForConditionalGeneration,
    MusicgenMelodyConfig,
    MusicgenMelodyForConditionalGeneration,
    Pop2PianoConfig,
    Pop2PianoForConditionalGeneration,
    T5Config,
)

T5_BASE = dict(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
               feed_forward_proj="relu")
ENCODEC_32K = dict(
    sampling_rate=32000, audio_channels=1, target_bandwidths=[2.2], codebook_size=2048, num_filters=64,
    hidden_size=128, upsampling_ratios=[8, 5, 4, 4], num_lstm_layers=2, num_residual_layers=1,
    use_causal_conv=False, normalize=False, pad_mode="reflect", norm_type="weight_norm", compress=2,
    kernel_size=7, last_kernel_size=7, residual_kernel_size=3, dilation_growth_rate=2, trim_right_ratio=1.0,
)
SIZES = {
    "musicgen-small": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096),
    "musicgen-medium": dict(hidden_size=1536, num_hidden_layers=48, num_attention_heads=24, ffn_dim=6144),
    "musicgen-melody": dict(hidden_size=1536, num_hidden_layers=48, num_attention_heads=24, ffn_dim=6144),
}


def _init_codebooks(model) -> None:
    for layer in model.audio_encoder.quantizer.layers:  # zero buffers by default; real ones are learned
        layer.codebook.embed.normal_()


@torch.no_grad()
def build_musicgen(name: str = "musicgen-small", seed: int = 0):
    """A random-weight MusicGen (or MusicGen-Melody for ``musicgen-melody``) of the published size."""
    torch.manual_seed(seed)
    decoder = MusicgenDecoderConfig(
        vocab_size=2048, max_position_embeddings=2048, num_codebooks=4, audio_channels=1, dropout=0.0,
        activation_function="gelu", **SIZES[name],
    )
    parts = dict(text_encoder=T5Config(**T5_BASE), audio_encoder=EncodecConfig(**ENCODEC_32K), decoder=decoder)
    if name == "musicgen-melody":
        model = MusicgenMelodyForConditionalGeneration(MusicgenMelodyConfig(**parts))
    else:
        model = MusicgenForConditionalGeneration(MusicgenConfig(**parts))
    _init_codebooks(model)
    model.generation_config = GenerationConfig(
        do_sample=True, top_k=250, guidance_scale=3.0, max_length=1500,
        decoder_start_token_id=2048, pad_token_id=2048, bos_token_id=2048,
    )
    return model.eval()


@torch.no_grad()
def build_pop2piano(seed: int = 0) -> Pop2PianoForConditionalGeneration:
    """A random-weight Pop2Piano of the published size (d_model 512, 6 + 6 layers, 2400-token vocab)."""
    torch.manual_seed(seed)
    model = Pop2PianoForConditionalGeneration(Pop2PianoConfig(dropout_rate=0.0))
    model.generation_config = GenerationConfig(
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
        composer_to_feature_token={f"composer{i + 1}": 2052 + i for i in range(21)},
    )
    return model.eval()


FOLDERS = ("musicgen-small", "musicgen-melody", "pop2piano", "htdemucs", "marian", "audioseal")


def save_musicgen_pair(small_folder: Path, melody_folder: Path, distinct: bool = False) -> None:
    """Full-size musicgen-small and musicgen-melody saved as checkpoints (tokenizer and melody preprocessor included).
    Unless ``distinct``, the melody checkpoint holds the small one's T5 and EnCodec, as the published ones do."""


    from tests.tiny_models import TINY_MELODY_PREPROCESSOR, build_t5_tokenizer

    small = build_musicgen("musicgen-small")
    small.save_pretrained(small_folder)
    build_t5_tokenizer(small_folder)
    melody = build_musicgen("musicgen-melody", seed=1)
    if not distinct:
        melody.text_encoder.load_state_dict(small.text_encoder.state_dict())
        melody.audio_encoder.load_state_dict(small.audio_encoder.state_dict())
    del small
    melody.save_pretrained(melody_folder)
    del melody
    build_t5_tokenizer(melody_folder)
    (Path(melody_folder) / "preprocessor_config.json").write_text(json.dumps(TINY_MELODY_PREPROCESSOR))


def save_full_size_folders(root: str | Path) -> dict[str, Path]:
    """Every model the app loads, full size with random weights, saved as checkpoints in ``root`` (kept: a folder
    that is already complete is reused): musicgen-small, musicgen-melody (its T5 and EnCodec equal the small one's,
    as in the published checkpoints), pop2piano and htdemucs. Returns the folders by name."""
    root = Path(root)
    paths = {name: root / name for name in FOLDERS}
    done = root / "complete"
    if done.is_file():
        save_extra_folders(paths)  # added later: built once beside an existing set
        return paths
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    save_musicgen_pair(paths["musicgen-small"], paths["musicgen-melody"])
    save_full_size_pop2piano(paths["pop2piano"])
    save_full_size_htdemucs(paths["htdemucs"])
    save_extra_folders(paths)
    done.write_text("ok\n")
    return paths


def save_extra_folders(paths: dict[str, Path]) -> None:
    """The prompt translator (MarianMT at opus-mt-mul-en's size) and the watermark (AudioSeal at its released
    size), random weights, unless already there."""
    from tests.tiny_models import build_tiny_translator, build_tiny_watermarker

    if not (paths["marian"] / "config.json").is_file():
        build_tiny_translator(paths["marian"], full_size=True)
    if not (paths["audioseal"] / "generator_base.pth").is_file():
        build_tiny_watermarker(paths["audioseal"], full_size=True)


# ACE-Step 1.5's 2B turbo, as ACE-Step/Ace-Step1.5 ships it: the DiT and condition encoder at diffusers' defaults
# (which are that checkpoint's), the VAE at 48 kHz with 1920 samples a latent frame, Qwen3-Embedding-0.6B's shape
QWEN3_EMBEDDING_0_6B = dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                            num_key_value_heads=8, head_dim=128, max_position_embeddings=32768, rope_theta=1000000.0,
                            tie_word_embeddings=True)
ACE_STEP_VAE = dict(encoder_hidden_size=128, downsampling_ratios=[2, 4, 4, 6, 10], channel_multiples=[1, 2, 4, 8, 16],
                    decoder_channels=128, decoder_input_channels=64, audio_channels=2, sampling_rate=48000)


@torch.no_grad()
def save_full_size_ace_step(folder: str | Path, seed: int = 0) -> Path:
    """A random-weight ACE-Step 1.5 2B turbo pipeline in diffusers' layout (float32 weights), unless already there.
    The tokenizer is a small one trained here (``tests.tiny_models``), so the text encoder's embedding table is
    smaller than Qwen's 151k tokens (0.44 B parameters instead of 0.6 B); the rest is full size."""
    from diffusers import AceStepPipeline, AutoencoderOobleck, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    from tests.tiny_models import build_qwen_like_tokenizer

    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        return folder
    torch.manual_seed(seed)
    build_qwen_like_tokenizer(folder / "_tokenizer", vocab_size=4000)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder / "_tokenizer")
    transformer = AceStepTransformer1DModel(is_turbo=True, model_version="turbo")
    condition = AceStepConditionEncoder()
    condition.silence_latent.normal_(0.0, 0.5)
    pipe = AceStepPipeline(vae=AutoencoderOobleck(**ACE_STEP_VAE), tokenizer=tokenizer,
                           text_encoder=Qwen3Model(Qwen3Config(vocab_size=len(tokenizer), **QWEN3_EMBEDDING_0_6B)),
                           transformer=transformer, condition_encoder=condition,
                           scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0))
    pipe.save_pretrained(str(folder), safe_serialization=True)
    import shutil

    shutil.rmtree(folder / "_tokenizer")
    return folder


def save_full_size_pop2piano(folder: Path) -> Path:
    """Full-size random Pop2Piano saved with its feature extractor and tokenizer, like a real checkpoint."""
    import json as _json

    from transformers import Pop2PianoTokenizer
    # from its module: without essentia (the GPU machine), the top-level name is a placeholder that raises
    from transformers.models.pop2piano.feature_extraction_pop2piano import Pop2PianoFeatureExtractor

    from tests.tiny_models import POP2PIANO_VOCAB_SIZE, _pop2piano_token

    build_pop2piano().save_pretrained(folder)
    Pop2PianoFeatureExtractor().save_pretrained(folder)
    vocab = folder / "vocab.json"
    vocab.write_text(_json.dumps({_pop2piano_token(i): i for i in range(POP2PIANO_VOCAB_SIZE)}))
    Pop2PianoTokenizer(vocab=str(vocab)).save_pretrained(folder)
    return folder


def save_full_size_htdemucs(folder: Path) -> Path:
    """htdemucs' configuration (its 7.8 s segment, 4 stems, 48 channels, depth 4, 5 transformer layers) with random
    weights, written as the hub holds it (bag yaml + safetensors with the class and arguments in the metadata)."""
    from fractions import Fraction

    import yaml
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    kwargs = dict(sources=["drums", "bass", "other", "vocals"], audio_channels=2, samplerate=44100,
                  segment=Fraction(39, 5))
    model = HTDemucs(**kwargs)
    kwargs["segment"] = {"_type": "fraction", "numerator": 39, "denominator": 5}
    metadata = {"klass": "demucs.htdemucs.HTDemucs", "args": "[]", "kwargs": json.dumps(kwargs)}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "955717e8.safetensors"),
              metadata=metadata)
    (folder / "htdemucs.yaml").write_text(yaml.safe_dump({"models": ["955717e8"]}))
    return folder
