"""Streaming to the page: a model call that hands out audio chunks as it goes, turned into a Gradio generator that
feeds a live player, then the call's results."""

from __future__ import annotations

import contextvars
import io
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import soundfile as sf

import gradio as gr

Send = Callable[[int, np.ndarray], None]  # (sample rate, audio [variants, channels, T])


def live_playback() -> bool:
    """Whether gradio can stream audio to the page here: it encodes the stream with the system's ffmpeg and
    probes files with ffprobe (Debian/Ubuntu `ffmpeg`, which run.sh and packages.txt install)."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """One streamed chunk [channels, T] as 16-bit WAV bytes (played as it is, not re-normalised)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio.T, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def streamed(body: Callable[[Send], list[Any]], n_outputs: int) -> Iterator[list[Any]]:
    """Run ``body(send)`` in a worker thread (in this request's context, so progress works) and stream: each
    chunk ``send(sample_rate, audio [variants, channels, T])`` goes to the live player (the first variant), then the
    body's ``n_outputs`` outputs come, with the live player left as it is."""
    chunks: queue.Queue = queue.Queue()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["outputs"] = body(lambda rate, audio: chunks.put((rate, audio)))
        except BaseException as e:  # noqa: BLE001 - handed to the generator, which raises it in the event
            box["error"] = e
        finally:
            chunks.put(None)

    threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True).start()
    live = live_playback()
    while (item := chunks.get()) is not None:
        rate, audio = item
        if live:  # without ffmpeg the page cannot play a stream: the results still come at the end
            yield [gr.skip()] * n_outputs + [wav_bytes(audio[0], rate)]
    if "error" in box:
        raise box["error"]
    yield [*box["outputs"], gr.skip()]


class LivePlayer(gr.Audio):
    """A streaming player for the page only: left out of the API (clients get the finished files instead).

    A template of gr.Audio (as gradio's own gr.Microphone is), so the page draws it with the Audio component.
    """

    is_template = True

    @property
    def skip_api(self) -> bool:
        return True


def stream_player(tab: str) -> gr.Audio:
    """The player that starts while the music is being made (variant 1, chunk by chunk); hidden without ffmpeg."""
    return LivePlayer(label="Listen while it is made (variant 1)", streaming=True, autoplay=True, interactive=False,
                      visible=live_playback(), elem_id=f"{tab}-stream")
