"""The layout of the "Song with lyrics" tab, and its wiring to the events in ``ui.song``."""

from __future__ import annotations


import gradio as gr

from models import song
from models.catalogue import OFFERED_CLI_FLAGS, OFFERED_ENV_VARS, available_models
from models.cache import short_name
from models.song.checkpoints import hub_marker
from models.sources import describe_source, how_to_fix, looks_like_path
from ui.common import CONFIG, MODEL_QUEUE, PAPER_CHOICES, technical_details, translation_status, watermark_status
from ui.page_words import OWN_PROGRESS
from ui.i18n import page_word, spoken
from ui.music import music_midi
from ui.music_tabs import starting, stop_button, wire_finish
from ui.share import Shareable, params_json, share_row, wire_share
from ui.song import (
    APP_DEFAULT_MODEL,
    edit_song,
    estimate_song,
    extend_song,
    load_song_params,
    lyrics_note,
    make_song,
    offered_song_model,
    stop_song,
)
from ui.streaming import progress_line, stream_player
from ui.tools import as_tool, page_api
from utils.engraving import DEFAULT_PAPER

LYRICS_GUIDE = ("Put each section's tag on its own line: [intro], [verse], [pre-chorus], [chorus], [bridge], "
                "[outro]. One sung line per line of text. About 4 lines of verse take 10-15 s; leave the lyrics "
                "empty and tick Instrumental for a song without words.")
WONT = ("This tab takes no singer's voice from an upload: every voice is the model's own, and edits work only on "
        "songs made here. Every song carries the app's watermark and says it was made with AI.")
EXAMPLE_LYRICS_EN = ("[verse]\nCity lights are shining bright tonight\nWe sing along until the morning light\n"
                     "[chorus]\nHold on, hold on, the night is young\nEvery song we know is sung")
EXAMPLE_LYRICS_ZH = "[verse]\n月光洒在窗前\n我在想你\n[chorus]\n夜里的风\n吹过我的心"
EXAMPLE_LYRICS_FOLK = ("[verse]\nDown by the river where the willows grow\nI left my heart a long time ago\n"
                       "[chorus]\nOh carry me home, carry me home")
SONG_EXAMPLES = [
    ["upbeat pop, bright female vocals, electric guitar and drums", EXAMPLE_LYRICS_EN, False, "auto", 30],
    ["Mandopop ballad, soft piano, warm male voice", EXAMPLE_LYRICS_ZH, False, "auto", 30],
    ["soft folk ballad, acoustic guitar, warm male voice", EXAMPLE_LYRICS_FOLK, False, "en", 30],
    ["lo-fi hip hop beat with warm piano and vinyl crackle", "", True, "auto", 20],
]
SONG_API_DOCS = {
    "song": "Make a song with a voice singing your lyrics (ACE-Step 1.5): style, lyrics with [verse]/[chorus] tags "
            "(or instrumental), language (or auto), 10-240 s, optional BPM/key/time signature, seed, 1-2 variants, "
            "a model this server offers. Returns 48 kHz stereo WAVs, a picture, the parameters, details and the "
            "downloads (WAV, MP3, lyrics, JSON).",
    "song_edit": "Make seconds FROM to TO of this session's last song again (a variant of it), with new lyrics or "
                 "style for that part; the rest stays as it was. Works only on songs made here.",
    "song_extend": "Make this session's last song N seconds longer (up to 240 s in all), with lyrics for the new "
                   "part; what it had stays as it was. Works only on songs made here.",
    "stop": "Stop this session's song at the next step (a diffusion keeps nothing half made).",
    "load_params": "A song's parameters JSON back into the tab's settings, to make the same song again.",
    "midi": "The notes of a song's variant 1 as a tempo-mapped MIDI and a score (transcribed).",
}


def song_model_choices() -> list[tuple[str, str]]:
    """The model dropdown's choices: the checkpoints this server offers, the app's own first (value "")."""
    own, *others = available_models("song", CONFIG.song_model)
    label = song.CHECKPOINT_LABELS.get(own)
    return [(page_word("The app's model" + (f" ({label})" if label else "")), APP_DEFAULT_MODEL),
            *((page_word(song.CHECKPOINT_LABELS.get(name) or short_name(name)), name) for name in others)]


def song_model_status(name: str | None = None) -> str:
    """Where the song model comes from (no network), what is missing and how to provide it, what is offered."""
    try:
        name = offered_song_model(name)
    except ValueError as e:
        return f"**Song model:** ⚠️ {e}"
    marker = hub_marker(name) if not looks_like_path(name) else "*"
    source = describe_source(name, marker)
    line = f"**Song model:** {source}"
    if "missing" in source or "downloaded on first use" in source:
        line += (" · the official 2B release is converted to diffusers' layout once, on first use" if
                 name == song.DEFAULT_SONG_MODEL else "")
    if "missing" in source:
        line += " · " + how_to_fix(name, song.SONG_ENV_VAR, song.SONG_CLI_FLAG)
    line += (f" · offered here: {', '.join(f'`{n}`' for n in available_models('song', CONFIG.song_model))} (the "
             f"operator adds more with `{OFFERED_CLI_FLAGS['song']}` or `{OFFERED_ENV_VARS['song']}`)")
    return "  \n".join([line, translation_status(), watermark_status()])


def language_choices() -> list[tuple[str, str]]:
    return [("Auto (from the lyrics' script)", song.AUTO),  # plain words: the examples table copies them
            *((name, code) for code, name in song.LANGUAGES.items())]


def build_song_tab() -> tuple[gr.Dropdown, gr.Markdown, Shareable]:
    """The "Song with lyrics" tab. Returns its model dropdown and status line (filled on page load) and what it
    shares (``ui.share``)."""
    with gr.Row():
        with gr.Column():
            style = gr.Textbox(label="Style: what it sounds like", lines=2, max_length=song.MAX_STYLE_CHARS,
                               placeholder=SONG_EXAMPLES[0][0], elem_id="song-style")
            lyrics = gr.Textbox(label="Lyrics", lines=8, max_length=song.MAX_LYRICS_CHARS,
                                placeholder=EXAMPLE_LYRICS_EN, elem_id="song-lyrics")
            gr.Markdown(LYRICS_GUIDE, elem_classes="tab-intro", elem_id="song-guide")
            with gr.Row():
                instrumental = gr.Checkbox(False, label="Instrumental (no words)", elem_id="song-instrumental")
                language = gr.Dropdown(language_choices(), value=song.AUTO, label="Language of the lyrics",
                                       elem_id="song-language")
            lyrics_info = gr.Markdown(elem_id="song-lyrics-note")
            seconds = gr.Slider(song.MIN_SECONDS, song.MAX_SECONDS, value=song.DEFAULT_SECONDS, step=1,
                                label="Length (s)", elem_id="song-seconds")
            with gr.Accordion("Tempo, key and time signature (optional)", open=False):
                with gr.Row():
                    bpm = gr.Number(0, label="BPM (0 = the model's choice)", minimum=0, maximum=song.MAX_BPM,
                                    precision=0, elem_id="song-bpm")
                    key = gr.Dropdown([("The model's choice", ""), *((k, k) for k in song.KEYS)],
                                      value="", label="Key", filterable=False, elem_id="song-key")
                    signature = gr.Dropdown([("The model's choice", ""), ("2/4", "2"), ("3/4", "3"),
                                             ("4/4", "4"), ("6/8", "6")], value="", label="Time signature", filterable=False,
                                            elem_id="song-time-signature")
            with gr.Row():
                seed = gr.Textbox("", label="Seed (empty = random)", max_lines=1, placeholder="e.g. 42",
                                  elem_id="song-seed")
                variants = gr.Slider(1, song.MAX_VARIANTS, value=1, step=1, label="Variants",
                                     elem_id="song-variants")
            model = gr.Dropdown(song_model_choices(), value=APP_DEFAULT_MODEL, label="Model", filterable=False,
                                info="The 2B turbo is the one a CPU can run; bigger ones need a GPU.",
                                elem_id="song-model")
            with gr.Accordion("Reproduce a song from its parameters file (.json)", open=False,
                              elem_id="song-params-box"):
                params_file = gr.File(label="Parameters JSON", file_types=[".json"], elem_id="song-params-file")
                params_note = gr.Markdown(elem_id="song-params-note")
            estimate = gr.Markdown(elem_id="song-estimate")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="song-run")
                stop = stop_button("song")
            gr.Markdown("Stop ends the run at the next step. A song is made whole, all at once, so a stopped run "
                        "keeps nothing.", elem_classes="tab-intro", elem_id="song-stop-note")
            gr.Examples(SONG_EXAMPLES, inputs=[style, lyrics, instrumental, language, seconds], label="Examples",
                        elem_id="song-examples")
            gr.Markdown(WONT, elem_classes="tab-intro", elem_id="song-wont")
        with gr.Column():
            line = progress_line("song")
            stream = stream_player("song")
            audios = [gr.Audio(type="filepath", label=f"Variant {i + 1}", interactive=False, visible=i == 0,
                               elem_id=f"song-variant-{i + 1}", elem_classes=OWN_PROGRESS if i == 0 else None)
                      for i in range(song.MAX_VARIANTS)]
            details = gr.Markdown(elem_id="song-details")
            picture = gr.Image(type="filepath", label="Waveform and spectrogram", interactive=False,
                               elem_id="song-picture")
            with gr.Accordion("Parameters (to reproduce this song)", open=False):
                params = gr.JSON(label="Parameters", elem_id="song-params")
            downloads = gr.File(label="Downloads: WAV, MP3, the lyrics and the parameters (JSON)",
                                file_count="multiple", interactive=False, elem_id="song-downloads",
                                elem_classes="downloads")
            with gr.Accordion("Edit a part, or extend the song", open=False, elem_id="song-edit-box"):
                gr.Markdown("Only the part you choose is made again; the rest stays as it was (its edges blend "
                            "over about 0.3 s). Leave style or lyrics empty to keep the song's.",
                            elem_classes="tab-intro")
                with gr.Row():
                    edit_variant = gr.Slider(1, song.MAX_VARIANTS, value=1, step=1, label="Variant",
                                             elem_id="song-edit-variant")
                    edit_start = gr.Number(0, label="From (s)", minimum=0, elem_id="song-edit-start")
                    edit_end = gr.Number(10, label="To (s)", minimum=0, elem_id="song-edit-end")
                edit_style = gr.Textbox(label="Style for this part (empty = the song's)", max_lines=2,
                                        elem_id="song-edit-style")
                edit_lyrics = gr.Textbox(label="Lyrics for this part (empty = the song's)", lines=3,
                                         elem_id="song-edit-lyrics")
                edit_seed = gr.Textbox("", label="Seed (empty = random)", max_lines=1, elem_id="song-edit-seed")
                with gr.Row():
                    edit = gr.Button("Make this part again", elem_id="song-edit")
                    extend_by = gr.Slider(1, song.MAX_EDIT_SECONDS, value=20, step=1, label="Extend by (s)",
                                          elem_id="song-extend-seconds")
                    extend = gr.Button("Extend the song", elem_id="song-extend")
            with gr.Accordion("MIDI and sheet music of this song", open=False, elem_id="song-midi-panel"):
                with gr.Row():
                    paper = gr.Radio(PAPER_CHOICES, value=DEFAULT_PAPER, label="Paper", elem_id="song-midi-paper")
                    midi = gr.Button("MIDI of this", elem_id="song-midi")
                midi_line = gr.Markdown(elem_id="song-midi-info")
                midi_files = gr.File(label="MIDI, MusicXML and PDF", file_count="multiple", interactive=False,
                                     elem_id="song-midi-files", elem_classes="downloads")
                midi_page = gr.Image(type="filepath", label="Score, page 1", interactive=False,
                                     elem_id="song-midi-score")
            share = share_row("song")
    status = technical_details("song")
    state = gr.State(None)
    outputs = [*audios, picture, params, details]
    inputs = [style, lyrics, instrumental, language, seconds, bpm, key, signature, seed, variants, model]
    made = starting(run, stop, stream, line).then(
        make_song, inputs=inputs, outputs=[*outputs, downloads, state, stream, line], api_visibility=page_api(),
        api_name="song", api_description=SONG_API_DOCS["song"], concurrency_id=MODEL_QUEUE,
        show_progress_on=audios[0])
    as_tool("song", make_song, inputs, [*outputs, downloads, state, stream, line], SONG_API_DOCS["song"],
            MODEL_QUEUE)
    edited = starting(edit, stop, stream, line).then(
        edit_song, inputs=[state, edit_variant, edit_start, edit_end, edit_style, edit_lyrics, edit_seed],
        outputs=[*outputs, downloads, state, stream, line], api_visibility=page_api(), api_name="song_edit",
        api_description=SONG_API_DOCS["song_edit"], concurrency_id=MODEL_QUEUE, show_progress_on=audios[0])
    extended = starting(extend, stop, stream, line).then(
        extend_song, inputs=[state, edit_variant, extend_by, edit_style, edit_lyrics, edit_seed],
        outputs=[*outputs, downloads, state, stream, line], api_visibility=page_api(), api_name="song_extend",
        api_description=SONG_API_DOCS["song_extend"], concurrency_id=MODEL_QUEUE, show_progress_on=audios[0])

    wire_finish([made, edited, extended], stop, stream, line, audios[0])
    stop.click(stop_song, inputs=None, outputs=None, api_visibility=page_api(), api_name="song_stop",
               api_description=SONG_API_DOCS["stop"], queue=False)
    variants.change(lambda v: [gr.Audio(visible=i < int(v)) for i in range(song.MAX_VARIANTS)], inputs=variants,
                    outputs=audios, api_visibility="private", queue=False)
    gr.on([lyrics.change, language.change, instrumental.change], lyrics_note,
          inputs=[lyrics, language, instrumental], outputs=lyrics_info, api_visibility="private", queue=False,
          show_progress="hidden")
    model.change(song_model_status, inputs=model, outputs=status, api_visibility="private")

    @spoken
    def estimate_now(m: str | None, s: float, v: float) -> str:
        return estimate_song(m, s, v)

    gr.on([seconds.change, variants.change, model.change], estimate_now, inputs=[model, seconds, variants],
          outputs=estimate, api_visibility="private", queue=False)
    for event in (made, edited, extended):
        event.then(estimate_now, inputs=[model, seconds, variants], outputs=estimate, api_visibility="private",
                   queue=False)
    settings = [style, lyrics, instrumental, language, seconds, bpm, key, signature, seed, variants, params_note]
    params_file.upload(load_song_params, inputs=params_file, outputs=settings, api_visibility=page_api(),
                       api_name="song_load_params", api_description=SONG_API_DOCS["load_params"])
    midi.click(music_midi, inputs=[audios[0], paper], outputs=[midi_files, midi_page, midi_line],
               api_visibility=page_api(), api_name="song_midi", api_description=SONG_API_DOCS["midi"],
               concurrency_id=MODEL_QUEUE, show_progress_on=midi_line)
    shareable = Shareable("song", [*outputs, downloads], state, settings=settings,
                          settings_from=lambda values: load_song_params(params_json(values[song.MAX_VARIANTS + 1])))
    wire_share(share, shareable)
    return model, status, shareable
