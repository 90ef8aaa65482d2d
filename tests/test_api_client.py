"""The public API as scripts use it: gradio_client against the app running as its own process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from PIL import Image

from utils.notes import PIANO_PITCH_RANGE


@pytest.fixture(scope="module")
def client(live_app, tmp_path_factory) -> Client:
    return Client(live_app.url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def assert_audio(path: str, sample_rate: int, seconds: float, channels: int | None = None) -> None:
    info = sf.info(path)
    assert info.samplerate == sample_rate
    assert info.duration == pytest.approx(seconds, abs=0.01)
    if channels is not None:
        assert info.channels == channels
    audio, _ = sf.read(path)
    assert abs(audio).max() > 0


def assert_png(path: str) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


def test_endpoints_are_listed(client, live_app):
    assert "ZeroGPU: off (`spaces` installed, not on a ZeroGPU Space)" in live_app.log.read_text()
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/piano_cover", "/piano_cover_remix", "/piano_cover_instrument", "/piano_cover_score", "/piano_cover_video",
            "/text_to_music", "/melody_to_music", "/melody_preview", "/text_to_music_midi", "/melody_to_music_midi",
            "/check_watermark"} <= endpoints


def test_piano_cover_and_remix(client, chorale):
    song, bpm = chorale
    (piano, midi_path, mix, roll, tempo, details, constant_midi, musicxml, pdf, pages) = client.predict(
        handle_file(str(song)), "composer9", 0.5, api_name="/piano_cover"
    )
    seconds = sf.info(str(song)).duration
    assert_audio(piano, 44100, seconds)
    assert_audio(mix, 44100, seconds)
    midi = pretty_midi.PrettyMIDI(midi_path)
    notes = midi.instruments[0].notes
    assert notes and all(PIANO_PITCH_RANGE[0] <= n.pitch <= PIANO_PITCH_RANGE[1] for n in notes)
    assert len(midi.get_tempo_changes()[1]) > 20  # a tempo per beat of the 22-second chorale
    assert pretty_midi.PrettyMIDI(constant_midi).get_tempo_changes()[1][0] == pytest.approx(tempo, abs=0.01)
    assert any(abs(tempo * k - bpm) / bpm < 0.05 for k in (0.5, 1, 2))
    assert_png(roll)
    assert "Arranger 9" in details and "tempo change on each" in details
    assert open(pdf, "rb").read(4) == b"%PDF" and "<score-partwise" in open(musicxml).read()
    assert len(pages) >= 1
    for page in pages:
        assert_png(page["image"] if isinstance(page["image"], str) else page["image"]["path"])
    remixed = client.predict(1.0, api_name="/piano_cover_remix")  # uses this session's last cover
    assert_audio(remixed, 44100, seconds)
    # the other products work from the same cover, without running the model again
    harp, harp_midi, harp_mix, harp_constant = client.predict("Harp", 0.3, api_name="/piano_cover_instrument")
    assert_audio(harp, 44100, seconds)
    assert pretty_midi.PrettyMIDI(harp_midi).instruments[0].program == 46
    assert [n.pitch for n in pretty_midi.PrettyMIDI(harp_midi).instruments[0].notes] == [n.pitch for n in notes]
    easy_xml, easy_pdf, easy_pages, line = client.predict(True, api_name="/piano_cover_score")
    assert "easier version" in line and open(easy_pdf, "rb").read(4) == b"%PDF" and easy_xml.endswith("easier.musicxml")
    video = client.predict("Harp", 0.5, "landscape", api_name="/piano_cover_video")
    path = video["video"] if isinstance(video, dict) else video
    from utils.video import probe

    info = probe(path)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 1280, 720)
    assert info.duration == pytest.approx(seconds, abs=0.1)


def test_piano_actions_before_any_cover_say_so(client):
    fresh = Client(client.src, verbose=False)
    with pytest.raises(Exception, match="Make a piano cover first"):
        fresh.predict("Harp", 1.0, "landscape", api_name="/piano_cover_video")


def test_text_to_music(client):
    *variants, picture, params, details, downloads = client.predict(
        "warm piano and soft drums", "", 2, 250, 0.0, 1.0, 3.0, "77", 3, api_name="/text_to_music"
    )
    assert all(v is not None for v in variants[:3]) and variants[3] is None
    for path in variants[:3]:
        assert_audio(path, 32000, 2.0, channels=1)
    assert_png(picture)
    assert params["seed"] == 77 and params["variants"] == 3 and "Seed 77:" in details


def test_melody_preview_and_melody_to_music(client, hummed_melody):
    preview, info = client.predict(handle_file(str(hummed_melody)), 1.0, 3.0, api_name="/melody_preview")
    assert_audio(preview, 44100, 2.0)
    assert "2.0 s" in info
    *variants, picture, params, details, chroma, downloads = client.predict(
        handle_file(str(hummed_melody)), 1.0, 3.0, "a jazz trio", "", 1.5, 250, 0.0, 1.0, 3.0, "", 2,
        api_name="/melody_to_music",
    )
    for path in variants[:2]:
        assert_audio(path, 32000, 1.5)
    assert variants[2] is None and variants[3] is None
    assert_png(picture)
    assert_png(chroma)
    assert params["melody_seconds"] == 2.0


@pytest.mark.parametrize(
    ("args", "api_name", "message"),
    [
        ((None, "composer1", 0.5), "/piano_cover", "upload a song"),
        (("", "", 2, 250, 0.0, 1.0, 3.0, "", 1), "/text_to_music", "describe the music"),
        (("pop", "", 999, 250, 0.0, 1.0, 3.0, "", 1), "/text_to_music", "maximum value 300|between 1 and 300"),
        (("pop", "", 2, 250, 0.0, 1.0, 3.0, "", 9), "/text_to_music", "maximum value 4|1 to 4 variants"),
        ((None, 0, 0, "jazz", "", 2, 250, 0.0, 1.0, 3.0, "", 1), "/melody_to_music", "upload or record a melody"),
    ],
    ids=["no-song", "empty-prompt", "too-long", "too-many-variants", "no-melody"],
)
def test_errors_come_back_as_errors(client, args, api_name, message):
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name=api_name)


def test_a_model_the_server_does_not_offer_is_refused(client, hummed_melody):
    """Only the models of the Model list can be named (a text-only checkpoint in the melody tab is not among them);
    the refusal lists the ones that can ("" is the app's own)."""
    with pytest.raises(Exception, match=r"facebook/musicgen-large is not in the list of choices: \[''\]"):
        client.predict(
            handle_file(str(hummed_melody)), 0, 0, "jazz", "facebook/musicgen-large", 2, 250, 0.0, 1.0, 3.0, "", 1,
            api_name="/melody_to_music",
        )


# ------------------------------------------------------------------------------ defaults, docs, bad input
def non_finite_wav(folder, seconds: float = 5.0):
    """A float WAV of a tone with NaN and infinite samples in it (as a broken export writes them)."""
    import numpy as np

    sr = 44100
    audio = (0.5 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)
    audio[1000:1010] = np.nan
    audio[5000] = np.inf
    path = folder / "broken_float.wav"
    sf.write(str(path), audio, sr, subtype="FLOAT")
    return path


def test_every_endpoint_works_with_only_its_required_arguments(client, clicks, hummed_melody):
    """The app was started with MUSICGEN_MODEL / MUSICGEN_MELODY_MODEL pointing at local folders."""
    piano, midi_path, *_ = client.predict(handle_file(str(clicks[0])), api_name="/piano_cover")
    assert_audio(piano, 44100, sf.info(str(clicks[0])).duration)
    *variants, _picture, params, _details, _downloads = client.predict("calm piano", api_name="/text_to_music")
    assert params["model"].endswith("tiny-musicgen0") or "tiny-musicgen" in params["model"]
    assert params["duration"] == 10.0 and params["variants"] == 1
    assert_audio(variants[0], 32000, 10.0)
    *variants, _picture, params, _details, chroma, _downloads = client.predict(
        handle_file(str(hummed_melody)), api_name="/melody_to_music"
    )
    assert "tiny-musicgen-melody" in params["model"] and params["task"] == "melody_to_music"
    assert_audio(variants[0], 32000, 10.0)
    preview, _info = client.predict(handle_file(str(hummed_melody)), api_name="/melody_preview")
    assert_audio(preview, 44100, sf.info(str(hummed_melody)).duration)


def test_view_api_describes_every_parameter(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/piano_cover", "/text_to_music", "/melody_to_music", "/melody_preview", "/piano_cover_remix",
                 "/piano_cover_instrument", "/piano_cover_score", "/piano_cover_video", "/text_to_music_load_params",
                 "/melody_to_music_load_params", "/text_to_music_midi", "/melody_to_music_midi", "/check_watermark"):
        description = endpoints[name]["description"]
        for parameter in endpoints[name]["parameters"]:
            assert f"`{parameter['parameter_name']}`" in description, (name, parameter["parameter_name"])
    text = endpoints["/text_to_music"]["description"]
    assert '"" (the default) = the app\'s own model' in text and "one of the models this server offers" in text
    assert "seconds of music, 1-30" in text and '"" = random' in text
    defaults = {p["parameter_name"]: p for p in endpoints["/text_to_music"]["parameters"]}
    assert defaults["model_name"]["parameter_default"] == "" and not defaults["prompt"]["parameter_has_default"]


@pytest.mark.parametrize("api_name", ["/piano_cover", "/melody_to_music", "/melody_preview"])
def test_non_finite_samples_are_refused_with_a_clear_message(client, tmp_path, api_name):
    with pytest.raises(Exception, match="not numbers \\(NaN or infinity\\)"):
        client.predict(handle_file(str(non_finite_wav(tmp_path))), api_name=api_name)


def test_a_prompt_in_another_language_is_made_from_its_english(client):
    """The live app runs the tiny MarianMT: the Chinese run is translated, the English run stays as written, and
    both are in the parameters (the no-translator note is tested in tests/test_translation.py)."""
    *_variants, _picture, params, details, downloads = client.predict(
        "calm piano 雨天的钢琴", "", 1, api_name="/text_to_music"
    )
    english = params["prompt_english"]
    assert params["prompt"] == "calm piano 雨天的钢琴"
    assert english.startswith("calm piano ") and "雨天的钢琴" not in english
    assert f"Made from: {english}" in details
    saved = json.loads(Path(next(p for p in downloads if p.endswith(".json"))).read_text(encoding="utf-8"))
    assert saved["prompt_english"] == english and saved["watermark"] == "AudioSeal, message 0x4d44"
    *_variants, _picture, params, details, _downloads = client.predict("calm piano", "", 1, api_name="/text_to_music")
    assert "Made from" not in details and "prompt_english" not in params


def test_midi_of_results_and_the_watermark_check_with_only_required_arguments(client, hummed_melody):
    *variants, _picture, _params, _details, _downloads = client.predict("calm piano", "", 4,
                                                                        api_name="/text_to_music")
    for api_name, audio in (("/text_to_music_midi", variants[0]), ("/melody_to_music_midi", str(hummed_melody))):
        downloads, page, line = client.predict(handle_file(audio), api_name=api_name)
        midi = next(p for p in downloads if p.endswith("_notes.mid"))
        notes = pretty_midi.PrettyMIDI(midi).instruments
        assert "notes at" in line and "BPM" in line
        if api_name == "/melody_to_music_midi":  # a real tune: notes, a score and its first page
            assert notes and len(notes[0].notes) >= 3  # the hummed fixture: a few notes in 4 s
            assert any(p.endswith("_score.pdf") for p in downloads) and any(p.endswith(".musicxml") for p in downloads)
            assert_png(page)
    verdict = client.predict(handle_file(variants[0]), api_name="/check_watermark")
    assert "Detector score" in verdict and "message 0x" in verdict and "4.0 s checked" in verdict
    with pytest.raises(Exception, match="too short|Could not read"):
        client.predict(handle_file(str(non_finite_wav_short(hummed_melody))), api_name="/check_watermark")


def non_finite_wav_short(like: Path) -> Path:
    path = like.parent / "half_second.wav"
    sf.write(str(path), np.full(8000, 0.1, dtype=np.float32), 16000)
    return path


# ------------------------------------------------------------------------------------ past 30 seconds
def test_a_piece_past_one_window_extend_and_downloads(client):
    """35 s: past the first 30 s window, so a second window continues it (the windows themselves are tested
    in-process, tests/test_musicgen.py); then Extend adds a third."""
    *variants, _picture, params, details, downloads = client.predict(
        "lo fi piano", "", 35, 250, 0.0, 1.0, 3.0, "5", 1, 18, api_name="/text_to_music"
    )
    assert_audio(variants[0], 32000, 35.0)
    assert len(params["windows"]) == 2 and params["stride"] == 18
    names = [Path(p).name for p in downloads]
    assert any(n.endswith(".wav") for n in names) and any(n.endswith(".mp3") for n in names)
    saved = json.loads(Path(next(p for p in downloads if p.endswith(".json"))).read_text())
    assert saved["seed"] == 5 and saved["prompt"] == "lo fi piano" and saved["windows"] == params["windows"]
    *longer, _picture, more, _details, _downloads = client.predict(5, api_name="/text_to_music_extend")
    assert_audio(longer[0], 32000, 40.0)
    assert more["extended_from_seconds"] == 35.0 and more["seed"] == 5
    sent = client.predict(handle_file(longer[0]), api_name="/use_as_melody")
    path = sent[0] if isinstance(sent, (list, tuple)) else sent
    assert_audio(path, 32000, 40.0)


def test_continuing_a_clip(client, hummed_melody):
    preview, info = client.predict(handle_file(str(hummed_melody)), 0.5, 2.5, api_name="/clip_preview")
    assert_audio(preview, 44100, 2.0) and "re-encoded" in info
    *variants, _picture, params, _details, _downloads = client.predict(
        "", "", 3, 250, 0.0, 1.0, 3.0, "1", 1, 18, handle_file(str(hummed_melody)), 0.5, 2.5,
        api_name="/text_to_music",
    )
    assert_audio(variants[0], 32000, 5.0)  # the 2 s clip, then 3 s more
    assert params["clip_seconds"] == 2.0


def test_a_clip_too_long_to_continue(client, tmp_path):
    long_clip = tmp_path / "long.wav"
    import numpy as np

    sf.write(str(long_clip), 0.3 * np.sin(np.arange(27 * 16000) / 7), 16000)
    with pytest.raises(Exception, match="trim it"):
        client.predict("jazz", "", 3, 250, 0.0, 1.0, 3.0, "", 1, 18, handle_file(str(long_clip)), 0, 0,
                       api_name="/text_to_music")


# ------------------------------------------------------------------------- reproduce, melody source
def test_a_parameters_file_fed_back_makes_the_same_music(client, hummed_melody):
    """Text tab: the downloaded JSON gives back every setting; generating with them gives the same samples."""
    *variants, _picture, params, _details, downloads = client.predict(
        "warm piano", "", 2, 100, 0.9, 1.2, 4.0, "31", 2, 18, handle_file(str(hummed_melody)), 0.5, 2.5,
        api_name="/text_to_music",
    )
    saved = next(p for p in downloads if p.endswith(".json"))
    *settings, note = client.predict(handle_file(saved), api_name="/text_to_music_load_params")
    assert settings == ["warm piano", "", 2.0, 100, 0.9, 1.2, 4.0, "31", 2, 18.0, 0.5, 2.5]
    assert "seed 31" in note and "same clip" in note
    *again, _picture, params_again, _details, _downloads = client.predict(
        *settings[:10], handle_file(str(hummed_melody)), *settings[10:], api_name="/text_to_music"
    )
    for first, second in zip(variants[:2], again[:2]):
        assert np.array_equal(sf.read(first)[0], sf.read(second)[0])
    assert params_again["seed"] == 31 and params_again["clip_trim"] == [0.5, 2.5]


def test_melody_parameters_and_source_round_trip(client, hummed_melody, tmp_path):
    *variants, _picture, params, details, _chroma, downloads = client.predict(
        handle_file(str(hummed_melody)), 0.0, 0.0, "a jazz trio", "", 1, 250, 0.0, 1.0, 3.0, "8", 1, 18, "separated",
        api_name="/melody_to_music",
    )
    assert params["melody_source"] == "separated"  # the app was started with the tiny HTDemucs folder
    assert params["melody_source_used"].startswith("separated: vocals + other")
    saved = next(p for p in downloads if p.endswith(".json"))
    *settings, source, note = client.predict(handle_file(saved), api_name="/melody_to_music_load_params")
    assert source == "separated" and settings[7] == "8" and "same melody" in note
    *again, _picture, _params, _details, _chroma, _downloads = client.predict(
        handle_file(str(hummed_melody)), *settings[10:], *settings[:10], source, api_name="/melody_to_music"
    )
    assert np.array_equal(sf.read(variants[0])[0], sf.read(again[0])[0])
    # the whole mix gives another chroma, so other music
    *mixed, _picture, mix_params, _details, _chroma, _downloads = client.predict(
        handle_file(str(hummed_melody)), 0.0, 0.0, "a jazz trio", "", 1, 250, 0.0, 1.0, 3.0, "8", 1, 18, "mix",
        api_name="/melody_to_music",
    )
    assert mix_params["melody_source_used"] == "whole mix"
    with pytest.raises(Exception, match="from the melody tab"):
        client.predict(handle_file(saved), api_name="/text_to_music_load_params")
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"hello": 1}')
    with pytest.raises(Exception, match="not a parameters file"):
        client.predict(handle_file(str(bogus)), api_name="/melody_to_music_load_params")


def test_two_users_at_once_share_decoder_passes(live_app, client, tmp_path):
    """Two sessions ask at the same moment: the app's runtime puts both requests' rows through the same decoder
    passes (counted in the pass itself and reported in each result's parameters), and each gets the audio it
    gets alone."""
    asks = [("warm piano and soft drums", "11"), ("fast punk guitars", "12")]
    alone = [client.predict(prompt, "", 6, 250, 0.0, 1.0, 3.0, seed, 1, api_name="/text_to_music")
             for prompt, seed in asks]
    users = [Client(live_app.url, verbose=False, download_files=str(tmp_path / f"user{i}")) for i in range(2)]
    jobs = [user.submit(prompt, "", 6, 250, 0.0, 1.0, 3.0, seed, 1, api_name="/text_to_music")
            for user, (prompt, seed) in zip(users, asks)]
    together = [job.result(timeout=300) for job in jobs]
    for one, both in zip(alone, together):
        passes = both[5]["decode_passes"]
        assert passes["shared_with_other_requests"] > 0, passes
        assert one[5]["decode_passes"]["shared_with_other_requests"] == 0  # alone, nothing to share with
        np.testing.assert_array_equal(sf.read(one[0])[0], sf.read(both[0])[0])
