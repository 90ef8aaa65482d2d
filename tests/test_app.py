"""The app as users reach it: its event functions, and a gradio_client call against a live server."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pretty_midi
import pytest
import soundfile as sf
from PIL import Image

import app


@pytest.fixture()
def tiny_app(monkeypatch, tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir):
    """The app configured as `--piano-model/--musicgen-model/--melody-model <tiny folders> --device cpu` would."""
    monkeypatch.setattr(app.CONFIG, "piano_model", str(tiny_pop2piano_dir))
    monkeypatch.setattr(app.CONFIG, "musicgen_model", str(tiny_musicgen_dir))
    monkeypatch.setattr(app.CONFIG, "melody_model", str(tiny_melody_dir))
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
    assert len(midi.get_tempo_changes()[1]) > 8  # a tempo per beat
    constant = pretty_midi.PrettyMIDI(outputs[6])
    assert constant.get_tempo_changes()[1][0] == pytest.approx(tempo, abs=0.01)
    assert 40 < tempo < 250
    with Image.open(roll_png) as image:
        assert image.format == "PNG"
    assert "notes" in details and "BPM" in details


def test_piano_cover_event(tiny_app, chorale):
    outputs = tiny_app.piano_cover(str(chorale[0]), "composer4", 0.5, progress=no_progress)
    check_cover_outputs(outputs, chorale[0])
    assert "Arranger 4" in outputs[5]
    state = outputs[10]
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
    # the user reads a plain message; what is missing and how to provide it is under Technical details
    assert "not available" in err.value.message and "Technical details" in err.value.message
    assert "/" not in err.value.message and "--" not in err.value.message
    status = tiny_app.piano_cover_status()
    assert "weights/pop2piano" in status and "missing" in status


def test_cli_flags(tmp_path):
    args = app.parse_args(
        ["--share", "--server-name", "0.0.0.0", "--server-port", "7999", "--auth", "me:pw", "--device", "cpu",
         "--piano-model", str(tmp_path), "--max-song-seconds", "120"]
    )
    assert args.share and args.server_name == "0.0.0.0" and args.server_port == 7999
    assert args.auth == "me:pw" and args.device == "cpu" and args.piano_model == str(tmp_path)
    assert args.max_song_seconds == 120.0


def test_api_names():
    names = {d.get("api_name") for d in app.demo.config["dependencies"] if d.get("api_visibility") == "public"}
    assert {"piano_cover", "piano_cover_remix", "text_to_music", "melody_to_music", "melody_preview"} <= names


def check_music_outputs(outputs, n_variants: int, duration: float) -> dict:
    *audios, picture, params, details = outputs[:7]
    assert len(audios) == 4
    assert all(a is not None for a in audios[:n_variants]) and all(a is None for a in audios[n_variants:])
    for path in audios[:n_variants]:
        info = sf.info(path)
        assert info.samplerate == 32000 and info.duration == pytest.approx(duration, abs=1e-3)
    with Image.open(picture) as image:
        assert image.format == "PNG"
    assert params["duration"] == duration and params["variants"] == n_variants
    assert f"Seed {params['seed']}:" in details
    return params


class FakeRequest:
    """What gradio passes as `request` (only the session matters here)."""

    def __init__(self, session_hash: str) -> None:
        self.session_hash = session_hash


def last(events) -> list:
    """The final outputs of a streaming event (what it yields last), after checking the streamed chunks."""
    yields = list(events)
    for chunk in yields[:-1]:  # a WAV chunk for the live player, or the progress line
        assert (isinstance(chunk[-2], bytes) and chunk[-2][:4] == b"RIFF") or "<progress" in str(chunk[-1])
    assert yields[-1][-1] == ""  # the progress line goes with the results
    return yields[-1]


def text_event(app_module, *args, session: str = "a", progress=no_progress) -> list:
    return last(app_module.text_to_music(*args, request=FakeRequest(session), progress=progress))


def test_text_to_music_event(tiny_app):
    events = list(tiny_app.text_to_music("lo fi hip hop", "", 2, 250, 0, 1.0, 3.0, "11", 2,
                                         request=FakeRequest("a"), progress=no_progress))
    from ui.streaming import live_playback

    assert len(events) >= 2 or not live_playback()  # streamed chunks first (where ffmpeg can stream), then results
    outputs = last(events)
    params = check_music_outputs(outputs, 2, 2.0)
    assert params["seed"] == 11 and params["prompt"] == "lo fi hip hop"
    again = text_event(tiny_app, "lo fi hip hop", "", 2, 250, 0, 1.0, 3.0, "11", 2)
    assert np.array_equal(sf.read(outputs[0])[0], sf.read(again[0])[0])


def test_melody_to_music_event(tiny_app, hummed_melody):
    outputs = last(tiny_app.melody_to_music(
        str(hummed_melody), 0.5, 3.5, "jazz trio", "", 1, 250, 0, 1.0, 3.0, "", 1, request=FakeRequest("b"),
        progress=no_progress,
    ))
    params = check_music_outputs(outputs, 1, 1.0)
    assert params["melody_seconds"] == 3.0
    with Image.open(outputs[7]) as chroma:
        assert chroma.format == "PNG"
    preview, info = tiny_app.melody_preview(str(hummed_melody), 1.0, 2.0)
    assert sf.info(preview).duration == pytest.approx(1.0, abs=1e-3) and "1.0 s" in info


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "", 2, 250, 0, 1.0, 3.0, "", 1), "describe the music"),
        (("pop", "", 450, 250, 0, 1.0, 3.0, "", 1), "between 1 and 300 seconds"),
        (("pop", "", 2, 250, 0, 1.0, 3.0, "twelve", 1), "seed"),
        (("pop", "", 2, 2.5, 0, 1.0, 3.0, "", 1), "Top-k must be a whole number"),
    ],
    ids=["empty-prompt", "too-long", "bad-seed", "fractional-top-k"],
)
def test_text_bad_input(tiny_app, args, message):
    with pytest.raises(gr.Error, match=message):
        text_event(tiny_app, *args, session="c")


@pytest.mark.parametrize(
    ("melody", "model", "message"),
    [
        (None, "", "upload or record a melody"),
        ("hum", "facebook/musicgen-small", "“facebook/musicgen-small” is not offered on this server. Choose one of: "
                                           "“tiny-musicgen-melody0”"),
    ],
)
def test_melody_bad_input(tiny_app, hummed_melody, melody, model, message):
    path = str(hummed_melody) if melody else None
    with pytest.raises(gr.Error, match=message):
        last(tiny_app.melody_to_music(path, 0, 0, "jazz", model, 1, 250, 0, 1.0, 3.0, "", 1,
                                      request=FakeRequest("d"), progress=no_progress))


def test_stop_button_stops_a_running_generation(tiny_app):
    import threading

    errors: list[Exception] = []
    results: list[list] = []
    started = threading.Event()

    def progress(fraction, desc=""):
        if " s made" in desc:
            started.set()

    def run():
        try:
            results.append(text_event(tiny_app, "pop", "", 30, 250, 0, 1.0, 3.0, "", 4, session="e",
                                      progress=progress))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(60)
    tiny_app.stop_generation(FakeRequest("e"))
    worker.join(60)
    assert not worker.is_alive()
    # Stop keeps what is finished: the results come back, shorter than the 30 s asked for, and say so
    assert not errors and len(results) == 1
    *audios, _picture, params, details, _downloads, _state, _live, _line = results[0]
    assert params["stopped"] and "Stopped" in details
    seconds = sf.info(audios[0]).duration
    assert 0 < seconds < 30 and params["seconds"] == pytest.approx(seconds, abs=1e-3)


def test_auth_file_and_share_warning(tmp_path, capsys):
    logins = tmp_path / "logins.txt"
    logins.write_text("# team\nana:s3cret\n\nbo:pa:ss\n")
    assert app.parse_auth("me:pw", str(logins)) == [("me", "pw"), ("ana", "s3cret"), ("bo", "pa:ss")]
    assert app.parse_auth(None, None) is None
    logins.write_text("no-colon-here\n")
    with pytest.raises(ValueError, match="line 1: expected user:password"):
        app.parse_auth(None, str(logins))
    with pytest.raises(ValueError, match="no such file"):
        app.parse_auth(None, str(tmp_path / "missing.txt"))
    assert "anyone with the link" in app.SHARE_WITHOUT_LOGIN_WARNING


def test_zero_gpu_wrapping_is_plain_off_zero_gpu(monkeypatch):
    import inspect

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert not app.on_zero_gpu()
    # with `spaces` installed (the test extras) its decorator hands the function back unchanged off ZeroGPU
    common = app.common
    assert common.spaces is not None and "ZeroGPU: off" in common.runtime_line()
    assert "request" in inspect.signature(app.text_to_music).parameters

    def f(x: int) -> int:
        return x + 1

    assert common.gpu_task("text_to_music")(f) is f
    monkeypatch.setattr(common, "spaces", None)
    assert common.gpu_task("text_to_music")(f) is f and "not installed" in common.runtime_line()


def test_the_melody_source_control_shows_the_fallback():
    """When separation was asked for and could not be done, the control moves to "Whole mix" after the run."""
    from ui.music_tabs import reflect_melody_source

    fell_back = {"melody_source_used": "whole mix (the melody separator is not available on this server)"}
    assert reflect_melody_source(fell_back, "separated").value == "mix"
    separated = {"melody_source_used": "separated: vocals + other stems (htdemucs)"}
    assert reflect_melody_source(separated, "separated") == gr.skip()  # left as it is
    assert reflect_melody_source({"melody_source_used": "whole mix"}, "mix") == gr.skip()


def test_a_cover_holds_the_gpu_for_its_model_step_only(tiny_app, chorale, monkeypatch):
    """On ZeroGPU only the model's step runs under the GPU lease (``gpu_task``): the page's cover job reaches the
    model through its own leased call, and writes its files outside it."""
    from ui import piano

    leased = []
    real = piano.cover_on_gpu
    monkeypatch.setattr(piano, "cover_on_gpu", lambda *a, **k: leased.append(a[0]) or real(*a, **k))
    cover, job, made = piano.make_cover(str(chorale[0]), "composer1", 0.7, "Acoustic grand piano", False, "a4",
                                        no_progress)
    assert leased == [tiny_app.CONFIG.piano_model] and made.audio.is_file() and cover.n_notes > 0
    steps = tiny_app.common.ModelSteps(cover=real)
    assert steps.cover is real and steps.piano_notes == tiny_app.common.backend().piano_notes
