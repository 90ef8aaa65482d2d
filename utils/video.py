"""Falling-notes videos (the SeeMusic / Synthesia look): notes fall onto an 88-key keyboard in time with the audio.

Frames are drawn with numpy, fast enough for a 3.5-minute song on 2 cores: every note bar is drawn once onto one
tall picture of the whole piece, and each frame is a window into it (written to ffmpeg without a copy) plus the
keyboard strip with the keys that sound lit. ffmpeg comes from the ``imageio-ffmpeg`` wheel (H.264 + AAC in MP4);
no system ffmpeg is needed.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.notes import PIANO_PITCH_RANGE
from utils.progress import Progress

logger = logging.getLogger(__name__)

FPS = 30
FORMATS = {"landscape": (1280, 720), "vertical": (720, 1280)}  # 720p, and 9:16 for Shorts / TikTok / Reels
DEFAULT_FORMAT = "landscape"
SECONDS_VISIBLE = {"landscape": 3.0, "vertical": 4.0}  # how long a note falls from the top to the keys
KEYBOARD_SHARE = {"landscape": 0.17, "vertical": 0.11}  # keyboard height as a share of the frame's height
X264_PRESET = "veryfast"  # measured in bench/video_bench.py: a 3.5-minute song within the 60 s goal on 2 cores
X264_CRF = 23
AUDIO_BITRATE = "160k"
BACKGROUND = (22, 24, 33)
GUIDE = (40, 43, 56)  # a faint line above every C
RIGHT_HAND = (92, 200, 255)  # note colours by hand, as in falling-notes videos
LEFT_HAND = (255, 165, 80)
WHITE_KEY = (245, 245, 240)
BLACK_KEY = (25, 25, 28)
KEY_GAP = (120, 120, 125)
BLACK_PITCH_CLASSES = {1, 3, 6, 8, 10}
TITLE_SECONDS = 4.0  # the song's title and the arranger style open the video for this long (fading out)
FADE_SECONDS = 1.0
ZOOM_MARGIN = 12  # the vertical format shows the keys the cover plays, with an octave to spare either side


@dataclass(frozen=True)
class Key:
    """Where a key sits in the frame: columns ``x0:x1``, and whether it is black."""

    x0: int
    x1: int
    black: bool


def key_range(pitches: np.ndarray, margin: int = ZOOM_MARGIN) -> tuple[int, int]:
    """The keys to show for ``pitches``: their range with ``margin`` semitones either side, widened to white keys
    at both ends, within the 88 keys."""
    low, high = PIANO_PITCH_RANGE
    if len(pitches) == 0:
        return low, high
    lo, hi = max(low, int(np.min(pitches)) - margin), min(high, int(np.max(pitches)) + margin)
    while lo > low and lo % 12 in BLACK_PITCH_CLASSES:
        lo -= 1
    while hi < high and hi % 12 in BLACK_PITCH_CLASSES:
        hi += 1
    return lo, hi


def keyboard_layout(width: int, low: int = PIANO_PITCH_RANGE[0], high: int = PIANO_PITCH_RANGE[1]) -> dict[int, Key]:
    """The keys ``low``..``high`` (white at both ends; default the 88, MIDI 21..108) across ``width`` pixels: white
    keys side by side, black keys between them."""
    whites = [p for p in range(low, high + 1) if p % 12 not in BLACK_PITCH_CLASSES]
    white_w = width / len(whites)
    keys: dict[int, Key] = {}
    for i, pitch in enumerate(whites):
        keys[pitch] = Key(int(round(i * white_w)), int(round((i + 1) * white_w)), False)
    black_w = white_w * 0.6
    for pitch in range(low, high + 1):
        if pitch % 12 in BLACK_PITCH_CLASSES and pitch - 1 in keys:
            boundary = keys[pitch - 1].x1  # between the white keys on either side
            keys[pitch] = Key(int(round(boundary - black_w / 2)), int(round(boundary + black_w / 2)), True)
    return keys


def note_color(right_hand: bool, velocity: int) -> np.ndarray:
    """The bar colour of a note: by hand, a little brighter when played harder."""
    base = np.array(RIGHT_HAND if right_hand else LEFT_HAND, dtype=float)
    return np.clip(base * (0.75 + 0.25 * velocity / 127), 0, 255).astype(np.uint8)


class FallingNotes:
    """Draws the frames of one video.

    Args:
        starts, ends: [N] note times in seconds.
        pitches: [N] MIDI pitches on the 88 keys.
        velocities: [N] 1..127.
        right_hand: [N] bool, which hand plays each note (its colour).
        duration: the video's length in seconds.
        fmt: "landscape" (1280x720, all 88 keys) or "vertical" (720x1280, the keys the cover plays).
        title, subtitle: shown over the first TITLE_SECONDS (the song's name, the arranger style).
    """

    def __init__(self, starts: np.ndarray, ends: np.ndarray, pitches: np.ndarray, velocities: np.ndarray,
                 right_hand: np.ndarray, duration: float, fmt: str = DEFAULT_FORMAT, title: str = "",
                 subtitle: str = "") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"Unknown video format {fmt!r}; choose one of {', '.join(FORMATS)}.")
        self.width, self.height = FORMATS[fmt]
        self.keyboard_h = int(round(self.height * KEYBOARD_SHARE[fmt]))
        self.roll_h = self.height - self.keyboard_h
        self.pixels_per_second = self.roll_h / SECONDS_VISIBLE[fmt]
        self.duration = float(duration)
        self.pitches = np.asarray(pitches, int)
        self.key_range = key_range(self.pitches) if fmt == "vertical" else PIANO_PITCH_RANGE
        self.keys = keyboard_layout(self.width, *self.key_range)
        self.starts, self.ends = np.asarray(starts, float), np.asarray(ends, float)
        self.velocities = np.asarray(velocities, int)
        self.right_hand = np.asarray(right_hand, bool)
        self.canvas = self._draw_roll()
        self.keyboard = self._draw_keyboard()
        self.title_card = title_card(self.width, self.roll_h, title, subtitle) if title else None

    @property
    def n_frames(self) -> int:
        return int(round(self.duration * FPS))

    def row_of(self, seconds: float | np.ndarray) -> np.ndarray:
        """The canvas row where time ``seconds`` sits (time runs upwards)."""
        return self.rows - 1 - np.round(np.asarray(seconds) * self.pixels_per_second).astype(int)

    def _draw_roll(self) -> np.ndarray:
        """One tall picture of every note bar of the piece, [rows, width, 3] uint8."""
        rows = self.rows = int(np.ceil(self.duration * self.pixels_per_second)) + 2 * self.roll_h + 2
        canvas = np.empty((rows, self.width, 3), dtype=np.uint8)
        canvas[:] = BACKGROUND
        for pitch, key in self.keys.items():
            if pitch % 12 == 0:
                canvas[:, key.x0] = GUIDE
        order = np.argsort([self.keys[int(p)].black for p in self.pitches], kind="stable")  # black keys on top
        for i in order:
            key = self.keys[int(self.pitches[i])]
            top, bottom = self.row_of(self.ends[i]), self.row_of(self.starts[i])
            top, bottom = max(int(top) + 1, 0), min(int(bottom), rows - 1)  # 1 px gap between repeated notes
            if bottom <= top:
                continue
            color = note_color(bool(self.right_hand[i]), int(self.velocities[i]))
            canvas[top:bottom, key.x0 + 1 : key.x1 - 1] = color
            canvas[top:bottom, key.x0] = color // 2  # darker edges
            canvas[top:bottom, key.x1 - 1] = color // 2
        return canvas

    def _draw_keyboard(self) -> np.ndarray:
        """The keyboard strip at rest, [keyboard_h, width, 3] uint8."""
        strip = np.empty((self.keyboard_h, self.width, 3), dtype=np.uint8)
        strip[:] = WHITE_KEY
        strip[:3] = (200, 30, 45)  # a red felt line over the keys
        for key in self.keys.values():
            if not key.black:
                strip[:, key.x0] = KEY_GAP
        black_h = int(self.keyboard_h * 0.62)
        for key in self.keys.values():
            if key.black:
                strip[3:black_h, key.x0 : key.x1] = BLACK_KEY
        self.black_h = black_h
        return strip

    def keyboard_at(self, seconds: float) -> np.ndarray:
        """The keyboard strip with the keys sounding at ``seconds`` lit in their note's colour."""
        sounding = np.flatnonzero((self.starts <= seconds) & (seconds < self.ends))
        if sounding.size == 0:
            return self.keyboard
        strip = self.keyboard.copy()
        for i in sounding:
            key = self.keys[int(self.pitches[i])]
            color = note_color(bool(self.right_hand[i]), int(self.velocities[i]))
            if key.black:
                strip[3 : self.black_h, key.x0 + 1 : key.x1 - 1] = color
            else:
                strip[self.black_h :, key.x0 + 1 : key.x1] = color
        return strip

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index`` as (roll window [roll_h, W, 3] - a view into the canvas, keyboard strip)."""
        seconds = index / FPS
        bottom = int(self.row_of(seconds))
        roll = self.canvas[bottom - self.roll_h + 1 : bottom + 1]
        if self.title_card is not None and seconds < TITLE_SECONDS:
            text, alpha = self.title_card
            fade = min(1.0, (TITLE_SECONDS - seconds) / FADE_SECONDS)
            weight = alpha * fade
            roll = (roll * (1.0 - weight) + text * weight).astype(np.uint8)
        return roll, self.keyboard_at(seconds)


def title_card(width: int, height: int, title: str, subtitle: str = "") -> tuple[np.ndarray, np.ndarray]:
    """The opening title over the falling notes: (colours [height, width, 3], opacity [height, width, 1]) with the
    title and subtitle centred in the upper third, on a dark band, sized to fit the width."""
    from PIL import Image, ImageDraw, ImageFont

    from utils.words import font_file

    def font(size: int, bold: bool, words: str) -> ImageFont.FreeTypeFont:  # one that draws the words (Chinese too)
        return ImageFont.truetype(font_file(words, bold), size)

    picture = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(picture)
    lines = [(title, True, width // 16), (subtitle, False, width // 30)]
    fitted = []
    for words, bold, size in lines:
        if not words:
            continue
        face = font(size, bold, words)
        while draw.textlength(words, font=face) > width * 0.9 and size > 10:
            size -= 2
            face = font(size, bold, words)
        fitted.append((words, face, size))
    total = sum(size * 1.4 for _, _, size in fitted)
    top = height // 3 - total / 2
    draw.rectangle([0, top - height * 0.04, width, top + total + height * 0.04], fill=(10, 11, 16, 190))
    y = top
    for words, face, size in fitted:
        draw.text((width / 2, y), words, font=face, fill=(255, 255, 255, 255), anchor="ma")
        y += size * 1.4
    rgba = np.asarray(picture, dtype=np.float32)
    return rgba[..., :3], rgba[..., 3:] / 255.0


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped in the imageio-ffmpeg wheel.

    Raises:
        RuntimeError: imageio-ffmpeg is missing or has no binary for this platform.
    """
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # noqa: BLE001 - ImportError, or RuntimeError when no binary fits this machine
        raise RuntimeError(
            f"ffmpeg is not available for the video ({e}); install it with `pip install imageio-ffmpeg`."
        ) from e


def encode_video(notes: FallingNotes, soundtrack: str | Path | tuple[np.ndarray, int], path: str | Path,
                tags: dict[str, str] | None = None, progress: Progress | None = None) -> Path:
    """Encode the falling-notes frames with ``soundtrack`` as an MP4 (H.264 + AAC, 30 fps).

    Args:
        notes: the frames to draw.
        soundtrack: as long as the video: an audio file, or (mono float32 [T], rate in Hz) handed to ffmpeg through
            a pipe (no file written).
        path: the MP4 to write.
        tags: MP4 metadata (title, comment...).
        progress: called with (fraction, message) as frames are written.

    Raises:
        RuntimeError: ffmpeg failed (its last lines are in the message).
    """
    report = progress or (lambda fraction, message: None)
    path = Path(path)
    metadata: list[str] = []
    for key, value in (tags or {}).items():
        if value:
            metadata += ["-metadata", f"{key}={value}"]
    audio_fd = None
    if isinstance(soundtrack, tuple):
        samples, rate = soundtrack
        audio_fd, audio_in = os.pipe()
        audio_input = ["-f", "f32le", "-ar", str(int(rate)), "-ac", "1", "-i", f"pipe:{audio_fd}"]
    else:
        audio_input = ["-i", str(soundtrack)]
    command = [
        ffmpeg_exe(), "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{notes.width}x{notes.height}", "-r", str(FPS), "-i", "-",
        *audio_input,
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", X264_PRESET, "-crf", str(X264_CRF), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", AUDIO_BITRATE,
        "-movflags", "+faststart", *metadata, str(path),
    ]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                               pass_fds=() if audio_fd is None else (audio_fd,))
    assert process.stdin is not None
    feeder = None
    if audio_fd is not None:  # the soundtrack goes in beside the frames, from a thread of its own
        os.close(audio_fd)
        data = np.ascontiguousarray(samples, dtype="<f4").tobytes()

        def feed() -> None:
            with os.fdopen(audio_in, "wb") as pipe:
                try:
                    pipe.write(data)
                except BrokenPipeError:
                    pass

        feeder = threading.Thread(target=feed, name="video-soundtrack", daemon=True)
        feeder.start()
    total = notes.n_frames
    every = max(1, total // 100)
    try:
        for index in range(total):
            roll, keys = notes.frame(index)
            process.stdin.write(memoryview(roll))  # a view into the canvas: rows are contiguous, no copy
            process.stdin.write(memoryview(np.ascontiguousarray(keys)))
            if index % every == 0:
                report(index / total, f"Drawing the video: frame {index} of {total}")
        process.stdin.close()
    except BrokenPipeError:
        pass
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if feeder is not None:
        feeder.join()
    if process.wait() != 0:
        raise RuntimeError(f"ffmpeg could not write the video: {error.strip()[-500:]}")
    report(1.0, "Video written")
    return path


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg reports of a media file: its streams' codecs, the duration (s) and its metadata tags."""

    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    duration: float
    tags: dict[str, str]


def probe(path: str | Path) -> MediaInfo:
    """Read a media file's streams, duration and tags with the bundled ffmpeg (there is no ffprobe in the wheel)."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    report = result.stderr
    video = re.search(r"Stream #.*Video: (\w+).*?, (\d{2,5})x(\d{2,5})", report)
    audio = re.search(r"Stream #.*Audio: (\w+)", report)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", report)
    seconds = 0.0
    if duration:
        h, m, s = duration.groups()
        seconds = int(h) * 3600 + int(m) * 60 + float(s)
    tags = {}
    block = report.split("Metadata:", 1)[1] if "Metadata:" in report else ""
    for line in block.splitlines()[1:]:
        match = re.match(r"\s{4,}(\w+)\s*:\s(.*)$", line)
        if not match:
            break
        tags[match.group(1)] = match.group(2)
    return MediaInfo(
        video.group(1) if video else None, audio.group(1) if audio else None,
        int(video.group(2)) if video else None, int(video.group(3)) if video else None, seconds, tags,
    )
