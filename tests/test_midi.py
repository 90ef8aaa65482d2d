"""utils.midi and utils.plots: tempo in the file, rendering, SoundFonts, pictures."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
from PIL import Image

from utils import render as midi_module
from utils.midi import piano_midi
from utils.render import BUNDLED_SOUNDFONT, find_soundfont, render_midi
from utils.plots import piano_roll_png


def scale_notes() -> list[pretty_midi.Note]:
    return [pretty_midi.Note(80, 60 + k, 0.5 * i, 0.5 * i + 0.4) for i, k in enumerate([0, 2, 4, 5, 7, 9, 11, 12])]


def test_piano_midi_carries_the_tempo_through_a_file(tmp_path):
    midi = piano_midi(scale_notes(), bpm=93.5)
    path = tmp_path / "scale.mid"
    midi.write(str(path))
    back = pretty_midi.PrettyMIDI(str(path))
    _, tempi = back.get_tempo_changes()
    assert tempi[0] == pytest.approx(93.5, abs=0.01)
    notes = back.instruments[0].notes
    assert [n.pitch for n in notes] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert notes[3].start == pytest.approx(1.5, abs=2e-3)
    assert back.instruments[0].program == 0


def test_notes_off_the_keyboard_move_by_octaves():
    notes = [pretty_midi.Note(80, p, 0.0, 0.5) for p in (0, 20, 21, 60, 108, 109, 127)]
    pitches = [n.pitch for n in piano_midi(notes, bpm=100).instruments[0].notes]
    assert pitches == [24, 32, 21, 60, 108, 97, 103]
    assert all(21 <= p <= 108 for p in pitches)


def test_implausible_tempo():
    with pytest.raises(ValueError, match="plausible"):
        piano_midi(scale_notes(), bpm=0.0)


def test_fluidsynth_renders_at_the_asked_rate():
    midi = piano_midi(scale_notes(), bpm=120)
    rendered = render_midi(midi, 22050)
    assert rendered.renderer == "fluidsynth", "libfluidsynth3 must be installed (see README)"
    assert rendered.sample_rate == 22050
    assert rendered.audio.ndim == 1
    assert rendered.audio.shape[0] >= int(midi.get_end_time() * 22050)
    assert np.abs(rendered.audio).max() == pytest.approx(0.9, abs=1e-3)
    # The C4 that starts at 0 s rings at ~261.6 Hz: the strongest partial is one of its harmonics.
    window = rendered.audio[int(0.05 * 22050) : int(0.45 * 22050)]
    spectrum = np.abs(np.fft.rfft(window * np.hanning(window.size)))
    freqs = np.fft.rfftfreq(window.size, 1 / 22050)
    band = (freqs > 50) & (freqs < 2000)
    harmonic = freqs[band][np.argmax(spectrum[band])] / 261.6
    assert abs(harmonic - round(harmonic)) < 0.04


def test_sine_fallback_without_fluidsynth(monkeypatch):
    monkeypatch.setattr(midi_module, "fluidsynth_available", lambda: False)
    rendered = render_midi(piano_midi(scale_notes(), bpm=120), 16000)
    assert rendered.renderer == "sine" and "apt-get install libfluidsynth3" in rendered.warning
    assert rendered.audio.shape[0] >= int(3.9 * 16000)


def test_soundfont_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SOUNDFONT", str(BUNDLED_SOUNDFONT))
    assert find_soundfont() == BUNDLED_SOUNDFONT
    monkeypatch.setenv("SOUNDFONT", str(tmp_path / "missing.sf2"))
    assert find_soundfont().is_file()


def test_piano_roll_picture(tmp_path):
    midi = piano_midi(scale_notes(), bpm=120)
    path = piano_roll_png(midi, tmp_path / "roll.png", beat_times=np.arange(0, 4, 0.5), title="scale")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] == 1400
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 5  # not blank
    empty = piano_roll_png(pretty_midi.PrettyMIDI(), tmp_path / "empty.png")
    assert empty.is_file()
