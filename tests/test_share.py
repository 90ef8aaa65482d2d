"""Share a result by link: the link made on one page opens, in a browser that never saw the page (a new context: no
cookies, no session), on the same tab with the same result and settings."""

from __future__ import annotations

import re
import urllib.request

from tests.test_browser import RUN_TIMEOUT_MS, assert_no_error_toast, browser, open_tab, opened  # noqa: F401 - fixture

LINK = re.compile(r"https?://\S+deep_link=[\w-]+")


def share_link(page, tab: str) -> str:
    """Press the tab's Share, and read the link the page shows."""
    page.locator(f"#{tab}-share").click()
    page.wait_for_function(f"() => /deep_link=/.test(document.querySelector('#{tab}-share-link').innerText)",
                           timeout=30_000)
    text = page.locator(f"#{tab}-share-link").inner_text()
    match = LINK.search(text)
    assert match, text
    return match.group(0)


def audio_bytes(page, elem_id: str) -> bytes:
    href = page.locator(f"#{elem_id} a[data-testid=download-link]").first.get_attribute("href")
    with urllib.request.urlopen(href, timeout=30) as response:
        return response.read()


def test_a_text_piece_shared_by_link_opens_with_its_result_and_settings(browser, live_app):  # noqa: F811
    prompt = "slow jazz ballad with brushed drums"
    with opened(browser, live_app.url, permissions=["clipboard-read", "clipboard-write"]) as page:
        open_tab(page, "Text to music")
        page.locator("#text-prompt textarea").fill(prompt)
        page.locator("#text-seed input").fill("4242")
        page.locator("#text-run").click()
        page.wait_for_selector("#text-details >> text=Seed 4242:", timeout=RUN_TIMEOUT_MS)
        assert_no_error_toast(page)
        link = share_link(page, "text")
        assert "copied" in page.locator("#text-share-link").inner_text()  # on the clipboard too, where allowed
        assert page.evaluate("navigator.clipboard.readText()") == link
        made = audio_bytes(page, "text-variant-1")

    with opened(browser, link) as seen:
        assert seen.get_by_role("tab", name="Text to music", selected=True).is_visible()  # opens on its tab
        assert seen.locator("#text-prompt textarea").input_value() == prompt  # the settings
        assert seen.locator("#text-seed input").input_value() == "4242"
        assert "Seed 4242:" in seen.locator("#text-details").inner_text()  # and the result
        assert audio_bytes(seen, "text-variant-1") == made
        assert seen.locator("#text-picture img").count() == 1
        assert not seen.locator("#text-share-link").inner_text().strip()  # the sharer's link line stays theirs
        assert seen.locator("#text-stop").inner_text().strip().startswith("Stop")  # its words, as they were


def test_a_piano_cover_shared_by_link_opens_with_its_files(browser, live_app, chorale):  # noqa: F811
    with opened(browser, live_app.url) as page:  # no clipboard: the link is shown
        page.locator("#piano-song input[type=file]").set_input_files(str(chorale[0]))
        page.locator("#piano-run").click()
        page.wait_for_selector("#piano-cover-details >> text=notes", timeout=RUN_TIMEOUT_MS)
        details = page.locator("#piano-cover-details").inner_text()
        link = share_link(page, "piano")
        midi = audio_bytes(page, "piano-midi")

    with opened(browser, link) as seen:
        assert seen.get_by_role("tab", name="Piano cover", selected=True).is_visible()
        assert seen.locator("#piano-cover-details").inner_text() == details
        assert audio_bytes(seen, "piano-midi") == midi and midi[:4] == b"MThd"
        assert audio_bytes(seen, "piano-audio")[:4] == b"RIFF"
        assert seen.locator("#piano-roll img").count() == 1
        assert float(seen.locator("#piano-tempo input").input_value()) > 40


def test_a_link_to_nothing_opens_the_plain_page(browser, live_app):  # noqa: F811
    with opened(browser, live_app.url + "?deep_link=not-a-saved-page") as seen:
        assert not seen.locator("#piano-cover-details").inner_text().strip()
        assert seen.get_by_role("tab", name="Piano cover", selected=True).is_visible()
