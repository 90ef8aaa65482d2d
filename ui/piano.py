"""The "Piano cover" tab: a song in; a cover to listen to, a MIDI on the song's beat grid, a score, a video.

The model runs once per song (``piano_cover``); every other action (another instrument, the Easier score, the
video, a new mix) works from that cover's notes, kept in the session's state.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from models import pop2piano
from models.devices import pick_device
from models.sources import describe_source, how_to_fix
from products import piano as products
from products.piano import DEFAULT_BALANCE
from ui.tools import as_tool, page_api
from ui.piano_sheet import score_line, sheet_music_box, wire_sheet_music
from ui.fair import fair_share
from ui.runs import new_cancel_event, run_ended
from serving import backend
from serving.in_process import stops_on
from ui.i18n import say, spoken
from ui.share import Shareable, share_row, wire_share
from ui.streaming import bring_into_view
from ui.common import (
    CONFIG,
    MODEL_QUEUE,
    PAPER_CHOICES,
    ModelSteps,
    gpu_task,
    gradio_progress,
    run_folder,
    plain,
    technical_details,
    user_error,
    watermark_status,
    with_technical,
)
from utils.beats import essentia_available
from utils.midi import DEFAULT_INSTRUMENT, INSTRUMENTS
from utils.render import fluidsynth_available
from utils.plots import piano_roll_png
from utils.audio import audio_duration, check_duration
from utils.engraving import DEFAULT_PAPER, MAX_HAND_SPAN, MAX_NOTES_PER_HAND
from utils.video import DEFAULT_FORMAT, FORMATS

PIANO_COVER_HELP = (
    "Upload a song and get it arranged for piano, on the song's own beat: the cover to listen to, sheet music to "
    "print, a MIDI file for your music software and a falling-notes video."
)
STYLE_HINT = ("The arranger styles are 21 piano arrangers whose playing the model learned from; each one plays "
              "the same song differently. Try a few, or let it surprise you.")
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_SONGS = [  # public-domain pieces rendered with a drum groove (examples/make_examples.py)
    ("bach_bwv66.6_pop.ogg", pop2piano.DEFAULT_COMPOSER),
    ("bach_bwv7.7_pop.ogg", "composer7"),
    ("joplin_maple_leaf_rag_pop.ogg", "composer12"),
]
STYLE_CHOICES = [(pop2piano.composer_label(c), c) for c in (pop2piano.RANDOM_COMPOSER, *pop2piano.COMPOSERS)]
VIDEO_CHOICES = [("Landscape 16:9, 1280×720 (YouTube)", "landscape"), ("Vertical 9:16, 720×1280 (Shorts, TikTok)",
                                                                         "vertical")]
PIANO_API_DOCS = {
    "piano_cover": (
        "Arrange a song for piano with Pop2Piano. `song_path` (required): a wav, mp3, flac or ogg file of "
        f"{pop2piano.MIN_SONG_SECONDS:g} s up to the app's song limit (--max-song-seconds, default "
        f"{pop2piano.DEFAULT_MAX_SONG_SECONDS / 60:g} minutes); `style`: the arranger, composer1..composer21 or "
        f"random (default {pop2piano.DEFAULT_COMPOSER}); `balance`: the mix, 0 = original only, 1 = cover only "
        f"(default {DEFAULT_BALANCE:g}); `instrument`: the General MIDI instrument the cover is played on, one of "
        f"{', '.join(INSTRUMENTS)} (default {DEFAULT_INSTRUMENT}); `easier`: true for a score thinned to "
        f"{MAX_NOTES_PER_HAND} notes a hand within a tenth (default false); `paper`: \"a4\" (default) or "
        "\"letter\", the score's page size. Returns the cover WAV (44.1 kHz), the MIDI on the song's beat grid (a "
        "tempo per beat), the cover+original mix WAV, a piano-roll PNG, the tempo in BPM, a details line (a plain "
        "summary, then technical details), a constant-tempo MIDI, the score as MusicXML and as PDF, and the score "
        "pages as PNGs."
    ),
    "piano_cover_remix": (
        "Mix this session's last cover with its original again. `balance`: 0 = original only, 1 = cover only. "
        "Returns the mix WAV (44.1 kHz), or None before any cover."
    ),
    "piano_cover_instrument": (
        "Play this session's last cover on another instrument. `instrument`: one of "
        f"{', '.join(INSTRUMENTS)}; `balance`: 0-1, the mix with the original. Returns the cover WAV, its MIDI on "
        "the beat grid (program set), the mix WAV and the constant-tempo MIDI."
    ),
    "piano_cover_score": (
        "Engrave this session's last cover again. `easier`: true = at most "
        f"{MAX_NOTES_PER_HAND} notes per hand at once, within a tenth ({MAX_HAND_SPAN} semitones); `paper`: "
        "\"a4\" or \"letter\". Returns the MusicXML, the PDF, the page PNGs and a line about the score."
    ),
    "piano_cover_video": (
        "A falling-notes video (MP4, H.264 + AAC, 30 fps) of this session's last cover. `instrument`: as above; "
        f"`balance`: 0 = only the song, 1 = only the piano (default {DEFAULT_BALANCE:g}); `video_format`: landscape "
        "(1280x720, all 88 keys) or vertical (720x1280, the keyboard zoomed to the notes the cover plays). The video "
        "opens with the song's title and the arranger style. Returns the MP4."
    ),
    "piano_to_sheet_music": (
        "Sheet music of a piano recording: its notes as played, heard by Transkun V2, on the recording's own beats. "
        "`recording_path` (required): a wav, mp3, flac or ogg file of a piano alone, "
        f"{pop2piano.MIN_SONG_SECONDS:g} s up to the app's song limit; `easier`: true for a score thinned to "
        f"{MAX_NOTES_PER_HAND} notes a hand within a tenth; `paper`: \"a4\" (default) or \"letter\". Returns the same "
        "outputs as /piano_cover, the cover's audio and mix None: the MIDI on the recording's beats, a piano-roll "
        "PNG, the tempo, details, a constant-tempo MIDI, the MusicXML, the PDF and the page PNGs."
    ),
}
PIANO_TOOL_DOCS = {job: PIANO_API_DOCS[job] for job in ("piano_cover", "piano_to_sheet_music")}  # a tool call
# stands alone; over the API, a session's later calls work from its last cover or sheet music:
PIANO_API_DOCS["piano_cover"] += (" /piano_cover_instrument, /piano_cover_score, /piano_cover_video and "
                                  "/piano_cover_remix then work from this session's cover without running the model "
                                  "again.")
PIANO_API_DOCS["piano_to_sheet_music"] += (" The session's other piano actions (/piano_cover_score, "
                                           "/piano_cover_instrument, /piano_cover_video) then work from it.")


def piano_cover_status() -> str:
    """One line on where the piano model comes from and what renders the audio (no network)."""
    try:
        device = str(pick_device(CONFIG.device))
    except ValueError as e:
        device = f"⚠️ {e}"
    source = describe_source(CONFIG.piano_model)
    lines = [f"**Model:** {source} · **device:** {device}"]
    if "missing" in source:  # what is missing, and how to provide it
        lines.append(how_to_fix(CONFIG.piano_model, pop2piano.PIANO_COVER_ENV_VAR, pop2piano.PIANO_COVER_CLI_FLAG))
    if not essentia_available():
        lines.append("⚠️ essentia is not installed: beats are tracked with librosa (less accurate).")
    if not fluidsynth_available():
        lines.append("⚠️ FluidSynth is not installed: the piano is rendered with sine tones "
                     "(`apt-get install libfluidsynth3`).")
    lines.append(watermark_status())
    return "  \n".join(lines)




@gpu_task("piano_cover")
def cover_on_gpu(model: str, song: Any, sample_rate: int, style: str, **run: Any) -> pop2piano.PianoCover:
    """Pop2Piano's step of a cover (the one that needs the model, and the GPU on ZeroGPU)."""
    return backend().cover(model, song, sample_rate, style, **run)


def make_cover(song_path: str | None, style: str, balance: float, instrument: str, easier: bool, paper: str,
               progress: gr.Progress, cancel: threading.Event | None = None,
               ) -> tuple[pop2piano.PianoCover, products.CoverJob, products.CoverFiles]:
    """The cover job (``products.make_cover``) with the page's settings, its model step on the GPU on ZeroGPU; it
    stops at its next decode step once ``cancel`` is set."""
    return products.make_cover(CONFIG.piano_model, song_path, style, run_folder("piano-cover"),
                               products.PAGE_COVER_PRODUCTS, instrument=instrument, balance=balance,
                               easier=bool(easier), paper=paper, max_seconds=CONFIG.max_song_seconds,
                               watermark=CONFIG.watermark_model, cancel=cancel, progress=gradio_progress(progress),
                               through=ModelSteps(cover=cover_on_gpu))


@spoken
@fair_share
def piano_cover(
    song_path: str | None,
    style: str,
    balance: float = DEFAULT_BALANCE,
    instrument: str = DEFAULT_INSTRUMENT,
    easier: bool = False,
    paper: str = DEFAULT_PAPER,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> list[Any]:
    """Arrange a pop song for piano (Pop2Piano), with a MIDI on the song's own beats and printable sheet music.

    Args:
        song_path: the song, a wav, mp3, flac or ogg file of 3 s up to the app's song limit (10 minutes by default).
        style: the arranger style, composer1 to composer21, or random.
        balance: the mix of the cover with the song, 0 (only the song) to 1 (only the piano).
        instrument: the General MIDI instrument the cover is played on, e.g. "Acoustic grand piano", "Harpsichord".
        easier: true for a score a pianist can play as written (at most 4 notes a hand, within a tenth).
        paper: the score's page size, "a4" or "letter".

    Returns:
        the cover (44.1 kHz WAV), the MIDI on the song's beats (a tempo per beat), the cover mixed with the song
        (WAV), a piano-roll PNG, the tempo (BPM), details (markdown), a constant-tempo MIDI, the score as MusicXML
        and PDF, and the score's pages (PNG).
    """
    cancel = new_cancel_event(request, "piano")
    try:
        cover, job, made = make_cover(song_path, style, balance, instrument, easier, paper, progress, cancel)
        roll = piano_roll_png(
            cover.midi, job.path("piano_roll.png"), beat_times=cover.beats.times,
            title=f"{job.style} · {cover.beats.bpm:.1f} BPM · {cover.n_notes} notes",
        )
    except Exception as e:  # noqa: BLE001 - every failure becomes a message; the app keeps serving
        raise user_error(e) from e
    finally:
        run_ended(request, "piano", cancel)
    assert made.midis is not None and made.audio and made.mix and made.score is not None
    if cover.n_notes == 1:
        summary = say(f"{job.title}, arranged in the style of {job.style}: 1 note at {cover.beats.bpm:.0f} BPM.")
    else:
        summary = say(f"{job.title}, arranged in the style of {job.style}: {cover.n_notes} notes at "
                      f"{cover.beats.bpm:.0f} BPM.")
    summary += " " + score_line(made.score)
    technical = [
        f"Style token `{cover.composer}`; {cover.n_chunks} chunks of {pop2piano.BEATS_PER_CHUNK} beats; beats from "
        f"{cover.beats.backend} (first beat at {cover.grid.first_beat:.2f} s).",
        f"MIDI: a tempo change on each of the song's {cover.beats.times.size} beats, so its bars line up with the "
        "song in a DAW; the constant-tempo file is for tools that ignore tempo changes.",
        f"Rendered with {made.renderer}.",
        *(w for w in (*cover.warnings, made.warning) if w),
        *([] if "Not watermarked" in made.warning else ["Its audio (cover, mix, video) carries the app's inaudible "
                                                        "AudioSeal watermark (check one under “Check a file”)."]),
    ]
    details = with_technical(summary, technical)
    state = {"job": job, "instrument": instrument}
    return [
        str(made.audio), str(made.midis.tempo_map), str(made.mix), str(roll),
        round(cover.beats.bpm, 2), details, str(made.midis.constant),
        str(made.score.musicxml), str(made.score.pdf),
        [str(p) for p in made.score.pages], state,
    ]


def need_cover(state: dict[str, Any] | None) -> products.CoverJob:
    """The session's last cover; raises ValueError before there is one."""
    if not state or "job" not in state:
        raise ValueError("Make a piano cover first: this works from the last cover of this page.")
    return state["job"]


@spoken
def remix(state: dict[str, Any] | None, balance: float) -> str | None:
    """Mix the last cover with the original again at a new balance (0 = original, 1 = cover)."""
    if not state:
        return None
    try:
        job = need_cover(state)
        instrument = state.get("instrument", DEFAULT_INSTRUMENT)
        return str(products.write_cover(job, {"mix"}, instrument, float(balance)).mix)
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e


@spoken
def change_instrument(state: dict[str, Any] | None, instrument: str, balance: float = DEFAULT_BALANCE) -> list[Any]:
    """Play the last cover on ``instrument``: its audio, MIDI files and mix (the notes are not made again)."""
    if not state:  # before any cover: the choice applies to the next one
        return [gr.skip()] * 5
    try:
        job = need_cover(state)
        made = products.write_cover(job, {"midi", "audio", "mix"}, instrument, float(balance))
        assert made.midis is not None
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e
    return [str(made.audio), str(made.midis.tempo_map), str(made.mix), str(made.midis.constant),
            {**state, "instrument": instrument}]


@spoken
def change_score(state: dict[str, Any] | None, easier: bool, paper: str = DEFAULT_PAPER) -> list[Any]:
    """Engrave the last cover again, full or Easier, on A4 or Letter."""
    if not state:  # before any cover: the choice applies to the next one
        return [gr.skip()] * 4
    try:
        score = products.write_cover(need_cover(state), {"score", "pages"}, easier=bool(easier), paper=paper).score
        assert score is not None
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e
    return [str(score.musicxml), str(score.pdf), [str(p) for p in score.pages], score_line(score)]


@spoken
@fair_share
def make_video(
    state: dict[str, Any] | None,
    instrument: str = DEFAULT_INSTRUMENT,
    balance: float = DEFAULT_BALANCE,
    video_format: str = DEFAULT_FORMAT,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> str:
    """The falling-notes video of the last cover, on ``instrument``, with the original mixed in at ``balance``; it
    stops at its next frame when the page closes."""
    cancel = new_cancel_event(request, "piano-video")
    try:
        if video_format not in FORMATS:
            raise ValueError(f"Unknown video format {video_format!r}; choose one of {', '.join(FORMATS)}.")
        job = need_cover(state)
        path = products.write_cover(job, {"video"}, instrument, video_balance=float(balance), video_format=video_format,
                                    progress=stops_on(gradio_progress(progress), cancel)).video
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e
    finally:
        run_ended(request, "piano-video", cancel)
    return str(path)


def keep_cover_state(state: dict[str, Any], copy: Callable[[str], str]) -> dict[str, Any]:
    """A cover's state as a share keeps it: the song it mixes with copied with it."""
    job = state["job"]
    return {**state, "job": dataclasses.replace(job, song_wav=Path(copy(job.song_wav)) if job.song_wav else None)}


def own_cover_state(state: dict[str, Any]) -> dict[str, Any]:
    """A shared cover's state as its viewer gets it: what they make from it goes to a folder of their own."""
    return {**state, "job": dataclasses.replace(state["job"], out=run_folder("shared-cover"))}


@spoken
def check_song_upload(path: str | None) -> tuple[Any, str]:
    """When a song arrives: refuse what cannot be a song (not audio, too short, too long) at once, with the reason
    beside the upload; returns (the upload, kept or cleared, and the line beside it)."""
    if not path:
        return gr.skip(), ""
    try:
        check_duration(audio_duration(path), pop2piano.MIN_SONG_SECONDS, CONFIG.max_song_seconds)
    except ValueError as e:
        return None, "⚠️ " + plain(say(str(e)))
    return gr.skip(), ""


def example_songs() -> list[list[str]]:
    """The example songs that are present, as [path, style] rows for gr.Examples."""
    return [[str(EXAMPLES_DIR / name), style] for name, style in EXAMPLE_SONGS if (EXAMPLES_DIR / name).is_file()]


def build_piano_cover_tab() -> tuple[gr.Markdown, gr.Markdown, tuple[gr.Button, gr.Markdown]]:
    """The "Piano cover" tab. Returns its status line (in Technical details) and the sheet-music box's, both filled
    in when the page loads, and its Share row (``ui.share``)."""
    gr.Markdown(PIANO_COVER_HELP, elem_classes="tab-intro")
    with gr.Row():
        with gr.Column():
            song = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Song (wav, mp3, flac, ogg)",
                            elem_id="piano-song")
            song_note = gr.Markdown(elem_id="piano-song-note")
            style = gr.Dropdown(STYLE_CHOICES, value=pop2piano.DEFAULT_COMPOSER, label="Arranger style",
                                info=STYLE_HINT, elem_id="piano-style")
            instrument = gr.Dropdown(list(INSTRUMENTS), value=DEFAULT_INSTRUMENT, label="Played on",
                                     elem_id="piano-instrument")
            balance = gr.Slider(0.0, 1.0, value=DEFAULT_BALANCE, step=0.05, label="Mix with the song",
                                info="0 = only the song, 1 = only the piano", elem_id="piano-balance")
            with gr.Row():
                easier = gr.Checkbox(False, label=f"Easier score (at most {MAX_NOTES_PER_HAND} notes per hand, "
                                     "within a tenth)", elem_id="piano-easier")
                paper = gr.Radio(PAPER_CHOICES, value=DEFAULT_PAPER, label="Paper", elem_id="piano-paper")
            run = gr.Button("Make a piano cover", variant="primary", elem_id="piano-run")
            recording, sheet_run, sheet_status = sheet_music_box()
            examples = example_songs()
            if examples:
                gr.Examples(examples, inputs=[song, style], label="Examples (public-domain pieces with a beat)",
                            elem_id="piano-examples")
        with gr.Column():
            cover_audio = gr.Audio(type="filepath", label="Cover", interactive=False, elem_id="piano-audio")
            mix_audio = gr.Audio(type="filepath", label="Cover + original", interactive=False, elem_id="piano-mix")
            details = gr.Markdown(elem_id="piano-cover-details")
            pdf_file = gr.File(label="Score (PDF, to print)", interactive=False, elem_id="piano-pdf",
                               elem_classes="downloads")
            musicxml_file = gr.File(label="Score (MusicXML, for MuseScore)", interactive=False,
                                    elem_id="piano-musicxml", elem_classes="downloads")
            score_info = gr.Markdown(elem_id="piano-score-info")
            with gr.Row():
                midi_file = gr.File(label="MIDI on the song's beats (for music software)", interactive=False,
                                    scale=3, elem_id="piano-midi", elem_classes="downloads")
                tempo = gr.Number(value=None, label="Tempo (BPM)", interactive=False, scale=1, visible=False,
                                  elem_id="piano-tempo")
            constant_midi = gr.File(label="MIDI at one steady tempo (for older software)", interactive=False,
                                    elem_id="piano-midi-constant", elem_classes="downloads")
            share = share_row("piano")
    with gr.Accordion("Falling-notes video", open=False):
        with gr.Row():
            video_format = gr.Radio(VIDEO_CHOICES, value=DEFAULT_FORMAT, label="Format", elem_id="piano-video-format")
            video_balance = gr.Slider(0.0, 1.0, value=DEFAULT_BALANCE, step=0.05, label="Soundtrack: mix with the song",
                                      info="0 = only the song, 1 = only the piano", elem_id="piano-video-balance")
            video_run = gr.Button("Make the video", elem_id="piano-video-run")
        video = gr.Video(label="Video (MP4, 30 fps)", interactive=False, elem_id="piano-video")
    score_pages = gr.Gallery(label="Score", columns=1, height="auto", object_fit="contain", allow_preview=False,
                             interactive=False, elem_id="piano-score")  # an output: never an upload box
    roll = gr.Image(type="filepath", label="Piano roll", interactive=False, elem_id="piano-roll")
    status = technical_details("piano")
    state = gr.State(None)

    song.upload(check_song_upload, inputs=song, outputs=[song, song_note], api_visibility="private")
    song.clear(lambda: "", outputs=song_note, api_visibility="private", queue=False)
    bring_into_view(run, "piano-audio")
    covered = run.click(
        piano_cover,
        inputs=[song, style, balance, instrument, easier, paper],
        outputs=[cover_audio, midi_file, mix_audio, roll, tempo, details, constant_midi, musicxml_file, pdf_file,
                 score_pages, state],
        api_visibility=page_api(), api_name="piano_cover",
        api_description=PIANO_API_DOCS["piano_cover"],
        show_progress_on=[cover_audio, roll],
        concurrency_id=MODEL_QUEUE,
    )
    as_tool("piano_cover", piano_cover, [song, style, balance, instrument, easier, paper],
            [cover_audio, midi_file, mix_audio, roll, tempo, details, constant_midi, musicxml_file, pdf_file,
             score_pages, state], PIANO_TOOL_DOCS["piano_cover"], MODEL_QUEUE)
    covered.success(lambda: gr.Number(visible=True), outputs=tempo, api_visibility="private", queue=False)
    wire_sheet_music(recording, sheet_run, [cover_audio, midi_file, mix_audio, roll, tempo, details, constant_midi,
                                            musicxml_file, pdf_file, score_pages, state], easier, paper,
                     PIANO_API_DOCS["piano_to_sheet_music"], PIANO_TOOL_DOCS["piano_to_sheet_music"])
    balance.release(remix, inputs=[state, balance], outputs=mix_audio, api_visibility=page_api(),
                    api_name="piano_cover_remix", api_description=PIANO_API_DOCS["piano_cover_remix"])
    instrument.input(change_instrument, inputs=[state, instrument, balance],
                     outputs=[cover_audio, midi_file, mix_audio, constant_midi, state],
                     api_visibility=page_api(), api_name="piano_cover_instrument",
                     api_description=PIANO_API_DOCS["piano_cover_instrument"])
    gr.on([easier.input, paper.input], change_score, inputs=[state, easier, paper],
          outputs=[musicxml_file, pdf_file, score_pages, score_info],
          api_visibility=page_api(), api_name="piano_cover_score", api_description=PIANO_API_DOCS["piano_cover_score"])
    video_run.click(make_video, inputs=[state, instrument, video_balance, video_format], outputs=video,
                    api_visibility=page_api(), api_name="piano_cover_video",
                    api_description=PIANO_API_DOCS["piano_cover_video"],
                    concurrency_id="video", concurrency_limit=1)
    shareable = Shareable(
        "piano", [cover_audio, midi_file, mix_audio, roll, tempo, details, constant_midi, musicxml_file, pdf_file,
                  score_pages], state, keep_state=keep_cover_state, reopen_state=own_cover_state,
        restore=lambda values: [*values[:4], gr.Number(value=values[4], visible=values[4] is not None), *values[5:]])
    wire_share(share, shareable)
    return status, sheet_status, shareable
