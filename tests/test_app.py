"""The app as users reach it: its event functions, and a gradio_client call against a live server."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
from PIL import Image

import app
import gradio as gr


@pytest.fixture()
def tiny_app(monkeypatch, tiny_pop2piano_dir):
    """The app configured as `--piano-model <tiny folder> --device cpu` would."""
    monkeypatch.setattr(app.CONFIG, "piano_model", str(tiny_pop2piano_dir))
    monkeypatch.setattr(app.CONFIG, "device", "cpu")
    monkeypatch.setattr(app.CONFIG, "max_song_seconds", 600.0)
    return app


def no_progress(*args, **kwargs) -> None:
    return None


def check_cover_outputs(outputs, song_path) -> None:
    piano_wav, midi_path, mix_wav, roll_png, tempo, details, *_ = outputs
    song_seconds = sf.info(str(song_path)).duration
    for wav in (piano_wav, mix_wav):
        info = sf.info(wav)
        assert info.samplerate == 44100
        assert info.duration == pytest.approx(song_seconds, abs=0.01)
    audio, _ = sf.read(piano_wav)
    assert np.abs(audio).max() > 0.1
    midi = pretty_midi.PrettyMIDI(midi_path)
    notes = midi.instruments[0].notes
    assert len(notes) > 0
    assert midi.get_tempo_changes()[1][0] == pytest.approx(tempo, abs=0.01)
    assert 40 < tempo < 250
    with Image.open(roll_png) as image:
        assert image.format == "PNG"
    assert "notes" in details and "BPM" in details


def test_piano_cover_event(tiny_app, chorale):
    outputs = tiny_app.piano_cover(str(chorale[0]), "composer4", 0.5, progress=no_progress)
    check_cover_outputs(outputs, chorale[0])
    assert "Arranger 4" in outputs[5]
    state = outputs[6]
    remixed = tiny_app.remix(state, 1.0)
    piano, _ = sf.read(outputs[0])
    only_piano, _ = sf.read(remixed)
    assert only_piano.shape == piano.shape
    assert np.corrcoef(only_piano, piano)[0, 1] > 0.99
    assert tiny_app.remix(None, 0.5) is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "upload a song"),
        (lambda d: (d / "readme.txt").write_text("hello") and d / "readme.txt", "Could not read"),
        (lambda d: sf.write(str(d / "quiet.wav"), np.zeros(44100 * 5), 44100) or d / "quiet.wav", "silent"),
        (lambda d: sf.write(str(d / "blip.wav"), np.ones(2000) * 0.3, 44100) or d / "blip.wav", "too short"),
    ],
    ids=["no-file", "not-audio", "silence", "too-short"],
)
def test_bad_input_is_a_message_and_the_next_user_is_served(tiny_app, tmp_path, clicks, make, message):
    path = make(tmp_path)
    with pytest.raises(gr.Error, match=message):
        tiny_app.piano_cover(None if path is None else str(path), "composer1", 0.5, progress=no_progress)
    check_cover_outputs(tiny_app.piano_cover(str(clicks[0]), "composer1", 0.5, progress=no_progress), clicks[0])


def test_song_over_the_configured_limit(tiny_app, monkeypatch, clicks):
    monkeypatch.setattr(tiny_app.CONFIG, "max_song_seconds", 5.0)
    with pytest.raises(gr.Error, match="limit here"):
        tiny_app.piano_cover(str(clicks[0]), "composer1", 0.5, progress=no_progress)


def test_missing_model_says_which_and_how(tiny_app, monkeypatch, tmp_path, clicks):
    monkeypatch.setattr(tiny_app.CONFIG, "piano_model", str(tmp_path / "weights" / "pop2piano"))
    with pytest.raises(gr.Error) as err:
        tiny_app.piano_cover(str(clicks[0]), "composer1", 0.5, progress=no_progress)
    assert "weights/pop2piano" in err.value.message and "--piano-model" in err.value.message
    assert "missing" in tiny_app.piano_cover_status()


def test_cli_flags(tmp_path):
    args = app.parse_args(
        ["--share", "--server-name", "0.0.0.0", "--server-port", "7999", "--auth", "me:pw", "--device", "cpu",
         "--piano-model", str(tmp_path), "--max-song-seconds", "120"]
    )
    assert args.share and args.server_name == "0.0.0.0" and args.server_port == 7999
    assert args.auth == "me:pw" and args.device == "cpu" and args.piano_model == str(tmp_path)
    assert args.max_song_seconds == 120.0


def test_api_names():
    names = {d.get("api_name") for d in app.demo.config["dependencies"]}
    assert {"piano_cover", "piano_cover_remix"} <= names


def test_gradio_client_call(tiny_app, chorale, tmp_path):
    from gradio_client import Client, handle_file

    tiny_app.demo.queue(default_concurrency_limit=1)
    _, url, _ = tiny_app.demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path))
        outputs = client.predict(
            handle_file(str(chorale[0])), "composer2", 0.6, api_name="/piano_cover"
        )
        check_cover_outputs(outputs, chorale[0])
        with pytest.raises(Exception, match="upload a song"):
            client.predict(None, "composer2", 0.6, api_name="/piano_cover")
    finally:
        tiny_app.demo.close()
