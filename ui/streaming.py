"""Streaming to the page: a model call that hands out audio chunks as it goes, turned into a Gradio generator that
feeds a live player, then the call's results."""

from __future__ import annotations

import contextvars
import html
import io
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import soundfile as sf

import gradio as gr

from ui.i18n import say

Send = Callable[[int, np.ndarray], None]  # (sample rate, audio [variants, channels, T])
Report = Callable[[float, str], None]  # (fraction done, what is being done)


def live_playback() -> bool:
    """Whether gradio can stream audio to the page here: it encodes the stream with the system's ffmpeg and
    probes files with ffprobe (Debian/Ubuntu `ffmpeg`, which run.sh and packages.txt install)."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """One streamed chunk [channels, T] as 16-bit WAV bytes (played as it is, not re-normalised)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio.T, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


PROGRESS_EVERY_S = 0.5  # the page's progress line changes at most this often
# "0" leaves the progress line out of the stream: an API client cannot tell its updates from audio chunks, so the
# benchmark turns it off to time the first audio (bench/app_bench.py).
PROGRESS_LINE_ENV_VAR = "MUSIC_DEMO_PROGRESS_LINE"


def progress_html(fraction: float, message: str) -> str:
    """The progress line of a run: a bar and what is being done ("12 of 40 s made · about 30 s left")."""
    percent = max(0, min(100, round(100 * fraction)))
    label = html.escape(say("Progress of this run"))
    return (f'<div class="run-progress-box"><progress max="100" value="{percent}" aria-label="{label}">'
            f"</progress> <span>{percent}% · {html.escape(message)}</span></div>")


def streamed(body: Callable[[Send, Report], list[Any]], n_outputs: int,
             progress: Report | None = None) -> Iterator[list[Any]]:
    """Run ``body(send, report)`` in a worker thread (in this request's context, so gradio's progress works) and
    stream to the page's two lines beside the outputs: each chunk ``send(sample_rate, audio [variants, channels, T])``
    to the live player (the first variant), and each ``report(fraction, message)`` (also handed to ``progress``) to
    the progress line, which shows from the first report to the results. Then the body's ``n_outputs`` outputs come,
    the live player left as it is and the progress line emptied.

    Yields:
        [n_outputs values (skipped until the end), the live player's chunk or skip, the progress line or skip].
    """
    chunks: queue.Queue = queue.Queue()
    box: dict[str, Any] = {}

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)
        chunks.put(("progress", fraction, message))

    def run() -> None:
        try:
            box["outputs"] = body(lambda rate, audio: chunks.put(("audio", rate, audio)), report)
        except BaseException as e:  # noqa: BLE001 - handed to the generator, which raises it in the event
            box["error"] = e
        finally:
            chunks.put(None)

    threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True).start()
    live = live_playback()
    line = os.environ.get(PROGRESS_LINE_ENV_VAR, "").strip() != "0"
    shown = 0.0  # when the progress line last changed
    pending: tuple[float, str] | None = None  # the latest report not shown yet (it is shown when reports pause)
    while True:
        try:
            item = chunks.get(timeout=PROGRESS_EVERY_S if pending else None)
        except queue.Empty:  # no newer report came: the line shows the latest, as gradio's progress does
            item = ("progress", *pending)
        if item is None:
            break
        if item[0] == "audio":
            if live:  # without ffmpeg the page cannot play a stream: the results still come at the end
                yield [gr.skip()] * n_outputs + [wav_bytes(item[2][0], item[1]), gr.skip()]
        elif line and (time.monotonic() - shown >= PROGRESS_EVERY_S or item[1] >= 0.95):
            shown, pending = time.monotonic(), None
            yield [gr.skip()] * (n_outputs + 1) + [progress_html(item[1], say(item[2]))]
        elif line:
            pending = (item[1], item[2])
    if "error" in box:
        raise box["error"]
    yield [*box["outputs"], gr.skip(), ""]


class LivePlayer(gr.Audio):
    """A streaming player for the page only: left out of the API (clients get the finished files instead).

    A template of gr.Audio (as gradio's own gr.Microphone is), so the page draws it with the Audio component.
    """

    is_template = True

    @property
    def skip_api(self) -> bool:
        return True


class ProgressLine(gr.HTML):
    """A run's progress line, for the page only: left out of the API (clients have gradio's progress messages)."""

    is_template = True

    @property
    def skip_api(self) -> bool:
        return True


# Scroll the page so that where a run shows its progress is in view, unless it already is (a desktop page whose
# button sits below the fold has its results column's top out of sight; a phone stacks them under the button).
IN_VIEW_JS = """
() => setTimeout(() => {
    const el = document.getElementById("%s");
    if (!el) return;
    const box = el.getBoundingClientRect();
    if (box.top < 0 || box.top > window.innerHeight - 60) el.scrollIntoView({behavior: "smooth", block: "start"});
}, 200)
"""


def bring_into_view(button: gr.Button, elem_id: str) -> None:
    """When ``button`` is pressed, the element ``elem_id`` (where the run's progress shows) comes into view."""
    button.click(None, js=IN_VIEW_JS % elem_id, api_visibility="private", queue=False)


# The live player's hand-over when a run has finished: one that is playing plays on to the end of the piece (the
# listener hears it through, with no gap and no restart), then gives its place to the finished players; one that
# is not playing gives it at once. ("played-out" hides it; the next run's start shows it again.)
HAND_OVER_JS = """
() => {
    const box = document.getElementById("%s");
    if (!box) return;
    const audio = box.querySelector("audio");
    const hide = () => box.classList.add("played-out");
    if (audio && !audio.paused && !audio.ended) audio.addEventListener("ended", hide, {once: true});
    else hide();
}
"""
SHOW_AGAIN_JS = """() => { const box = document.getElementById("%s"); if (box) box.classList.remove("played-out"); }"""


def hand_over(event: Any, player: gr.Audio) -> None:
    """After ``event`` (a run that streamed to ``player``) succeeds: the live player's hand-over (``HAND_OVER_JS``)."""
    event.then(None, js=HAND_OVER_JS % player.elem_id, api_visibility="private", queue=False)


def show_again(button: gr.Button, player: gr.Audio) -> None:
    """When ``button`` starts a run, the live player is back in its place (empty until the first chunk)."""
    button.click(None, js=SHOW_AGAIN_JS % player.elem_id, api_visibility="private", queue=False)


def progress_line(tab: str) -> gr.HTML:
    """The line that shows a run's progress from the click to the result (gradio's own bar hides while a stream
    plays)."""
    return ProgressLine("", elem_id=f"{tab}-progress", elem_classes="run-progress", padding=False)


def stream_player(tab: str) -> gr.Audio:
    """The player that starts while the music is being made (variant 1, chunk by chunk): hidden until a run starts
    (and always without ffmpeg)."""
    return LivePlayer(label="Listen while it is made (variant 1)", streaming=True, autoplay=True, interactive=False,
                      visible=False, elem_id=f"{tab}-stream")
