"""The page as people use it: Playwright driving Debian's Chromium (headless) against the running app.

Screenshots of each tab land in test-artifacts/ (git-ignored). Where Chromium is missing the suite is
skipped on a developer's machine, and fails under CI (``CI=true``): run.sh test installs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.live_app import ARTIFACTS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [  # a closed network: keep Chromium from calling home
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",  # a listener who pressed nothing yet still hears the live player
]
RUN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed (run.sh test installs Debian's `chromium`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, live_app):
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(live_app.url)
    page.wait_for_selector("#piano-run")
    yield page
    page.close()


@contextlib.contextmanager
def opened(browser, url: str, **context_args):  # noqa: F811
    """``url`` in a browser context of its own (no cookies, no session: a new visitor), once the page is there, on
    whichever tab; the context is closed afterwards. ``context_args``: a locale, clipboard permissions..."""
    context = browser.new_context(viewport={"width": 1400, "height": 1300}, **context_args)
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("[role=tab][aria-selected=true]")
        yield page
    finally:
        context.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def toast_text(page) -> str:
    page.wait_for_selector("[data-testid=toast-body]", timeout=30_000)
    return " ".join(page.locator("[data-testid=toast-body]").all_inner_texts())


def assert_no_error_toast(page) -> None:
    assert page.locator("[data-testid=toast-body]").count() == 0, toast_text(page)


def download_names(page, elem_id: str) -> list[str]:
    links = page.locator(f"#{elem_id} a[data-testid=download-link]")
    return [link.get_attribute("download") or "" for link in links.all()]


def fetch(page, elem_id: str) -> bytes:
    href = page.locator(f"#{elem_id} a[data-testid=download-link]").first.get_attribute("href")
    with urllib.request.urlopen(href, timeout=30) as response:
        return response.read()


def assert_prints(pdf_bytes: bytes, size_pt: tuple[float, float]) -> None:
    """Every page of a score PDF has the paper's size and all its ink at least 12 mm from each edge."""
    import pypdfium2 as pdfium

    from tests.test_cover_products import ink_margins_mm

    pdf = pdfium.PdfDocument(pdf_bytes)
    try:
        for number in range(len(pdf)):
            assert tuple(round(x, 1) for x in pdf[number].get_size()) == size_pt
            assert min(ink_margins_mm(pdf[number])) >= 12.0, (number, ink_margins_mm(pdf[number]))
    finally:
        pdf.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_piano_cover_tab(page, chorale):
    page.locator("#piano-song input[type=file]").set_input_files(str(chorale[0]))
    page.locator("#piano-style input").click()
    page.get_by_role("option", name="Arranger 3", exact=True).click()
    page.locator("#piano-run").click()
    page.wait_for_selector("#piano-cover-details >> text=notes", timeout=RUN_TIMEOUT_MS)
    assert_no_error_toast(page)
    assert "Arranger 3" in page.locator("#piano-cover-details").inner_text()
    assert any(n.endswith("_acoustic_grand_piano.wav") for n in download_names(page, "piano-audio"))
    assert any(n.endswith("_mix_70.wav") for n in download_names(page, "piano-mix"))
    assert any(n.endswith(".mid") for n in download_names(page, "piano-midi"))
    assert fetch(page, "piano-midi")[:4] == b"MThd"
    assert float(page.locator("#piano-tempo input").input_value()) > 40
    assert page.locator("#piano-roll img").count() == 1
    screenshot(page, "piano-cover")


def test_piano_cover_without_a_song_says_so_then_a_good_run_clears_it(page, clicks):
    page.locator("#piano-run").click()
    assert "upload a song" in toast_text(page)
    screenshot(page, "piano-cover-error")
    page.locator("#piano-song input[type=file]").set_input_files(str(clicks[0]))
    page.locator("#piano-run").click()
    page.wait_for_selector("#piano-cover-details >> text=arranged in the style of", timeout=RUN_TIMEOUT_MS)
    badges = page.locator("#piano-audio .error, #piano-roll .error, #piano-audio >> text=Error")
    assert badges.count() == 0 or not any(b.is_visible() for b in badges.all())  # no stale Error badge


def test_an_upload_that_is_not_audio_is_refused_beside_it(page, tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is a text file, not a song")
    page.locator("#piano-song input[type=file]").set_input_files(str(fake))
    page.wait_for_selector("#piano-song-note >> text=⚠️", timeout=30_000)  # the reason, beside the upload
    assert page.locator("#piano-song audio").count() == 0  # and the upload is not kept


TECHNICAL = re.compile(r"(?<![\w.])/[\w.-]+/|\b(?:MUSIC|MELODY_|PIANO_|MUSICGEN_)[A-Z_]*\b|(?<![\w-])--[a-z]")


@pytest.mark.parametrize("tab", ["Piano cover", "Text to music", "Melody to music"])
def test_the_default_view_speaks_plainly(page, tab):
    """What a tab shows before anything is opened holds no file paths, environment variables or flags (those are
    under Technical details)."""
    open_tab(page, tab)
    page.wait_for_timeout(500)
    text = page.locator("body").inner_text()
    assert not TECHNICAL.findall(text), TECHNICAL.findall(text)


def test_on_a_phone_every_tab_is_in_sight(browser, live_app):
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        phone.goto(live_app.url)
        phone.wait_for_selector("#piano-run", state="attached")
        for name in ("Piano cover", "Text to music", "Melody to music", "Song with lyrics"):
            assert phone.get_by_role("tab", name=name).is_visible(), name
        song = phone.locator("#piano-song").bounding_box()
        assert song is not None and song["y"] < 844  # the upload is on the first screen
        for cell in phone.locator("#piano-examples td").all():  # the examples fit the screen's width
            box = cell.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390, (cell.inner_text(), box)
        screenshot(phone, "phone")
    finally:
        phone.close()


def test_text_to_music_tab(page):
    open_tab(page, "Text to music")
    page.locator("#text-prompt textarea").fill("lo-fi hip hop with warm piano, 80 bpm")
    page.locator("#text-seed input").fill("1234")
    assert not page.locator("#text-stop").is_enabled()  # Stop is quiet while nothing runs
    page.locator("#text-run").click()
    page.wait_for_selector("#text-details >> text=Seed 1234:", timeout=RUN_TIMEOUT_MS)
    assert_no_error_toast(page)
    page.wait_for_function("() => !document.querySelector('#text-stop').matches(':enabled')", timeout=10_000)
    # one player in the end: the live one plays on to its end, then gives its place to the result
    page.wait_for_function("() => document.getElementById('text-stream').offsetParent === null", timeout=60_000)
    assert any(n.endswith("_v1.wav") for n in download_names(page, "text-variant-1"))
    assert fetch(page, "text-variant-1")[:4] == b"RIFF"
    assert page.locator("#text-picture img").count() == 1
    # results offer no remove buttons, and show their file names whole
    assert not any(b.is_visible() for b in page.locator("#text-downloads button[aria-label*=Remove]").all())
    for name in page.locator("#text-downloads td.filename").all():
        assert name.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), name.inner_text()
    screenshot(page, "text-to-music")


def test_text_to_music_without_a_prompt_says_so(page):
    open_tab(page, "Text to music")
    page.locator("#text-run").click()
    assert "describe the music" in toast_text(page)


def test_melody_to_music_tab(page, hummed_melody):
    open_tab(page, "Melody to music")
    page.locator("#melody-input input[type=file]").set_input_files(str(hummed_melody))
    page.wait_for_selector("#melody-preview-info >> text=Using 4.0 s", timeout=60_000)
    page.locator("#melody-prompt textarea").fill("a jazz trio")
    page.locator("#melody-run").click()
    page.wait_for_selector("#melody-details >> text=the same music again", timeout=RUN_TIMEOUT_MS)
    assert_no_error_toast(page)
    assert any(n.endswith("_v1.wav") for n in download_names(page, "melody-variant-1"))
    assert page.locator("#melody-chroma img").count() == 1
    screenshot(page, "melody-to-music")


def test_melody_without_a_melody_says_so(page):
    open_tab(page, "Melody to music")
    page.locator("#melody-prompt textarea").fill("a jazz trio")
    page.locator("#melody-run").click()
    assert "upload or record a melody" in toast_text(page)


def test_broken_float_file_is_refused_in_every_tab(page, tmp_path):
    from tests.test_api_client import non_finite_wav

    broken = non_finite_wav(tmp_path)
    page.locator("#piano-song input[type=file]").set_input_files(str(broken))
    page.locator("#piano-run").click()
    assert "not numbers (NaN or infinity)" in toast_text(page)
    open_tab(page, "Melody to music")
    page.locator("#melody-input input[type=file]").set_input_files(str(broken))
    page.wait_for_selector("#melody-preview-info >> text=not numbers (NaN or infinity)", timeout=60_000)
    screenshot(page, "broken-file")


def test_a_prompt_in_another_language_says_what_it_was_made_from(page):
    open_tab(page, "Text to music")
    assert "The app's model" in page.locator("#text-model input").input_value()
    page.locator("#text-prompt textarea").fill("安静的夜晚 with soft piano")
    page.locator("#text-run").click()
    page.wait_for_selector("#text-details >> text=Made from:", timeout=RUN_TIMEOUT_MS)
    line = next(t for t in page.locator("#text-details").inner_text().splitlines() if t.startswith("Made from:"))
    assert line.endswith(" with soft piano") and "安静的夜晚" not in line
    assert_no_error_toast(page)
    screenshot(page, "translated-prompt")


def test_midi_of_a_result_then_checking_its_file(page, hummed_melody, tmp_path):
    open_tab(page, "Melody to music")
    page.locator("#melody-input input[type=file]").set_input_files(str(hummed_melody))
    page.wait_for_selector("#melody-preview-info >> text=Using 4.0 s", timeout=60_000)
    page.locator("#melody-run").click()
    page.wait_for_selector("#melody-details >> text=the same music again", timeout=RUN_TIMEOUT_MS)
    page.locator("#melody-midi-panel").get_by_text("MIDI and sheet music of this result").click()
    page.locator("#melody-midi").click()
    page.wait_for_selector("#melody-midi-info >> text=notes at", timeout=RUN_TIMEOUT_MS)
    assert_no_error_toast(page)
    assert any(n.endswith("_notes.mid") for n in download_names(page, "melody-midi-files"))
    assert fetch(page, "melody-midi-files")[:4] == b"MThd"
    screenshot(page, "midi-of-a-result")
    result = tmp_path / "result.wav"
    result.write_bytes(fetch(page, "melody-variant-1"))
    page.locator("#check-panel").get_by_text("Check a file").first.click()
    page.locator("#check-file input[type=file]").set_input_files(str(result))
    page.locator("#check-run").click()
    page.wait_for_selector("#check-verdict >> text=Detector score", timeout=RUN_TIMEOUT_MS)
    assert "message 0x" in page.locator("#check-verdict").inner_text()
    assert_no_error_toast(page)
    screenshot(page, "check-a-file")


def test_piano_cover_from_an_example_to_score_instrument_and_video(page):
    page.locator("#piano-examples").get_by_text("bach_bwv66.6_pop.ogg").first.click()
    page.wait_for_selector("#piano-song audio, #piano-song [data-testid=waveform-controls], #piano-song .waveform-container",
                           state="attached", timeout=30_000)
    page.locator("#piano-run").click()
    page.wait_for_selector("#piano-cover-details >> text=arranged in the style of", timeout=RUN_TIMEOUT_MS)
    assert_no_error_toast(page)
    assert_prints(fetch(page, "piano-pdf"), (595.3, 841.9))  # A4 by default
    assert b"<score-partwise" in fetch(page, "piano-musicxml")
    assert fetch(page, "piano-midi-constant")[:4] == b"MThd"
    page.wait_for_selector("#piano-score img", timeout=30_000)
    # another instrument: the files change without running the model again
    page.locator("#piano-instrument input").click()
    page.get_by_role("option", name="Harp", exact=True).click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#piano-midi a[data-testid=download-link]')]"
        ".some(a => (a.getAttribute('download') || '').includes('harp'))", timeout=60_000)
    page.locator("#piano-easier input").check()
    page.wait_for_selector("#piano-score-info >> text=easier version", timeout=60_000)
    page.locator("#piano-paper").get_by_label("Letter").check()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#piano-pdf a[data-testid=download-link]')]"
        ".some(a => (a.getAttribute('download') || '').includes('letter'))", timeout=60_000)
    assert_prints(fetch(page, "piano-pdf"), (612.0, 792.0))
    for name in page.locator("#piano-pdf td.filename, #piano-musicxml td.filename").all():  # whole, not clipped
        assert name.evaluate("e => e.scrollWidth <= e.clientWidth + 1 && "
                             "e.getBoundingClientRect().bottom <= e.closest('.block').getBoundingClientRect().bottom"
                             ), name.inner_text()
    page.get_by_role("button", name="Falling-notes video").click()
    page.locator("#piano-video-format").get_by_label("Vertical", exact=False).check()
    page.locator("#piano-video-run").click()
    page.wait_for_selector("#piano-video video", timeout=RUN_TIMEOUT_MS)
    assert_no_error_toast(page)
    page.locator("#piano-video video").scroll_into_view_if_needed()
    box = page.locator("#piano-video video").bounding_box()
    assert box is not None and box["height"] <= page.viewport_size["height"], box  # seen whole on the screen
    screenshot(page, "piano-cover-products")


def test_a_piece_past_one_window_then_use_it_as_the_melody(page):
    """35 s, so a second window continues the first (the windows themselves are tested in-process)."""
    import io

    import soundfile as sf

    open_tab(page, "Text to music")
    page.locator("#text-prompt textarea").fill("lo fi piano")
    number = page.locator("#text-duration input[type=number]")
    number.fill("35")
    number.press("Enter")
    page.wait_for_selector("#text-estimate >> text=windows", timeout=30_000)
    page.locator("#text-run").click()
    # the live player gets the music while it is made, before the results arrive
    page.wait_for_selector("#text-stream audio", state="attached", timeout=RUN_TIMEOUT_MS)
    assert page.locator("#text-details").inner_text().strip() == ""
    page.wait_for_selector("#text-details >> text=of 35 s", timeout=RUN_TIMEOUT_MS)
    assert_no_error_toast(page)
    audio, sr = sf.read(io.BytesIO(fetch(page, "text-variant-1")))
    assert sr == 32000 and abs(audio.shape[0] / sr - 35.0) <= 0.02
    page.wait_for_selector("#text-estimate >> text=on this machine", timeout=30_000)  # the measured speed gives a time
    page.locator("#text-use-as-melody").click()
    page.wait_for_selector("#melody-preview-info >> text=Using 30.0 s", timeout=60_000)
    screenshot(page, "long-piece-to-melody")


def test_melody_source_and_reproducing_from_a_parameters_file(page, hummed_melody, tmp_path):
    import json

    open_tab(page, "Melody to music")
    page.locator("#melody-technical").get_by_text("Technical details").click()  # setup facts: collapsed
    page.wait_for_selector("#melody-status >> text=Melody separator:", timeout=30_000)  # names the separator
    page.locator("#melody-input input[type=file]").set_input_files(str(hummed_melody))
    page.wait_for_selector("#melody-preview-info >> text=Using 4.0 s", timeout=60_000)
    page.locator("#melody-source").get_by_label("Whole mix").check()
    page.locator("#melody-seed input").fill("5")
    page.locator("#melody-run").click()
    page.wait_for_selector("#melody-details >> text=Seed 5:", timeout=RUN_TIMEOUT_MS)
    assert_no_error_toast(page)

    saved = tmp_path / "melody_music_seed77.json"
    saved.write_text(json.dumps({"task": "melody_to_music", "prompt": "a string quartet", "seed": 77,
                                 "duration": 3.0, "top_k": 100, "top_p": 0.0, "temperature": 1.1,
                                 "guidance_scale": 4.0, "variants": 2, "stride": 20.0,
                                 "melody_source": "separated", "melody_trim": [0.5, 3.5], "melody_seconds": 3.0}))
    page.locator("#melody-params-box").get_by_text("Reproduce a result").click()  # open the accordion
    page.locator("#melody-params-file input[type=file]").set_input_files(str(saved))
    page.wait_for_selector("#melody-params-note >> text=seed 77", timeout=30_000)
    assert page.locator("#melody-prompt textarea").input_value() == "a string quartet"
    assert page.locator("#melody-seed input").input_value() == "77"
    assert page.locator("#melody-source").get_by_label("Melody only").is_checked()
    screenshot(page, "melody-reproduce")


def test_two_pages_do_not_reach_each_other(browser, live_app, tmp_path):
    """Two people on the app at once: a parameters file one of them loads gives its English to her runs only, Extend
    continues only one's own result, and one's Stop cannot be pressed while only the other is making music."""
    import json

    pages = []
    for _ in range(2):
        context = browser.new_context(viewport={"width": 1400, "height": 1300})
        page = context.new_page()
        page.goto(live_app.url)
        page.wait_for_selector("#piano-run")
        open_tab(page, "Text to music")
        pages.append(page)
    ana, ben = pages
    prompt = "安静的夜晚 piano"
    saved = tmp_path / "music_seed3.json"
    saved.write_text(json.dumps({"task": "text_to_music", "prompt": prompt, "prompt_english": "quiet night piano",
                                 "seed": 3, "duration": 1.0}, ensure_ascii=False))
    ben.locator("#text-params-box").get_by_text("Reproduce a result").click()
    ben.locator("#text-params-file input[type=file]").set_input_files(str(saved))
    ben.wait_for_selector("#text-params-note >> text=seed 3", timeout=30_000)

    ana.locator("#text-prompt textarea").fill(prompt)
    ana.locator("#text-run").click()
    assert not ben.locator("#text-stop").is_enabled()  # ana's run leaves ben's Stop quiet
    ana.wait_for_selector("#text-details >> text=Made from:", timeout=RUN_TIMEOUT_MS)
    assert "quiet night piano" not in ana.locator("#text-details").inner_text()  # translated for her

    ben.locator("#text-extend").click()  # ben has no result yet: nothing to extend, and never ana's
    assert "Generate something first" in toast_text(ben)
    ben.locator("#text-run").click()
    ben.wait_for_selector("#text-details >> text=Made from: quiet night piano", timeout=RUN_TIMEOUT_MS)
    for page in pages:
        page.context.close()
