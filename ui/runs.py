"""The runs in flight, by browser (or API) session and job: each run's Stop flag, set by its tab's Stop, or when its
session closes (the page closed, the API client went away): nothing computes for nobody.

A flag lives while its run goes, and a closed session's flags go with it (``forget_session``, on ``demo.unload``).
The long jobs check their flag at every step of their work: a decode step (text, melody, the piano cover), a segment
of a recording (sheet music), a frame of the video (``serving.in_process.stops_on``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import gradio as gr


logger = logging.getLogger("music_demo")

# The Stop flag of each run in progress, by (session, job): Stop in a tab stops that tab's run, nothing else.
_cancel_events: dict[tuple[str, str], threading.Event] = {}
_cancel_lock = threading.Lock()


def session_of(request: Any) -> str:
    return getattr(request, "session_hash", None) or "local"


def new_cancel_event(request: Any, job: str) -> threading.Event:
    """A fresh stop flag for the run of ``job`` this session starts now."""
    event = threading.Event()
    with _cancel_lock:
        _cancel_events[(session_of(request), job)] = event
    return event


def run_ended(request: Any, job: str, event: threading.Event) -> None:
    """Drop a finished run's stop flag (unless the session already started another run of the job)."""
    with _cancel_lock:
        if _cancel_events.get((session_of(request), job)) is event:
            del _cancel_events[(session_of(request), job)]


def stop_run(request: Any, job: str) -> None:
    """Stop this session's run of ``job``, if one is going."""
    with _cancel_lock:
        event = _cancel_events.get((session_of(request), job))
    if event is not None:
        event.set()


def forget_session(request: gr.Request) -> None:
    """A session closed: stop its runs (nobody is left to get their results) and drop their flags."""
    session = session_of(request)
    with _cancel_lock:
        gone = [key for key in _cancel_events if key[0] == session]
        events = [_cancel_events.pop(key) for key in gone]
    for event in events:
        event.set()
    if events:
        logger.info("A session closed: its %d run(s) (%s) stop at their next step", len(events),
                    ", ".join(job for _, job in gone))
