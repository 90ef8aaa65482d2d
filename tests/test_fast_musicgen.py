"""The fast MusicGen decode loop computes what stock ``generate`` computes, on the same weights."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, MusicgenForConditionalGeneration

from models.musicgen.codec import decode_codes
from models.musicgen.fast_loop import FastMusicgen, supports_fast_path
from models.musicgen.layers import quantize_decoder_int8

PROMPTS = ["lo fi hip hop warm piano", "sad jazz"]  # two lengths: padding and masks matter


def load(folder, weights: str = "fp32") -> tuple[MusicgenForConditionalGeneration, dict]:
    model = MusicgenForConditionalGeneration.from_pretrained(folder).eval()
    if weights == "int8":
        model = quantize_decoder_int8(model)
    elif weights == "bf16":
        model = model.to(torch.bfloat16)
    inputs = AutoTokenizer.from_pretrained(folder)(PROMPTS, return_tensors="pt", padding=True)
    return model, dict(inputs)


def both(model, inputs, steps: int = 40, seed: int | None = None, **sampling) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        if seed is not None:
            torch.manual_seed(seed)
        stock = model.generate(**inputs, max_new_tokens=steps, **sampling)
        if seed is not None:
            torch.manual_seed(seed)
        loop = FastMusicgen(model)
        fast = decode_codes(model, loop.generate_codes(inputs["input_ids"], inputs["attention_mask"], steps,
                                                     **sampling))
    return stock, fast


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
@pytest.mark.parametrize("guidance_scale", [3.0, 1.0], ids=["cfg", "no-cfg"])
@pytest.mark.parametrize("weights", ["fp32", "int8", "bf16"])
def test_greedy_gives_the_same_codes_and_audio(tiny_musicgen_dir, tiny_musicgen_stereo_dir, stereo, guidance_scale,
                                               weights):
    model, inputs = load(tiny_musicgen_stereo_dir if stereo else tiny_musicgen_dir, weights)
    fast = FastMusicgen(model)
    with torch.inference_mode():
        stock_out = model.generate(**inputs, max_new_tokens=40, do_sample=False, guidance_scale=guidance_scale,
                                   return_dict_in_generate=False)
        codes = fast.generate_codes(inputs["input_ids"], inputs["attention_mask"], 40, do_sample=False,
                                    guidance_scale=guidance_scale)
        audio = decode_codes(fast.model, codes)
    assert codes.shape == (2, 8 if stereo else 4, 40 - 3)  # 40 steps less the 3-step delay pattern
    assert torch.equal(stock_out, audio)


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_sampling_with_a_seed_matches_stock_and_repeats(tiny_musicgen_dir, weights):
    model, inputs = load(tiny_musicgen_dir, weights)
    settings = dict(do_sample=True, top_k=50, top_p=0.9, temperature=1.3, guidance_scale=3.0)
    stock, fast = both(model, inputs, seed=7, **settings)
    assert torch.equal(stock, fast)
    _, again = both(model, inputs, seed=7, **settings)
    _, other = both(model, inputs, seed=8, **settings)
    assert torch.equal(fast, again) and not torch.equal(fast, other)


def test_on_step_counts_every_step_and_can_stop(tiny_musicgen_dir):
    model, inputs = load(tiny_musicgen_dir)
    seen: list[int] = []
    FastMusicgen(model).generate_codes(inputs["input_ids"], inputs["attention_mask"], 25, on_step=seen.append)
    assert seen == list(range(1, 26))

    class Stop(Exception):
        pass

    def stop_at_5(step: int) -> None:
        if step == 5:
            raise Stop

    with pytest.raises(Stop):
        FastMusicgen(model).generate_codes(inputs["input_ids"], inputs["attention_mask"], 25, on_step=stop_at_5)


def test_int8_weights_are_quantized(tiny_musicgen_dir):
    model, _ = load(tiny_musicgen_dir, "int8")
    layer = model.decoder.model.decoder.layers[0]
    assert "quantized" in type(layer.fc1).__module__


def load_melody(folder, weights: str = "fp32"):
    from transformers import MusicgenMelodyForConditionalGeneration

    model = MusicgenMelodyForConditionalGeneration.from_pretrained(folder).eval()
    if weights == "int8":
        model = quantize_decoder_int8(model)
    inputs = AutoTokenizer.from_pretrained(folder)(PROMPTS, return_tensors="pt", padding=True)
    return model, dict(inputs)


def chroma_features(frames: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """One-hot chroma [batch, frames, 12], as the melody extractor makes."""
    notes = torch.randint(0, 12, (batch, frames), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.one_hot(notes, 12).float()


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
@pytest.mark.parametrize("chroma", ["melody", "none", "long"])
@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_melody_greedy_matches_stock(tiny_melody_dir, tiny_melody_stereo_dir, stereo, chroma, weights):
    """MusicGen-Melody: the conditioning prefix (chroma, then text) goes through the fast loop as through stock."""
    model, inputs = load_melody(tiny_melody_stereo_dir if stereo else tiny_melody_dir, weights)
    assert supports_fast_path(model)
    # a short melody repeats to the chroma length; a long one is cut; none uses the "no melody" one-hot
    features = {"melody": chroma_features(37), "none": None, "long": chroma_features(300)}[chroma]
    extra = {} if features is None else {"input_features": features}
    fast = FastMusicgen(model)
    with torch.inference_mode():
        stock = model.generate(**inputs, **extra, max_new_tokens=30, do_sample=False, guidance_scale=3.0)
        codes = fast.generate_codes(inputs["input_ids"], inputs["attention_mask"], 30, do_sample=False,
                                    guidance_scale=3.0, input_features=features)
        audio = decode_codes(fast.model, codes)
    assert codes.shape == (2, 8 if stereo else 4, 30 - 3)
    assert torch.equal(stock, audio)


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_melody_with_audio_prompt_and_seeded_sampling_matches_stock(tiny_melody_dir, weights):
    """A melody window that continues earlier codes (a long piece's next window) = stock given decoder_input_ids."""
    model, inputs = load_melody(tiny_melody_dir, weights)
    prompt = torch.randint(0, 2048, (2, 4, 13), generator=torch.Generator().manual_seed(4))
    start = torch.full((8, 1), model.generation_config.decoder_start_token_id)
    features = chroma_features(50, seed=2)
    for settings in (dict(do_sample=False, guidance_scale=3.0),
                     dict(do_sample=True, top_k=50, top_p=0.95, temperature=1.2, guidance_scale=3.0)):
        with torch.inference_mode():
            torch.manual_seed(9)
            stock = model.generate(**inputs, input_features=features, max_new_tokens=25,
                                   decoder_input_ids=torch.cat([start, prompt.reshape(8, -1)], dim=1), **settings)
            torch.manual_seed(9)
            fast = FastMusicgen(model)
            codes = fast.generate_codes(inputs["input_ids"], inputs["attention_mask"], 25, prompt_codes=prompt,
                                        input_features=features, **settings)
        assert torch.equal(codes[..., :13], prompt)
        assert torch.equal(stock, decode_codes(fast.model, codes)), settings


def test_text_model_refuses_a_melody(tiny_musicgen_dir):
    model, inputs = load(tiny_musicgen_dir)
    with pytest.raises(ValueError, match="MusicGen-Melody"):
        FastMusicgen(model).generate_codes(inputs["input_ids"], inputs["attention_mask"], 5,
                                           input_features=chroma_features(10))


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_audio_prompt_greedy_matches_stock_decoder_input_ids(tiny_musicgen_dir, tiny_musicgen_stereo_dir, stereo,
                                                              weights):
    """Continuing given codes (a clip, or the previous window of a long piece) = stock given decoder_input_ids."""
    model, inputs = load(tiny_musicgen_stereo_dir if stereo else tiny_musicgen_dir, weights)
    k = model.config.decoder.num_codebooks
    prompt = torch.randint(0, 2048, (2, k, 17), generator=torch.Generator().manual_seed(3))
    start = torch.full((2 * k, 1), model.generation_config.decoder_start_token_id)
    with torch.inference_mode():
        stock = model.generate(**inputs, decoder_input_ids=torch.cat([start, prompt.reshape(2 * k, -1)], dim=1),
                               max_new_tokens=30, do_sample=False, guidance_scale=3.0)
        fast = FastMusicgen(model)
        codes = fast.generate_codes(inputs["input_ids"], inputs["attention_mask"], 30, do_sample=False,
                                    guidance_scale=3.0, prompt_codes=prompt)
        audio = decode_codes(fast.model, codes)
    assert torch.equal(codes[..., :17], prompt)  # the result starts with the prompt
    assert codes.shape[-1] == 17 + 30 - 3
    assert torch.equal(stock, audio)


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_audio_prompt_seeded_sampling_matches_stock(tiny_musicgen_dir, weights):
    model, inputs = load(tiny_musicgen_dir, weights)
    prompt = torch.randint(0, 2048, (2, 4, 11), generator=torch.Generator().manual_seed(5))
    start = torch.full((8, 1), model.generation_config.decoder_start_token_id)
    settings = dict(do_sample=True, top_k=50, top_p=0.95, temperature=1.2, guidance_scale=3.0)
    with torch.inference_mode():
        torch.manual_seed(11)
        stock = model.generate(**inputs, decoder_input_ids=torch.cat([start, prompt.reshape(8, -1)], dim=1),
                               max_new_tokens=25, **settings)
        torch.manual_seed(11)
        fast = FastMusicgen(model)
        audio = decode_codes(fast.model, fast.generate_codes(inputs["input_ids"], inputs["attention_mask"], 25,
                                                      prompt_codes=prompt, **settings))
    assert torch.equal(stock, audio)


def test_stopping_early_keeps_the_frames_finished_in_every_codebook(tiny_musicgen_dir):
    model, inputs = load(tiny_musicgen_dir)
    fast = FastMusicgen(model)
    full = fast.generate_codes(inputs["input_ids"], inputs["attention_mask"], 40, do_sample=False)
    seen: list[int] = []
    cut = fast.generate_codes(inputs["input_ids"], inputs["attention_mask"], 40, do_sample=False,
                              on_step=seen.append, should_stop=lambda: len(seen) >= 20)
    assert cut.shape[-1] == 20 - 3 and torch.equal(cut, full[..., :17])


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
def test_folded_weight_norm_gives_the_same_audio_and_codes(tiny_musicgen_dir, tiny_musicgen_stereo_dir, stereo):
    """EnCodec with its weight-normed weights computed once (as the app loads it) decodes and encodes bit for bit
    like the checkpoint as loaded."""
    from models.musicgen.codec import encode_audio, fold_weight_norm

    folder = tiny_musicgen_stereo_dir if stereo else tiny_musicgen_dir
    plain, _ = load(folder)
    folded, _ = load(folder)
    fold_weight_norm(folded.audio_encoder)
    assert not any("parametrizations" in name for name, _ in folded.audio_encoder.named_parameters())
    k = plain.config.decoder.num_codebooks
    codes = torch.randint(0, 2048, (2, k, 75), generator=torch.Generator().manual_seed(3))
    audio = torch.randn(1, 2 if stereo else 1, 32000, generator=torch.Generator().manual_seed(4)) * 0.3
    with torch.inference_mode():
        assert torch.equal(decode_codes(plain, codes), decode_codes(folded, codes))
        assert torch.equal(encode_audio(plain, audio), encode_audio(folded, audio))


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
def test_the_chunked_final_decode_gives_the_whole_decodes_samples(tiny_musicgen_dir, tiny_musicgen_stereo_dir, stereo):
    """EnCodec past its LSTM in 250-frame chunks with 8 frames of true neighbours: every sample of the one-pass decode,
    to float32 rounding (the convolutions may round a sum differently for another length: at most 4e-8 on the
    full-size codec, docs/performance-history.md), the same length, and seams no louder than the rest."""
    from models.musicgen.codec import DECODE_CHUNK_FRAMES

    model, _ = load(tiny_musicgen_stereo_dir if stereo else tiny_musicgen_dir)
    k = model.config.decoder.num_codebooks
    codes = torch.randint(0, 2048, (2, k, 2 * DECODE_CHUNK_FRAMES + 77), generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        whole, chunked = decode_codes(model, codes, None), decode_codes(model, codes)
        short = codes[..., : DECODE_CHUNK_FRAMES]
        assert torch.equal(decode_codes(model, short, None), decode_codes(model, short))  # one chunk: the same call
    assert chunked.shape == whole.shape
    assert (chunked - whole).abs().max().item() <= 1e-6 * max(1.0, whole.abs().max().item())


def test_fused_int8_projections_match_the_separate_layers(tiny_musicgen_dir):
    """The int8 q, k and v projections in one call give each layer's own output, bit for bit."""
    from models.musicgen.layers import fused_linear_fn, linear_fn

    model, _ = load(tiny_musicgen_dir, "int8")
    attention = model.decoder.model.decoder.layers[0].self_attn
    layers = [attention.q_proj, attention.k_proj, attention.v_proj]
    fused = fused_linear_fn(layers)
    assert fused is not None and fused_linear_fn([load(tiny_musicgen_dir)[0].decoder.lm_heads[0]]) is None
    for rows in (1, 2, 8):
        x = torch.randn(rows, 3, attention.q_proj.in_features, generator=torch.Generator().manual_seed(rows))
        with torch.inference_mode():
            assert torch.equal(fused(x), torch.cat([linear_fn(m)(x) for m in layers], dim=-1))
