"""Prompts in any language: which runs are translated, the tiny MarianMT (real SentencePiece tokenizer) loaded by the
app's code, and MusicGen given the English (the same tokens as the English typed in)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import musicgen, translation
from models.translation import english_prompt, runs_to_translate, script_runs

MIXED = "欢快的国风摇滚 with guzheng and drums"


def fake_english(texts: list[str]) -> list[str]:
    return [f"[{t}]" for t in texts]


def test_runs_join_back_into_the_prompt():
    for prompt in (MIXED, "jazz, 雨天的钢琴，slow", "música alegre", "  钢琴", "Весёлый рок 2024!"):
        assert "".join(text for _, text in script_runs(prompt)) == prompt


def test_a_mixed_prompt_keeps_its_english_as_written():
    assert english_prompt(MIXED, ["欢快的国风摇滚"], fake_english) == "[欢快的国风摇滚] with guzheng and drums"
    assert english_prompt("jazz, 雨天的钢琴，slow", ["雨天的钢琴，"], fake_english) == "jazz, [雨天的钢琴], slow"


def test_a_latin_run_with_an_unreadable_letter_is_translated_whole():
    assert runs_to_translate("música alegre con guitarra", ["ú"]) == [True]
    assert english_prompt("música alegre con guitarra", ["ú"], fake_english) == "[música alegre con guitarra]"
    assert runs_to_translate("lo-fi piano", []) == [False]


def test_the_translations_final_period_goes_unless_the_prompt_had_one():
    assert english_prompt("钢琴", ["钢琴"], lambda ts: ["Piano."]) == "Piano"
    assert english_prompt("钢琴。", ["钢琴。"], lambda ts: ["Piano."]) == "Piano."


def test_the_tiny_translator_loads_through_the_apps_code(tiny_translator_dir):
    from transformers import MarianTokenizer

    assert (tiny_translator_dir / "source.spm").is_file() and (tiny_translator_dir / "vocab.json").is_file()
    translator = translation.PromptTranslator(str(tiny_translator_dir), "cpu")
    translator.load()
    assert isinstance(translator.tokenizer, MarianTokenizer)
    pieces = translator.tokenizer.tokenize("欢快的国风摇滚")
    assert "<unk>" not in pieces and len(pieces) >= 7  # a real SentencePiece model covering every character
    first = translator.translate(["欢快的国风摇滚", "música alegre"])
    assert len(first) == 2 and all(isinstance(t, str) and t for t in first)
    assert translator.translate(["欢快的国风摇滚", "música alegre"]) == first  # beam search: deterministic


def test_musicgen_is_given_the_english_and_records_both(tiny_musicgen_dir, tiny_translator_dir):
    model = musicgen.MusicGenModel(str(tiny_musicgen_dir), "cpu")
    params = musicgen.SamplingParams(duration=1.0, seed=7)
    result = model.generate(MIXED, params, translator=str(tiny_translator_dir))
    english = result.prompt_english
    assert english is not None and english.endswith(" with guzheng and drums")
    assert "欢快的国风摇滚" not in english
    assert result.params["prompt"] == MIXED and result.params["prompt_english"] == english
    assert result.params["translation_model"] == tiny_translator_dir.name  # its name, never a server path
    # The same tokens as the English typed in with translation off: the model saw the English.
    typed = model.generate(english, params, translator="off")
    assert np.array_equal(result.codes, typed.codes) and np.array_equal(result.audio, typed.audio)


def test_reproducing_from_the_json_uses_its_english_for_that_run_only(tiny_musicgen_dir, tiny_translator_dir,
                                                                       tmp_path):
    """A loaded parameters file gives its English to the runs of its prompt in the tab that loaded it (its session
    state), never to anyone else's run of the same prompt."""
    from ui.music import given_english, load_params

    prompt = "安静的夜晚 piano"
    record = {"task": "text_to_music", "prompt": prompt, "prompt_english": "quiet night piano", "seed": 3}
    path = tmp_path / "params.json"
    path.write_text(json.dumps(record, ensure_ascii=False))
    *_, loaded = load_params(str(path), melody_tab=False)
    assert loaded == {"prompt": prompt, "english": "quiet night piano"}
    assert given_english(loaded, prompt) == "quiet night piano"
    assert given_english(loaded, "another prompt") is None and given_english(None, prompt) is None
    model = musicgen.MusicGenModel(str(tiny_musicgen_dir), "cpu")
    params = musicgen.SamplingParams(duration=1.0, seed=3)
    result = model.generate(prompt, params, translator=str(tiny_translator_dir),
                            prompt_english=given_english(loaded, prompt))
    assert result.prompt_english == "quiet night piano"
    typed = model.generate("quiet night piano", params, translator="off")
    assert np.array_equal(result.codes, typed.codes)
    # another user's run of the same prompt, after the file was loaded: translated, not the file's English
    other = model.generate(prompt, params, translator=str(tiny_translator_dir))
    assert other.prompt_english != "quiet night piano" and other.prompt_english.endswith(" piano")


@pytest.mark.parametrize("source", ["off", "missing"])
def test_without_a_translator_the_honest_note_stays(tiny_musicgen_dir, tmp_path, source, caplog):
    name = "off" if source == "off" else str(tmp_path / "no-such-folder")
    model = musicgen.MusicGenModel(str(tiny_musicgen_dir), "cpu")
    with caplog.at_level("WARNING"):
        result = model.generate("calm piano 雨天的钢琴", musicgen.SamplingParams(duration=1.0, seed=1),
                                translator=name)
    assert result.prompt_english is None and "prompt_english" not in result.params
    assert any("“雨天的钢琴”" in note and "English words" in note for note in result.notes)
    if source == "missing":
        assert result.params["translation_failed"] == "the prompt translator is not available on this server"
        assert "does not exist" in caplog.text  # the why, for whoever runs the app
    else:
        assert "translation_failed" not in result.params


def test_an_english_prompt_never_loads_a_translator(tiny_musicgen_dir, tmp_path):
    model = musicgen.MusicGenModel(str(tiny_musicgen_dir), "cpu")
    result = model.generate("lo-fi piano", musicgen.SamplingParams(duration=1.0, seed=1),
                            translator=str(tmp_path / "never-looked-at"))
    assert result.prompt_english is None and "translation_model" not in result.params
