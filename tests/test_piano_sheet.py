"""Sheet music of a piano recording: Transkun through the app's loader (a tiny random model of its architecture, and
its real shipped weights), the notes on the recording's beats, the cover's writers, and what bad input gets."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

pytest.importorskip("transkun", reason="requirements-transcribe.txt installs it (./run.sh)")

from models.loading import load_model  # noqa: E402
from tests.test_app import tiny_app  # noqa: E402,F401 - the fixture
from models.piano_transcription import PianoTranscriber  # noqa: E402
from models.sources import ModelLoadError  # noqa: E402
from products.piano_sheet import NOT_PIANO_WARNING, sheet_music  # noqa: E402
from utils.audio import load_audio  # noqa: E402
from utils.midi import MIDI_RESOLUTION  # noqa: E402
from utils.render import render_midi  # noqa: E402

RATE = 44100


def piano_piece(seconds: float = 12.0, bpm: float = 100.0, seed: int = 0) -> pretty_midi.PrettyMIDI:
    """A piano piece on a steady beat: a chord every beat under a melody on the half-beats."""
    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    piano = pretty_midi.Instrument(program=0)
    beat = 60.0 / bpm
    t = 0.5
    while t + beat < seconds:
        root = int(rng.choice([48, 53, 55, 57]))
        for pitch in (root, root + 4, root + 7):
            piano.notes.append(pretty_midi.Note(velocity=70, pitch=pitch, start=t, end=t + beat * 0.9))
        for half in (0, 1):
            start = t + half * beat / 2
            piano.notes.append(pretty_midi.Note(velocity=90, pitch=int(rng.integers(67, 84)), start=start,
                                                end=start + beat * 0.45))
        t += beat
    midi.instruments.append(piano)
    return midi


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[pretty_midi.PrettyMIDI, str]:
    midi = piano_piece()
    path = tmp_path_factory.mktemp("recording") / "my_etude.wav"
    sf.write(str(path), render_midi(midi, RATE).audio, RATE)
    return midi, str(path)


def test_the_tiny_transkun_loads_through_the_apps_code_and_hears_notes(tiny_transkun_dir, recording):
    model = PianoTranscriber(str(tiny_transkun_dir), "cpu")
    audio, rate = load_audio(recording[1])
    notes = model.notes(audio, rate)
    assert model.loaded
    assert np.all(notes.ends > notes.starts) and np.all((notes.velocities >= 1) & (notes.velocities <= 127))
    assert np.all((notes.pitches >= 21) & (notes.pitches <= 108))
    assert notes.starts.max(initial=0) <= audio.shape[0] / rate + 1


def test_a_folder_without_weights_and_off_say_what_and_how(tmp_path):
    with pytest.raises(ModelLoadError, match="no .pt checkpoint"):
        PianoTranscriber(str(tmp_path), "cpu").load()
    with pytest.raises(ModelLoadError, match="turned off"):
        PianoTranscriber("off", "cpu").load()


@pytest.fixture(scope="module")
def shipped():
    """Transkun's own weights (in its wheel): the real model, on this machine's CPU."""
    model = load_model("piano_transcriber", "transkun", "cpu")
    model.load()
    return model


@pytest.fixture(scope="module")
def heard(shipped, recording):
    """What the real model hears in the recording, in the dtype it picks here (heard once for the tests below)."""
    audio, rate = load_audio(recording[1])
    return shipped.notes(audio, rate)


def test_the_real_weights_hear_a_rendered_piano_piece(heard, recording):
    """Onsets within 50 ms and the same pitch (mir_eval), on a piece FluidSynth plays: the measured quality
    (docs/performance-history.md) holds here."""
    import mir_eval

    midi, _ = recording
    notes = heard
    truth = sorted(midi.instruments[0].notes, key=lambda n: n.start)
    ref = np.array([[n.start, n.end] for n in truth])
    est = np.stack([notes.starts, notes.ends], axis=1)
    _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref, mir_eval.util.midi_to_hz(np.array([n.pitch for n in truth])), est,
        mir_eval.util.midi_to_hz(notes.pitches), onset_tolerance=0.05, offset_ratio=None)
    assert f1 >= 0.9, f1


def test_bfloat16_hears_the_notes_float32_hears(shipped, heard, recording, monkeypatch):
    """The narrower path picked on CPUs with bfloat16 instructions: the same notes as float32 on the same recording
    (onsets within 50 ms, the same pitch), and it says how it computed them; an unknown dtype is refused."""
    import mir_eval
    import torch

    from models import piano_transcription

    audio, rate = load_audio(recording[1])
    by_dtype = {torch.float32 if heard.computed == "float32" else torch.bfloat16: heard}  # one of them is heard
    for dtype in {torch.float32, torch.bfloat16} - set(by_dtype):
        monkeypatch.setattr(shipped, "compute_dtype", dtype)
        by_dtype[dtype] = shipped.notes(audio, rate)
    exact, narrow = by_dtype[torch.float32], by_dtype[torch.bfloat16]
    _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        np.stack([exact.starts, exact.ends], 1), mir_eval.util.midi_to_hz(exact.pitches),
        np.stack([narrow.starts, narrow.ends], 1), mir_eval.util.midi_to_hz(narrow.pitches), offset_ratio=None)
    assert f1 >= 0.98, f1
    assert exact.computed == "float32" and narrow.computed.startswith("bfloat16")
    monkeypatch.setenv(piano_transcription.DTYPE_ENV_VAR, "float32")
    assert piano_transcription.pick_compute_dtype(torch.device("cpu")) == torch.float32
    monkeypatch.setenv(piano_transcription.DTYPE_ENV_VAR, "int4")
    with pytest.raises(ValueError, match="PIANO_TRANSCRIPTION_DTYPE='int4'"):
        piano_transcription.pick_compute_dtype(torch.device("cpu"))


def test_sheet_music_on_the_recordings_beats(heard, recording, tmp_path):
    midi, path = recording
    audio, rate = load_audio(path)
    made = sheet_music(heard, audio, rate, path, tmp_path, {"midi", "score", "pages"},
                       paper="letter", transcriber="transkun", watermark="off", keep_song=False)
    assert made.bpm == pytest.approx(100, abs=3) and made.notes > 50 and made.warnings == []
    files = made.files
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files.files)  # nothing else
    tempo_map = mido.MidiFile(str(files.midis.tempo_map))
    assert tempo_map.ticks_per_beat == MIDI_RESOLUTION
    assert sum(1 for m in tempo_map.tracks[0] if m.type == "set_tempo") >= 15  # a tempo on every tracked beat
    xml = files.score.musicxml.read_text()
    assert "My Etude — piano score" in xml and "Transcribed from a piano recording" in xml
    assert files.score.pdf.read_bytes()[:4] == b"%PDF" and files.score.pages


def test_a_song_with_drums_gets_its_sheet_music_and_a_warning(shipped, chorale, tmp_path):
    audio, rate = load_audio(str(chorale[0]))  # a chorale with a pop drum groove
    audio = audio[:rate * 8]  # 8 s of it are enough to hear the drums
    made = sheet_music(shipped.notes(audio, rate), audio, rate, str(chorale[0]), tmp_path, {"midi"},
                       transcriber="transkun", watermark="off", keep_song=False)
    assert NOT_PIANO_WARNING in made.warnings and made.files.midis is not None


def test_no_notes_is_said_plainly(tmp_path):
    from models.transcription import Notes

    empty = Notes(*(np.zeros(0),) * 4)
    with pytest.raises(ValueError, match="No piano notes"):
        sheet_music(empty, np.zeros(RATE), RATE, None, tmp_path, watermark="off")


def test_the_page_event_gives_the_cover_outputs_and_the_actions_work_from_it(tiny_app, recording, monkeypatch):  # noqa: F811
    """"Make its sheet music" through the app's event; then Easier and the video work from its state."""
    from tests.test_app import no_progress

    monkeypatch.setattr(tiny_app.CONFIG, "piano_transcription_model", "transkun")
    outputs = tiny_app.piano_to_sheet_music(recording[1], False, "a4", progress=no_progress)
    cover, tempo_map, mix, roll, bpm, details, constant, musicxml, pdf, pages, state = outputs
    assert cover is None and mix is None and bpm == pytest.approx(100, abs=3)
    assert "as played" in details and pages and state["job"].transcribed
    from ui.piano import change_score

    easier = change_score(state, True, "letter")
    assert easier[1].endswith("score_easier_letter.pdf")


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda d: None, "Upload or record"),
     (lambda d: (d / "notes.txt").write_text("la") and d / "notes.txt", "Could not read"),
     (lambda d: sf.write(str(d / "quiet.wav"), np.zeros(RATE * 6), RATE) or d / "quiet.wav", "silent")],
    ids=["missing", "not-audio", "silence"],
)
def test_bad_recordings_get_clear_messages(tiny_app, tmp_path, make, message):  # noqa: F811
    import gradio as gr

    from tests.test_app import no_progress

    path = make(tmp_path)
    with pytest.raises(gr.Error, match=message):
        tiny_app.piano_to_sheet_music(None if path is None else str(path), False, "a4", progress=no_progress)


def test_the_command_line_writes_each_recordings_sheet_music(recording, tmp_path):
    from cli import main

    out = tmp_path / "scores"
    assert main(["piano-sheet-music", recording[1], "--out", str(out), "--products", "midi", "score",
                 "--watermark-model", "off"]) == 0
    row = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert row["status"] == "done" and row["bpm"] == pytest.approx(100, abs=3)
    folder = out / row["id"]
    assert sorted(Path(name).suffix for name in row["files"]) == [".mid", ".mid", ".musicxml", ".pdf"]
    assert all((folder / name).is_file() for name in row["files"])
    assert not list(folder.glob("*.wav")) and not list(folder.glob("*.png"))  # nothing written that was not asked


def test_one_note_is_said_as_one_note():
    from types import SimpleNamespace

    from ui.piano_sheet import score_line

    assert score_line(SimpleNamespace(easier=True, removed=1, hard_places=0)).endswith("(1 note left out).")
    assert score_line(SimpleNamespace(easier=True, removed=3, hard_places=0)).endswith("(3 notes left out).")
