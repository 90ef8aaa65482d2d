"""Share a result by link: the link opens, in a browser that never saw the page (a new context: no cookies, no
session), on the same tab with exactly that one result and the settings that made it, and nothing else of the
sharer's page (their other tabs' songs, drafts); the viewer can extend it as their own. The saved share itself:
an id nobody can guess, kept after a restart, removed past its time."""

from __future__ import annotations

import json
import sys
import re
import time
import urllib.request

from products.shares import SHARE_ID, open_share, save_share, sweep_shares
from tests.test_browser import (  # noqa: F401 - fixture
    RUN_TIMEOUT_MS,
    assert_no_error_toast,
    browser,
    open_tab,
    opened,
    toast_text,
)

LINK = re.compile(r"https?://\S+\?share=[\w-]+")


def share_link(page, tab: str) -> str:
    """Press the tab's Share, and read the link the page shows."""
    page.locator(f"#{tab}-share").click()
    page.wait_for_function(f"() => /share=/.test(document.querySelector('#{tab}-share-link').innerText)",
                           timeout=30_000)
    text = page.locator(f"#{tab}-share-link").inner_text()
    match = LINK.search(text)
    assert match, text
    return match.group(0)


def audio_bytes(page, elem_id: str) -> bytes:
    href = page.locator(f"#{elem_id} a[data-testid=download-link]").first.get_attribute("href")
    with urllib.request.urlopen(href, timeout=30) as response:
        return response.read()


def test_a_text_piece_shared_by_link_opens_alone_and_the_viewer_extends_it(browser, live_app, chorale):  # noqa: F811
    prompt = "slow jazz ballad with brushed drums"
    with opened(browser, live_app.url, permissions=["clipboard-read", "clipboard-write"]) as page:
        # the sharer's other tabs hold a song and an unsent draft: not part of the result
        page.locator("#piano-song input[type=file]").set_input_files(str(chorale[0]))
        open_tab(page, "Melody to music")
        page.locator("#melody-prompt textarea").fill("my secret melody draft")
        open_tab(page, "Text to music")
        page.locator("#text-prompt textarea").fill(prompt)
        page.locator("#text-seed input").fill("4242")
        page.locator("#text-duration input[type=number]").fill("2")
        page.locator("#text-duration input[type=number]").press("Enter")
        page.locator("#text-run").click()
        page.wait_for_selector("#text-details >> text=Seed 4242:", timeout=RUN_TIMEOUT_MS)
        assert_no_error_toast(page)
        page.locator("#text-prompt textarea").fill("an unsent draft typed after the result")
        link = share_link(page, "text")
        assert "copied" in page.locator("#text-share-link").inner_text()  # on the clipboard too, where allowed
        assert page.evaluate("navigator.clipboard.readText()") == link
        made = audio_bytes(page, "text-variant-1")

    with opened(browser, link) as seen:
        seen.wait_for_selector("#text-details >> text=Seed 4242:", timeout=30_000)
        assert seen.get_by_role("tab", name="Text to music", selected=True).is_visible()  # opens on its tab
        assert seen.locator("#text-prompt textarea").input_value() == prompt  # the settings that made it
        assert seen.locator("#text-seed input").input_value() == "4242"
        assert audio_bytes(seen, "text-variant-1") == made
        assert seen.locator("#text-picture img").count() == 1
        assert not seen.locator("#text-share-link").inner_text().strip()  # the sharer's link line stays theirs
        open_tab(seen, "Melody to music")  # nothing else of the sharer's page
        assert seen.locator("#melody-prompt textarea").input_value() == ""
        open_tab(seen, "Piano cover")
        assert seen.locator("#piano-song audio").count() == 0 and seen.locator("#piano-song video").count() == 0
        assert "chorale" not in seen.content()
        # the viewer extends it, as their own
        open_tab(seen, "Text to music")
        seen.locator("#text-extend-seconds input[type=number]").fill("3")
        seen.locator("#text-extend-seconds input[type=number]").press("Enter")
        seen.locator("#text-extend").click()
        seen.wait_for_selector("#text-details >> text=One piece of 5 s.", timeout=RUN_TIMEOUT_MS)
        assert_no_error_toast(seen)


def test_a_piano_cover_shared_by_link_opens_with_its_files(browser, live_app, chorale):  # noqa: F811
    with opened(browser, live_app.url) as page:  # no clipboard: the link is shown
        page.locator("#piano-song input[type=file]").set_input_files(str(chorale[0]))
        page.locator("#piano-run").click()
        page.wait_for_selector("#piano-cover-details >> text=notes", timeout=RUN_TIMEOUT_MS)
        details = page.locator("#piano-cover-details").inner_text()
        link = share_link(page, "piano")
        midi = audio_bytes(page, "piano-midi")

    with opened(browser, link) as seen:
        seen.wait_for_selector("#piano-cover-details >> text=notes", timeout=30_000)
        assert seen.get_by_role("tab", name="Piano cover", selected=True).is_visible()
        assert seen.locator("#piano-cover-details").inner_text() == details
        assert audio_bytes(seen, "piano-midi") == midi and midi[:4] == b"MThd"
        assert audio_bytes(seen, "piano-audio")[:4] == b"RIFF"
        assert seen.locator("#piano-roll img").count() == 1
        assert float(seen.locator("#piano-tempo input").input_value()) > 40
        assert seen.locator("#piano-song audio").count() == 0  # the song itself is not shared


def test_a_result_shared_from_the_chinese_page_reads_in_the_viewers_language(browser, live_app):  # noqa: F811
    """Made and shared on the Chinese page, opened in an English browser: the result's words are English; opened in
    a Chinese one, they are Chinese."""
    cjk = re.compile(r"[\u4e00-\u9fff]")
    with opened(browser, live_app.url, locale="zh-CN") as page:
        open_tab(page, "文字生成音乐")
        page.locator("#text-prompt textarea").fill("rainy window piano")
        page.locator("#text-seed input").fill("4243")
        page.locator("#text-duration input[type=number]").fill("2")
        page.locator("#text-duration input[type=number]").press("Enter")
        page.locator("#text-run").click()
        page.wait_for_selector("#text-details >> text=4243", timeout=RUN_TIMEOUT_MS)
        assert cjk.search(page.locator("#text-details").inner_text())  # the sharer reads Chinese
        link = share_link(page, "text")
    with opened(browser, link, locale="en-US") as seen:
        seen.wait_for_selector("#text-details >> text=Seed 4243:", timeout=30_000)
        said = seen.locator("#text-details").inner_text()
        assert not cjk.search(said), said
    with opened(browser, link, locale="zh-CN") as seen:
        seen.wait_for_selector("#text-details >> text=4243", timeout=30_000)
        assert cjk.search(seen.locator("#text-details").inner_text())


def test_a_link_to_nothing_opens_the_plain_page(browser, live_app):  # noqa: F811
    for query in ("?share=not-a-saved-page", "?share=AAAAAAAAAAAAAAAAAAAAAAAA", "?share=../../etc"):
        with opened(browser, live_app.url + query) as seen:
            assert "no longer opens" in toast_text(seen)  # the page says why nothing opened
            assert not seen.locator("#piano-cover-details").inner_text().strip()
            assert seen.get_by_role("tab", name="Piano cover", selected=True).is_visible()


def test_a_share_is_unguessable_kept_on_disk_and_removed_past_its_time(tmp_path):
    song = tmp_path / "result.wav"
    song.write_bytes(b"RIFF....WAVE")
    made = [save_share(tmp_path / "shared", "text", [("file", str(song)), ("value", {"seed": 4})], {"codes": [1]})
            for _ in range(3)]
    assert len({m.id for m in made}) == 3 and all(SHARE_ID.match(m.id) for m in made)
    again = open_share(tmp_path / "shared", made[0].id)  # as after a restart: read back from disk
    assert again.tab == "text" and again.values[1] == {"seed": 4} and again.state == {"codes": [1]}
    assert open(again.values[0], "rb").read() == song.read_bytes() and again.values[0] != str(song)
    assert open_share(tmp_path / "shared", "../" + made[0].id[3:]) is None
    manifest = made[1].folder / "share.json"
    record = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**record, "expires": time.time() - 1}))
    assert open_share(tmp_path / "shared", made[1].id) is None and not made[1].folder.exists()
    assert sweep_shares(tmp_path / "shared") == []  # the others are within their time
    assert sorted(sweep_shares(tmp_path / "shared", now=time.time() + 8 * 86400)) == sorted(
        [made[0].folder, made[2].folder])


class Moved:
    """A class a share's state pickles, later moved away (as after an update of the app)."""

    def __init__(self) -> None:
        self.codes = [1, 2]


def test_a_share_cannot_rot(tmp_path, monkeypatch):
    """Written whole or not at all; kept within its own cap, oldest first; one that cannot be read does not open."""
    import os
    import shutil as shutil_module

    from products import shares

    root = tmp_path / "shared"
    song = tmp_path / "result.wav"
    song.write_bytes(b"RIFF" + bytes(4000))

    # a copy that fails half-way (the disk full): nothing is left, not even a folder the sweep would skip
    def full_disk(source, target, *args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(shares.shutil, "copy2", full_disk)
        try:
            save_share(root, "text", [("file", str(song)), ("file", str(song))])
            raise AssertionError("the failed copy was not said")
        except OSError:
            pass
    assert list(root.iterdir()) == []

    # a folder left by a crash mid-write goes once it is an hour old (one that is being written now stays)
    crashed = root / f"{shares.WRITING}abc"
    crashed.mkdir()
    assert sweep_shares(root) == []
    old = time.time() - 2 * shares.STALE_WRITE_S
    os.utime(crashed, (old, old))
    assert sweep_shares(root) == [crashed]

    # their own cap: the oldest go first, the new one always stays
    made = [save_share(root, "text", [("file", str(song))], max_bytes=10_000) for _ in range(2)]
    assert made[0].folder.exists() and made[1].folder.exists()  # two of ~4 kB fit in 10 kB
    newest = save_share(root, "text", [("file", str(song))], max_bytes=10_000)
    assert not made[0].folder.exists() and newest.folder.exists()
    assert sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) <= 10_000

    # a state pickled from a class since moved: the link does not open (the page says so), nothing raises
    moved = save_share(root, "text", [("value", 1)], Moved())
    monkeypatch.delattr(sys.modules[__name__], "Moved")
    assert open_share(root, moved.id) is None
    shutil_module.rmtree(moved.folder)
