"""The layout of the "Text to music" and "Melody to music" tabs, and their wiring to the events in ``ui.music``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from models import musicgen, separator
from models.catalogue import OFFERED_CLI_FLAGS, OFFERED_ENV_VARS, available_models
from models.loading import unavailable
from models.cache import short_name
from models.sources import describe_source, how_to_fix, is_off
from ui.tools import as_tool, page_api
from ui.common import (
    CONFIG,
    MODEL_QUEUE,
    PAPER_CHOICES,
    technical_details,
    transcription_status,
    translation_status,
    watermark_status,
)
from ui.music import (
    APP_DEFAULT_MODEL,
    clip_preview,
    estimate_line,
    extend_music,
    load_melody_params,
    load_text_params,
    melody_loaded,
    melody_preview,
    melody_to_music,
    music_midi,
    offered_model,
    prompt_note,
    stop_melody,
    stop_text,
    text_to_music,
)
from ui.music_docs import MUSIC_API_DOCS
from ui.page_words import OWN_PROGRESS
from ui.i18n import page_word, say, spoken
from ui.share import Shareable, params_json, share_row, wire_share
from ui.streaming import (
    bring_into_view,
    hand_over,
    live_playback,
    progress_html,
    progress_line,
    show_again,
    stream_player,
)
from utils.engraving import DEFAULT_PAPER

TEXT_PROMPT_EXAMPLES = [
    "An 80s driving pop song with heavy drums and synth pads in the background",
    "A cheerful country song with acoustic guitars",
    "90s rock song with electric guitar and heavy drums",
    "a light and cheerful EDM track, with syncopated drums, airy pads, and strong emotions, bpm: 130",
    "lo-fi hip hop with warm piano and vinyl crackle, 80 bpm",
]
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_MELODIES = [  # hummed or played public-domain tunes (examples/make_examples.py)
    ("melody_ode_to_joy_hummed.ogg", "a grand orchestral arrangement with strings and horns"),
    ("melody_twinkle_flute.ogg", "a lo-fi hip hop beat with warm piano"),
]
MELODY_PROMPT_EXAMPLES = [
    "a grand orchestral arrangement with strings and horns",
    "a jazz trio: upright bass, brushed drums, piano",
    "an 8-bit chiptune with punchy square-wave leads",
]


def params_loader(tab: str) -> tuple[gr.File, gr.Markdown]:
    """The "Reproduce from a parameters file" box of a MusicGen tab."""
    with gr.Accordion("Reproduce a result from its parameters file (.json)", open=False, elem_id=f"{tab}-params-box"):
        upload = gr.File(label="Parameters JSON", file_types=[".json"], elem_id=f"{tab}-params-file")
        note = gr.Markdown(elem_id=f"{tab}-params-note")
    return upload, note


MODEL_LABEL = "Model"
MODEL_INFO = ("Bigger models can sound better, but each step up takes several times longer: without a GPU, stay "
              "with the app's model.")


def checkpoint_label(name: str, slow_note: bool = True) -> str | None:
    """How the page names an official checkpoint: its size, not its hub id ("Medium, 1.5B parameters, stereo ·
    slow without a GPU"); None for other names."""
    billions = musicgen.CHECKPOINT_BILLIONS.get(name)
    if billions is None:
        return None
    size = "Large" if billions > 2 else "Medium" if billions > 1 else "Small"
    stereo = ", stereo" if "stereo" in name else ""
    slow = " · slow without a GPU" if slow_note and billions > 1 else ""
    return f"{size}, {billions:g}B parameters{stereo}{slow}"


def model_choices(melody_tab: bool) -> list[tuple[str, str]]:
    """The model dropdown's choices: exactly the checkpoints this server offers (``models.catalogue.available_models``), the
    app's own first (value ""), each named by its size, or a folder by its name."""
    own, *others = offered_models(melody_tab)
    size = checkpoint_label(own, slow_note=False)
    return [(page_word("The app's model" + (f" ({size})" if size else "")), APP_DEFAULT_MODEL),
            *((page_word(checkpoint_label(name) or short_name(name)), name) for name in others)]


def offered_models(melody_tab: bool) -> list[str]:
    """The checkpoints a visitor may choose in a MusicGen tab, the app's own first."""
    own = CONFIG.melody_model if melody_tab else CONFIG.musicgen_model
    return available_models("melody" if melody_tab else "text", own)


def music_model_status(name: str | None, melody_tab: bool) -> str:
    """Where the chosen MusicGen checkpoint comes from (no network), and which ones this server offers."""
    try:
        name = offered_model(melody_tab, name)
    except ValueError as e:
        return f"**Model:** ⚠️ {e}"
    source = describe_source(name)
    line = f"**Model:** {source}"
    if "missing" in source:  # what is missing, and how to provide it
        env, flag = ((musicgen.MELODY_ENV_VAR, musicgen.MELODY_CLI_FLAG) if melody_tab
                     else (musicgen.MUSICGEN_ENV_VAR, musicgen.MUSICGEN_CLI_FLAG))
        line += " · " + how_to_fix(name, env, flag)
    if melody_tab and name in musicgen.TEXT_CHECKPOINTS:
        line += " · ⚠️ text-only checkpoint: choose a melody one"
    role = "melody" if melody_tab else "text"
    line += (f" · offered here: {', '.join(f'`{n}`' for n in offered_models(melody_tab))} (the operator adds more "
             f"with `{OFFERED_CLI_FLAGS[role]}` or `{OFFERED_ENV_VARS[role]}`)")
    if melody_tab:
        line += " · " + separator_status()
    return "  \n".join([line, translation_status(), watermark_status(), transcription_status()])


def separator_status() -> str:
    """Where the Demucs melody separator comes from, or why the whole mix will be used (no network)."""
    name = CONFIG.separator_model
    if is_off(name):
        return f"**Melody separator:** off (`{separator.SEPARATOR_ENV_VAR}`): the chroma comes from the whole mix"
    if not separator.demucs_installed():
        return "**Melody separator:** ⚠️ `demucs` is not installed: the chroma comes from the whole mix"
    return (f"**Melody separator:** {describe_source(name, separator.BAG_MARKER)}; if it cannot be loaded, the "
            f"whole mix is used (set `{separator.SEPARATOR_CLI_FLAG}` or `{separator.SEPARATOR_ENV_VAR}` to a "
            "folder holding the Demucs bag .yaml and .safetensors)")


def text_model_status(name: str | None) -> str:
    return music_model_status(name, melody_tab=False)


def melody_model_status(name: str | None) -> str:
    return music_model_status(name, melody_tab=True)


def sampling_controls(tab: str) -> list[gr.components.Component]:
    """Duration, sampling settings, seed, variants and window stride (the same in both MusicGen tabs).

    Returns the controls in the event functions' parameter order; element ids start with ``tab``.
    """
    duration = gr.Slider(musicgen.MIN_DURATION_S, musicgen.MAX_DURATION_S, value=musicgen.DEFAULT_DURATION_S,
                         step=1, label=f"Duration (s; past {musicgen.WINDOW_S:.0f} s the piece grows window by window)",
                         elem_id=f"{tab}-duration")
    with gr.Accordion("Sampling", open=False):
        with gr.Row():
            top_k = gr.Number(musicgen.DEFAULT_TOP_K, label="Top-k", precision=0, minimum=0, maximum=musicgen.MAX_TOP_K)
            top_p = gr.Number(musicgen.DEFAULT_TOP_P, label="Top-p (0 = off)", minimum=0, maximum=1, step=0.05)
            temperature = gr.Number(musicgen.DEFAULT_TEMPERATURE, label="Temperature", minimum=0.05, maximum=10,
                                    step=0.05)
            guidance = gr.Number(musicgen.DEFAULT_GUIDANCE_SCALE, label="Guidance scale (classifier-free)",
                                 minimum=1, maximum=musicgen.MAX_GUIDANCE_SCALE, step=0.5)
        stride = gr.Slider(musicgen.MIN_STRIDE_S, musicgen.MAX_STRIDE_S, value=musicgen.DEFAULT_STRIDE_S, step=1,
                           label=f"Window stride (s): each window after the first adds this much and keeps the "
                                 f"last {musicgen.WINDOW_S:.0f} s − stride as its start", elem_id=f"{tab}-stride")
    with gr.Row():
        seed = gr.Textbox("", label="Seed (empty = random)", max_lines=1, placeholder="e.g. 42", elem_id=f"{tab}-seed")
        variants = gr.Slider(1, musicgen.MAX_VARIANTS, value=1, step=1, label="Variants", elem_id=f"{tab}-variants")
    return [duration, top_k, top_p, temperature, guidance, seed, variants, stride]


def show_variants(variants: float) -> list[Any]:
    """Show as many players as variants asked for."""
    return [gr.Audio(visible=i < int(variants)) for i in range(musicgen.MAX_VARIANTS)]


def music_result_panel(tab: str) -> list[gr.components.Component]:
    """Variant players, picture, parameters, details and downloads (the same in both MusicGen tabs)."""
    audios = [
        gr.Audio(type="filepath", label=f"Variant {i + 1}", interactive=False, visible=i == 0,
                 elem_id=f"{tab}-variant-{i + 1}", elem_classes=OWN_PROGRESS if i == 0 else None)
        for i in range(musicgen.MAX_VARIANTS)
    ]
    details = gr.Markdown(elem_id=f"{tab}-details")
    picture = gr.Image(type="filepath", label="Waveform and spectrogram", interactive=False,
                       elem_id=f"{tab}-picture")
    with gr.Accordion("Parameters (to reproduce this result)", open=False):
        params = gr.JSON(label="Parameters", elem_id=f"{tab}-params")
    return [*audios, picture, params, details]


def downloads_box(tab: str) -> gr.File:
    return gr.File(label="Downloads: WAV, MP3 and the parameters (JSON)", file_count="multiple", interactive=False,
                   elem_id=f"{tab}-downloads", elem_classes="downloads")


def extend_row(tab: str) -> tuple[gr.Slider, gr.Button]:
    with gr.Row():
        seconds = gr.Slider(musicgen.MIN_DURATION_S, musicgen.MAX_DURATION_S, value=musicgen.DEFAULT_STRIDE_S,
                            step=1, label="Extend by (s)", elem_id=f"{tab}-extend-seconds", scale=3)
        button = gr.Button("Extend this result", elem_id=f"{tab}-extend", scale=1)
    return seconds, button




def midi_row(tab: str, audio: gr.Audio) -> None:
    """"MIDI of this": variant 1's notes as a tempo-mapped MIDI and a score (``/{task}_midi`` in the API)."""
    with gr.Accordion("MIDI and sheet music of this result", open=False, elem_id=f"{tab}-midi-panel"):
        gr.Markdown("The notes of variant 1, heard by a transcription model and placed on the music's beats: a MIDI "
                    "for your music software and a score to print.", elem_classes="tab-intro")
        with gr.Row():
            paper = gr.Radio(PAPER_CHOICES, value=DEFAULT_PAPER,
                             label="Paper", elem_id=f"{tab}-midi-paper", scale=2)
            button = gr.Button("MIDI of this", elem_id=f"{tab}-midi", scale=1)
        line = gr.Markdown(elem_id=f"{tab}-midi-info")
        files = gr.File(label="MIDI, MusicXML and PDF", file_count="multiple", interactive=False,
                        elem_id=f"{tab}-midi-files", elem_classes="downloads")
        page = gr.Image(type="filepath", label="Score, page 1", interactive=False, elem_id=f"{tab}-midi-score")
    task = "melody_to_music" if tab == "melody" else "text_to_music"
    button.click(music_midi, inputs=[audio, paper], outputs=[files, page, line], api_visibility=page_api(),
                 api_name=f"{task}_midi", api_description=MUSIC_API_DOCS["midi"], concurrency_id=MODEL_QUEUE,
                 show_progress_on=line)
    if tab == "text":  # one tool for any music's MIDI
        as_tool("music_midi", music_midi, [audio, paper], [files, page, line], MUSIC_API_DOCS["midi"], MODEL_QUEUE)


def build_text_tab() -> tuple[gr.Dropdown, gr.Markdown, gr.Button, gr.Audio, Shareable]:
    """The "Text to music" tab. Returns its model dropdown and status line (filled on page load), the "Use as
    melody" button with the player it sends (wired to the melody tab by app.py), and what it shares
    (``ui.share``)."""
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(label="Describe the music", lines=3, max_length=musicgen.MAX_PROMPT_CHARS,
                                placeholder=TEXT_PROMPT_EXAMPLES[-1], elem_id="text-prompt")
            prompt_info = gr.Markdown(elem_id="text-prompt-note")
            model = gr.Dropdown(model_choices(False), value=APP_DEFAULT_MODEL, filterable=False,
                                label=MODEL_LABEL, info=MODEL_INFO, elem_id="text-model")
            controls = sampling_controls("text")
            with gr.Accordion("Continue a clip (optional)", open=False):
                clip = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                label=f"Clip to continue ({musicgen.MIN_CLIP_SECONDS:.0f}-"
                                      f"{musicgen.MAX_CLIP_SECONDS:.0f} s)", elem_id="text-clip")
                with gr.Row():
                    clip_start = gr.Slider(0, musicgen.MAX_MELODY_FILE_SECONDS, value=0, step=0.1,
                                           label="Clip start (s)", elem_id="text-clip-start")
                    clip_end = gr.Slider(0, musicgen.MAX_MELODY_FILE_SECONDS, value=0, step=0.1,
                                         label="Clip end (s, 0 = end)", elem_id="text-clip-end")
                clip_part = gr.Audio(type="filepath", label="Part continued", interactive=False,
                                     elem_id="text-clip-preview")
                clip_info = gr.Markdown(elem_id="text-clip-info")
            params_file, params_note = params_loader("text")
            estimate = gr.Markdown(elem_id="text-estimate")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="text-run")
                stop = stop_button("text")
            gr.Examples([[p] for p in TEXT_PROMPT_EXAMPLES], inputs=[prompt], label="Examples", elem_id="text-examples")
        with gr.Column():
            line = progress_line("text")
            stream = stream_player("text")
            outputs = music_result_panel("text")
            downloads = downloads_box("text")
            extend_seconds, extend = extend_row("text")
            use_as_melody = gr.Button("Use variant 1 as the melody (melody tab)", elem_id="text-use-as-melody")
            midi_row("text", outputs[0])
            share = share_row("text")
    status = technical_details("text")
    state = gr.State(None)
    loaded = gr.State(None)  # this tab's loaded parameters file: its prompt and English, for this session only
    event = starting(run, stop, stream, line).then(
        text_to_music, inputs=[prompt, model, *controls, clip, clip_start, clip_end, loaded],
        outputs=[*outputs, downloads, state, stream, line], api_visibility=page_api(), api_name="text_to_music",
        api_description=MUSIC_API_DOCS["text_to_music"], concurrency_id=MODEL_QUEUE, show_progress_on=outputs[0])
    as_tool("text_to_music", text_to_music, [prompt, model, *controls, clip, clip_start, clip_end, loaded],
            [*outputs, downloads, state, stream, line], MUSIC_API_DOCS["text_to_music"], MODEL_QUEUE)
    extended = starting(extend, stop, stream, line).then(
        extend_music, inputs=[state, extend_seconds], outputs=[*outputs, downloads, state, stream, line],
        api_visibility=page_api(), api_name="text_to_music_extend",
        api_description=MUSIC_API_DOCS["extend"], concurrency_id=MODEL_QUEUE,
        show_progress_on=outputs[0])
    wire_common(model, controls, outputs, stop, [event, extended], status, estimate, False, "text_to_music_stop",
                stream, line, prompt, prompt_info)
    gr.on([clip.change, clip_start.release, clip_end.release], clip_preview, inputs=[clip, clip_start, clip_end],
          outputs=[clip_part, clip_info], api_visibility=page_api(), api_name="clip_preview",
          api_description=MUSIC_API_DOCS["clip_preview"])
    params_file.upload(load_text_params, inputs=params_file,
                       outputs=[prompt, model, *controls, clip_start, clip_end, params_note, loaded],
                       api_visibility=page_api(), api_name="text_to_music_load_params",
                       api_description=MUSIC_API_DOCS["load_params"])
    shareable = Shareable(
        "text", [*outputs, downloads], state, keep_state=keep_music_state,
        settings=[prompt, model, *controls, clip_start, clip_end, params_note, loaded],
        settings_from=lambda values: load_text_params(params_json(values[musicgen.MAX_VARIANTS + 1])))
    wire_share(share, shareable)
    return model, status, use_as_melody, outputs[0], shareable


def keep_music_state(state: dict[str, Any], copy: Callable[[str], str]) -> dict[str, Any]:
    """A MusicGen tab's state as a share keeps it: the melody it followed copied with it (Extend follows it)."""
    melody = state.get("melody")
    if melody and melody.get("path"):
        melody = {**melody, "path": copy(melody["path"])}
    return {**state, "melody": melody}


def stop_button(tab: str) -> gr.Button:
    """Stop: quiet, and only clickable while something is being made."""
    return gr.Button("Stop (keeps what is finished)", variant="secondary", interactive=False, size="md",
                     elem_id=f"{tab}-stop", elem_classes="stop-button")


def starting(button: gr.Button, stop: gr.Button, stream: gr.Audio, line: gr.HTML) -> Any:
    """A run's first step, on the page only: Stop becomes clickable, the live player appears (empty) and the
    progress line says the run is starting. The run itself follows it (``.then``), so the two never race."""
    @spoken
    def begin() -> tuple[Any, Any, str]:
        return gr.Button(interactive=True), gr.Audio(value=None, visible=live_playback()), progress_html(
            0.0, say("Starting"))

    bring_into_view(button, line.elem_id)
    show_again(button, stream)
    return button.click(begin, outputs=[stop, stream, line], api_visibility="private", queue=False)


def wire_finish(events: list, stop: gr.Button, stream: gr.Audio, line: gr.HTML, first: gr.Audio) -> None:
    """After each run of ``events``: Stop quiet again and the progress line emptied; on success the live player
    plays on to its end and then gives its place to the results (``hand_over``); on failure it goes at once, and
    the first result player is emptied (no "Error" badge is left on it)."""
    for event in events:  # gradio's .then runs on success only
        event.then(lambda: (gr.Button(interactive=False), ""), outputs=[stop, line], api_visibility="private",
                   queue=False)
        hand_over(event, stream)
        event.failure(lambda: (gr.Button(interactive=False), gr.Audio(value=None, visible=False), "", gr.Audio()),
                      outputs=[stop, stream, line, first], api_visibility="private", queue=False,
                      show_progress="hidden")


def melody_source_choice() -> gr.Radio:
    """Where the melody is taken from: by default with drums and bass taken out first, on a server that has the
    melody separator; on one without it, the whole mix, and the page says so before anyone runs it."""
    choices = [(label, key) for key, label in separator.MELODY_SOURCES.items()]
    info = ("For a whole song: with drums and bass taken out first, the music follows its tune rather than its bass "
            "line.")
    if unavailable("separator", CONFIG.separator_model):  # why is in Technical details and the log
        return gr.Radio([c for c in choices if c[1] == separator.SOURCE_MIX], value=separator.SOURCE_MIX,
                        label="Melody taken from", elem_id="melody-source",
                        info="The whole mix: taking out drums and bass first needs the melody separator, which is "
                             "not available on this server.")
    return gr.Radio(choices, value=separator.DEFAULT_MELODY_SOURCE, label="Melody taken from", info=info,
                    elem_id="melody-source")


def reflect_melody_source(params: dict | None, source: str) -> Any:
    """After a melody run: when separation was asked for and could not be done, the control says "Whole mix"."""
    used = str((params or {}).get("melody_source_used", ""))
    if source == separator.SOURCE_SEPARATED and used.startswith("whole mix"):
        return gr.Radio(value=separator.SOURCE_MIX)
    return gr.skip()


def wire_common(model: gr.Dropdown, controls: list, outputs: list, stop: gr.Button, events: list,
                status: gr.Markdown, estimate_box: gr.Markdown, melody_tab: bool, stop_name: str,
                stream: gr.Audio, line: gr.HTML, prompt: gr.Textbox, prompt_info: gr.Markdown) -> None:
    """The events both MusicGen tabs share: variants shown, Stop (clickable only while a run is going), the live
    player (shown while a piece is made, handed over to the result after) and the progress line, the model's
    status line, the estimate, and the note beside the prompt. ``events`` are the runs (each started by
    ``starting``)."""
    wire_finish(events, stop, stream, line, outputs[0])
    prompt.change(prompt_note, inputs=prompt, outputs=prompt_info, api_visibility="private", queue=False,
                  show_progress="hidden")
    duration, variants, stride = controls[0], controls[6], controls[7]
    variants.change(show_variants, inputs=variants, outputs=outputs[: musicgen.MAX_VARIANTS],
                    api_visibility="private", queue=False)
    # Stop sets the flag of this tab's run in this session: the loop ends at the next step and the finished part
    # comes back; the other tab's run, and other sessions', go on
    stop.click(stop_melody if melody_tab else stop_text, inputs=None, outputs=None, api_visibility=page_api(),
               api_name=stop_name, api_description=MUSIC_API_DOCS["stop"], queue=False)
    model.change(melody_model_status if melody_tab else text_model_status, inputs=model, outputs=status,
                 api_visibility="private")
    @spoken
    def estimate(m: str | None, d: float, v: float, s: float) -> str:
        return estimate_line(melody_tab, m, d, v, s)

    gr.on([duration.change, variants.change, stride.change, model.change], estimate,
          inputs=[model, duration, variants, stride], outputs=estimate_box, api_visibility="private", queue=False)
    for event in events:  # after a run the speed on this machine is known: refresh the estimate
        event.then(estimate, inputs=[model, duration, variants, stride], outputs=estimate_box,
                   api_visibility="private", queue=False)


def example_melodies() -> list[list[str]]:
    """The example melodies that are present, as [path, prompt] rows for gr.Examples."""
    return [[str(EXAMPLES_DIR / name), prompt] for name, prompt in EXAMPLE_MELODIES if (EXAMPLES_DIR / name).is_file()]


def build_melody_tab() -> tuple[gr.Dropdown, gr.Markdown, gr.Audio, Shareable]:
    """The "Melody to music" tab. Returns its model dropdown, status line, melody input and what it shares."""
    with gr.Row():
        with gr.Column():
            melody = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Melody (hum, sing, play)",
                              elem_id="melody-input")
            with gr.Row():
                start = gr.Slider(0, musicgen.MAX_MELODY_SECONDS, value=0, step=0.1, label="Trim start (s)")
                end = gr.Slider(0, musicgen.MAX_MELODY_SECONDS, value=0, step=0.1, label="Trim end (s, 0 = end)")
            preview = gr.Audio(type="filepath", label="Part of the melody used", interactive=False,
                               elem_id="melody-preview")
            preview_info = gr.Markdown(elem_id="melody-preview-info")
            prompt = gr.Textbox(label="Describe the style", lines=2, max_length=musicgen.MAX_PROMPT_CHARS,
                                placeholder=MELODY_PROMPT_EXAMPLES[0], elem_id="melody-prompt")
            prompt_info = gr.Markdown(elem_id="melody-prompt-note")
            model = gr.Dropdown(model_choices(True), value=APP_DEFAULT_MODEL, filterable=False,
                                label=MODEL_LABEL, info=MODEL_INFO, elem_id="melody-model")
            source = melody_source_choice()
            controls = sampling_controls("melody")
            params_file, params_note = params_loader("melody")
            estimate = gr.Markdown(elem_id="melody-estimate")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="melody-run")
                stop = stop_button("melody")
            gr.Examples([[p] for p in MELODY_PROMPT_EXAMPLES], inputs=[prompt], label="Examples",
                        elem_id="melody-examples")
            melodies = example_melodies()
            if melodies:
                gr.Examples(melodies, inputs=[melody, prompt], label="Example melodies (public-domain tunes)",
                            elem_id="melody-example-tunes")
        with gr.Column():
            line = progress_line("melody")
            stream = stream_player("melody")
            outputs = music_result_panel("melody")
            chroma = gr.Image(type="filepath", label="The melody as the model hears it (notes over time)", interactive=False,
                              elem_id="melody-chroma")
            downloads = downloads_box("melody")
            extend_seconds, extend = extend_row("melody")
            midi_row("melody", outputs[0])
            share = share_row("melody")
    status = technical_details("melody")
    state = gr.State(None)
    loaded = gr.State(None)  # this tab's loaded parameters file: its prompt and English, for this session only
    melody.change(melody_loaded, inputs=melody, outputs=[melody, start, end, preview, preview_info],
                  api_visibility="private")
    gr.on([start.release, end.release], melody_preview, inputs=[melody, start, end], outputs=[preview, preview_info],
          api_visibility=page_api(), api_name="melody_preview", api_description=MUSIC_API_DOCS["melody_preview"])
    event = starting(run, stop, stream, line).then(
        melody_to_music, inputs=[melody, start, end, prompt, model, *controls, source, loaded],
        outputs=[*outputs, chroma, downloads, state, stream, line], api_visibility=page_api(),
        api_name="melody_to_music", api_description=MUSIC_API_DOCS["melody_to_music"], concurrency_id=MODEL_QUEUE,
        show_progress_on=outputs[0])
    as_tool("melody_to_music", melody_to_music, [melody, start, end, prompt, model, *controls, source, loaded],
            [*outputs, chroma, downloads, state, stream, line], MUSIC_API_DOCS["melody_to_music"], MODEL_QUEUE)
    extended = starting(extend, stop, stream, line).then(
        extend_music, inputs=[state, extend_seconds], outputs=[*outputs, chroma, downloads, state, stream, line],
        api_visibility=page_api(), api_name="melody_to_music_extend",
        api_description=MUSIC_API_DOCS["extend"], concurrency_id=MODEL_QUEUE,
        show_progress_on=outputs[0])
    wire_common(model, controls, outputs, stop, [event, extended], status, estimate, True, "melody_to_music_stop",
                stream, line, prompt, prompt_info)
    for done in (event, extended):  # the melody source falls back visibly when separation could not be done
        done.then(reflect_melody_source, inputs=[outputs[musicgen.MAX_VARIANTS + 1], source], outputs=source,
                  api_visibility="private", queue=False)
    params_file.upload(load_melody_params, inputs=params_file,
                       outputs=[prompt, model, *controls, start, end, source, params_note, loaded],
                       api_visibility=page_api(), api_name="melody_to_music_load_params",
                       api_description=MUSIC_API_DOCS["load_params"])
    shareable = Shareable(
        "melody", [*outputs, chroma, downloads], state, keep_state=keep_music_state,
        settings=[prompt, model, *controls, start, end, source, params_note, loaded],
        settings_from=lambda values: load_melody_params(params_json(values[musicgen.MAX_VARIANTS + 1])))
    wire_share(share, shareable)
    return model, status, melody, shareable
