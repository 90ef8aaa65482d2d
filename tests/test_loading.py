"""One loader for every model (``models.loading.load_model``, as whisper's) over one base class: roles and names it knows,
what it says of one it does not, the failure it remembers, and the "off" words."""

from __future__ import annotations

import inspect

import pytest

from models.loading import load_model
from models.loading import LoadedModel
from models.roles import _WRAPPERS, known_checkpoints, resolve_name, wrapper_class
from models.cache import ROLES
from models.sources import ModelLoadError, is_off


def test_an_unknown_role_lists_the_roles():
    with pytest.raises(ValueError) as err:
        load_model("drums")
    assert all(role in str(err.value) for role in ROLES)


def test_short_names_and_defaults(monkeypatch):
    monkeypatch.delenv("MUSICGEN_MODEL", raising=False)
    assert resolve_name("text", "small") == "facebook/musicgen-small"
    assert resolve_name("text", "musicgen-stereo-large") == "facebook/musicgen-stereo-large"
    assert resolve_name("melody", "melody") == "facebook/musicgen-melody"
    assert resolve_name("text", None) == "facebook/musicgen-small"
    assert resolve_name("text", "someone/fine-tune") == "someone/fine-tune"  # any hub id goes through as given
    assert resolve_name("separator", "") == "adefossez/HTDemucs"
    monkeypatch.setenv("MUSICGEN_MODEL", "./weights/small")
    assert resolve_name("text", "") == "./weights/small"


def test_every_role_is_one_wrapper_on_the_shared_base():
    assert tuple(_WRAPPERS) == ROLES
    for role in ROLES:
        cls, _ = wrapper_class(role)
        assert issubclass(cls, LoadedModel), role
        assert known_checkpoints(role), role
        # the lock, the load, the failure memory and the "off" check live in the base class only
        source = inspect.getsource(inspect.getmodule(cls))
        for copy in ("FailureMemory(", "load_or_explain(", "def unload(", "def load(self)", "is_off(self.name)"):
            assert copy not in source, (role, copy)


def test_an_unknown_name_says_which_checkpoints_the_role_knows(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty hub cache
    translator = wrapper_class("translator")[0]("nobody/no-such-model", "cpu")
    with pytest.raises(ModelLoadError) as err:
        translator.load()
    assert "nobody/no-such-model" in str(err.value)
    assert "Known checkpoints for this role: Helsinki-NLP/opus-mt-mul-en" in str(err.value)
    # an optional model's failure is said again at once, without trying again
    monkeypatch.setattr(type(translator), "_load_parts", lambda self: pytest.fail("retried"))
    with pytest.raises(ModelLoadError, match="no-such-model"):
        translator.load()
    assert not translator.loaded


def test_a_missing_folder_is_not_told_the_hub_names(tmp_path):
    with pytest.raises(ModelLoadError) as err:
        wrapper_class("piano")[0](str(tmp_path / "pop2piano"), "cpu").load()
    assert "does not exist" in str(err.value) and "Known checkpoints" not in str(err.value)


@pytest.mark.parametrize("word", ["off", "OFF", " none ", "0", "no", "false"])
def test_one_set_of_off_words_turns_an_optional_model_off(word):
    assert is_off(word)
    separator = wrapper_class("separator")[0](word.strip(), "cpu")
    assert separator.disabled
    with pytest.raises(ModelLoadError, match="Melody separation is turned off"):
        separator.load()


def test_the_same_name_is_the_same_model(tiny_pop2piano_dir):
    first = load_model("piano", str(tiny_pop2piano_dir), "cpu")
    assert load_model("piano", str(tiny_pop2piano_dir), "cpu") is first
    first.load()
    assert first.loaded and first.model is not None
