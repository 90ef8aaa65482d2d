"""Melody stems with Demucs: a tiny random HTDemucs saved in the hub's format and loaded back by our loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.sources import ModelLoadError
from models.loading import load_model
from models.musicgen import Melody, SamplingParams
from models.separator import MELODY_STEMS, StemSeparator, check_melody_source, load_bag
from tests.tiny_models import DEMUCS_SOURCES


@pytest.fixture(scope="module")
def melody_model(tiny_melody_dir):
    return load_model("melody", str(tiny_melody_dir), "cpu")


def test_the_bag_loads_through_demucs_own_loader(tiny_htdemucs_dir):
    from demucs.apply import BagOfModels
    from demucs.htdemucs import HTDemucs

    bag = load_bag(tiny_htdemucs_dir)
    assert isinstance(bag, BagOfModels) and isinstance(bag.models[0], HTDemucs)
    assert bag.sources == DEMUCS_SOURCES and bag.samplerate == 44100 and bag.audio_channels == 2


def test_melody_stems_are_vocals_plus_other(tiny_htdemucs_dir, hummed_melody):
    """The separator keeps the vocals and other stems, summed and downmixed, at the melody's rate and length."""
    from demucs.apply import apply_model
    from demucs.audio import convert_audio

    melody = Melody.from_file(str(hummed_melody))  # 4 s at 44.1 kHz
    stems = StemSeparator(str(tiny_htdemucs_dir), "cpu").melody_stems(melody.audio, melody.sample_rate)
    assert stems.shape == melody.audio.shape and stems.dtype == np.float32 and np.isfinite(stems).all()
    assert not np.allclose(stems, melody.audio)

    bag = load_bag(tiny_htdemucs_dir)  # every stem, straight from demucs
    with torch.inference_mode():
        wav = convert_audio(torch.from_numpy(melody.audio)[None, None], melody.sample_rate, 44100, 2)
        every = apply_model(bag, wav, shifts=0, split=True, overlap=0.25)
    kept = every[:, [DEMUCS_SOURCES.index(s) for s in MELODY_STEMS]].sum(1).mean(1)[0].numpy()
    left_out = every[:, [DEMUCS_SOURCES.index(s) for s in ("drums", "bass")]].sum(1).mean(1)[0].numpy()
    assert np.allclose(stems, kept, atol=1e-5)
    assert not np.allclose(stems, left_out, atol=1e-3)


def test_separation_is_deterministic_and_cached(tiny_htdemucs_dir, hummed_melody):
    melody = Melody.from_file(str(hummed_melody))
    first = StemSeparator(str(tiny_htdemucs_dir), "cpu").melody_stems(melody.audio, melody.sample_rate)
    separator = StemSeparator(str(tiny_htdemucs_dir), "cpu")
    second = separator.melody_stems(melody.audio, melody.sample_rate)
    assert np.array_equal(first, second)  # no random shift: the same melody gives the same chroma every time
    assert separator.melody_stems(melody.audio, melody.sample_rate) is second  # the same melody again: cached


def test_generate_follows_the_separated_melody(melody_model, tiny_htdemucs_dir, hummed_melody):
    melody = Melody.from_file(str(hummed_melody))
    separated = melody_model.generate_with_melody("jazz", melody, SamplingParams(duration=1.0, seed=3), 1,
                                      melody_source="separated", separator=str(tiny_htdemucs_dir))
    mix = melody_model.generate_with_melody("jazz", melody, SamplingParams(duration=1.0, seed=3), 1, melody_source="mix")
    stems = StemSeparator(str(tiny_htdemucs_dir), "cpu").melody_stems(melody.audio, melody.sample_rate)
    assert np.array_equal(separated.chroma, melody_model.chroma(stems, melody.sample_rate)[0].numpy())
    assert np.array_equal(mix.chroma, melody_model.chroma(melody.audio, melody.sample_rate)[0].numpy())
    assert separated.params["melody_source"] == "separated" and mix.params["melody_source"] == "mix"
    assert separated.params["melody_source_used"].startswith("separated: vocals + other")
    assert mix.params["melody_source_used"] == "whole mix"
    assert not separated.notes and not mix.notes


def test_without_the_separator_the_whole_mix_is_used_with_a_note(melody_model, tmp_path, hummed_melody, caplog):
    melody = Melody.from_file(str(hummed_melody))
    with caplog.at_level("WARNING"):
        result = melody_model.generate_with_melody("jazz", melody, SamplingParams(duration=1.0, seed=3), 1,
                                                   melody_source="separated",
                                                   separator=str(tmp_path / "no-demucs-here"))
    used = result.params["melody_source_used"]  # plain words for a visitor; the why and the fix in the log
    assert used == "whole mix (the melody separator is not available on this server)"
    assert "--separator-model" in caplog.text and str(tmp_path) not in used
    assert any("could not be separated" in note and "whole mix" in note for note in result.notes)
    assert np.array_equal(result.chroma, melody_model.chroma(melody.audio, melody.sample_rate)[0].numpy())
    assert result.audio.shape[-1] == 32000


def test_a_failed_load_is_not_retried_at_once(tmp_path):
    separator = StemSeparator(str(tmp_path / "missing"), "cpu")
    with pytest.raises(ModelLoadError, match="does not exist"):
        separator.load()
    (tmp_path / "missing").mkdir()  # still remembered as failed: no retry on every request
    with pytest.raises(ModelLoadError, match="does not exist"):
        separator.load()
    with pytest.raises(ModelLoadError, match="turned off"):
        StemSeparator("off", "cpu").load()


def test_a_folder_without_a_bag_says_so(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"no \*\.yaml"):
        StemSeparator(str(tmp_path), "cpu").load()


@pytest.mark.parametrize("value, expected", [("", "separated"), ("MIX", "mix"), ("Whole mix", "mix"),
                                             ("separated", "separated")])
def test_melody_source_values(value, expected):
    assert check_melody_source(value) == expected


def test_bad_melody_source():
    with pytest.raises(ValueError, match="separated, mix"):
        check_melody_source("karaoke")
