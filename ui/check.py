"""The "Check a file" box: whether a file carries this app's inaudible watermark (``/check_watermark`` in the API)."""

from __future__ import annotations

import gradio as gr

from typing import Any

from models.loading import unavailable
from products.checking import check_file
from ui.tools import as_tool, page_api
from ui.common import CONFIG, MODEL_QUEUE, user_error, with_technical
from ui.i18n import say, spoken
from ui.streaming import bring_into_view
from ui.music_docs import MUSIC_API_DOCS

CHECK_FILE_TYPES = [".wav", ".mp3", ".flac", ".ogg", ".mp4", ".m4a"]


@spoken
def check_watermark(path: str | None) -> str:
    """Whether a file was made by this app: its inaudible watermark, looked for.

    Args:
        path: the file, a wav, mp3, flac, ogg, mp4 or m4a.

    Returns:
        one line: the verdict, the detector's score (over 0.5 means marked) and the message it read.
    """
    try:
        return say(check_file(path, CONFIG.watermark_model).describe())
    except Exception as e:  # noqa: BLE001 - every failure becomes a message
        raise user_error(e) from e


MARKED = ("Every audio file this app makes (music, covers, mixes, videos) carries an inaudible watermark. Drop a "
          "WAV, MP3 or MP4 here to see whether it carries it. How well the mark survives MP3, volume changes and "
          "mixing has not been measured on music yet; speed changes, re-recording or heavy edits can remove it.")


@spoken
def check_box_state() -> tuple[str, Any]:
    """Per page load: what the box says, and whether Check can run. Without the watermark it says so plainly, as
    every result's details do: files made here now are not marked, and none can be checked."""
    why = unavailable("watermark", CONFIG.watermark_model)
    if not why:
        return say(MARKED), gr.Button(interactive=True)
    return (with_technical(say("⚠️ **The watermark is not available on this server**, so the files it makes now are "
                               "not marked and files cannot be checked here."), [why]), gr.Button(interactive=False))


def build_check_box() -> tuple[gr.Markdown, gr.Button]:
    """A collapsed box below the tabs: a file in, the verdict out. Returns (its note, its Check button), which the
    page fills in when it loads (``check_box_state``)."""
    with gr.Accordion("Check a file: was it made here?", open=False, elem_id="check-panel"):
        note = gr.Markdown("", elem_classes="tab-intro", elem_id="check-note")  # said on load: marked or not
        with gr.Row():
            file = gr.File(label="File to check", file_types=CHECK_FILE_TYPES, type="filepath",
                           elem_id="check-file", scale=3)
            button = gr.Button("Check", elem_id="check-run", scale=1)
        verdict = gr.Markdown(elem_id="check-verdict")
    bring_into_view(button, "check-verdict")
    button.click(check_watermark, inputs=file, outputs=verdict, api_visibility=page_api(),
                 api_name="check_watermark", api_description=MUSIC_API_DOCS["check_watermark"],
                 concurrency_id=MODEL_QUEUE)
    as_tool("check_watermark", check_watermark, [file], [verdict], MUSIC_API_DOCS["check_watermark"], MODEL_QUEUE)
    return note, button
