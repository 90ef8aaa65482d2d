"""The page in Simplified Chinese: every fixed text on the page and every message the app says has its Chinese, the
language follows the browser, and a zh-CN browser sees the Chinese page (its words, an error, a result)."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.test_app import tiny_app  # noqa: F401 - fixture
from tests.test_browser import RUN_TIMEOUT_MS, browser, opened, toast_text  # noqa: F401 - fixture
from ui.i18n import GRADIO_OWN, _templates, catalogue, key_of, language_of, page_texts, translate

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["app.py", "models", "products", "utils", "ui"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def _template(node: ast.AST) -> str | None:
    """A message's text with its computed parts as ``{}``, as ui.i18n matches it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        return (left if left is not None else "{}") + (right if right is not None else "{}")
    return None


def _name(func: ast.AST) -> str:
    return getattr(func, "id", None) or getattr(func, "attr", None) or ""


def said_messages() -> dict[str, str]:
    """Every message the app says to a user, found in its source: {template: where}. That is: the ValueErrors its
    input checks raise (the page shows them), gr.Error/Warning/Info, what ``say`` is given, progress messages
    (``report(fraction, message)``, ``progress(fraction, desc=...)``), and the notes a result carries
    (``notes.append``)."""
    found: dict[str, str] = {}
    files = [p for s in SOURCES for p in ((ROOT / s).rglob("*.py") if (ROOT / s).is_dir() else [ROOT / s])]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            message = None
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args \
                    and _name(node.exc.func) in {"ValueError", "Error"}:
                message = node.exc.args[0]
            elif isinstance(node, ast.Call):
                name = _name(node.func)
                if name in {"say", "Error", "Warning", "Info", "page_error", "page_info", "words"} and node.args:
                    message = node.args[0]
                elif name == "report" and len(node.args) == 2:
                    message = node.args[1]
                elif name == "progress":
                    message = next((k.value for k in node.keywords if k.arg == "desc"), None)
                elif name == "append" and _name(getattr(node.func, "value", None)) == "notes" and node.args:
                    message = node.args[0]
            if isinstance(message, ast.Call) and _name(message.func) == "say" and message.args:
                message = message.args[0]
            if isinstance(message, ast.IfExp):  # "Loading the model" if ... else "Preparing": both
                for branch in (message.body, message.orelse):
                    text = _template(branch)
                    if text and re.search(r"[A-Za-z]{2}", text):
                        found[text] = f"{path.relative_to(ROOT)}:{node.lineno}"
                continue
            text = _template(message) if message is not None else None
            if text and re.search(r"[A-Za-z]{3}", text.replace("{}", "")):
                found[text] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def sample(template: str) -> str:
    """A template filled as the app fills it: numbers where most parts go."""
    return template.replace("{}", "7")


def test_every_fixed_text_on_the_page_has_its_chinese():
    import app

    left = [text for _, _, _, text in page_texts(app.demo)]  # what localize_page could not swap for a key
    assert not left, f"no Chinese in ui/locale/zh-CN.json for: {left}"
    from ui.i18n import localize_page

    assert localize_page(app.demo) == []
    from ui.share import SHARE_WORDS, share_script

    assert all(CJK.search(catalogue()[text]) for text in SHARE_WORDS.values())  # what the browser says on Share
    assert "链接已复制" in share_script()


def test_every_message_the_app_says_has_its_chinese():
    messages = said_messages()
    assert len(messages) > 120  # the search found the app's messages (errors, notes, progress)
    missing = {t: where for t, where in messages.items() if not CJK.search(translate(sample(t), "zh-CN"))}
    assert not missing, "no Chinese for:\n" + "\n".join(f"{w}: {t}" for t, w in sorted(missing.items(), key=str))


def test_the_catalogue_is_well_formed():
    zh = catalogue()
    for english, words in zh.items():
        assert words.strip() and CJK.search(words) or not re.search(r"[A-Za-z]{2}", english), english
        assert english.count("{}") == words.count("{}") + len(re.findall(r"\{\d+\}", words)), english
        literal = re.sub(r"\{\}", "", english)
        assert "{}" not in english or len(re.findall(r"[A-Za-z]", literal)) >= 6, f"too loose a template: {english}"
    assert len({key_of(e) for e in zh}) == len(zh)  # keys do not collide
    words = page_i18n_words()
    assert words["zh-CN"]["common.complete"] == GRADIO_OWN["common.complete"]["zh-CN"]  # screen readers' "Done"
    assert set(words["en"]) == set(words["zh-CN"])  # every key in both languages


def page_i18n_words() -> dict[str, dict[str, str]]:
    from ui.i18n import page_i18n

    return page_i18n().translations_dict


@pytest.mark.parametrize("header, language", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("zh", "zh-CN"), ("zh-TW", "zh-CN"), ("en-US,en;q=0.9", "en"),
    ("fr-FR,zh-CN;q=0.5", "en"), ("", "en"), (None, "en"), ("*", "en"),
])
def test_the_language_follows_the_browser(header, language):
    assert language_of(header) == language


def test_messages_keep_what_is_not_words_and_translate_the_rest():
    said = translate("A tempo of 300 BPM is not plausible.", "zh-CN")
    assert "300" in said and CJK.search(said)
    assert translate("A tempo of 300 BPM is not plausible.", "en") == "A tempo of 300 BPM is not plausible."
    assert translate("lo-fi hip hop with warm piano", "zh-CN") == "lo-fi hip hop with warm piano"  # a prompt
    two = translate("Loaded the settings of seed 12. Give the same melody (8 s used): it is not in the file.", "zh-CN")
    assert "12" in two and "8" in two and not re.search(r"[A-Za-z]{4}", two)  # sentence by sentence
    for pattern, _ in _templates():
        assert pattern.pattern.startswith("^") and pattern.pattern.endswith("$")


def test_a_chinese_browser_sees_the_chinese_page(browser, live_app):  # noqa: F811
    with opened(browser, live_app.url, locale="zh-CN") as page:
        page.wait_for_selector("#piano-run")
        page.get_by_text("钢琴翻奏").first.wait_for(timeout=30_000)
        assert page.locator("#piano-run").inner_text().strip() == "生成钢琴翻奏"
        assert "歌曲（wav、mp3、flac、ogg）" in page.locator("#piano-song").inner_text()
        page.get_by_role("tab", name="文字生成音乐").click()
        assert "描述你想要的音乐" in page.locator("#text-prompt").inner_text()
        page.wait_for_function("() => document.querySelector('#text-model input').value.includes('本应用的模型')",
                               timeout=30_000)  # a choice the page gets on load, in the browser's language too
        page.locator("#text-run").click()  # no prompt: the message in Chinese
        assert "请描述你想要的音乐" in toast_text(page)
        page.locator("#text-prompt textarea").fill("warm piano")
        page.locator("#text-seed input").fill("7")
        page.locator("#text-run").click()
        page.wait_for_selector("#text-details >> text=随机种子 7：", timeout=RUN_TIMEOUT_MS)
        details = page.locator("#text-details").inner_text()
        assert "一首" in details and "把它填进种子框" in details
        assert "分享此结果" in page.locator("#text-share").inner_text()


def test_an_english_browser_sees_the_english_page(browser, live_app):  # noqa: F811
    with opened(browser, live_app.url, locale="en-US") as page:
        page.wait_for_selector("#piano-run")
        assert page.locator("#piano-run").inner_text().strip() == "Make a piano cover"
        page.get_by_role("tab", name="Text to music").click()
        page.locator("#text-run").click()
        assert "describe the music" in toast_text(page)
        assert not CJK.search(page.locator("body").inner_text())


def test_the_api_and_the_tools_keep_english_words():
    import json

    import app

    info = json.dumps(app.demo.get_api_info(), default=str)
    assert "translation_metadata" not in info and "__i18n__" not in info
    assert "Song (wav, mp3, flac, ogg)" in info and not CJK.search(info)


class ChineseBrowser:
    """What gradio hands an event from a browser set to Chinese."""

    def __init__(self, session: str) -> None:
        self.session_hash = session
        self.headers = {"accept-language": "zh-CN,zh;q=0.9"}


def test_a_chinese_page_reads_chinese_while_it_works(tiny_app, chorale):  # noqa: F811
    """Every progress message of a cover and of a piece, as the page shows them while the run goes (gradio's
    progress and the run's own line), in Chinese: messages built at run time included."""
    from tests.test_app import last

    said: list[str] = []

    def progress(fraction, desc=None, **_):
        if desc:
            said.append(desc)

    tiny_app.piano_cover(str(chorale[0]), "composer1", 0.5, request=ChineseBrowser("zh-cover"), progress=progress)
    lines: list[str] = []
    for update in tiny_app.text_to_music("钢琴", "", 3, 250, 0, 1.0, 3.0, "5", 1, request=ChineseBrowser("zh-text"),
                                         progress=progress):
        if isinstance(update[-1], str) and "<progress" in update[-1]:
            lines.append(re.sub(r"<[^>]+>|\d+%", "", update[-1]))
    english = [s for s in said + lines if re.search(r"[A-Za-z]{3}", s) and not CJK.search(s)]
    assert said and lines and not english, english


def test_what_the_app_says_in_chinese_reads_back_in_english():
    """A share made on the Chinese page is read in English by an English viewer: every catalogue text (templates
    filled) said in Chinese comes back as English that says the same (``translate`` of it gives the same Chinese),
    and so do several sentences, lines, a warning mark and the app's HTML details."""
    from ui.i18n import english, in_language

    for text in catalogue():
        sample_text = sample(text)
        said = translate(sample_text, "zh-CN")
        back = english(said)
        assert back == sample_text or translate(back, "zh-CN") == said, (sample_text, said, back)
    two = "Loaded the settings of seed 12. Give the same melody (8 s used): it is not in the file."
    assert english(translate(two, "zh-CN")) == two
    lines = "⚠️ The seed must be a whole number (e.g. 42), not “abc”.\nTechnical details"
    assert english(translate(lines, "zh-CN")) == lines
    details = (f"<details><summary>{translate('Technical details', 'zh-CN')}</summary><ul><li>"
               f"{translate('Loaded the settings of seed 7.', 'zh-CN')}</li></ul></details>")
    assert english(details) == ("<details><summary>Technical details</summary><ul><li>Loaded the settings of seed 7."
                                "</li></ul></details>")
    assert english("lo-fi 钢琴 prompt") == "lo-fi 钢琴 prompt"  # what the catalogue does not know stays
    assert in_language("Seed 7: type it in the seed box to make the same music again.", "en", "zh-CN") == \
        translate("Seed 7: type it in the seed box to make the same music again.", "zh-CN")
    assert in_language(translate("Technical details", "zh-CN"), "zh-CN", "en") == "Technical details"


def test_a_chinese_pages_pictures_are_titled_in_chinese(tmp_path):
    """The pictures of a result made on the Chinese page carry their titles and axes in Chinese, drawn with a CJK
    font (run.sh and packages.txt install one): no glyph is missing; the English page's stay English."""
    import warnings

    import ui.i18n
    from utils.plots import spectrograms_png
    from utils.words import cjk_font, words

    if cjk_font() is None:
        message = "no CJK font here (run.sh installs fonts-wqy-microhei)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    audio = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 1, 16000)).astype(np.float32)
    english = spectrograms_png(audio, 16000, tmp_path / "en.png")
    assert words("variant 1") == "variant 1"
    token = ui.i18n._LANGUAGE.set("zh-CN")
    try:
        assert words("variant 1") == "变体 1" and words("time (s)") == "时间（秒）"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            chinese = spectrograms_png(audio, 16000, tmp_path / "zh.png")
    finally:
        ui.i18n._LANGUAGE.reset(token)
    assert not [w for w in caught if "missing from font" in str(w.message)], [str(w.message) for w in caught]
    assert english.read_bytes() != chinese.read_bytes()


def test_a_chinese_pages_score_and_video_words_are_chinese_and_drawn():
    """The score's subtitle, running title and foot and the video's title card are said in the page's language
    and set in a font that draws them (a Chinese song title too, whatever the page's language)."""
    import ui.i18n
    from utils import engraving, video
    from utils.words import cjk_font, font_file, words

    if cjk_font() is None:
        pytest.skip("no CJK font here (run.sh installs fonts-wqy-microhei)")
    token = ui.i18n._LANGUAGE.set("zh-CN")
    try:
        assert words("piano arrangement (easier)") == "钢琴改编（简易）"
        assert words("Generated with AI (Music demo) · tiny · 2026-12-08") == "AI 生成（Music demo）· tiny · 2026-12-08"
        page = engraving.page_lines('<svg viewBox="0 0 21000 29700">', "a4", 2, 3, "月亮代表我的心", "", "")
    finally:
        ui.i18n._LANGUAGE.reset(token)
    assert "第 2 页，共 3 页" in page and f'font-family="{cjk_font()}' in page
    from fontTools.ttLib import TTFont

    chinese = font_file("钢琴 · 编曲者 1 风格")
    assert all(ord(ch) in TTFont(chinese, fontNumber=0).getBestCmap() for ch in "月亮代表我的心钢琴编曲者风格")
    assert "DejaVu" in font_file("Piano · Arranger 1 style")
    colours, opacity = video.title_card(640, 360, "月亮代表我的心", "钢琴 · 编曲者 1 风格")
    white = (colours.min(axis=-1) > 200) & (opacity[..., 0] > 0.9)
    assert white.sum() > 500  # the words are drawn (white on the band)
