"""Many users at once, on loopback: every request gets its own answer, or a clear "queue is full".

Each simulated user is its own ``gradio_client.Client`` (its own session) and sends one request to each of the
three jobs at the same moment. Every request is made distinguishable (its own song length, prompt and duration),
so an answer that carried another request's file would show.
"""

from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import soundfile as sf
from gradio_client import Client, handle_file

from tests.live_app import start_app
from tests.music_fixtures import click_track

N_USERS = 6  # x 3 jobs = 18 requests in flight, within the app's default queue of 32
SR = 44100


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("load-songs")
    paths = []
    for i in range(N_USERS):
        path = folder / f"user{i}_clicks.wav"
        sf.write(str(path), click_track(6.0 + 0.5 * i, SR), SR)
        paths.append(path)
    return paths


def user_session(url: str, i: int, song, melody, downloads) -> dict:
    """One user: a cover and a text piece submitted at once (a visitor may have two runs in flight: ui/fair.py),
    then a melody piece as soon as the cover is done; returns what came back for each."""
    client = Client(url, verbose=False, download_files=str(downloads / f"user{i}"))
    jobs = {
        "piano": client.submit(handle_file(str(song)), f"composer{i + 1}", 0.5, api_name="/piano_cover"),
        "text": client.submit(f"user {i} piano", "", 1.0 + 0.2 * i, 250, 0.0, 1.0, 3.0, str(i), 1,
                              api_name="/text_to_music"),
    }
    answers = {"piano": jobs["piano"].result(timeout=600)}
    jobs["melody"] = client.submit(handle_file(str(melody)), 0, 0, f"user {i} jazz", "", 1.0 + 0.1 * i, 250, 0.0,
                                   1.0, 3.0, str(100 + i), 1, api_name="/melody_to_music")
    return answers | {name: jobs[name].result(timeout=600) for name in ("text", "melody")}


def test_mixed_load_every_request_gets_its_own_answer(live_app, songs, hummed_melody, tmp_path):
    with ThreadPoolExecutor(N_USERS) as pool:
        futures = [
            pool.submit(user_session, live_app.url, i, songs[i], hummed_melody, tmp_path) for i in range(N_USERS)
        ]
        answers = [f.result() for f in futures]

    files = []
    for i, answer in enumerate(answers):
        piano_wav, midi, mix_wav, roll, _tempo, details, constant, musicxml, pdf, _pages = answer["piano"]
        assert sf.info(piano_wav).duration == pytest.approx(6.0 + 0.5 * i, abs=0.01)
        assert f"Arranger {i + 1}" in details
        *variants, picture, params, details, _downloads = answer["text"]
        assert params["prompt"] == f"user {i} piano" and params["seed"] == i
        assert sf.info(variants[0]).duration == pytest.approx(1.0 + 0.2 * i, abs=1e-3)
        *variants_m, picture_m, params_m, _details_m, chroma, _downloads_m = answer["melody"]
        assert params_m["prompt"] == f"user {i} jazz" and params_m["seed"] == 100 + i
        assert sf.info(variants_m[0]).duration == pytest.approx(1.0 + 0.1 * i, abs=1e-3)
        files += [piano_wav, midi, mix_wav, roll, constant, musicxml, pdf, variants[0], picture, variants_m[0],
                  picture_m, chroma]
    assert len(set(files)) == len(files)  # no answer holds another request's file
    assert live_app.process.poll() is None
    with urllib.request.urlopen(live_app.url, timeout=10) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def small_queue_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir):
    """The app with a queue of 2, uploads up to 1 MB, and `spaces` hidden (plain calls, as off Hugging Face)."""
    app = start_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, log_name="app-server-small-queue.log",
                    extra_args=["--queue-size", "2", "--max-upload-mb", "1"], without_spaces=True)
    yield app
    app.stop()


def test_without_spaces_it_serves_and_a_full_queue_says_so(small_queue_app):
    assert "ZeroGPU: off (`spaces` not installed" in small_queue_app.log.read_text()
    clients = [Client(small_queue_app.url, verbose=False) for _ in range(8)]
    jobs = [c.submit(f"request {i}", "", 3.0, 250, 0.0, 1.0, 3.0, str(i), 1, api_name="/text_to_music")
            for i, c in enumerate(clients)]
    served, refused = 0, 0
    for i, job in enumerate(jobs):
        try:
            *_variants, params, _details, _downloads = job.result(timeout=600)
            assert params["prompt"] == f"request {i}"
            served += 1
        except Exception as e:  # noqa: BLE001 - the refusal must say why
            assert "queue is full" in str(e).lower(), repr(e)  # gradio_client's wording; the server's names the size
            refused += 1
    assert served >= 1 and refused >= 1 and served + refused == len(jobs)
    assert small_queue_app.process.poll() is None


def test_an_upload_over_the_limit_is_refused_with_a_clear_message(small_queue_app, tmp_path):
    big = tmp_path / "long_song.wav"
    sf.write(str(big), click_track(20.0, SR), SR)  # 1.7 MB of 16-bit mono
    client = Client(small_queue_app.url, verbose=False)
    with pytest.raises(Exception) as err:
        client.predict(handle_file(str(big)), api_name="/piano_cover")
    assert "exceeds the maximum file size of 1048576 bytes" in str(err.value)
    # the server enforces it too, for clients that do not check first
    import httpx

    response = httpx.post(f"{small_queue_app.url}gradio_api/upload", files={"files": big.open("rb")}, timeout=60)
    assert response.status_code == 413 and "maximum allowed size of 1048576 bytes" in response.text
