"""The app as tools for AI agents (``--mcp``): API-only endpoints, one per job, with no session state.

An agent's call stands alone: it has no browser session whose last result Extend or a remix could work from, and no
page to play a stream on. So each tool is an endpoint of its own beside the page's event (``gr.on`` with no trigger,
as ``gr.api`` makes them), taking the event's inputs without its ``gr.State`` and giving its outputs without the
session state and the page-only live player and progress line. The page's events, which keep their state for the
page and for ``gradio_client`` sessions, are left out of the tool list by being undocumented in an MCP build; the
choice is made when the page is built (``building``), not changed afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

# What agents get as tools: the jobs that make something from their arguments alone. The rest is page plumbing
# (Stop, previews, parameters files, sending a result to another tab) or works from a browser session's last
# result (Extend, the cover's remix, instrument, score and video), which a tool call does not have.
MCP_TOOLS = ("piano_cover", "piano_to_sheet_music", "text_to_music", "melody_to_music", "music_midi",
             "check_watermark", "song")

_for_mcp = False  # whether the page being built serves MCP tools (set by ``building``)


@contextlib.contextmanager
def building(mcp: bool) -> Iterator[None]:
    """Build a page with (``mcp``) or without its MCP tools."""
    global _for_mcp
    before, _for_mcp = _for_mcp, mcp
    try:
        yield
    finally:
        _for_mcp = before


def page_api() -> str:
    """The API visibility of the page's events: public, or undocumented in an MCP build (so that the tools are the
    endpoints agents see)."""
    return "undocumented" if _for_mcp else "public"


def _stands_alone(component: gr.components.Component) -> bool:
    """Whether a component's value means something outside a browser session (not state, not page-only)."""
    return not isinstance(component, gr.State) and not getattr(component, "skip_api", False)


def as_tool(name: str, fn: Callable[..., Any], inputs: list[gr.components.Component],
            outputs: list[gr.components.Component], description: str | None = None,
            concurrency_id: str | None = None) -> None:
    """In an MCP build, the tool ``name``: ``fn`` (a page event, plain or streaming) as an API-only endpoint,
    described by ``description`` (None: the event's docstring); nothing in a build without MCP."""
    if not _for_mcp:
        return
    if name not in MCP_TOOLS:
        raise ValueError(f"{name!r} is not one of the app's tools: {', '.join(MCP_TOOLS)}")
    kept = [i for i, c in enumerate(outputs) if _stands_alone(c)]

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if inspect.isgenerator(result):  # a streaming event: its last yield holds the results
            final = None
            for final in result:
                pass
            result = final
        values = [result] if len(outputs) == 1 else list(result)
        picked = [values[i] for i in kept]
        return picked[0] if len(picked) == 1 else picked

    tool.__name__ = name  # the tool's name, as gradio's MCP server reads it
    gr.on([], tool, inputs=[c for c in inputs if not isinstance(c, gr.State)], outputs=[outputs[i] for i in kept],
          api_name=f"{name}_tool", api_description=description, concurrency_id=concurrency_id,
          api_visibility="public")
