"""The song tab over the API of the running app, as a client would use it: a song with English and with Chinese
lyrics equal to stock ``AceStepPipeline``'s for the same seed, an edit and an extension, the bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client

from tests.test_song import stock_audio

SR = 48000


@pytest.fixture(scope="module")
def client(live_app, tmp_path_factory) -> Client:
    return Client(live_app.url, verbose=False, download_files=str(tmp_path_factory.mktemp("song-downloads")))


def song(client: Client, style: str, lyrics: str, seconds: float = 10, seed: str = "3", **extra) -> tuple:
    args = dict(style=style, lyrics=lyrics, instrumental=False, language="auto", seconds=seconds, bpm=0, key="",
                time_signature="", seed=seed, variants=1, model_name="") | extra
    return client.predict(**args, api_name="/song")


@pytest.mark.parametrize("style, lyrics, language", [
    ("upbeat pop", "[verse]\nCity lights are shining bright", "en"),
    ("Mandopop ballad", "[verse]\n月光洒在窗前", "zh"),
])
def test_a_song_over_the_api_is_stock_acestep(client, tiny_ace_step_dir, tiny_watermark_dir, style, lyrics, language):
    first, second, picture, params, details, downloads = song(client, style, lyrics)
    assert second is None and params["language"] == language and params["seed"] == 3
    audio, rate = sf.read(first)
    assert rate == SR and audio.shape == (10 * SR, 2)
    names = [p.rsplit("/", 1)[-1] for p in (d if isinstance(d, str) else d["path"] for d in downloads)]
    assert any(n.endswith("_lyrics.txt") for n in names) and any(n.endswith(".mp3") for n in names)
    from models.loading import load_model

    stock = stock_audio(tiny_ace_step_dir, style, lyrics, 10, 3, language)[0]
    marked = np.clip(load_model("watermark", str(tiny_watermark_dir), "cpu").mark(stock, SR).T, -1, 1)  # as files are
    assert np.abs(audio - marked).max() < 2e-4  # a 16-bit file of the same song


def test_edit_and_extend_over_the_api(client):
    first, *_ = song(client, "pop", "[verse]\nla la la", seconds=12, seed="8")
    before, _ = sf.read(first)
    edited, _, _, params, details, _ = client.predict(1, 4.0, 7.0, "", "[chorus]\nnew words", "2",
                                                      api_name="/song_edit")
    after, _ = sf.read(edited)
    assert params["task"] == "song_edit" and after.shape == before.shape
    assert np.abs(after[: int(3 * SR)] - before[: int(3 * SR)]).max() < 0.02  # the watermark's own change only
    longer, _, _, params, _, _ = client.predict(1, 5, "", "", "4", api_name="/song_extend")
    audio, _ = sf.read(longer)
    assert params["task"] == "song_extend" and audio.shape[0] == 17 * SR


@pytest.mark.parametrize("extra, message", [
    (dict(style="", lyrics=""), "Nothing to sing"),
    (dict(style="pop", lyrics="la", seconds=300), "240"),
    (dict(style="pop", lyrics="la", language="klingon"), "not in the list of choices"),
    (dict(style="pop", lyrics="la", model_name="someone/voice-clone"), "not offered|not in the list of choices"),
])
def test_bad_input_gets_a_plain_message(client, extra, message):
    with pytest.raises(Exception, match=message):
        song(client, **{"style": "pop", "lyrics": "", **extra})


def test_an_edit_before_any_song_says_so(live_app):
    fresh = Client(live_app.url, verbose=False)
    with pytest.raises(Exception, match="Make a song here first"):
        fresh.predict(1, 0.0, 5.0, "", "", "", api_name="/song_edit")
