"""The page in English and Simplified Chinese, chosen by the browser's language.

Two halves, one catalogue (``ui/locale/zh-CN.json``: English text -> Chinese):
- the page's fixed words (labels, hints, buttons, boxes, tabs, notes) are swapped for ``gr.I18n`` keys once the
  page is built (``localize_page``), and the browser picks the language, so that a shared link shows each viewer
  their own;
- what the server says while it runs (errors, warnings, notes, progress) is translated as it is said (``say``), in
  the language of the request being served (its Accept-Language header, which the browser sets from the same
  preference).
A catalogue entry with ``{}`` is a template: ``"A tempo of {} BPM is not plausible."`` matches that sentence with any
number, which goes into the Chinese in the same place (``{0}``, ``{1}``... where the order changes). Operators'
diagnostics (model sources, paths, environment variables, under "Technical details") stay in English.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import html
import inspect
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

import utils.words as utils_words

LANGUAGES = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"
CATALOGUE_PATH = Path(__file__).with_name("locale") / "zh-CN.json"
TEXT_PROPS = ("label", "info", "placeholder")  # component props that are words on the page
VALUE_TEXT = (gr.Markdown, gr.Button)  # components whose value is words on the page, not user content
SENTENCE_END = re.compile(r"(?<=[.!?:])(\s+)(?=[A-Z(\"'*`])")  # split keeps the spaces
CJK = utils_words.CJK  # Chinese characters and punctuation
F = TypeVar("F", bound=Callable[..., Any])
GRADIO_OWN = {  # words gradio's own page has no Chinese for (its zh-CN catalogue lags its English one)
    "common.complete": {"en": "Done", "zh-CN": "完成"},  # screen readers
    "common.runs": {"en": "Runs", "zh-CN": "运行记录"},
    "common.runs_description": {"en": "View runs saved in this browser", "zh-CN": "查看此浏览器保存的运行记录"},
    "common.back_to_app": {"en": "App", "zh-CN": "应用"},
    "common.back_to_app_description": {"en": "Return to the app", "zh-CN": "返回应用"},
    "common.download_all": {"en": "Download All", "zh-CN": "全部下载"},
    "common.progress": {"en": "Progress", "zh-CN": "进度"},
    "common.record": {"en": "Record", "zh-CN": "录制"},
    "common.stop_recording": {"en": "Stop Recording", "zh-CN": "停止录制"},
    "common.run": {"en": "Run", "zh-CN": "运行"},
    "audio.recording_error": {"en": "Could not start recording from the microphone.", "zh-CN": "无法开始用麦克风录音。"},
}


@functools.cache
def catalogue() -> dict[str, str]:
    """English -> Simplified Chinese, as saved in ``ui/locale/zh-CN.json``."""
    return json.loads(CATALOGUE_PATH.read_text(encoding="utf-8"))


def key_of(english: str) -> str:
    """The gr.I18n key of a text: dot-free (the browser's i18n reads dots as nesting) and stable."""
    return "t" + hashlib.sha1(english.encode("utf-8")).hexdigest()[:12]


@functools.cache
def page_words() -> dict[str, str]:
    """The catalogue's whole texts (no templates) by their gr.I18n key: key -> English."""
    return {key_of(text): text for text in catalogue() if "{" not in text}


def page_i18n() -> gr.I18n:
    """The translations the browser picks from, for ``launch(i18n=...)``."""
    zh = catalogue()
    en_words = dict(page_words())
    zh_words = {key: zh[text] for key, text in en_words.items()}
    for key, words in GRADIO_OWN.items():
        en_words[key], zh_words[key] = words["en"], words["zh-CN"]
    return gr.I18n(en=en_words, **{"zh-CN": zh_words})


# --- the page's fixed words -----------------------------------------------------------------------------------


def _choice_texts(block: Any) -> Iterator[tuple[int, str]]:
    for i, choice in enumerate(getattr(block, "choices", None) or []):
        label = choice[0] if isinstance(choice, (tuple, list)) else choice
        if isinstance(label, str):
            yield i, label


def is_words(text: str) -> bool:
    """Whether a text on the page is words to translate: not empty, not a number, a model id or a file name."""
    text = text.strip()
    return len(re.findall(r"[A-Za-z]", text)) >= 2 and not re.fullmatch(r"[\w.-]+/[\w.-]+|[\w.-]+\.\w{2,4}", text)


def page_word(text: str) -> Any:
    """A fixed text the page gets later (in an update: a dropdown's choices on load) as its gr.I18n key, so the
    browser shows it in its language as it shows the rest; a text the catalogue lacks as it is."""
    return gr.I18n()(key_of(text)) if text in catalogue() else text


def page_texts(demo: gr.Blocks) -> Iterator[tuple[Any, str, int | None, str]]:
    """Every fixed text on the page: (block, prop, choice index or None, English)."""
    for block in demo.blocks.values():
        if isinstance(block, gr.Dataset):  # the examples' header; their contents are sample inputs, kept as written
            if isinstance(block.label, str) and is_words(block.label):
                yield block, "label", None, block.label
            continue
        for prop in TEXT_PROPS:
            text = getattr(block, prop, None)
            if isinstance(text, str) and is_words(text):
                yield block, prop, None, text
        if isinstance(block, VALUE_TEXT) and isinstance(block.value, str) and is_words(block.value):
            yield block, "value", None, block.value
        if isinstance(block, (gr.Radio, gr.Dropdown)):
            for i, text in _choice_texts(block):
                if is_words(text):
                    yield block, "choices", i, text


def localize_page(demo: gr.Blocks) -> list[str]:
    """Swap the page's fixed texts for gr.I18n keys, where the catalogue has them. Returns the texts it lacks."""
    zh = catalogue()
    missing = []
    for block, prop, index, text in list(page_texts(demo)):
        if text not in zh:
            missing.append(text)
            continue
        key = gr.I18n()(key_of(text))
        args = getattr(block, "constructor_args", None)  # what gradio rebuilds the component from on an update
        if prop == "choices":
            label, value = block.choices[index] if isinstance(block.choices[index], (tuple, list)) else (text, text)
            block.choices[index] = (key, value)
            if isinstance(args, dict) and "choices" in args:
                args["choices"] = list(block.choices)
        else:
            setattr(block, prop, key)
            if isinstance(args, dict) and prop in args:
                args[prop] = key
    return missing


# --- what the server says -------------------------------------------------------------------------------------


def language_of(accept_language: str | None) -> str:
    """The page language for an Accept-Language header: Chinese when the browser prefers it, English otherwise."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if not tag or tag == "*":
            continue
        return "zh-CN" if tag.startswith("zh") else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


_LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("page_language", default=DEFAULT_LANGUAGE)


def request_language() -> str:
    """The language of the request being served now (set by ``spoken`` around its event), else English."""
    return _LANGUAGE.get()


def spoken(fn: F) -> F:
    """An event that speaks in its request's language: gradio hands it the request (a ``request: gr.Request``
    parameter, gradio's documented way; added to the event's signature where it has none) and ``say`` inside it,
    and in the threads it starts with its context, speaks the request's Accept-Language. A streaming event speaks
    it at every step."""
    signature = inspect.signature(fn)
    takes_request = "request" in signature.parameters
    outer = signature if takes_request else signature.replace(parameters=[
        *signature.parameters.values(),
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request)])
    at = list(outer.parameters).index("request")

    def language_and_call(args: tuple, kwargs: dict) -> tuple[str, tuple, dict]:
        request = outer.bind_partial(*args, **kwargs).arguments.get("request")
        language = language_of((getattr(request, "headers", None) or {}).get("accept-language")) \
            if request is not None else _LANGUAGE.get()
        if not takes_request:
            if "request" in kwargs:
                kwargs = {k: v for k, v in kwargs.items() if k != "request"}
            elif len(args) > at:
                args = args[:at] + args[at + 1:]
        return language, args, kwargs

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            language, args, kwargs = language_and_call(args, kwargs)
            token = _LANGUAGE.set(language)
            try:
                steps = fn(*args, **kwargs)
            finally:
                _LANGUAGE.reset(token)
            while True:  # each step may run in another context (gradio runs a generator step by step)
                token = _LANGUAGE.set(language)
                try:
                    item = next(steps)
                except StopIteration:
                    return
                finally:
                    _LANGUAGE.reset(token)
                yield item
    else:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            language, args, kwargs = language_and_call(args, kwargs)
            token = _LANGUAGE.set(language)
            try:
                return fn(*args, **kwargs)
            finally:
                _LANGUAGE.reset(token)

    wrapper.__signature__ = outer  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**getattr(fn, "__annotations__", {}), "request": gr.Request}
    return wrapper  # type: ignore[return-value]


@functools.cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for english, words in catalogue().items():
        if "{}" not in english:
            continue
        parts = [re.escape(p) for p in english.split("{}")]
        out.append((re.compile("^" + "(.*?)".join(parts) + "$", re.S), words))  # a part may be empty
    out.sort(key=lambda t: -len(t[0].pattern))  # the most specific first
    return out


def _fill(words: str, values: list[str]) -> str:
    values = [catalogue().get(v, v) for v in values]  # a part that is itself a known text is said in Chinese too
    if re.search(r"\{\d+\}", words):
        return re.sub(r"\{(\d+)\}", lambda m: values[int(m.group(1))], words)
    it = iter(values)
    return re.sub(r"\{\}", lambda m: next(it, ""), words)


def _whole(text: str, templates: bool = True) -> str | None:
    zh = catalogue()
    if text in zh:
        return zh[text]
    if not templates:
        return None
    for pattern, words in _templates():
        match = pattern.match(text)
        if match:
            return _fill(words, list(match.groups()))
    return None


def translate(text: str, language: str) -> str:
    """``text`` in ``language``: as a whole, else line by line, else sentence by sentence; what the catalogue does
    not know stays as it is (a user's prompt, a file name, a number)."""
    if language == DEFAULT_LANGUAGE or not text or not text.strip():
        return text
    whole = _whole(text, templates=False)
    if whole is not None:
        return whole
    if "\n" in text:
        return "\n".join(translate(line, language) for line in text.split("\n"))
    lead = re.match(r"^(\s*(?:[-*] |#+ |⚠️ ?|✅ ?)*)(.*?)(\s*)$", text, re.S)
    prefix, body, tail = lead.groups()
    parts = SENTENCE_END.split(body)
    sentences, gaps = parts[::2], parts[1::2]  # the sentences, and the spaces between them
    if len(sentences) > 1:  # sentences that each are known, before a template stretches over several
        said = [_whole(s) for s in sentences]
        if all(s is not None for s in said):
            return prefix + _joined(said, gaps) + tail
    whole = _whole(text)
    if whole is not None:
        return whole
    if body != text:  # a known text behind a mark ("⚠️ ...") or a list dash
        whole = _whole(body)
        if whole is not None:
            return prefix + whole + tail
    if len(sentences) > 1:
        return prefix + _joined([translate(s, language) for s in sentences], gaps) + tail
    return text


def _joined(sentences: list[str], gaps: list[str]) -> str:
    """Sentences put back together: Chinese ones end to end, as Chinese is written; a space where either side is
    left in its own words (a name, a path)."""
    out = sentences[0]
    for gap, sentence in zip(gaps, sentences[1:]):
        chinese = CJK.search(out[-1:])  # a Chinese character or full-width mark ends it
        out += ("" if chinese and CJK.search(sentence[:1]) else gap) + sentence
    return out


@functools.cache
def _english_of() -> tuple[dict[str, str], list[tuple[re.Pattern[str], str, list[int]]]]:
    """The catalogue read backwards: Chinese -> English, whole texts and templates (with which English ``{}`` each
    Chinese part fills)."""
    whole: dict[str, str] = {}
    templates = []
    for english, words in catalogue().items():
        whole.setdefault(words, english)
        if "{}" not in english:
            continue
        pattern, order, n = "", [], 0
        for token in re.split(r"(\{\d*\})", words):
            slot = re.fullmatch(r"\{(\d*)\}", token)
            if slot:
                order.append(int(slot.group(1)) if slot.group(1) else n)
                n += 1
                pattern += "(.*?)"
            else:
                pattern += re.escape(token)
        templates.append((re.compile("^" + pattern + "$", re.S), english, order))
    templates.sort(key=lambda t: -len(t[0].pattern))  # the most specific first
    return whole, templates


def _english_whole(text: str) -> str | None:
    whole, templates = _english_of()
    if text in whole:
        return whole[text]
    for pattern, english, order in templates:
        match = pattern.match(text)
        if match:
            values = [""] * len(order)
            for group, slot in enumerate(order):
                value = match.group(group + 1)
                values[slot] = whole.get(value, value)  # a part that is itself a known text, in English too
            it = iter(values)
            return re.sub(r"\{\}", lambda m: next(it, ""), english)
    return None


CHINESE_SENTENCE = re.compile(r"(?<=[。！？])")


def english(text: str) -> str:
    """The English of a text the app said in Chinese (``translate`` read backwards, through the same catalogue):
    as a whole, else tag by tag (HTML), line by line, sentence by sentence; what the catalogue does not know stays as
    it is (a prompt, a name, a number). English text comes back as it is."""
    if not text or not CJK.search(text):
        return text
    whole = _english_whole(text)
    if whole is not None:
        return whole
    if re.search(r"<[a-z/][^>]*>", text):  # the app's HTML (details, lists): its words between the tags
        parts = re.split(r"(<[^>]+>)", text)
        return "".join(p if p.startswith("<") else html.escape(english(html.unescape(p)), quote=False)
                       for p in parts)
    if "\n" in text:
        return "\n".join(english(line) for line in text.split("\n"))
    lead = re.match(r"^(\s*(?:[-*] |#+ |⚠️ ?|✅ ?)*)(.*?)(\s*)$", text, re.S)
    prefix, body, tail = lead.groups()
    if body != text:
        whole = _english_whole(body)
        if whole is not None:
            return prefix + whole + tail
    sentences = [s for s in CHINESE_SENTENCE.split(body) if s]
    if len(sentences) > 1:
        return prefix + " ".join(english(s.strip()) for s in sentences) + tail
    return text


def in_language(text: str, said_in: str, language: str) -> str:
    """``text``, said by the app in ``said_in``, in ``language`` (a share made on a Chinese page, opened in an English
    browser)."""
    if said_in == language or not isinstance(text, str):
        return text
    return translate(english(text) if said_in != DEFAULT_LANGUAGE else text, language)


def say(text: str) -> str:
    """``text`` in the language of the request being served (see module docstring)."""
    return translate(text, request_language())


utils_words.register(say)  # the pictures' words, drawn below the page, in the request's language (utils/words.py)


def sayer() -> Callable[[str], str]:
    """``say`` fixed to this request's language, for callbacks that run on other threads (progress messages)."""
    language = request_language()
    return lambda text: translate(text, language)


def english_api_labels(demo: gr.Blocks) -> None:
    """Keep the API's and the MCP tools' descriptions in English words: after ``localize_page`` the labels gradio
    copies into them are translation keys, which it would list as ``{"key": ...}``."""
    english = page_words()
    describe = demo.get_api_info

    def plain(info: Any) -> Any:
        if isinstance(info, dict):
            if info.get("_type") == "translation_metadata" or info.get("__type__") == "translation_metadata":
                return english.get(info.get("key", ""), info.get("key", ""))
            return {k: plain(v) for k, v in info.items()}
        if isinstance(info, list):
            return [plain(v) for v in info]
        if isinstance(info, gr.i18n.I18nData):
            return english.get(info.key, info.key)
        return info

    def get_api_info(*args: Any, **kwargs: Any) -> Any:
        return plain(describe(*args, **kwargs))

    demo.get_api_info = get_api_info  # type: ignore[method-assign]


def speak_examples(demo: gr.Blocks) -> None:
    """The examples tables in the viewer's language too: gradio's page translates a component's label, but not a
    table's column headers nor the choice labels its cells show (a dropdown's "Arranger 7"), which it copies when
    the table is built. The page sends them in the browser's language when it loads. Call inside ``demo``."""
    tables = [block for block in demo.blocks.values() if isinstance(block, gr.Dataset) and block.headers]
    if not tables:
        return

    def in_language(table: gr.Dataset, language: str) -> Any:
        props = [{**p, "choices": [(translate(c[0], language), c[1]) if isinstance(c, (tuple, list)) else c
                                   for c in p["choices"]]} if isinstance(p.get("choices"), list) else p
                 for p in table.component_props]
        return gr.Dataset(headers=[translate(h, language) for h in table.headers], component_props=props)

    @spoken
    def examples_words() -> list[Any]:
        language = request_language()
        if language == DEFAULT_LANGUAGE:
            return [gr.skip() for _ in tables]
        return [in_language(table, language) for table in tables]

    demo.load(examples_words, outputs=tables, api_visibility="private", queue=False)
