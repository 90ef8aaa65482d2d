"""Share a result by link: the page as the user sees it now (that tab, its settings and its results), saved on the
server by gradio's deep links (``/gradio_api/deep_link``) and opened by anyone who has the link."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from ui.common import OUTPUT_MAX_AGE_S
from ui.i18n import catalogue

SHARE_LABEL = "Share this result"
LINK_HOURS = OUTPUT_MAX_AGE_S / 3600  # the results' files (and the saved page) are removed after this

# What the page says once the link is made. The script runs in the browser, where the server's ``say`` cannot reach,
# so it carries these words in both languages (the Chinese from the page's one catalogue).
SHARE_WORDS = {
    "copied": "Link copied. Anyone who opens it sees this tab as it is now, your inputs and results included, for "
              "{hours:g} hours:",
    "shown": "The link (copy it; anyone who opens it sees this tab as it is now, your inputs and results included, "
             "for {hours:g} hours):",
    "failed": "The link could not be made: {why}",
}


def share_script() -> str:
    """The browser side of Share: ask the server to save this session's page, put the link on the clipboard where
    the browser allows it, and return a line with the link for the page to show, in the browser's language."""
    zh = catalogue()
    said = {language: {k: words(v).replace("{hours:g}", f"{LINK_HOURS:g}") for k, v in SHARE_WORDS.items()}
            for language, words in (("en", lambda v: v), ("zh-CN", lambda v: zh[v]))}
    return """
async () => {
    const said = %s;
    const words = (navigator.language || "en").toLowerCase().startsWith("zh") ? said["zh-CN"] : said["en"];
    try {
        const response = await fetch(`gradio_api/deep_link?session_hash=${window.__gradio_session_hash__}`);
        if (!response.ok) throw new Error(`the server answered ${response.status}`);
        const id = (await response.text()).replace(/^"|"$/g, "");
        if (!id) throw new Error("this page has no result to share yet");
        const url = new URL(window.location.href);
        url.searchParams.set("deep_link", id);
        url.searchParams.delete("__sign");
        let copied = false;
        try { await navigator.clipboard.writeText(url.toString()); copied = true; } catch (e) { copied = false; }
        return `${copied ? words.copied : words.shown} ${url.toString()}`;
    } catch (error) {
        return words.failed.replace("{why}", error.message);
    }
}
""" % json.dumps(said, ensure_ascii=False)


def share_row(tab: str) -> tuple[gr.Button, gr.Markdown]:
    """A Share button and the line that shows its link, below a tab's results. Wire it with ``wire_share``."""
    with gr.Row():
        button = gr.Button(SHARE_LABEL, size="sm", elem_id=f"{tab}-share", elem_classes="share-button",
                           icon=None, scale=0, min_width=160)
        line = gr.Markdown(elem_id=f"{tab}-share-link")
    return button, line


def wire_share(button: gr.Button, line: gr.Markdown, tabs: gr.Tabs, tab_id: str) -> None:
    """First the server notes which tab is open (so the link opens on it), then the browser saves and copies the
    link. Only the page's components travel: a run's files and settings, never another session's state."""
    button.click(lambda: gr.Tabs(selected=tab_id), outputs=tabs, queue=False, api_visibility="private").then(
        None, outputs=line, js=share_script(), api_visibility="private")


def keep_shared_state_whole() -> None:
    """Make a session's saved page (what a Share link opens) hold what its page shows. Two flaws of gradio 6.31's
    session state, both seen in a shared text piece that opened empty:
    - an update of a component's props (``gr.skip()``, ``gr.Button(interactive=...)``) replaces the component in
      the session with a new one under a new id, so every later value of that component (a generator's results
      after its progress updates) was saved under the new id, which the opened page does not know;
    - the replacement is built without its value (a Stop button saved as "Run", a tempo saved empty).
    Both are mended where the session stores them: the replacement keeps the id it replaces, and its value."""
    from gradio.state_holder import SessionState

    if getattr(SessionState, "_music_demo_mended", False):
        return
    store, update_config = SessionState.__setitem__, SessionState._update_config

    def kept_value(self: SessionState, key: int, change: Any) -> None:
        props = (self.config_values.get(key) or {}).get("props") or {}
        had, value = "value" in props, props.get("value")
        change()
        new_props = (self.config_values.get(key) or {}).get("props")
        if had and new_props is not None:
            new_props["value"] = value  # a value the update sets is written after this, as before

    def __setitem__(self: SessionState, key: int, value: Any) -> None:
        if getattr(value, "stateful", False) or not hasattr(value, "_id"):
            return store(self, key, value)
        value._id = key  # the replacement answers to the id the page knows
        kept_value(self, key, lambda: store(self, key, value))

    def _update_config(self: SessionState, key: int) -> None:
        kept_value(self, key, lambda: update_config(self, key))

    SessionState.__setitem__, SessionState._update_config = __setitem__, _update_config
    SessionState._music_demo_mended = True
