"""The runs in flight, by browser (or API) session and job: each run has its own Stop flag, set by its tab's Stop (for
every run of that tab in the session), or when its session closes (the page closed, the API client went away):
nothing computes for nobody.

A flag lives while its run goes, and a closed session's flags go with it (``forget_session``, on ``demo.unload``).
The long jobs check their flag at every step of their work: a decode step (text, melody, the piano cover), a segment
of a recording (sheet music), a frame of the video (``serving.in_process.stops_on``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from ui.common import gradio_progress, user_error
from ui.streaming import streamed


logger = logging.getLogger("music_demo")

# The Stop flags of the runs in progress, by (session, job): each run has its own flag; Stop in a tab sets every flag of
# that tab's runs in its session (Generate and Extend alike), and a closed session sets all of its own.
_cancel_events: dict[tuple[str, str], set[threading.Event]] = {}
_cancel_lock = threading.Lock()


def session_of(request: Any) -> str:
    """The browser or API session of ``request``; "local" for a caller without one (for the fair shares)."""
    return getattr(request, "session_hash", None) or "local"


def _key(request: Any, job: str) -> tuple[str, str] | None:
    """Where a run's flag is kept: by its session and job; None for a caller without a session, whose runs are kept
    apart (nobody else's Stop or closed page reaches them)."""
    session = getattr(request, "session_hash", None)
    return (session, job) if session else None


def new_cancel_event(request: Any, job: str) -> threading.Event:
    """The stop flag of a new run of ``job`` in this session: its own, beside those of the session's other runs."""
    event = threading.Event()
    key = _key(request, job)
    if key is not None:
        with _cancel_lock:
            _cancel_events.setdefault(key, set()).add(event)
    return event


def run_ended(request: Any, job: str, event: threading.Event) -> None:
    """Drop a finished run's stop flag."""
    key = _key(request, job)
    with _cancel_lock:
        runs = _cancel_events.get(key) if key is not None else None
        if runs is not None:
            runs.discard(event)
            if not runs:
                del _cancel_events[key]


def stop_run(request: Any, job: str) -> int:
    """Stop every run of ``job`` this session has going; returns how many were asked to stop."""
    key = _key(request, job)
    with _cancel_lock:
        events = list(_cancel_events.get(key, ())) if key is not None else []
    for event in events:
        event.set()
    return len(events)


def forget_session(request: gr.Request) -> None:
    """A session closed: stop every run it started (nobody is left to get their results) and drop their flags."""
    session = getattr(request, "session_hash", None)
    if not session:
        return
    with _cancel_lock:
        gone = [key for key in _cancel_events if key[0] == session]
        runs = {key[1]: _cancel_events.pop(key) for key in gone}
    for events in runs.values():
        for event in events:
            event.set()
    if runs:
        logger.info("A session closed: its %d run(s) (%s) stop at their next step",
                    sum(len(events) for events in runs.values()), ", ".join(runs))


def page_run(request: Any, job: str, n_outputs: int, progress: gr.Progress,
             work: Callable[[dict[str, Any]], list[Any]]) -> Iterator[list[Any]]:
    """One run of a tab's job on the page: its own Stop flag in this session (kept under ``job``), ``work(hooks)``
    in a worker thread streamed to the page (``hooks``: ``cancel``, ``progress`` and ``stream``, the keywords every
    job function below the page takes), any failure said as a plain message, the flag let go however it ends.

    Yields:
        ``streamed``'s updates, then ``work``'s ``n_outputs`` outputs.
    """
    cancel = new_cancel_event(request, job)

    def body(send: Callable[..., None], report: Callable[[float, str], None]) -> list[Any]:
        try:
            return work({"cancel": cancel, "progress": report, "stream": send})
        except Exception as e:  # noqa: BLE001 - every failure becomes a message; the app keeps serving
            raise user_error(e) from e

    try:
        yield from streamed(body, n_outputs, gradio_progress(progress))
    finally:  # ended early (its client gone, gradio closing the event): the work in its thread stops too
        cancel.set()
        run_ended(request, job, cancel)
