"""gradio as it is documented, and the four places it is not (``ui/gradio_checks.py``): each upstream behaviour that
a workaround answers is reproduced here on a bare gradio page, so the day gradio changes it, the test says the
workaround can go. Also: no gradio class is changed for the whole process, and ``spoken`` hands an event its
request's language through gradio's documented ``gr.Request`` parameter."""

from __future__ import annotations

import inspect
import json
from types import SimpleNamespace

import gradio as gr
import pytest

from ui.gradio_checks import WRITTEN_FOR, check_gradio
from ui.i18n import request_language, say, spoken


def test_the_installed_gradio_is_the_one_the_workarounds_were_written_for():
    assert check_gradio() is None, check_gradio()
    assert "gradio 7.0.0 is installed" in check_gradio("7.0.0")
    assert check_gradio(f"{WRITTEN_FOR}.9") is None


def test_upstream_api_info_lists_an_i18n_label_as_metadata_not_words():
    """Why ``english_api_labels`` exists: gradio's API info gives a gr.I18n label as translation metadata."""
    with gr.Blocks() as blocks:
        box = gr.Textbox(label=gr.I18n()("greeting"))
        out = gr.Textbox()
        box.submit(lambda x: x, box, out, api_name="echo")
    info = json.dumps(blocks.get_api_info(), default=str)
    assert "translation_metadata" in info or "I18nData" in info, (
        "gradio now lists gr.I18n labels as words: ui/i18n.py english_api_labels can go")


def test_upstream_update_rebuilds_a_component_from_its_constructor_arguments():
    """Why ``localize_page`` rewrites ``constructor_args``: an attribute changed after the build is not what gradio
    rebuilds a component from when an event updates its props."""
    with gr.Blocks():
        dropdown = gr.Dropdown(["a", "b"], label="Model")
    dropdown.label = "Changed after the build"
    rebuilt = type(dropdown)(**{**dropdown.constructor_args, "choices": ["c"], "render": False})
    assert rebuilt.label == "Model", (
        "gradio now keeps attributes changed after the build: localize_page need not touch constructor_args")


def test_upstream_a_page_only_output_leaves_the_api_only_by_skip_api():
    """Why the live player and progress line set ``skip_api``: gradio leaves an output out of an event's API only
    when it says so (as gr.State does); a plain output is in it."""
    from ui.streaming import LivePlayer

    with gr.Blocks() as blocks:
        text = gr.Textbox()
        plain, live = gr.Audio(), LivePlayer(streaming=True)
        text.submit(lambda x: (None, None), text, [plain, live], api_name="make")
    returns = blocks.get_api_info()["named_endpoints"]["/make"]["returns"]
    assert len(returns) == 1, "gradio now leaves page-only outputs out another way: see ui/streaming.py"


def test_no_gradio_class_is_changed_for_the_whole_process():
    import app  # noqa: F401 - the whole page built
    from gradio.mcp import GradioMCPServer
    from gradio.state_holder import SessionState

    for cls in (SessionState, GradioMCPServer, gr.Blocks):
        for name, member in vars(cls).items():
            module = getattr(member, "__module__", None) or getattr(getattr(member, "__func__", None),
                                                                   "__module__", None)
            ours = ("app", "ui.", "models.", "products.", "utils.", "batch.", "tests.")
            assert not (module or "").startswith(ours), f"{cls.__name__}.{name} is ours ({module})"


def test_spoken_gives_an_event_its_requests_language_through_gr_request():
    chinese = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"})

    @spoken
    def note(text: str) -> str:
        return request_language() + ":" + say("Upload or record a piano recording first.")

    @spoken
    def steps(n: int):
        for _ in range(n):
            yield request_language()

    parameters = inspect.signature(note).parameters
    assert list(parameters) == ["text", "request"] and parameters["request"].annotation is gr.Request  # gradio
    assert note("x") == "en:Upload or record a piano recording first."  # no request: English
    zh = note("x", chinese)  # gradio hands the request positionally
    assert zh == "zh-CN:请先上传或录制一段钢琴录音。"
    assert list(steps(3, request=chinese)) == ["zh-CN"] * 3
    assert request_language() == "en"  # nothing left behind


@pytest.mark.parametrize("header, language", [("zh-CN", "zh-CN"), ("en-US,en", "en"), (None, "en")])
def test_a_handler_that_takes_its_request_keeps_it(header, language):
    @spoken
    def handler(value: int, request: gr.Request = None) -> tuple[str, object]:
        return request_language(), request

    request = SimpleNamespace(headers={"accept-language": header} if header else {})
    said, got = handler(1, request)
    assert said == language and got is request


def test_upstream_an_error_toast_is_titled_error_whatever_title_the_server_gives():
    """Why ``PAGE_CSS`` titles a Chinese page's error toasts: the server sends ``gr.Error``'s title, but gradio's page
    reads the toast's title from ``_title``, a field nothing fills, and falls back to the word "Error"."""
    from pathlib import Path

    from gradio.utils import error_payload

    assert error_payload(gr.Error("boom", title="错误"), False)["title"] == "错误"  # the server sends it
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    pages = [p.read_text(errors="ignore") for p in assets.glob("Blocks-*.js")]
    assert any("_title??`Error`" in page for page in pages), (
        "gradio's page now reads the error title it is sent: the toast CSS in ui/common.py PAGE_CSS can go")


def test_upstream_the_page_writes_the_queue_line_and_the_upload_refusal_in_english():
    """Why ``ui/page_words.py``'s script is on the page: gradio's front end writes a waiting run's line and a refused
    upload's message itself, in English, in these forms (the script's patterns read them)."""
    import re
    from pathlib import Path

    from ui.page_words import page_script

    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    bundle = "".join(p.read_text(errors="ignore") for p in assets.glob("*.js"))
    assert "`queue: ${" in bundle and "progress-text" in bundle, "gradio's queue line changed: see ui/page_words.py"
    assert "`Invalid file type" in bundle and "allowed.`" in bundle, "gradio's refusal changed: see ui/page_words.py"
    script = page_script()
    queue = re.search(r"const QUEUE = /(.*)/;", script).group(1).replace("\\\\", "\\")
    refusal = re.search(r"const FILE = /(.*)/;", script).group(1).replace("\\\\", "\\")
    working = re.search(r"const WORKING = /(.*)/;", script).group(1).replace("\\/", "/")
    assert "`processing |`" in bundle
    assert re.match(working, "processing | 0.6s") and re.match(working, "processing | 3.2/10.3s")
    assert re.match(queue.replace("\\/", "/"), "queue: 2/3 | 37.4/19.0s")  # what gradio writes, read by the script
    assert re.match(queue.replace("\\/", "/"), "queue: 1/1 |")
    assert re.match(refusal, "Invalid file type: song.wav. Only .json allowed.")
    assert re.match(refusal, "Invalid file types: a.wav, b.mp3. Only .json allowed.")
