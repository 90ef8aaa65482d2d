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


# ------------------------------------------------------------------------------------------------ MusicGen
MUSICGEN_WORDS = (
    "lo fi hip hop warm piano bpm jazz rock pop drums bass guitar synth ambient happy sad slow fast "
    "electronic dance beat melody chill orchestral strings epic with and a the of in 80 90 120"
).split()


TINY_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789,.!?-'"  # what the tiny MusicGens' tokenizer reads
# The characters t5-base's vocabulary reads, as far as prompts use them: both cases, digits and the punctuation of
# everyday English, ":" included (T5's own task prefixes, "summarize: ...", are written with it). It has no "<", "{"
# or "}" and few accented letters (T5 maintainers, google-research/text-to-text-transfer-transformer #390, #657).
T5_CHARACTERS = TINY_CHARACTERS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ:;()&/\"%+#"


def build_t5_tokenizer(folder: str | Path, characters: str = TINY_CHARACTERS):
    """A small T5 (Unigram) tokenizer built from a word list and ``characters``, saved as tokenizer.json in
    ``folder``. The tiny MusicGens keep TINY_CHARACTERS (their random weights, and so the equality tests' near
    ties, follow from its size); T5_CHARACTERS reads what t5-base reads, for checks of what a prompt loses."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"\u2581{w}", -1.0 - i * 0.01) for i, w in enumerate(MUSICGEN_WORDS)]
    pieces += [(c, -5.0) for c in characters] + [(f"\u2581{c}", -5.5) for c in characters] + [("\u2581", -6.0)]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_tiny_musicgen(
    folder: str | Path, melody: bool = False, stereo: bool = False, seed: int = 0, hidden_size: int = 32
) -> Path:
    """Write a tiny random MusicGen (or MusicGen-Melody) checkpoint to ``folder``.

    T5 text encoder, 32 kHz EnCodec (50 frames/s, 4 codebooks of 2048, as the real one but with a few
    filters) and a 2-layer decoder; ``stereo`` doubles the decoder's codebooks like the stereo checkpoints.
    """
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenMelodyConfig,
        MusicgenMelodyForConditionalGeneration,
        T5Config,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = build_t5_tokenizer(folder)
    text_encoder = T5Config(
        vocab_size=len(tokenizer), d_model=hidden_size, d_kv=8, d_ff=2 * hidden_size, num_layers=1, num_heads=2
    )
    audio_encoder = EncodecConfig(
        sampling_rate=32000,
        target_bandwidths=[2.2],  # 2.2 kbps at 50 frames/s with 11-bit codes -> 4 quantizers
        codebook_size=2048,
        upsampling_ratios=[8, 5, 4, 4],  # hop 640 -> 50 frames/s at 32 kHz
        num_filters=2,
        hidden_size=8,
        num_lstm_layers=1,
        use_causal_conv=False,
        normalize=False,
    )
    n_codebooks = 8 if stereo else 4
    decoder = MusicgenDecoderConfig(
        vocab_size=2048,
        hidden_size=hidden_size,
        ffn_dim=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_codebooks=n_codebooks,
        audio_channels=2 if stereo else 1,
        max_position_embeddings=2048,
        dropout=0.0,
    )
    if melody:
        config = MusicgenMelodyConfig(text_encoder=text_encoder, audio_encoder=audio_encoder, decoder=decoder)
        model = MusicgenMelodyForConditionalGeneration(config)
    else:
        config = MusicgenConfig(text_encoder=text_encoder, audio_encoder=audio_encoder, decoder=decoder)
        model = MusicgenForConditionalGeneration(config)
    # EnCodec's codebooks are buffers that start at zero (real ones are learned): give them random values,
    # or every code would decode to the same sound.
    for layer in model.audio_encoder.quantizer.layers:
        layer.codebook.embed.normal_()
        layer.codebook.embed_avg.copy_(layer.codebook.embed)
    model.generation_config.update(
        do_sample=True, top_k=250, top_p=0.0, temperature=1.0, guidance_scale=3.0, max_length=1500,
        decoder_start_token_id=2048, pad_token_id=2048, bos_token_id=2048,
    )
    model.eval().save_pretrained(folder)
    if melody:
        (folder / "preprocessor_config.json").write_text(json.dumps(TINY_MELODY_PREPROCESSOR, indent=2))
    else:
        EncodecFeatureExtractor(feature_size=1, sampling_rate=32000).save_pretrained(folder)
    return folder


# What `MusicgenMelodyFeatureExtractor().save_pretrained()` writes (that class needs torchaudio to instantiate).
TINY_MELODY_PREPROCESSOR = {
    "chunk_length": 30,
    "feature_extractor_type": "MusicgenMelodyFeatureExtractor",
    "feature_size": 12,
    "hop_length": 4096,
    "n_fft": 16384,
    "num_chroma": 12,
    "padding_side": "right",
    "padding_value": 0.0,
    "processor_class": "MusicgenMelodyProcessor",
    "return_attention_mask": False,
    "sampling_rate": 32000,
    "stem_indices": [3, 2],
}


DEMUCS_SOURCES = ["drums", "bass", "other", "vocals"]  # htdemucs' stems, in its order


def build_tiny_htdemucs(folder: str | Path, seed: int = 0, name: str = "tiny_htdemucs") -> Path:
    """Write a tiny random HTDemucs to ``folder`` in the hub's format (what ``adefossez/HTDemucs`` holds):
    ``NAME.yaml`` listing the model signatures, and ``SIG.safetensors`` with the state and, in its metadata, the
    class and init arguments as JSON (fractions encoded as demucs' exporter does)."""
    from fractions import Fraction

    import yaml
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    segment = Fraction(39, 5)  # htdemucs' 7.8 s training segment
    kwargs = dict(sources=DEMUCS_SOURCES, audio_channels=2, samplerate=44100, segment=segment, channels=4,
                  growth=2, depth=4, t_layers=1, t_heads=2, bottom_channels=0, dconv_depth=1, dconv_comp=2)
    # htdemucs' depth and FFT size (its transformer sees ~1,300 time steps per segment), with few channels
    model = HTDemucs(**kwargs)

    def encode(value):
        if isinstance(value, Fraction):
            return {"_type": "fraction", "numerator": value.numerator, "denominator": value.denominator}
        return value

    metadata = {
        "klass": "demucs.htdemucs.HTDemucs",
        "args": json.dumps([]),
        "kwargs": json.dumps({key: encode(value) for key, value in kwargs.items()}),
    }
    signature = "0123abcd"
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(folder / f"{signature}.safetensors"), metadata=metadata)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({"models": [signature]}))
    return folder


TRANSLATOR_CORPUS = [  # what the tiny translator's SentencePiece model learns its pieces from
    "欢快的国风摇滚", "雨天的钢琴", "悲伤的小提琴独奏", "电子舞曲，强烈的鼓点", "古筝和笛子", "安静的夜晚",
    "música alegre con guitarra", "piano triste bajo la lluvia", "Весёлый рок с барабанами",
    "happy rock with drums", "sad piano in the rain", "calm night music", "electronic dance music",
    "a violin solo", "lo-fi hip hop beats", "guzheng and flute",
]


MARIAN_FULL_VOCAB = 64172  # opus-mt-mul-en's vocabulary size: the output layer's cost per token


def build_tiny_translator(folder: str | Path, seed: int = 0, d_model: int = 16, full_size: bool = False) -> Path:
    """Write a tiny random MarianMT checkpoint (model + a real SentencePiece tokenizer) to ``folder``; with
    ``full_size``, opus-mt-mul-en's shapes (6 + 6 layers, d_model 512, 8 heads, FFN 2048, a 64k vocabulary padded
    with unused pieces) for timing.

    The tokenizer is laid out as the opus-mt checkpoints are: ``source.spm`` and ``target.spm`` (one SentencePiece
    unigram model trained here on ``TRANSLATOR_CORPUS``, every character covered), ``vocab.json`` with ``</s>`` = 0,
    ``<unk>`` = 1 and ``<pad>`` last (the decoder's start token). The model is MarianMT with random weights.
    """
    import io

    import sentencepiece as spm
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TRANSLATOR_CORPUS * 4), model_writer=model,
                                   vocab_size=160, character_coverage=1.0, model_type="unigram",
                                   unk_id=1, eos_id=0, bos_id=-1, pad_id=-1, hard_vocab_limit=False,
                                   minloglevel=2, num_threads=1)
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes(model.getvalue())
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    while full_size and len(vocab) < MARIAN_FULL_VOCAB - 1:
        vocab[f"<unused_{len(vocab)}>"] = len(vocab)
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = MarianTokenizer(str(folder / "source.spm"), str(folder / "target.spm"), str(folder / "vocab.json"))
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    pad = vocab["<pad>"]
    sizes = (dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                  decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512)
             if full_size else
             dict(d_model=d_model, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                  decoder_attention_heads=2, encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
                  max_position_embeddings=128))
    config = MarianConfig(vocab_size=len(vocab), pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad,
                          forced_eos_token_id=0, **sizes)
    MarianMTModel(config).eval().save_pretrained(folder)
    return folder


def build_tiny_watermarker(folder: str | Path, seed: int = 0, full_size: bool = False) -> Path:
    """Write an AudioSeal generator and detector with random weights to ``folder``, as the hub holds them:
    ``generator_base.pth`` and ``detector_base.pth``, each ``{"xp.cfg": config, "model": state dict}``, which
    ``AudioSeal.load_generator`` / ``load_detector`` read from a path.

    The architecture is the 16-bit model's (audioseal's own model cards: SEANet, ratios 8-5-4-2, LSTM); tiny
    unless ``full_size`` (14.7M + 8.6M parameters, as released). State-dict keys use the released checkpoints'
    naming, which audioseal's loader converts.
    """
    import audioseal
    from audioseal import AudioSeal
    from audioseal.builder import AudioSealDetectorConfig, AudioSealWMConfig, create_detector, create_generator
    from omegaconf import OmegaConf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cards = Path(audioseal.__file__).parent / "cards"
    parts = [("audioseal_wm_16bits", AudioSealWMConfig, create_generator, "generator_base.pth"),
             ("audioseal_detector_16bits", AudioSealDetectorConfig, create_detector, "detector_base.pth")]
    for card, kind, create, file_name in parts:
        config = OmegaConf.to_container(OmegaConf.load(cards / f"{card}.yaml"))
        config.pop("checkpoint")
        if not full_size:
            config["seanet"].update(n_filters=4, dimension=16, lstm=1)
        torch.manual_seed(seed)
        model = create(AudioSeal.parse_config(dict(config), kind))
        state = {k.replace(".inner_conv.", "."): v for k, v in model.state_dict().items()}
        torch.save({"xp.cfg": config, "model": state}, folder / file_name)
    return folder


TINY_TRANSKUN_CONF = {  # transkun's 2.0.conf, its sizes shrunk: the same modules, random weights
    "f_min": 30, "f_max": 8000, "n_mels": 32, "segmentHopSizeInSecond": 8, "segmentSizeInSecond": 16,
    "hopSize": 1024, "windowSize": 4096, "fs": 44100, "nExtraWins": 5, "baseSize": 8, "downsampleF": True,
    "posEmbedInitGamma": 1, "nHead": 2, "fourierSize": 8, "nLayers": 1, "enabledAttn": ["F", "T"],
    "hiddenFactorAttn": 1, "hiddenFactor": 1, "velocityPredictorHiddenSize": 16,
    "refinedOFPredictorHiddenSize": 16, "scoringExpansionFactor": 1, "useInnerProductScorer": True,
    "scoreDropoutProb": 0.0, "contextDropoutProb": 0.0, "velocityDropoutProb": 0.0, "refinedOFDropoutProb": 0.0,
}


def build_tiny_transkun(folder: str | Path, seed: int = 0) -> Path:
    """A tiny random Transkun V2 (transkun's own ``TransKun`` class and conf format) saved as ``tiny.pt`` and
    ``tiny.conf`` in ``folder``, as transkun ships ``2.0.pt`` and ``2.0.conf``."""
    import moduleconf

    from models.piano_transcription import mel_filters_without_torchaudio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    conf_path = folder / "tiny.conf"
    conf_path.write_text(json.dumps({"Model": {"module": "transkun.ModelTransformer", "configClassName": "Config",
                                               "config": TINY_TRANSKUN_CONF}}, indent=1))
    conf = moduleconf.parseFromFile(str(conf_path))
    torch.manual_seed(seed)
    with mel_filters_without_torchaudio():
        model = conf["Model"].module.TransKun(conf=conf["Model"].config)
    torch.save({"best_state_dict": model.state_dict()}, folder / "tiny.pt")
    return folder


# ------------------------------------------------------------------------------------------------ ACE-Step 1.5
ACE_STEP_CORPUS = (
    "[verse] [chorus] [bridge] [intro] [outro] # Instruction Caption Metas Languages Lyric "
    "Fill the audio semantic mask based on the given conditions: Repaint the mask area based on the given conditions: "
    "- bpm: N/A - timesignature: 4 - keyscale: C major A minor - duration: 30 seconds "
    "upbeat pop song with bright female vocals, electric guitar and drums; soft folk ballad, acoustic guitar, warm "
    "male voice; city lights are shining bright tonight, we sing along until the morning light. "
    "月光洒在窗前 我在想你 夜里的风 吹过我的心 春天 花开 歌声 "
    "en zh ja ko fr de es 0 1 2 3 4 5 6 7 8 9"
)
ACE_STEP_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def build_qwen_like_tokenizer(folder: str | Path, vocab_size: int = 600) -> Path:
    """A small byte-level BPE tokenizer trained here (``tokenizers``) with Qwen's special tokens, saved as a
    ``PreTrainedTokenizerFast`` in ``folder``: byte-level, so any script (Chinese included) becomes tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(ACE_STEP_SPECIAL),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([ACE_STEP_CORPUS] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=list(ACE_STEP_SPECIAL[1:]))
    fast.save_pretrained(folder)
    return folder


def build_tiny_ace_step(folder: str | Path, seed: int = 0, turbo: bool = True) -> Path:
    """Write a tiny random ACE-Step 1.5 pipeline in diffusers' format (``model_index.json`` and a folder per part):
    the real classes (``AceStepTransformer1DModel``, ``AceStepConditionEncoder``, a Qwen3 text encoder,
    ``AutoencoderOobleck``) with small configs, as diffusers' own tests build them. The VAE keeps the real rates:
    48 kHz stereo, 1920 samples a latent frame (25 frames a second).

    Args:
        folder: destination, created if needed.
        seed: torch seed for the random weights.
        turbo: mark the DiT as a turbo (guidance-distilled) checkpoint, as the default one is.

    Returns:
        The folder, loadable with ``AceStepPipeline.from_pretrained``.
    """
    from diffusers import AceStepPipeline, AutoencoderOobleck, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    folder = Path(folder)
    build_qwen_like_tokenizer(folder / "_tokenizer")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder / "_tokenizer")
    acoustic = 8
    torch.manual_seed(seed)
    transformer = AceStepTransformer1DModel(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, in_channels=3 * acoustic, audio_acoustic_hidden_dim=acoustic, patch_size=2, rope_theta=10000.0,
        sliding_window=16, is_turbo=turbo, model_version="turbo" if turbo else "base")
    text_encoder = Qwen3Model(Qwen3Config(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=512))
    condition_encoder = AceStepConditionEncoder(
        hidden_size=32, intermediate_size=64, text_hidden_dim=32, timbre_hidden_dim=acoustic,
        num_lyric_encoder_hidden_layers=2, num_timbre_encoder_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, rope_theta=10000.0, sliding_window=16)
    with torch.no_grad():  # the real one holds VAE-encoded silence; zeros would make every tiny song alike
        condition_encoder.silence_latent.normal_(0.0, 0.5)
    vae = AutoencoderOobleck(encoder_hidden_size=4, downsampling_ratios=[2, 4, 4, 6, 10], decoder_channels=4,
                             decoder_input_channels=acoustic, audio_channels=2, channel_multiples=[1, 1, 1, 1, 1],
                             sampling_rate=48000)
    pipe = AceStepPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
                           condition_encoder=condition_encoder,
                           scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0))
    pipe.save_pretrained(folder)
    import shutil

    shutil.rmtree(folder / "_tokenizer")
    return folder
