"""The Hugging Face Space configuration (README front matter, packages.txt) agrees with the code."""

from __future__ import annotations

import re

import gradio
import yaml

from models import musicgen, pop2piano, separator, song, translation, watermark
from tests.live_app import ROOT

KNOWN_HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "a10g-small", "a10g-large",
                  "a100-large", "zero-a10g"}


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must start with the Space's YAML front matter"
    return yaml.safe_load(match.group(1))


def test_front_matter_deploys_as_is():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert (ROOT / meta["app_file"]).is_file()
    defaults = {pop2piano.DEFAULT_PIANO_COVER_MODEL, musicgen.DEFAULT_MUSICGEN_MODEL, musicgen.DEFAULT_MELODY_MODEL,
                separator.DEFAULT_SEPARATOR_MODEL, translation.DEFAULT_TRANSLATION_MODEL,
                watermark.DEFAULT_WATERMARK_MODEL, song.DEFAULT_SONG_MODEL}
    assert set(meta["models"]) == defaults
    assert {entry.split()[0] for entry in meta["preload_from_hub"]} == defaults
    assert meta["suggested_hardware"] in KNOWN_HARDWARE
    requirements = (ROOT / "requirements.txt").read_text()
    from packaging.specifiers import SpecifierSet

    pin = re.search(r"^gradio(?:\[\w+\])?([<>=!~][^\s#]*)", requirements, re.M)
    assert pin and meta["sdk_version"] in SpecifierSet(pin.group(1))  # the Space's gradio is one the app allows


def test_packages_txt_lists_what_the_app_needs_from_debian():
    packages = (ROOT / "packages.txt").read_text().split()
    assert {"libfluidsynth3", "fluid-soundfont-gm", "libcairo2", "ffmpeg", "fonts-wqy-microhei"} <= set(packages)
