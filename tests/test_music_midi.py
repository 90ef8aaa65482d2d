"""MIDI (and a score) of any result: basic-pitch's real, shipped model hears the notes; they are placed on the
tracked beats and written with the cover's tempo-mapped MIDI writer and engraver."""

from __future__ import annotations

import mido
import numpy as np
import pretty_midi
import pytest

from examples.make_examples import MELODIES, melody_notes
from models import transcription
from models.loading import load_model
from models.sources import ModelLoadError
from models.transcription import Notes
from products.music_midi import beat_steps, notes_on_grid, write_music_midi
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"


def test_the_grid_runs_from_the_start_past_the_end():
    beats = np.array([0.7, 1.2, 1.7, 2.2])
    steps = beat_steps(beats, duration=4.0)
    assert 0.0 <= steps[0] < 0.5 and steps[-1] >= 4.0
    assert np.allclose(np.diff(steps), 0.25)  # half-beats of a steady 120 bpm
    assert np.isclose(steps, 0.7).any() and np.isclose(steps, 2.2).any()  # the tracked beats are steps


def test_notes_move_to_the_nearest_half_beat():
    steps = np.arange(0, 5.0, 0.25)
    notes = Notes(np.array([0.26, 1.1]), np.array([0.30, 1.62]), np.array([60, 64]), np.array([80, 90]))
    grid = notes_on_grid(notes, steps)
    assert list(grid.onsets) == [1, 4] and list(grid.offsets) == [2, 6]  # a short note lasts at least one step
    assert list(grid.pitches) == [60, 64]


@pytest.mark.parametrize("file_name", sorted(MELODIES))
def test_the_example_melodies_are_heard_at_their_written_pitch(file_name):
    """Pitch accuracy: at the middle of each written note, the lowest note heard sounding is that note (a flute or
    a voice adds octave overtones above it). basic-pitch's real model, on the files the app offers as examples."""
    from utils.audio import load_audio

    tune, bpm, _ = MELODIES[file_name]
    written = melody_notes(tune, bpm)
    audio, rate = load_audio(EXAMPLES / file_name, 22050)
    notes = load_model("transcriber").notes(audio, rate)
    right = 0
    for start, end, pitch in written:
        middle = (start + end) / 2
        sounding = notes.pitches[(notes.starts <= middle) & (notes.ends >= middle)]
        right += bool(sounding.size) and int(sounding.min()) == pitch
    assert right / len(written) >= 0.9, (right, len(written))


def test_write_music_midi_gives_a_tempo_mapped_midi_and_a_score(tmp_path):
    made = write_music_midi(EXAMPLES / "melody_twinkle_flute.ogg", tmp_path, "twinkle", paper="letter")
    assert made.midi.name == "twinkle_notes.mid" and made.notes > 10
    assert 80 <= made.bpm <= 110  # the tune is at 96 bpm
    midi = mido.MidiFile(str(made.midi))
    tempos = [m for m in midi.tracks[0] if m.type == "set_tempo"]
    assert len(tempos) >= 10  # a tempo per tracked beat
    texts = [m.text for m in midi.tracks[0] if m.type == "text"]
    assert any("Generated with AI" in t and "basic-pitch" in t for t in texts)
    assert len(pretty_midi.PrettyMIDI(str(made.midi)).instruments[0].notes) == made.notes
    assert made.score is not None and made.score.pdf.is_file() and made.score.musicxml.is_file()
    assert made.score.pdf.name == "twinkle_score_letter.pdf"
    assert made.downloads == [made.midi, made.score.musicxml, made.score.pdf]


def test_silence_gives_an_empty_midi_and_says_so(tmp_path):
    import soundfile as sf

    path = tmp_path / "quiet.wav"
    sf.write(str(path), np.zeros(3 * 22050, dtype=np.float32), 22050)
    made = write_music_midi(path, tmp_path, "quiet")
    assert made.notes == 0 and made.score is None and "No notes were heard" in made.note
    assert made.midi.is_file()


def test_without_basic_pitch_the_message_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(transcription, "transcriber_installed", lambda: False)
    fresh = transcription.Transcriber()
    with pytest.raises(ModelLoadError, match="--no-deps basic-pitch"):
        fresh.load()


def test_write_music_writes_the_notes_asked_for_and_nothing_else(tiny_musicgen_dir, tmp_path):
    """A result's products by name: MIDI of each variant and variant 1's score, no audio file, no page picture."""
    from models import musicgen
    from products.music import write_music

    result = musicgen.MusicGenModel(str(tiny_musicgen_dir), "cpu").generate(
        "lo-fi piano", musicgen.SamplingParams(duration=2.0, seed=3), 2)
    files = write_music(result, tmp_path, "piece", {"midi", "score"}, watermark="off")
    assert files.wavs == [] and files.mp3s == [] and files.params is None and files.picture is None
    assert [made.midi.name for made in files.notes] == [f"piece_seed3_v{i}_notes.mid" for i in (1, 2)]
    on_disk = sorted(p.name for p in tmp_path.iterdir())
    assert on_disk == sorted(f.name for f in files.downloads)
    assert not any(name.endswith(".png") or name.endswith(".wav") for name in on_disk)
