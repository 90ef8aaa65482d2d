"""What a newcomer hit on the page, each checked in Chromium as a new user meets it: the app with tiny models and
neither translator nor watermark weights on the machine (their default hub ids, the hub out of reach)."""

from __future__ import annotations

import contextlib
import re
import time
import urllib.request

import pytest

from tests.test_browser import CHROMIUM_ARGS, RUN_TIMEOUT_MS, browser, open_tab, screenshot, toast_text  # noqa: F401 - fixture

PROMPT = "lo-fi hip hop with warm piano"


@pytest.fixture(scope="module")
def newcomer_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir):
    """The app as a newcomer starts it: default translator and watermark, neither in the cache nor reachable."""
    from tests.live_app import start_app

    app = start_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, log_name="newcomer-server.log",
                    extra_args=["--separator-model", "off"],
                    env={"HF_HUB_OFFLINE": "1", "WATERMARK_MODEL": "", "PROMPT_TRANSLATION_MODEL": ""})  # the defaults
    yield app
    app.stop()


@pytest.fixture()
def page(browser, newcomer_app):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(newcomer_app.url)
    page.wait_for_selector("#piano-run")
    yield page
    page.close()


def said_aloud(page) -> None:
    """Collect what screen readers hear: every text the page puts in a live region, in ``window.__said``."""
    page.evaluate("""() => { window.__said = [];
        new MutationObserver(() => document.querySelectorAll('[aria-live]').forEach(e => {
            if (e.textContent.trim()) window.__said.push(e.textContent.trim()); }))
        .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")


def run_text(page, prompt: str = PROMPT, seconds: int | None = None, watch_progress: bool = False) -> list[bool]:
    """Generate on the text tab; with ``watch_progress``, whether a progress bar shows, every quarter second from
    the click until the result is there."""
    open_tab(page, "Text to music")
    page.locator("#text-prompt textarea").fill(prompt)
    page.locator("#text-seed input").fill("7")
    if seconds is not None:
        page.locator("#text-duration input[type=number]").fill(str(seconds))
        page.locator("#text-duration input[type=number]").press("Enter")
    page.locator("#text-run").click()
    seen = []
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while watch_progress and time.monotonic() < deadline:
        if page.locator("#text-details >> text=Seed 7:").count():
            break
        seen.append(page.locator("#text-progress progress").is_visible()
                    or page.locator("#text-variant-1 .progress-bar, #text-variant-1 .eta-bar").count() > 0)
        time.sleep(0.25)
    page.wait_for_selector("#text-details >> text=Seed 7:", timeout=RUN_TIMEOUT_MS)
    return seen


def test_without_the_watermark_the_panel_and_the_results_agree(page):
    # Open the box (its content is drawn only when open) by its own header: "Check a file" is also said in other
    # places of the page, where a click opens nothing (CI once saw the note never come).
    page.locator("#check-panel .label-wrap").first.click()
    try:
        page.locator("#check-note").get_by_text("not available").wait_for(timeout=60_000)  # said when the page loads
    except Exception:
        screenshot(page, "newcomer-check-box-failed")
        print("check box:", page.locator("#check-panel").inner_text())
        raise
    note = page.locator("#check-note").inner_text()
    assert "not available" in note and "not marked" in note and "Every audio file" not in note
    assert not page.locator("#check-run").is_enabled()  # nothing to press that cannot work
    run_text(page)
    details = page.locator("#text-details").inner_text() + page.locator("#text-details").inner_html()
    assert "Not watermarked" in details and "carries the app's inaudible" not in details


def test_a_prompt_in_another_language_is_flagged_before_the_run(page):
    open_tab(page, "Text to music")
    page.locator("#text-prompt textarea").fill("欢快的国风摇滚 with drums")
    note = page.locator("#text-prompt-note")
    note.get_by_text("translation is not available").wait_for(timeout=15_000)
    assert "欢快的国风摇滚" in note.inner_text() and "English" in note.inner_text()
    page.locator("#text-prompt textarea").fill("warm piano")
    page.wait_for_function("() => !document.querySelector('#text-prompt-note').innerText.trim()", timeout=15_000)


def test_progress_shows_from_the_click_to_the_result(page):
    seen = run_text(page, seconds=30, watch_progress=True)
    assert len(seen) >= 4  # the run lasted a second or more: enough looks to tell
    assert sum(seen) / len(seen) >= 0.9, seen
    assert seen[-3:] == [True] * 3  # still there in the last moments (decoding and writing the files)
    assert not page.locator("#text-progress progress").is_visible()  # and gone with the result


def test_after_an_error_nothing_looks_busy(page):
    open_tab(page, "Text to music")
    page.locator("#text-run").click()  # no prompt
    assert "describe the music" in toast_text(page)
    page.wait_for_function("() => !document.querySelector('#text-stop').matches(':enabled')", timeout=10_000)
    page.wait_for_selector("[data-testid=toast-body]", state="detached", timeout=30_000)  # the message fades
    time.sleep(1)
    badge = page.locator("#text-variant-1").inner_text()
    assert "Error" not in badge, badge
    assert not page.locator("#text-progress progress").is_visible()


def test_pictures_keep_their_titles_clear_and_read_on_a_phone(browser, newcomer_app):  # noqa: F811
    import io

    from PIL import Image

    from utils.plots import FONT_PX, LABEL_BAND_PX

    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    try:
        page.goto(newcomer_app.url)
        page.wait_for_selector("#piano-run")
        run_text(page)
        image = page.locator("#text-picture img")
        image.scroll_into_view_if_needed()
        src = image.get_attribute("src")
        with urllib.request.urlopen(src, timeout=30) as response:
            picture = Image.open(io.BytesIO(response.read())).convert("L")
        band = picture.crop((0, 0, picture.width // 2, LABEL_BAND_PX))  # under the box's label
        assert min(band.getdata()) > 200, "ink under the label"
        shown = image.evaluate("e => e.getBoundingClientRect().width")
        assert FONT_PX * shown / picture.width >= 7.5  # CSS pixels of text on the phone
        image.hover()  # the box's buttons (fullscreen, download, share) lie over the picture's top right corner
        toolbar = page.evaluate("""() => {
            const img = document.querySelector('#text-picture img').getBoundingClientRect();
            const bar = document.querySelector('#text-picture .icon-button-wrapper').getBoundingClientRect();
            return [bar.left - img.left, bar.top - img.top, bar.right - img.left, bar.bottom - img.top, img.width]; }""")
        scale = picture.width / toolbar[4]
        under = picture.crop(tuple(max(0, round(v * scale)) for v in toolbar[:4]))
        assert min(under.getdata()) > 200, "ink under the picture's buttons (a title cut off)"
    finally:
        page.close()


def test_file_names_and_score_titles_carry_the_prompt(page):
    run_text(page)
    names = [link.get_attribute("download") or "" for link in page.locator("#text-downloads a").all()]
    assert any(n.startswith("lo-fi_hip_hop_with_warm_piano_seed7_v1") and n.endswith(".wav") for n in names), names
    page.locator("#text-midi-panel").get_by_text("MIDI and sheet music of this result").click()
    page.locator("#text-midi").click()
    page.wait_for_selector("#text-midi-info >> text=BPM", timeout=RUN_TIMEOUT_MS)
    line = page.locator("#text-midi-info").inner_text()
    assert not re.search(r"\b1 notes\b", line) and "ICASSP" not in line.split("Technical details")[0]
    xml = [a.get_attribute("href") for a in page.locator("#text-midi-files a").all()
           if (a.get_attribute("download") or "").endswith(".musicxml")]
    if xml:  # the tiny model may make music with no notes; when it has some, the score is titled by the prompt
        with urllib.request.urlopen(xml[0], timeout=30) as response:
            assert "Lo-fi hip hop with warm piano (variant 1)" in response.read().decode()


def test_screen_readers_hear_words_not_keys(page):
    said_aloud(page)
    run_text(page)
    time.sleep(1.5)
    heard = page.evaluate("window.__said")
    assert heard and not any(re.search(r"\bcommon\.\w+", text) for text in heard), heard


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_after_generate_the_progress_is_in_view(browser, newcomer_app, viewport):
    """Generate sits below the fold on a 1280x800 screen, and the progress line at the top of the results column:
    pressing it brings the progress into view (on a phone, where it is under the button)."""
    context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 600)
    try:
        page = context.new_page()
        page.goto(newcomer_app.url)
        page.wait_for_selector("[role=tab][aria-selected=true]")
        page.get_by_role("tab", name="Text to music").click()
        page.locator("#text-prompt textarea").fill("slow piano")
        number = page.locator("#text-duration input[type=number]")
        number.fill("30")
        number.press("Enter")
        page.locator("#text-run").scroll_into_view_if_needed()
        page.locator("#text-run").click()
        page.wait_for_selector("#text-progress progress", timeout=60_000)
        page.wait_for_function(
            """() => { const b = document.querySelector('#text-progress progress').getBoundingClientRect();
                       return b.top >= 0 && b.bottom <= window.innerHeight; }""", timeout=30_000)
        if page.locator("#text-stop").is_enabled():  # (a busy machine may have finished the piece by now)
            with contextlib.suppress(Exception):
                page.locator("#text-stop").click(timeout=5_000)
    finally:
        context.close()


# Words a Chinese page may show in Latin letters: names (of formats, programs, models, paper, sampling methods) and
# units. Anything else in Latin letters is English the visitor was not given in Chinese.
NAMES = {
    "midi", "pdf", "musicxml", "musescore", "wav", "mp3", "mp4", "m4a", "flac", "ogg", "json", "gpu", "cpu", "api",
    "gradio", "youtube", "shorts", "tiktok", "top-k", "top-p", "letter", "a4", "bpm", "hz", "khz", "db", "s", "ms",
    "min", "mb", "gb", "musicgen", "pop2piano", "audioseal", "transkun", "demucs", "htdemucs", "basic-pitch", "encodec",
    "lo-fi", "zerogpu", "kb", "b",  # "b": bytes, in a file's size ("715.0 B")
}


def visible_texts(page) -> list[str]:
    """Every text a visitor sees now (toasts too), without what is collapsed: the operator's Technical details."""
    return page.evaluate("""() => {
        const out = [];
        const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let node = walk.nextNode(); node; node = walk.nextNode()) {
            const box = node.parentElement;
            if (!node.textContent.trim() || !box || box.closest('script, style, [id$=-technical]')) continue;
            const details = box.closest('details');
            if (details && !details.open && !box.closest('summary')) continue;
            const style = getComputedStyle(box);
            if (!box.getClientRects().length || style.visibility === 'hidden' || parseFloat(style.fontSize) === 0)
                continue;
            out.push(node.textContent.trim());
        }
        return out; }""")


def english_on_the_page(page, besides: tuple[str, ...] = ()) -> list[str]:
    """The words in Latin letters a visitor sees that are neither names nor units, each with what surrounds it,
    leaving out the example prompts (sample inputs, in the English the model reads), file names, and ``besides``
    (what the visitor typed)."""
    from ui.music_tabs import EXAMPLE_MELODIES, MELODY_PROMPT_EXAMPLES, TEXT_PROMPT_EXAMPLES

    prompts = TEXT_PROMPT_EXAMPLES + MELODY_PROMPT_EXAMPLES + [prompt for _, prompt in EXAMPLE_MELODIES]
    english = []
    for text in visible_texts(page):
        shown = text.removesuffix("...").removesuffix("…")
        if any(p.startswith(shown) for p in prompts):
            continue
        for typed in besides:
            text = text.replace(typed, " ")
        for word in re.findall(r"(?<!\w)[A-Za-z][\w.'’-]*", text):  # "1x" (a speed) is a unit
            if word.lower() not in NAMES and not re.search(r"[\d_./]", word):
                english.append(f"{word} (in “{text[:80]}”)")
    return sorted(set(english))


SETUP_TEXT = re.compile(  # what whoever runs the server needs, not a visitor
    r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b"  # an environment variable
    r"|(?<![\w-])--[a-z][\w-]+"  # a command-line flag
    r"|huggingface-cli|pip install|run\.sh|requirements[\w-]*\.txt"  # a command
    r"|\b(?:facebook|Helsinki-NLP|sweetcocoa|adefossez|openai)/[\w.-]+"  # a hub id
    r"|/tmp/|/home/|/root/|~/")  # a path on the server


def setup_text_on_the_page(page) -> list[str]:
    """The setup text a visitor sees: environment variables, flags, commands, hub ids, server paths."""
    return sorted({f"{m.group(0)} (in “{text[:80]}”)" for text in visible_texts(page)
                   for m in SETUP_TEXT.finditer(text)})


def open_every_box(page) -> None:
    """Open the page's collapsed boxes, all but Technical details."""
    for box in page.locator(".label-wrap:not(.open)").all():
        if box.is_visible() and not box.evaluate("e => !!e.closest('[id$=-technical]')"):
            box.click()


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_visitor_walks_the_page_in_their_language(browser, newcomer_app, tmp_path, locale):  # noqa: F811
    """Walk the page as a visitor does (every tab and box open, a bad upload, a one-sample file, a prompt in
    Chinese, a run with no prompt, a result, the check box on a server without a watermark or translator). In zh-CN
    nothing visible is English but names and units; in both languages the setup text (hub ids, environment
    variables, commands) stays under Technical details."""
    import numpy as np
    import soundfile as sf

    bad = tmp_path / "not_audio.wav"
    bad.write_bytes(b"not audio at all" * 64)
    blip = tmp_path / "blip.wav"
    sf.write(blip, np.full(1, 0.5, dtype=np.float32), 44100)
    chinese = locale == "zh-CN"
    words = (lambda zh, en: zh if chinese else en)
    found: dict[str, list[str]] = {}
    setup: dict[str, list[str]] = {}

    def look(where: str, besides: tuple[str, ...] = ()) -> None:
        found[where] = english_on_the_page(page, besides) if chinese else []
        setup[where] = setup_text_on_the_page(page)

    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(newcomer_app.url)
        page.wait_for_selector("#piano-run")
        page.get_by_text(words("钢琴翻奏", "Piano cover")).first.wait_for(timeout=30_000)
        page.get_by_text(words("编曲者风格", "Arranger style")).first.wait_for(timeout=30_000)  # the labels too
        open_every_box(page)
        look("piano tab")
        page.locator("#piano-song input[type=file]").set_input_files(str(bad))
        page.wait_for_selector("#piano-song-note >> text=⚠️", timeout=30_000)
        assert words("支持的格式：", "Supported formats:") in page.locator("#piano-song-note").inner_text()
        look("a file that is not audio")
        page.locator("#piano-song input[type=file]").set_input_files(str(blip))
        page.wait_for_function("t => document.querySelector('#piano-song-note').innerText.includes(t)",
                               arg=words("太短", "too short"), timeout=30_000)
        page.get_by_role("tab", name=words("文字生成音乐", "Text to music")).click()
        open_every_box(page)
        look("text tab")
        page.locator("#text-run").click()
        toast_text(page)
        look("no prompt")
        prompt = "温暖的钢琴曲"
        page.locator("#text-prompt textarea").fill(prompt)
        page.locator("#text-prompt textarea").blur()
        page.wait_for_selector("#text-prompt-note >> text=⚠️", timeout=30_000)
        look("a prompt in Chinese", (prompt,))
        page.locator("#text-prompt textarea").fill("warm piano")
        page.locator("#text-seed input").fill("7")
        page.locator("#text-run").click()
        page.wait_for_selector(f"#text-details >> text={words('随机种子 7：', 'Seed 7:')}", timeout=RUN_TIMEOUT_MS)
        look("a result", ("warm piano", "warm_piano"))
        page.get_by_role("tab", name=words("旋律生成音乐", "Melody to music")).click()
        open_every_box(page)
        look("melody tab")
        page.locator("#melody-input input[type=file]").first.set_input_files(str(blip))
        page.wait_for_function("t => document.querySelector('#melody-preview-info').innerText.includes(t)",
                               arg=words("太短", "too short"), timeout=30_000)
        look("a one-sample melody")
        screenshot(page, f"{locale}-walk")
    finally:
        context.close()
    assert not {where: seen for where, seen in found.items() if seen}, f"English on the Chinese page: {found}"
    assert not {where: seen for where, seen in setup.items() if seen}, f"setup text shown to visitors: {setup}"
