"""What a listener meets (issue 43), in a real browser on the running app (tiny models): the live player plays on to
the end across the finish, Stop stays in reach on a phone during a run, no empty player or upload box where there
is nothing to play or give, model choices that do not look typeable, and no server path or environment variable in
what a visitor reads or downloads."""

from __future__ import annotations

import json
import re
from pathlib import Path


from tests.test_browser import RUN_TIMEOUT_MS, browser, open_tab, page, screenshot  # noqa: F401 - fixtures

SERVER_WORDS = re.compile(r"/tmp/|pytest-of|HF_HUB_OFFLINE|huggingface-cli|MUSICGEN_MODEL|WATERMARK_MODEL|"
                          r"TRANSLATION_MODEL|SEPARATOR_MODEL|--[a-z]+-model")


def playing_time(page, elem_id: str) -> float | None:
    """Where the live player's audio is, in seconds (None: no audio element, or hidden)."""
    return page.evaluate("""id => {
        const box = document.getElementById(id);
        const audio = box && box.querySelector("audio");
        return audio && box.offsetParent !== null ? audio.currentTime : null;
    }""", elem_id)


def test_the_live_player_plays_on_to_the_end_across_the_finish(page):
    open_tab(page, "Text to music")
    assert not page.locator("#text-stream").is_visible()  # no empty player before anything is made
    page.locator("#text-prompt textarea").fill("warm piano")
    page.locator("#text-duration input[type=number]").fill("12")
    page.locator("#text-duration input[type=number]").press("Enter")
    page.locator("#text-run").click()
    page.wait_for_function("() => { const a = document.querySelector('#text-stream audio'); "
                           "return a && a.currentTime > 0.5; }", timeout=RUN_TIMEOUT_MS)
    page.evaluate("""() => {  // where the live player is, every 100 ms, and when the run finished
        window.__heard = []; window.__finished = null;
        setInterval(() => {
            const box = document.getElementById("text-stream"), audio = box && box.querySelector("audio");
            if (window.__finished === null && document.querySelector("#text-details")?.innerText.includes("Seed"))
                window.__finished = window.__heard.length;
            if (audio && box.offsetParent !== null) window.__heard.push(audio.currentTime);
        }, 100);
    }""")
    page.wait_for_selector("#text-details >> text=Seed", timeout=RUN_TIMEOUT_MS)  # the run has finished
    page.wait_for_function("() => document.getElementById('text-stream').offsetParent === null",
                           timeout=40_000)  # at its end it gives its place to the finished players
    heard, finished = page.evaluate("() => [window.__heard, window.__finished]")
    at_finish = heard[finished - 1] if finished else None  # (a machine slower than real time ends it nearer 12 s)
    assert heard and max(heard) >= 11.0, (at_finish, heard[-5:])  # the live player played on to the end
    assert all(b >= a - 0.05 for a, b in zip(heard, heard[1:])), heard  # no restart, no jump back
    assert page.locator("#text-variant-1").is_visible()
    screenshot(page, "live-player-handed-over")


def test_stop_stays_in_reach_on_a_phone_during_a_run(browser, live_app):
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        phone.goto(live_app.url)
        phone.wait_for_selector("#piano-run", state="attached")
        open_tab(phone, "Text to music")
        phone.locator("#text-prompt textarea").fill("slow strings")
        phone.locator("#text-duration input[type=number]").fill("60")
        phone.locator("#text-duration input[type=number]").press("Enter")
        phone.locator("#text-run").click()
        phone.wait_for_selector("#text-progress progress", timeout=RUN_TIMEOUT_MS)
        phone.wait_for_timeout(800)  # the page has scrolled to the progress line
        stop = phone.locator("#text-stop")
        box = stop.bounding_box()
        assert stop.is_enabled() and box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 844, box
        progress = phone.locator("#text-progress").bounding_box()
        assert progress is not None and 0 <= progress["y"] < 844  # both in view at once
        screenshot(phone, "phone-stop-in-reach")
        stop.click()
        phone.wait_for_selector("#text-details >> text=Stopped", timeout=RUN_TIMEOUT_MS)
        phone.wait_for_function("() => document.getElementById('text-stop').disabled", timeout=30_000)
        assert phone.locator("#text-stop").bounding_box()["y"] < progress["y"]  # back in its place once quiet
    finally:
        phone.close()


def test_nothing_looks_like_it_takes_what_it_cannot(page):
    """The score output is not an upload box, and the model lists do not take typing."""
    score = page.locator("#piano-score")
    assert "Drop" not in score.inner_text() and score.locator("input[type=file]").count() == 0
    assert score.bounding_box()["height"] < 400
    for tab, elem_id in (("Text to music", "text-model"), ("Melody to music", "melody-model"),
                         ("Song with lyrics", "song-model")):
        open_tab(page, tab)
        assert page.locator(f"#{elem_id} input").get_attribute("readonly") is not None, elem_id


def test_no_server_path_or_setup_text_reaches_a_visitor(live_app, tiny_musicgen_dir, tmp_path):
    from gradio_client import Client

    client = Client(live_app.url, verbose=False, download_files=str(tmp_path))
    *audios, _picture, params, details, downloads = client.predict(
        "夜晚的钢琴 piano", "", 2, 250, 0.0, 1.0, 3.0, "7", 1, 18, api_name="/text_to_music")
    assert not SERVER_WORDS.search(json.dumps(params, ensure_ascii=False)), params
    assert not SERVER_WORDS.search(details), details
    written = next(Path(f) for f in downloads if str(f).endswith(".json"))
    assert not SERVER_WORDS.search(written.read_text()), written.read_text()
    assert params["model"] == tiny_musicgen_dir.name  # the folder's name, as the page says it
    # and the file still sets the tab to the same model on this server (the app's own)
    from gradio_client import handle_file
    from ui.music import APP_DEFAULT_MODEL

    settings = client.predict(handle_file(str(written)), api_name="/text_to_music_load_params")
    assert settings[0] == "夜晚的钢琴 piano" and settings[1] == APP_DEFAULT_MODEL and settings[7] == "7"


def test_a_waiting_run_a_running_one_and_a_refused_upload_are_said_in_the_pages_language(browser, live_app):
    """A Chinese visitor whose run waits behind four others reads why in the tab's own progress line, in Chinese,
    and not gradio's "queue: 1/1 | 4.1/10.3s"; once it runs, that one line says how far it is (gradio's bar and
    text on the result are hidden); a file of the wrong kind in the parameters box is refused in Chinese."""
    from gradio_client import Client

    from tests.test_browser import opened

    seats = [Client(live_app.url, verbose=False) for _ in range(4)]  # the server's 4 seats, each another visitor
    jobs = [c.submit("lo fi", "", 120, 250, 0.0, 1.0, 3.0, str(i), 1, api_name="/text_to_music")
            for i, c in enumerate(seats)]
    try:
        with opened(browser, live_app.url, locale="zh-CN") as page:
            open_tab(page, "文字生成音乐")
            page.locator("#text-prompt textarea").fill("warm piano")
            page.locator("#text-run").click()
            page.wait_for_function("() => document.querySelector('#text-progress')?.innerText.includes('排队中')",
                                   timeout=RUN_TIMEOUT_MS)
            seen = page.evaluate("() => document.body.innerText")
            assert "queue:" not in seen and "processing" not in seen
            for c in seats:  # the others stop: this visitor's run starts
                c.predict(api_name="/text_to_music_stop")
            page.wait_for_function("() => document.querySelector('#text-progress')?.innerText.includes('已生成')",
                                   timeout=RUN_TIMEOUT_MS)
            assert not page.locator("#text-variant-1 .progress-level").is_visible()  # one line says how far
            assert not page.locator("#text-variant-1 .progress-text").is_visible()
            page.wait_for_selector("#text-details >> text=种子", timeout=RUN_TIMEOUT_MS)
            page.locator("#text-params-box").click()
            page.locator("#text-params-file input[type=file]").set_input_files(
                str(Path(__file__).parents[1] / "examples" / "melody_twinkle_flute.ogg"))
            refusal = page.locator("[data-testid=toast-text]").first
            refusal.wait_for(timeout=10_000)
            page.wait_for_function("() => document.querySelector('[data-testid=toast-text]')"
                                   "?.innerText.includes('这里只能放')", timeout=5_000)
            assert "melody_twinkle_flute.ogg" in refusal.inner_text() and "Invalid" not in refusal.inner_text()
            screenshot(page, "zh-CN-refusal")
    finally:
        for c, job in zip(seats, jobs):
            c.predict(api_name="/text_to_music_stop")
            job.result(timeout=60)


def test_a_chinese_page_reads_chinese_while_a_cover_is_made(browser, live_app, chorale):
    """Every line the page shows while a cover is made, gradio's included (its "processing | 3.2s"), is Chinese on
    a Chinese page; and the cover's picture is titled in Chinese."""
    from tests.test_browser import opened

    with opened(browser, live_app.url, locale="zh-CN") as page:
        page.locator("#piano-song input[type=file]").set_input_files(str(chorale[0]))
        page.evaluate("""() => {  // every visible progress line, every 100 ms, while the cover is made
            window.__lines = [];
            window.__watch = setInterval(() => {
                for (const el of document.querySelectorAll('.progress-text, .gradio-said, .progress-level, .loading'))
                    if (el.offsetParent !== null && el.innerText.trim()) window.__lines.push(el.innerText.trim());
            }, 100);
        }""")
        page.locator("#piano-run").click()
        page.wait_for_selector("#piano-cover-details >> text=BPM", timeout=RUN_TIMEOUT_MS)
        lines = page.evaluate("() => { clearInterval(window.__watch); return window.__lines; }")
        assert any(re.search(r"[\u4e00-\u9fff]", line) for line in lines), lines  # it said how far, in Chinese
        from tests.test_newcomer import NAMES  # names of formats and units, which stay in Latin letters

        english = sorted({line for line in lines
                          if any(w.lower() not in NAMES for w in re.findall(r"[A-Za-z][A-Za-z0-9-]*", line))})
        assert not english, english
        screenshot(page, "zh-CN-cover")
