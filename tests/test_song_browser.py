"""The song tab in a real browser (Playwright, Debian's Chromium), in English and in Chinese, on a desktop and a
phone: its words, a refusal, a song made with Chinese lyrics, an edit."""

from __future__ import annotations

import pytest

from tests.test_browser import RUN_TIMEOUT_MS, browser, opened, toast_text  # noqa: F401 - fixture


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_a_chinese_visitor_makes_and_edits_a_song(browser, live_app, viewport):  # noqa: F811
    with opened(browser, live_app.url, locale="zh-CN") as page:
        page.set_viewport_size(viewport)
        page.get_by_role("tab", name="带歌词的歌曲").click()
        assert "风格：听起来是什么样" in page.locator("#song-style").inner_text()
        if viewport["width"] > 600:  # a phone hides the tabs' guides (ui/common.py's CSS)
            assert "每个段落的标签单独占一行" in page.locator("#song-guide").inner_text()
        page.locator("#song-run").click()  # nothing to sing, nothing to play: said in Chinese
        assert "没有可唱的" in toast_text(page)
        page.locator("#song-style textarea").fill("Mandopop ballad")
        page.locator("#song-lyrics textarea").fill("[verse]\n月光洒在窗前\n我在想你")
        page.locator("#song-lyrics-note").get_by_text("用中文演唱").wait_for(timeout=30_000)  # told from the script
        page.locator("#song-seconds input[type=number]").fill("10")
        page.locator("#song-seed input").fill("7")
        page.locator("#song-run").click()
        page.wait_for_selector("#song-details >> text=种子 7：", timeout=RUN_TIMEOUT_MS)
        assert "一首 10 秒的歌" in page.locator("#song-details").inner_text()
        assert page.locator("#song-downloads a[data-testid=download-link]").count() >= 4  # WAV, MP3, lyrics, JSON
        page.locator("#song-edit-box").get_by_text("重做一段，或延长这首歌").click()
        page.locator("#song-edit-end input").fill("6")
        page.locator("#song-edit-start input").fill("3")
        page.locator("#song-edit").click()
        page.wait_for_selector("#song-details >> text=从 3.0 到 6.0 秒的部分已重新生成", timeout=RUN_TIMEOUT_MS)


def test_an_english_visitor_sees_the_song_tab_and_what_it_will_not_do(browser, live_app):  # noqa: F811
    with opened(browser, live_app.url, locale="en-US") as page:
        page.get_by_role("tab", name="Song with lyrics").click()
        assert "no singer's voice from an upload" in page.locator("#song-wont").inner_text()
        page.locator("#song-examples").get_by_text("Mandopop ballad").first.click()
        assert "月光洒在窗前" in page.locator("#song-lyrics textarea").input_value()
        page.locator("#song-lyrics-note").get_by_text("Sung in Chinese").wait_for(timeout=30_000)
