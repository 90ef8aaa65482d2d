"""Rendering MIDI to audio: FluidSynth with a General MIDI SoundFont (the best one installed), or sine tones."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

from utils.audio import OUTPUT_SAMPLE_RATE

logger = logging.getLogger(__name__)

SOUNDFONT_ENV_VAR = "SOUNDFONT"
# Better General MIDI SoundFonts, in order of preference, where Debian/Ubuntu packages put them
# (fluid-soundfont-gm, musescore-general-soundfont*, timgm6mb-soundfont).
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
)
BUNDLED_SOUNDFONT = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"  # shipped with pretty_midi


def find_soundfont() -> Path:
    """The SoundFont to render with: ``$SOUNDFONT``, else a system GM SoundFont, else pretty_midi's own."""
    override = os.environ.get(SOUNDFONT_ENV_VAR, "").strip()
    if override:
        if Path(override).is_file():
            return Path(override)
        logger.warning("%s=%s is not a file; using the default SoundFont instead.", SOUNDFONT_ENV_VAR, override)
    for candidate in SYSTEM_SOUNDFONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    return BUNDLED_SOUNDFONT


def fluidsynth_available() -> bool:
    """Whether pyfluidsynth and the FluidSynth library it wraps can be loaded."""
    try:
        import fluidsynth  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError or OSError from the shared library loader
        return False
    return True


@dataclass(frozen=True)
class Rendered:
    """Rendered MIDI.

    Attributes:
        audio: mono float32 [T], peak-normalised to 0.9.
        sample_rate: Hz.
        renderer: "fluidsynth" or "sine" (the fallback).
        soundfont: SoundFont used, or None for the fallback.
        warning: a note for the user when the fallback was used, else "".
    """

    audio: np.ndarray
    sample_rate: int
    renderer: str
    soundfont: Path | None
    warning: str = ""


FLUIDSYNTH_MISSING_WARNING = (
    "FluidSynth is not installed, so the piano was rendered with plain sine tones. Install it with "
    "`apt-get install libfluidsynth3` (Debian/Ubuntu) or `brew install fluid-synth` (macOS) for a real piano."
)


def renderer_in_use(soundfont: str | Path | None = None) -> tuple[str, Path | None, str]:
    """What ``render_midi`` renders with here: ("fluidsynth", SoundFont, "") or ("sine", None, warning)."""
    if fluidsynth_available():
        return "fluidsynth", Path(soundfont) if soundfont else find_soundfont(), ""
    return "sine", None, FLUIDSYNTH_MISSING_WARNING


def render_midi(
    midi: pretty_midi.PrettyMIDI, sample_rate: int = OUTPUT_SAMPLE_RATE, soundfont: str | Path | None = None
) -> Rendered:
    """Render ``midi`` to mono audio with FluidSynth and a General MIDI SoundFont.

    Falls back, with a warning, to pretty_midi's sine synthesis when FluidSynth cannot be loaded.
    """
    from utils.audio import normalize_peak

    renderer, sf2, warning = renderer_in_use(soundfont)
    if sf2 is not None:
        try:
            audio = midi.fluidsynth(fs=sample_rate, sf2_path=str(sf2))
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(f"FluidSynth failed to render the MIDI with SoundFont {sf2}: {e}") from e
        return Rendered(normalize_peak(audio.astype(np.float32)), sample_rate, renderer, sf2)
    logger.warning(warning)
    audio = midi.synthesize(fs=sample_rate) if midi.instruments else np.zeros(0)
    return Rendered(normalize_peak(audio.astype(np.float32)), sample_rate, renderer, None, warning)
