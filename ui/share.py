"""Share a result by link: that tab's one result, and nothing else of the sharer's page.

Share saves the tab's result on the server (``products.shares``: copies of its files, its values, and what the tab
needs to work on from it) under an id nobody can guess, and the page shows the link, ``<page>?share=<id>``, copied
where the browser allows. Whoever opens the link gets, on that tab: the result (players, pictures, files, details),
the settings that made it (from its parameters, not from the sharer's controls as they are now), and, for the melody
tab, the melody it followed. Not the sharer's other tabs, uploads that were not part of the result, or drafts. The
viewer can extend or remix it as their own: their work goes to their own folders. Links work for ``SHARE_DAYS`` days
(the page says so), after the sharer has left and after a restart.

Opening goes through gradio's documented ways only: the page's load event reads the link's query from the
``gr.Request`` and fills the tab's components.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from products.shares import DEFAULT_SHARE_DAYS, Share, open_share, save_share
from ui.common import CONFIG, page_error, page_info, user_error
from ui.i18n import catalogue, in_language, request_language, say, spoken

SHARE_LABEL = "Share this result"
SHARE_QUERY = "share"  # the link's query parameter: ?share=<id>
SHARE_DAYS = DEFAULT_SHARE_DAYS
SHARES_FOLDER = "shared"  # under the output folder; the run folders' sweep leaves it (utils.files.KEPT_FOLDERS)

# What the page says once the link is made. The script runs in the browser, where the server's ``say`` cannot reach,
# so it carries these words in both languages (the Chinese from the page's one catalogue).
SHARE_WORDS = {
    "copied": "Link copied. Anyone who opens it sees this result and the settings that made it, nothing else of "
              "your page, for {days:g} days:",
    "shown": "The link (copy it; anyone who opens it sees this result and the settings that made it, nothing else "
             "of your page, for {days:g} days):",
    "failed": "The link could not be made: {why}",
}


def shares_root() -> Path:
    """Where shared results are kept."""
    return Path(CONFIG.output_dir) / SHARES_FOLDER


def file_kind(component: gr.components.Component) -> str:
    """How a component's value is saved: a file, files, a gallery, or a value as it is."""
    if isinstance(component, gr.Gallery):
        return "gallery"
    if isinstance(component, gr.File):
        return "files" if component.file_count == "multiple" else "file"
    if isinstance(component, (gr.Audio, gr.Image, gr.Video)):
        return "file"
    return "value"


@dataclass
class Shareable:
    """What one tab shares, and how it opens.

    Attributes:
        tab: the tab's id ("piano", "text", "melody").
        results: the components that show a result (saved, and restored as they were).
        state: the tab's session state for the result (Extend's codes, a cover's notes), or None.
        keep_state: copies the files the state refers to (through the function it gets) and returns the state.
        reopen_state: the state as a viewer gets it: their own (new output folders).
        settings: components set from the result's parameters when it opens (``settings_from``).
        settings_from: the result's values -> updates of ``settings``.
        restore: the saved values -> what the result components get when it opens (default: as they are).
    """

    tab: str
    results: list[gr.components.Component]
    state: gr.State | None = None
    keep_state: Callable[[Any, Callable[[str | Path], str]], Any] | None = None
    reopen_state: Callable[[Any], Any] | None = None
    settings: list[gr.components.Component] = field(default_factory=list)
    settings_from: Callable[[list[Any]], list[Any]] | None = None
    restore: Callable[[list[Any]], list[Any]] | None = None

    @property
    def outputs(self) -> list[gr.components.Component]:
        """What opening this tab's share fills."""
        return [*self.results, *([self.state] if self.state is not None else []), *self.settings]


def share_script() -> str:
    """The browser side of Share: the link from the id the server gave, on the clipboard where the browser allows
    it, and a line with the link for the page to show, in the browser's language."""
    zh = catalogue()
    said = {language: {k: words(v).replace("{days:g}", f"{SHARE_DAYS:g}") for k, v in SHARE_WORDS.items()}
            for language, words in (("en", lambda v: v), ("zh-CN", lambda v: zh[v]))}
    return """
async (id) => {
    const said = %s;
    const words = (navigator.language || "en").toLowerCase().startsWith("zh") ? said["zh-CN"] : said["en"];
    if (!id) return "";
    const url = new URL(window.location.href);
    url.search = "";
    url.hash = "";
    url.searchParams.set("%s", id);
    let copied = false;
    try { await navigator.clipboard.writeText(url.toString()); copied = true; } catch (e) { copied = false; }
    return `${copied ? words.copied : words.shown} ${url.toString()}`;
}
""" % (json.dumps(said, ensure_ascii=False), SHARE_QUERY)


@dataclass
class ShareRow:
    """A tab's Share button, the line that shows its link, and the (hidden) id the server gives."""

    button: gr.Button
    line: gr.Markdown
    share_id: gr.Textbox


def share_row(tab: str) -> ShareRow:
    """A Share button and the line that shows its link, below a tab's results. Wire it with ``wire_share``."""
    with gr.Row():
        button = gr.Button(SHARE_LABEL, size="sm", elem_id=f"{tab}-share", elem_classes="share-button",
                           icon=None, scale=0, min_width=160)
        line = gr.Markdown(elem_id=f"{tab}-share-link")
        share_id = gr.Textbox(visible=False, elem_id=f"{tab}-share-id")
    return ShareRow(button, line, share_id)


def share_result(shareable: Shareable, values: list[Any], state: Any) -> str:
    """Save a tab's result for a link; its id.

    Raises:
        gr.Error: the tab has no result yet.
    """
    if not any(v not in (None, "", []) for v in values) or (shareable.state is not None and state is None):
        raise page_error("Make something first: Share saves this tab's result for a link.")
    try:
        kinds = [file_kind(c) for c in shareable.results]
        share = save_share(shares_root(), shareable.tab, list(zip(kinds, values)), state, shareable.keep_state,
                           SHARE_DAYS, int(CONFIG.max_share_mb * 1024 * 1024), request_language())
    except Exception as e:  # noqa: BLE001 - a message, and the app goes on
        raise user_error(e) from e
    return share.id


def wire_share(row: ShareRow, shareable: Shareable) -> None:
    """The server saves the tab's result and gives its id; the browser makes the link and copies it."""
    inputs = [*shareable.results, *([shareable.state] if shareable.state is not None else [])]

    @spoken
    def save(values: dict[Any, Any]) -> str:  # gradio's form for inputs given as a set: component -> value
        state = values[shareable.state] if shareable.state is not None else None
        return share_result(shareable, [values[c] for c in shareable.results], state)

    row.button.click(save, inputs=set(inputs), outputs=row.share_id, api_visibility="private").success(
        None, inputs=row.share_id, outputs=row.line, js=share_script(), api_visibility="private")


def open_shared(shareables: list[Shareable], request: gr.Request | None) -> list[Any]:
    """On page load: when the link names a share, its tab opens with its result, settings and state (the viewer's
    own); otherwise nothing changes. Returns [the tabs' selection, then each shareable's outputs]."""
    query = getattr(request, "query_params", None) or {}
    share = open_share(shares_root(), query.get(SHARE_QUERY)) if query.get(SHARE_QUERY) else None
    updates: list[Any] = [gr.skip()]
    for shareable in shareables:
        n = len(shareable.outputs)
        if share is None or share.tab != shareable.tab:
            updates.extend([gr.skip()] * n)
            continue
        updates[0] = gr.Tabs(selected=shareable.tab)
        state = [] if shareable.state is None else [
            shareable.reopen_state(share.state) if shareable.reopen_state else share.state]
        settings = shareable.settings_from(share.values) if shareable.settings_from else []
        values = viewers_words(shareable, share)
        values = shareable.restore(values) if shareable.restore else values
        updates.extend([*values, *state, *settings])
    if query.get(SHARE_QUERY) and share is None:
        page_info(f"This link no longer opens: shared results are kept {SHARE_DAYS:g} days, and the oldest go "
                  "sooner when the server needs the room.")
    return updates


def viewers_words(shareable: Shareable, share: Share) -> list[Any]:
    """A share's values with the words the app said in the sharer's language said in the viewer's (a result shared
    from the Chinese page reads in English in an English browser); files, numbers and JSON stay as they are."""
    language = request_language()
    if share.language == language:
        return share.values
    out = []
    for component, value in zip(shareable.results, share.values):
        kind = file_kind(component)
        if kind == "value" and isinstance(value, str):
            value = in_language(value, share.language, language)
        elif kind == "gallery" and isinstance(value, list):
            value = [(path, in_language(caption, share.language, language) if caption else caption)
                     for path, caption in value]
        out.append(value)
    return out


def wire_opening(demo: gr.Blocks, tabs: gr.Tabs, shareables: list[Shareable]) -> None:
    """Open a shared result when the page loads from its link."""
    outputs = [tabs, *(c for s in shareables for c in s.outputs)]

    @spoken
    def opening(request: gr.Request) -> list[Any]:
        return open_shared(shareables, request)

    demo.load(opening, inputs=None, outputs=outputs, api_visibility="private", show_progress="hidden")


def params_json(params: dict[str, Any] | None) -> str | None:
    """A result's parameters as a JSON file (what a tab's "Reproduce a result" box reads)."""
    if not params:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(params, f, ensure_ascii=False)
    return f.name
