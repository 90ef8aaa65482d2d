"""On the Piano tab: "Already piano? Make its sheet music". A piano recording in; its notes (Transkun) on its own
beats, in the same outputs as a cover (MIDI, score, pages, piano roll), so that Easier, the paper, another instrument
and the video then work from it as from a cover."""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr

from models.loading import unavailable
from models.piano_transcription import LABEL
from models.transcription import Notes
from products import piano as products
from products.piano_sheet import PAGE_SHEET_PRODUCTS, SheetMusic, make_sheet_music
from ui.tools import as_tool, page_api
from serving import backend
from ui.common import CONFIG, MODEL_QUEUE, ModelSteps, gpu_task, plain, run_folder, user_error, with_technical
from ui.fair import fair_share
from ui.runs import new_cancel_event, run_ended
from ui.i18n import say, spoken
from utils.engraving import DEFAULT_PAPER, MAX_NOTES_PER_HAND
from utils.midi import grid_to_pretty_midi
from utils.plots import piano_roll_png

SHEET_HELP = ("Already piano? Upload or record a piano recording (your own playing, a lesson, a concert) and get its "
              "sheet music: the notes as played, on the recording's own beats, with a MIDI file. The score, the "
              "instrument and the video above then work from it.")


def score_line(files: products.ScoreFiles) -> str:
    """What the page says about the score's playability."""
    if files.easier and files.removed == 1:
        return say(f"Score: the easier version, at most {MAX_NOTES_PER_HAND} notes per hand within a tenth "
                   "(1 note left out).")
    if files.easier:
        return say(f"Score: the easier version, at most {MAX_NOTES_PER_HAND} notes per hand within a tenth "
                   f"({files.removed} notes left out).")
    if files.hard_places == 1:
        return say(f"Score: 1 place asks one hand for more than {MAX_NOTES_PER_HAND} notes or a stretch over a "
                   "tenth; tick Easier score for a version a pianist can play as written.")
    if files.hard_places:
        return say(f"Score: {files.hard_places} places ask one hand for more than {MAX_NOTES_PER_HAND} notes or a "
                   "stretch over a tenth; tick Easier score for a version a pianist can play as written.")
    return say(f"Score: every chord fits a hand ({MAX_NOTES_PER_HAND} notes or fewer, within a tenth).")


@gpu_task("piano_to_sheet_music")
def notes_on_gpu(model: str, audio: Any, sample_rate: int, **run: Any) -> Notes:
    """The piano transcriber's step (the one that needs the model, and the GPU on ZeroGPU)."""
    return backend().piano_notes(model, audio, sample_rate, **run)


def sheet_music_job(recording_path: str | None, easier: bool, paper: str, progress: gr.Progress,
                    cancel: threading.Event | None = None) -> tuple[Notes, SheetMusic]:
    """The sheet-music job (``products.piano_sheet.make_sheet_music``) with the page's settings, its model step on
    the GPU on ZeroGPU; it stops at the next segment once ``cancel`` is set."""
    return make_sheet_music(CONFIG.piano_transcription_model, recording_path, run_folder("piano-sheet-music"),
                            PAGE_SHEET_PRODUCTS, easier=bool(easier), paper=paper,
                            max_seconds=CONFIG.max_song_seconds, watermark=CONFIG.watermark_model, cancel=cancel,
                            progress=lambda fraction, message: progress(fraction, desc=say(message)),
                            through=ModelSteps(piano_notes=notes_on_gpu))


@spoken
@fair_share
def piano_to_sheet_music(
    recording_path: str | None,
    easier: bool = False,
    paper: str = DEFAULT_PAPER,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> list[Any]:
    """Sheet music of a piano recording: its notes as played (Transkun), on the recording's own beats.

    Args:
        recording_path: a piano recording, a wav, mp3, flac or ogg file of 3 s up to the app's song limit (10
            minutes by default); a piano alone (a song with drums or singing is better made into a piano cover).
        easier: true for a score a pianist can play as written (at most 4 notes a hand, within a tenth).
        paper: the score's page size, "a4" or "letter".

    Returns:
        as piano_cover, without the cover's audio and mix (None): the MIDI on the recording's beats, a piano-roll PNG,
        the tempo (BPM), details (markdown), a constant-tempo MIDI, the score as MusicXML and PDF, and its pages.
    """
    cancel = new_cancel_event(request, "piano-sheet")
    try:
        notes, made = sheet_music_job(recording_path, easier, paper, progress, cancel)
        job, files = made.job, made.files
        assert files.midis is not None and files.score is not None
        roll = piano_roll_png(grid_to_pretty_midi(job.grid, job.bpm), job.path("piano_roll.png"),
                              beat_times=job.grid.beat_times(int(job.grid.onsets.max()) // 2 + 2),
                              title=f"{made.notes} notes · {made.bpm:.1f} BPM")
    except Exception as e:  # noqa: BLE001 - every failure becomes a message; the app keeps serving
        raise user_error(e) from e
    finally:
        run_ended(request, "piano-sheet", cancel)
    heard = (say(f"{job.title}: 1 note at {made.bpm:.0f} BPM, as played.") if made.notes == 1
             else say(f"{job.title}: {made.notes} notes at {made.bpm:.0f} BPM, as played."))
    summary = heard + " " + score_line(files.score) + "".join("  \n⚠️ " + say(w) for w in made.warnings)
    computed = f", computed in {notes.computed}" if notes.computed else ""
    technical = [f"Notes heard by {LABEL} (weights `{CONFIG.piano_transcription_model}`{computed}), with their "
                 "velocities; beats tracked in the recording, a tempo change on every beat of the MIDI."]
    state = {"job": job, "instrument": products.DEFAULT_INSTRUMENT}
    return [None, str(files.midis.tempo_map), None, str(roll), round(made.bpm, 2), with_technical(summary, technical),
            str(files.midis.constant), str(files.score.musicxml), str(files.score.pdf),
            [str(p) for p in files.score.pages], state]


@spoken
def sheet_music_status() -> str:
    """Per page load: what the sheet-music box says when its model cannot be used here, else ""."""
    why = unavailable("piano_transcriber", CONFIG.piano_transcription_model)
    return say("⚠️ Sheet music of recordings is not available on this server:") + f" {plain(why)}" if why else ""


def sheet_music_box() -> tuple[gr.Audio, gr.Button, gr.Markdown]:
    """The box in the Piano tab's controls: (the recording, its button, its status line, filled in on load)."""
    with gr.Accordion("Already piano? Make its sheet music", open=False, elem_id="piano-sheet-panel"):
        gr.Markdown(SHEET_HELP, elem_classes="tab-intro")
        status = gr.Markdown(elem_id="piano-sheet-status")
        recording = gr.Audio(sources=["upload", "microphone"], type="filepath",
                             label="Piano recording (wav, mp3, flac, ogg)", elem_id="piano-sheet-recording")
        run = gr.Button("Make its sheet music", variant="primary", elem_id="piano-sheet-run")
    return recording, run, status


def wire_sheet_music(recording: gr.Audio, run: gr.Button, outputs: list[gr.components.Component],
                     easier: gr.Checkbox, paper: gr.Radio, api_doc: str, tool_doc: str) -> None:
    """The box's event: its results go to the cover's ``outputs`` (the session state last)."""
    run.click(piano_to_sheet_music, inputs=[recording, easier, paper], outputs=outputs, api_visibility=page_api(),
              api_name="piano_to_sheet_music", api_description=api_doc, show_progress_on=outputs[3],
              concurrency_id=MODEL_QUEUE)
    as_tool("piano_to_sheet_music", piano_to_sheet_music, [recording, easier, paper], outputs, tool_doc, MODEL_QUEUE)
