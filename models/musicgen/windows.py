"""Window planning for long pieces, as audiocraft extends them: a piece past the model's 30 s context is made
window by window, each keeping the end of the music before it as its prompt."""

from __future__ import annotations

from dataclasses import dataclass

from models.musicgen.inputs import MAX_CLIP_SECONDS, WINDOW_S


@dataclass(frozen=True)
class Window:
    """One window of a long piece, in frames of the output: its prompt ``[context_start, start)`` and new music
    ``[start, end)``; ``melody_offset`` is where in the (looped) melody its chroma starts, in seconds."""

    context_start: int
    start: int
    end: int
    melody_offset: float | None = None


def plan_windows(total_frames: int, frame_rate: float, stride_s: float, context_frames: int = 0,
                 whole_context: bool = False) -> list[Window]:
    """The windows of a piece of ``total_frames`` new frames (at ``frame_rate`` frames a second) after
    ``context_frames`` of given codes.

    As audiocraft's extension: a window holds at most WINDOW_S seconds of codes; every window keeps the last
    ``WINDOW_S - stride`` seconds before it as its prompt (none for a fresh piece's first window) and adds up to
    ``stride`` seconds (the first window of a fresh piece: up to WINDOW_S). ``whole_context``: the first window
    keeps all the given codes (a clip, at most MAX_CLIP_SECONDS).
    """
    window, stride = int(round(WINDOW_S * frame_rate)), int(round(stride_s * frame_rate))
    windows: list[Window] = []
    end = context_frames
    while end < context_frames + total_frames:
        keep = min(end, window - stride)
        if not windows and whole_context:
            keep = min(end, int(round(MAX_CLIP_SECONDS * frame_rate)))
        new = min(window - keep, context_frames + total_frames - end)
        windows.append(Window(end - keep, end, end + new))
        end += new
    return windows


def decode_steps(windows: list[Window], delay: int) -> int:
    """Decode steps for ``windows``: each window's new frames plus the delay pattern's tail (``delay`` steps)."""
    return sum(w.end - w.start + delay for w in windows)


MUSICGEN_FRAME_RATE = 50  # EnCodec frames a second in every MusicGen checkpoint (32 kHz, hop 640)


def window_count(duration_s: float, stride_s: float, frame_rate: float = MUSICGEN_FRAME_RATE) -> int:
    """How many windows a fresh piece of ``duration_s`` seconds takes (before any model is loaded)."""
    return len(plan_windows(int(round(duration_s * frame_rate)), frame_rate, stride_s))
