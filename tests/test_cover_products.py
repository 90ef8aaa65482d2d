"""A cover people can publish: tempo-mapped MIDI, score, instruments, video and provenance.

Every test works from one real cover: Bach's chorale BWV 66.6 with a drum beat, arranged by the tiny random
Pop2Piano through the app's own model wrapper (random weights make plenty of notes on the beat grid).
"""

from __future__ import annotations

from collections import Counter

import mido
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from models.loading import load_model
from products import piano as products
from utils.audio import read_tags, write_wav
from utils.midi import INSTRUMENTS, MIDI_RESOLUTION, notes_of, pickup_beats
from utils.engraving import MAX_HAND_SPAN, MAX_NOTES_PER_HAND, easier, hard_places, onset_groups, split_hands
import subprocess

from utils.video import FORMATS, KEYBOARD_SHARE, FallingNotes, ffmpeg_exe, keyboard_layout, probe


def read_frame(path, seconds: float, width: int, height: int) -> np.ndarray:
    """The video frame shown at ``seconds``, decoded by ffmpeg, as [height, width, 3] uint8."""
    command = [ffmpeg_exe(), "-loglevel", "error", "-ss", f"{seconds:.3f}", "-i", str(path), "-frames:v", "1",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8)[: width * height * 3].reshape(height, width, 3)


def full_frame(notes: FallingNotes, index: int) -> np.ndarray:
    """Frame ``index`` of the falling notes as one [height, width, 3] picture: the roll above the keys."""
    return np.concatenate(notes.frame(index), axis=0)


@pytest.fixture(scope="module")
def made(tiny_pop2piano_dir, chorale, tmp_path_factory):
    """(cover, job): the chorale arranged once; its products go to a fresh folder."""
    model = load_model("piano", str(tiny_pop2piano_dir), "cpu")
    cover, song, sr = model.cover_file(str(chorale[0]), "composer5")
    out = tmp_path_factory.mktemp("cover-products")
    song_wav = write_wav(out / "bwv66_original.wav", song, sr)
    job = products.CoverJob(cover.grid, cover.beats.bpm, "Arranger 5", "tiny-pop2piano", "bwv66", out, song_wav,
                            song.shape[0] / sr)
    return cover, job


# ------------------------------------------------------------------------------------------------- MIDI
def test_tempo_map_puts_every_beat_on_its_tick_and_keeps_the_seconds(made):
    cover, job = made
    files = products.write_midis(job)
    midi = pretty_midi.PrettyMIDI(str(files.tempo_map))
    pickup = pickup_beats(job.grid)
    assert cover.beats.times[0] > 0.001 and pickup >= 1  # the chorale starts before its first tracked beat
    for i, beat in enumerate(cover.beats.times):  # tracked beat i sits at tick (pickup + i) * resolution
        assert midi.time_to_tick(beat) == (pickup + i) * MIDI_RESOLUTION
    raw = mido.MidiFile(str(files.tempo_map))
    onset_ticks, now = [], 0
    for message in raw.tracks[1]:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            onset_ticks.append(now)
    assert onset_ticks and all(t % (MIDI_RESOLUTION // 2) == 0 for t in onset_ticks)  # on the half-beat grid
    tempo_events = [m for m in raw.tracks[0] if m.type == "set_tempo"]
    assert len(tempo_events) >= cover.beats.times.size  # a tempo per beat
    signatures = [(m.numerator, m.denominator) for m in raw.tracks[0] if m.type == "time_signature"]
    assert signatures[-1] == (4, 4) and (pickup % 4 == 0 or signatures[0] == (pickup % 4, 4))
    # read back in seconds: the same notes at the same times as the cover (so the rendered audio is unchanged)
    got = sorted((n.pitch, n.start, n.end) for n in notes_of(midi))
    want = sorted((n.pitch, n.start, n.end) for n in notes_of(cover.midi))
    assert len(got) == len(want) == len(job.grid)
    assert max(max(abs(a[1] - b[1]), abs(a[2] - b[2])) for a, b in zip(got, want)) < 1e-3
    constant = pretty_midi.PrettyMIDI(str(files.constant))
    # a MIDI tempo is whole microseconds a beat: read back, the BPM is within that rounding (~1e-5 relative)
    assert constant.get_tempo_changes()[1].tolist() == pytest.approx([cover.beats.bpm], rel=1e-5)


def test_instrument_sets_the_program_and_changes_the_sound(made):
    _, job = made
    piano = products.write_audio(job, "Acoustic grand piano", 1.0)
    strings = products.write_audio(job, "Strings", 1.0)
    midis = products.write_midis(job, "Strings")
    for path in (midis.tempo_map, midis.constant):
        assert pretty_midi.PrettyMIDI(str(path)).instruments[0].program == INSTRUMENTS["Strings"]
    a, sr_a = sf.read(str(piano.cover))
    b, sr_b = sf.read(str(strings.cover))
    assert sr_a == sr_b == 44100 and a.shape == b.shape
    assert a.shape[0] / sr_a == pytest.approx(job.duration, abs=1e-3)
    spectrum = [np.abs(np.fft.rfft(x[: 44100 * 8])) for x in (a, b)]
    assert np.corrcoef(*spectrum)[0, 1] < 0.95  # a different timbre, not the piano again
    with pytest.raises(ValueError, match="Unknown instrument"):
        products.write_audio(job, "Kazoo")


# ------------------------------------------------------------------------------------------------ score
def xml_pitches(path) -> Counter:
    """The MIDI pitches of a MusicXML file's notes (a tied note counts once)."""
    from music21 import converter

    parsed = converter.parse(str(path))
    pitches: Counter = Counter()
    for element in parsed.recurse().notes:
        if element.tie is not None and element.tie.type != "start":
            continue
        for p in element.pitches:
            pitches[p.midi] += 1
    return pitches


def test_score_has_two_staves_and_the_midis_notes(made):
    _, job = made
    files = products.write_score(job)
    assert xml_pitches(files.musicxml) == Counter(int(p) for p in job.grid.pitches)
    from music21 import converter

    parsed = converter.parse(str(files.musicxml))
    assert len(parsed.parts) == 2
    clefs = [p.recurse().getElementsByClass("Clef").first().sign for p in parsed.parts]
    assert clefs == ["G", "F"]
    assert parsed.recurse().getElementsByClass("KeySignature").first() is not None
    text = files.musicxml.read_text()
    assert "<rights>Generated with AI" in text and "tiny-pop2piano" in text
    assert "<work-title>Bwv66 — piano arrangement</work-title>" in text
    assert files.pdf.read_bytes()[:4] == b"%PDF" and len(files.pages) >= 1
    from PIL import Image

    with Image.open(files.pages[0]) as page:
        ink = np.asarray(page.convert("L")) < 128
        assert page.size[0] == 1240 and ink.mean() > 0.01  # something was engraved


def ink_margins_mm(pdf_page) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in millimetres between a rendered PDF page's edges and its ink."""
    picture = np.asarray(pdf_page.render(scale=2).to_pil().convert("L"))
    ink = np.argwhere(picture < 200)
    height, width = picture.shape
    per_mm = width / (pdf_page.get_size()[0] / 72 * 25.4)
    return (ink[:, 1].min() / per_mm, ink[:, 0].min() / per_mm, (width - 1 - ink[:, 1].max()) / per_mm,
            (height - 1 - ink[:, 0].max()) / per_mm)


@pytest.mark.parametrize("paper,size_pt", [("a4", (595.3, 841.9)), ("letter", (612.0, 792.0))])
def test_score_prints_on_the_paper_chosen_inside_12_mm_margins(made, paper, size_pt):
    """Every PDF page has the paper's size, all its ink (staves, brace, title, credit) at least 12 mm from each
    edge; the title comes from the song's name, the style is the subtitle, and the PDF says what it is."""
    import pypdfium2 as pdfium

    _, job = made
    files = products.write_score(job, paper=paper)
    pdf = pdfium.PdfDocument(str(files.pdf))
    try:
        assert len(pdf) == len(files.pages) >= 1
        for number in range(len(pdf)):
            page = pdf[number]
            assert tuple(round(x, 1) for x in page.get_size()) == size_pt
            assert min(ink_margins_mm(page)) >= 12.0, (number, ink_margins_mm(page))
        first = pdf[0].get_textpage().get_text_range()
        assert "Bwv66 — piano arrangement" in first and "Arranger 5 style" in first
        assert "Generated with AI (Music demo) · tiny-pop2piano" in first  # the credit, whole, at the foot
        meta = pdf.get_metadata_dict()
    finally:
        pdf.close()
    assert meta["Title"] == "Bwv66 — piano arrangement" and "Arranger 5" in meta["Subject"]
    assert meta["Creator"].startswith("Music demo")


def test_no_note_outlasts_the_song(made):
    """Pop2Piano's last chunk reaches past the song; the cover's notes stop at the song's end."""
    cover, job = made
    assert job.grid.ends.max() <= job.duration + 1e-6
    assert max(n.end for n in notes_of(cover.midi)) <= job.duration + 1e-6


def test_cutting_notes_at_an_end_keeps_the_ones_before_it():
    from utils.notes import GridNotes

    grid = GridNotes(np.array([0, 2, 6, 9]), np.array([2, 8, 12, 11]), np.array([60, 62, 64, 65]),
                     np.array([80, 80, 80, 80]), np.arange(10) * 0.5)  # a step every half second
    cut = grid.cut_at(4.2)  # the last step at or before 4.2 s is step 8 (4.0 s)
    assert cut.onsets.tolist() == [0, 2, 6] and cut.offsets.tolist() == [2, 8, 8]
    assert cut.ends.max() <= 4.2


def test_easier_fits_every_chord_in_one_hand(made):
    _, job = made
    hands = split_hands(job.grid)
    assert hard_places(job.grid, hands) > 0  # random weights make chords no hand can play
    thin, thin_hands = easier(job.grid, hands)
    assert hard_places(thin, thin_hands) == 0
    for group in onset_groups(thin):
        for side in (True, False):
            chord = thin.pitches[group][thin_hands.right[group] == side]
            assert chord.size <= MAX_NOTES_PER_HAND
            assert chord.size == 0 or chord.max() - chord.min() <= MAX_HAND_SPAN
    files = products.write_score(job, easier=True)
    assert files.easier and files.removed == len(job.grid) - len(thin) > 0
    assert xml_pitches(files.musicxml) == Counter(int(p) for p in thin.pitches)


def test_hands_follow_the_music_not_a_fixed_split():
    """A scale climbing from G3 to G5 and back stays in the right hand while a bass holds C2-C3 below it."""
    from utils.notes import GridNotes

    melody = [55, 57, 59, 60, 62, 64, 65, 67, 69, 71, 72, 74, 76, 79, 76, 72, 67, 64, 60, 57, 55]
    rows = [[2 * i, 2 * i + 2, p, 80] for i, p in enumerate(melody)]
    rows += [[8 * i, 8 * i + 8, 36 + 12 * (i % 2), 70] for i in range(6)]
    grid = GridNotes.from_steps(np.array(rows), np.arange(120) * 0.25 + 0.5)
    hands = split_hands(grid)
    right = {int(p) for p, r in zip(grid.pitches, hands.right) if r}
    assert set(melody) <= right and {36, 48}.isdisjoint(right)


# ------------------------------------------------------------------------------------------------ video
def test_video_streams_length_and_a_note_on_its_key(made):
    cover, job = made
    path = products.write_video(job, "Acoustic grand piano", balance=0.5, fmt="vertical")
    info = probe(path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == FORMATS["vertical"]
    assert info.duration == pytest.approx(job.duration, abs=0.1)
    assert "Generated with AI" in info.tags.get("comment", "") and "tiny-pop2piano" in info.tags["comment"]

    width, height = FORMATS["vertical"]
    keys = keyboard_layout(width)
    grid = job.grid
    white = [i for i in range(len(grid)) if not keys[int(grid.pitches[i])].black
             and grid.ends[i] - grid.starts[i] >= 0.25]
    note = white[len(white) // 2]
    at = float(grid.starts[note] + 0.1)
    frame = read_frame(path, at, width, height)
    key = keys[int(grid.pitches[note])]
    x = (key.x0 + key.x1) // 2
    keyboard_top = height - int(round(height * KEYBOARD_SHARE["vertical"]))
    bar = frame[keyboard_top - 6, x].astype(int)
    assert bar.max() > 120  # a lit bar (blue or orange) just above the key, not the dark background
    silent = [p for p, k in keys.items() if not k.black and not np.any(
        (grid.pitches == p) & (grid.starts <= at + 1.0) & (grid.ends >= at - 0.1))]
    empty = frame[keyboard_top - 6, (keys[silent[0]].x0 + keys[silent[0]].x1) // 2].astype(int)
    assert empty.max() < 80  # a key with nothing falling onto it shows the background


def test_frames_are_drawn_where_the_note_is():
    notes = FallingNotes(np.array([1.0]), np.array([2.0]), np.array([60]), np.array([100]), np.array([True]), 3.0)
    keys = keyboard_layout(notes.width)
    x = (keys[60].x0 + keys[60].x1) // 2
    before = full_frame(notes, 15)  # 0.5 s: the bar is still falling, 0.5 s (a sixth of the roll) above the keys
    during = full_frame(notes, 45)  # 1.5 s: it reaches the keys, and the key is lit
    top = notes.roll_h
    assert before[top - 2, x].max() < 80 and before[top - 1 - int(0.6 * notes.pixels_per_second), x].max() > 120
    assert during[top - 2, x].max() > 120 and during[-5, x].tolist() != list(notes.keyboard[-5, x])


def test_vertical_video_zooms_to_the_keys_played_and_every_video_opens_with_its_title():
    starts, ends = np.array([0.5, 1.0, 5.0]), np.array([1.0, 2.0, 6.0])
    pitches = np.array([60, 64, 72])
    args = (starts, ends, pitches, np.array([90, 90, 90]), np.array([True, True, False]), 8.0)
    tall = FallingNotes(*args, "vertical", title="Rag Pop", subtitle="Piano · Arranger 7 style")
    low, high = tall.key_range
    assert low <= 60 - 12 and high >= 72 + 12 and high - low < 48  # an octave to spare, not all 88 keys
    assert set(tall.keys) == set(range(low, high + 1))
    wide = FallingNotes(*args, "landscape", title="Rag Pop")
    assert len(wide.keys) == 88
    for video in (tall, wide):  # the title shows at first (white letters), and is gone after it fades
        band = slice(video.roll_h // 3 - video.roll_h // 20, video.roll_h // 3 + video.roll_h // 10)
        opening = full_frame(video, 0)[band]
        later = full_frame(video, int(6.5 * 30))[band]
        assert (opening.min(axis=-1) > 230).mean() > 0.002 and (later.min(axis=-1) > 230).mean() == 0


# ------------------------------------------------------------------------------------------- provenance
def test_every_file_says_it_was_made_with_ai(made):
    _, job = made
    audio = products.write_audio(job, "Harp", 0.6)
    for wav in (audio.cover, audio.mix):
        tags = read_tags(wav)
        assert "Generated with AI" in tags["comment"] and "tiny-pop2piano" in tags["comment"]
        assert "Arranger 5" in tags["comment"] and tags["date"] == job.created
    midis = products.write_midis(job, "Harp")
    texts = [m.text for m in mido.MidiFile(str(midis.tempo_map)).tracks[0] if m.type == "text"]
    assert any("Generated with AI" in t and "Harp" in t for t in texts)
    assert any("Generated with AI" in t.text for t in pretty_midi.PrettyMIDI(str(midis.constant)).text_events)


def test_a_chord_is_spelled_as_music21_spells_it_each_time_in_pitches_of_its_own():
    """The remembered spelling is music21's own for the same numbers, and each chord gets fresh Pitch objects (the
    score's notes are changed in place later: ties, accidentals)."""
    from music21 import chord

    from utils.engraving import spelled_chord

    for pitches in [(60, 63, 66), (61, 65, 68, 70), (44, 51, 56, 60), (60, 63, 66)]:
        first, again = spelled_chord(pitches), spelled_chord(pitches)
        expected = [p.nameWithOctave for p in chord.Chord(list(pitches)).pitches]
        assert [p.nameWithOctave for p in first] == expected == [p.nameWithOctave for p in again]
        assert [p.midi for p in first] == list(pitches)
        assert all(a is not b for a, b in zip(first, again))


def test_engraving_from_several_threads_at_once(made, tmp_path):
    """The app engraves in worker threads; verovio's fonts are process-wide and must survive concurrent use."""
    from concurrent.futures import ThreadPoolExecutor

    from utils.engraving import engrave

    musicxml = products.write_score(made[1]).musicxml
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: engrave(musicxml, tmp_path / f"{i}.pdf", tmp_path / f"p{i}"), range(8)))
    assert all(r.pdf.read_bytes()[:4] == b"%PDF" and r.pages for r in results)


# ------------------------------------------------------------------------------------ products by name
@pytest.mark.parametrize(
    ("asked", "suffixes"),
    [
        ({"mix"}, [".mp3"]),
        ({"score"}, [".musicxml", ".pdf"]),
        ({"midi", "video"}, [".mid", ".mid", ".mp4"]),
    ],
    ids=["mix-only-as-mp3", "score-without-pages", "midi-and-video"],
)
def test_write_cover_writes_what_was_asked_and_nothing_else(made, tmp_path, asked, suffixes):
    """The command line's way: the song held in memory, each product written by name; the folder then holds exactly
    those files (no render, no song, no page pictures written and deleted)."""
    cover, job = made
    song = job.song_audio()
    bare = products.CoverJob(job.grid, job.bpm, job.style, job.model, job.stem, tmp_path, None, job.duration,
                             song=song)
    files = products.write_cover(bare, asked, "Harpsichord", balance=0.5, audio_format="mp3", video_balance=1.0)
    on_disk = sorted(p for p in tmp_path.iterdir())
    assert on_disk == sorted(files.files)
    assert sorted(p.suffix for p in on_disk) == sorted(suffixes)
    if "video" in asked:
        info = probe(files.video)
        assert info.audio_codec == "aac" and info.duration == pytest.approx(job.duration, abs=0.1)
    with pytest.raises(ValueError, match="Unknown product"):
        products.write_cover(bare, {"midi", "poster"})


def test_the_command_line_deletes_nothing_it_wrote():
    """Products are chosen by name: nothing is written and then deleted (batch/jobs.py unlinks no file)."""
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / "batch" / "jobs.py").read_text(encoding="utf-8")
    assert ".unlink(" not in source


def test_the_video_title_card_names_the_instrument(made, monkeypatch):
    """A harpsichord cover's video says "Harpsichord" on its title card, not "Piano"."""
    from utils import video

    subtitles = []
    real = video.FallingNotes

    def spy(*args, **kwargs):
        subtitles.append(kwargs["subtitle"])
        return real(*args, **kwargs)

    monkeypatch.setattr(video, "FallingNotes", spy)
    monkeypatch.setattr(video, "encode_video", lambda notes, soundtrack, path, tags=None, progress=None: path)
    _, job = made
    products.write_video(job, "Harpsichord")
    products.write_video(job)
    assert subtitles == ["Harpsichord · Arranger 5 style", "Piano · Arranger 5 style"]
