"""Pictures of music for the page: piano rolls, waveforms and spectrograms, melody chroma.

Every picture leaves a blank band at its top, where the page lays the box's label over the picture, and the
narrow pictures are drawn large enough to read on a phone: PHONE_TEXT_PX of text at PHONE_WIDTH_PX across.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from utils.midi import notes_of  # noqa: E402
from utils.notes import NOTE_NAMES  # noqa: E402
from utils.words import with_cjk_fallback, words  # noqa: E402


LABEL_BAND_PX = 44  # blank at the top of every picture: the page's box label sits there
PICTURE_WIDTH_PX = 900  # the result pictures: a phone shows them about PHONE_WIDTH_PX wide
FONT_PX = 22  # their text, in picture pixels: PHONE_TEXT_PX or more once a phone shrinks them
PHONE_WIDTH_PX = 360
PHONE_TEXT_PX = FONT_PX * PHONE_WIDTH_PX / PICTURE_WIDTH_PX
TITLE_ROW_PX = round(FONT_PX * 1.8)  # a plot's title, under the label band
DPI = 100


def text_style(points: float, tick_scale: float) -> dict[str, object]:
    """The pictures' text sizes, and a CJK font behind DejaVu Sans where this machine has one."""
    return {"font.size": points, "axes.titlesize": points, "axes.labelsize": points,
            "xtick.labelsize": points * tick_scale, "ytick.labelsize": points * tick_scale, **with_cjk_fallback()}


def _save_png(fig: plt.Figure, path: str | Path) -> Path:
    """Lay out ``fig`` with a blank band of LABEL_BAND_PX at its top, and write it as PNG at ``path``. A title of the
    top plot goes at the left just under the band: the page lays the box's label over the band's left and the box's
    buttons (fullscreen, download) over its right, and on a phone they reach lower than the band."""
    fig.tight_layout()
    height_px = fig.get_size_inches()[1] * fig.dpi
    titled = any(ax.get_title(loc="left") for ax in fig.axes)
    band = LABEL_BAND_PX + (TITLE_ROW_PX if titled else 0)
    fig.subplots_adjust(top=min(fig.subplotpars.top, 1 - band / height_px))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def piano_roll_png(
    midi, path: str | Path, beat_times: np.ndarray | None = None, title: str = "", width_px: int = 1400
) -> Path:
    """Draw the notes of ``midi`` (a pretty_midi.PrettyMIDI) as a piano roll and save it as PNG.

    Args:
        midi: the MIDI to draw.
        path: where to write the PNG.
        beat_times: optional beat times in seconds [N], drawn as faint vertical lines (every 4th darker).
        title: a title above the roll.
        width_px: image width in pixels (height is a third of it).
    """
    notes = notes_of(midi)
    dpi = 100
    with plt.rc_context(with_cjk_fallback()):
        fig, ax = plt.subplots(figsize=(width_px / dpi, width_px / dpi / 3), dpi=dpi)
    try:
        if notes:
            verts = [
                [(n.start, n.pitch - 0.4), (n.end, n.pitch - 0.4), (n.end, n.pitch + 0.4), (n.start, n.pitch + 0.4)]
                for n in notes
            ]
            velocities = np.array([n.velocity for n in notes], dtype=float)
            coll = PolyCollection(verts, array=velocities, cmap="viridis", clim=(1, 127), linewidths=0)
            ax.add_collection(coll)
            low = min(n.pitch for n in notes) - 2
            high = max(n.pitch for n in notes) + 2
            end = max(n.end for n in notes)
        else:
            low, high, end = 48, 84, 1.0
            ax.text(0.5, 0.5, words("no notes"), transform=ax.transAxes, ha="center", va="center", color="gray")
        if beat_times is not None:
            for i, t in enumerate(beat_times):
                if t <= end:
                    ax.axvline(t, color="black", alpha=0.25 if i % 4 == 0 else 0.07, linewidth=0.8)
        ax.set_xlim(0, end)
        ax.set_ylim(low, high)
        octave_cs = [p for p in range(int(low), int(high) + 1) if p % 12 == 0]
        ax.set_yticks(octave_cs, [f"C{p // 12 - 1}" for p in octave_cs])
        ax.set_xlabel(words("time (s)"))
        ax.set_ylabel(words("pitch"))
        if title:
            ax.set_title(words(title), loc="left")
        return _save_png(fig, path)
    finally:
        plt.close(fig)


def spectrograms_png(audio: np.ndarray, sample_rate: int, path: str | Path, titles: list[str] | None = None) -> Path:
    """Each variant's waveform over its mel spectrogram, variants stacked, as a PNG narrow enough to read on a phone.

    Args:
        audio: float32 [variants, channels, T] (channels are averaged for the picture).
        sample_rate: Hz.
        path: where to write the PNG.
        titles: one title per variant (at the left, under the box label: its buttons are at the right).
    """
    import librosa
    import librosa.display

    n = audio.shape[0]
    points = FONT_PX * 72 / DPI
    with plt.rc_context(text_style(points, 0.85)):
        fig, axes = plt.subplots(2 * n, 1, figsize=(PICTURE_WIDTH_PX / DPI, 5.2 * n + LABEL_BAND_PX / DPI), dpi=DPI,
                                 squeeze=False, gridspec_kw={"height_ratios": [1, 2.4] * n})
        try:
            for i in range(n):
                wave, spectrum = axes[2 * i, 0], axes[2 * i + 1, 0]
                mono = audio[i].mean(axis=0)
                t = np.arange(mono.shape[0]) / sample_rate
                wave.plot(t, mono, linewidth=0.6, color="#4a6fa5")
                wave.set_xlim(0, t[-1] if t.size else 1)
                wave.set_ylim(-1, 1)
                wave.set_yticks([])
                wave.set_xticks([])
                wave.set_title(words(titles[i] if titles else f"variant {i + 1}"), loc="left")
                mel = librosa.feature.melspectrogram(y=mono, sr=sample_rate, n_mels=96)
                librosa.display.specshow(
                    librosa.power_to_db(mel + 1e-10, ref=np.max), sr=sample_rate, x_axis="time", y_axis="mel",
                    ax=spectrum, cmap="magma",
                )
                spectrum.set_xlabel(words("time (s)") if i == n - 1 else "")
                spectrum.set_ylabel("Hz")
            return _save_png(fig, path)
        finally:
            plt.close(fig)


def chroma_png(chroma: np.ndarray, frames_per_second: float, path: str | Path, title: str = "") -> Path:
    """The melody chroma that conditions MusicGen-Melody ([frames, 12], one-hot), as a pitch-class picture."""
    points = FONT_PX * 72 / DPI
    with plt.rc_context(text_style(points, 0.7)):
        fig, ax = plt.subplots(figsize=(PICTURE_WIDTH_PX / DPI, 5.0), dpi=DPI)
        try:
            seconds = chroma.shape[0] / frames_per_second
            ax.imshow(chroma.T, aspect="auto", origin="lower", cmap="Greens", extent=(0, seconds, -0.5, 11.5),
                      interpolation="nearest")
            ax.set_yticks(range(12), NOTE_NAMES)
            ax.set_xlabel(words("time (s)"))
            ax.set_ylabel(words("pitch class"))
            if title:
                ax.set_title(words(title), loc="left")
            return _save_png(fig, path)
        finally:
            plt.close(fig)
