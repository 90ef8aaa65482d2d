"""The "Text to music" and "Melody to music" tabs: MusicGen and MusicGen-Melody."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import gradio as gr

from models import musicgen
from models.common import describe_source
from ui.common import CONFIG, GPU_QUEUE, gpu_task, gradio_progress, new_run_dir, user_error
from utils.audio import audio_duration, write_wav
from utils.plots import chroma_png, spectrograms_png
from utils.provenance import music_provenance

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


# What the view-API page (and `Client.view_api()`) says of each endpoint: every parameter with units, range and
# default; "" for a model means the checkpoint the app was started with.
SAMPLING_API_DOC = (
    f"`duration`: seconds of music, {musicgen.MIN_DURATION_S:g}-{musicgen.MAX_DURATION_S:g} "
    f"(default {musicgen.DEFAULT_DURATION_S:g}); "
    f"`top_k`: sample among the k likeliest codes, 0-{musicgen.MAX_TOP_K}, 0 = off (default {musicgen.DEFAULT_TOP_K}); "
    f"`top_p`: nucleus sampling, 0-1, 0 = off (default {musicgen.DEFAULT_TOP_P:g}); "
    f"`temperature`: above 0, at most 10 (default {musicgen.DEFAULT_TEMPERATURE:g}); "
    f"`guidance_scale`: classifier-free guidance, 1-{musicgen.MAX_GUIDANCE_SCALE:g} "
    f"(default {musicgen.DEFAULT_GUIDANCE_SCALE:g}); "
    f'`seed`: a whole number 0-{musicgen.MAX_SEED} as text, "" = random (the seed used is in the parameters); '
    f"`variants`: 1-{musicgen.MAX_VARIANTS} pieces from one batched call (default 1). "
)
MODEL_API_DOC = '`model_name`: a hub id or a local folder; "" (the default) = the model the app was started with. '
MUSIC_RETURNS_API_DOC = (
    f"Returns {musicgen.MAX_VARIANTS} audio files (32 kHz WAV; None past the variants asked for), a "
    "waveform/spectrogram PNG, the parameters (dict, to reproduce the result) and a details line (markdown; it "
    "also says which parts of the prompt the model's vocabulary does not know)."
)
MUSIC_API_DOCS = {
    "text_to_music": (
        "Make music from a text description with MusicGen. `prompt` (required): what the music should be, at most "
        f"{musicgen.MAX_PROMPT_CHARS} characters; English works best. " + MODEL_API_DOC + SAMPLING_API_DOC
        + MUSIC_RETURNS_API_DOC
    ),
    "melody_to_music": (
        "Make music that follows a melody with MusicGen-Melody. `melody_path` (required): a wav, mp3, flac or ogg "
        f"file (at most {musicgen.MAX_MELODY_FILE_SECONDS / 60:g} minutes); `trim_start` / `trim_end`: the part "
        f"used, in seconds, 0 = from the start / to the end (at most {musicgen.MAX_MELODY_SECONDS:g} s are used); "
        "`prompt`: the style, may be empty. " + MODEL_API_DOC + SAMPLING_API_DOC + MUSIC_RETURNS_API_DOC
        + " One more PNG at the end: the melody's chroma."
    ),
    "melody_preview": (
        "The part of a melody that will be used. `path`: the melody file; `start` / `end`: seconds, end 0 = to "
        f"the end (at most {musicgen.MAX_MELODY_SECONDS:g} s). Returns that part as WAV and a line about it."
    ),
    "stop": "Stop this session's running generation; what was already made is dropped. No parameters.",
}



_cancel_events: dict[str, threading.Event] = {}


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


def new_cancel_event(request: gr.Request | None) -> threading.Event:
    """A fresh stop flag for this browser session's next generation."""
    event = threading.Event()
    _cancel_events[_session(request)] = event
    return event


def stop_generation(request: gr.Request) -> None:
    """Stop this session's running generation (the Stop button)."""
    event = _cancel_events.get(_session(request))
    if event is not None:
        event.set()


def whole(value: float | int | None, name: str) -> int:
    """An integer from a number box; raises ValueError for 2.5 and the like."""
    if value is None or float(value) != int(float(value)):
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    return int(float(value))


def sampling_params(
    duration: float, top_k: float, top_p: float, temperature: float, guidance_scale: float, seed: str | None
) -> musicgen.SamplingParams:
    """The UI's sampling controls as checked SamplingParams."""
    return musicgen.SamplingParams(
        duration=float(duration),
        top_k=whole(top_k, "Top-k"),
        top_p=float(top_p),
        temperature=float(temperature),
        guidance_scale=float(guidance_scale),
        seed=musicgen.parse_seed(seed),
    ).validated()


def music_outputs(result: musicgen.MusicResult, out: Path, stem: str) -> list[Any]:
    """Write each variant as WAV and draw them: [WAV path or None x MAX_VARIANTS, picture, params, details]."""
    n = result.audio.shape[0]
    provenance = music_provenance(result.params, result.seed)
    audios: list[str | None] = [
        str(write_wav(out / f"{stem}_seed{result.seed}_v{i + 1}.wav", result.audio[i].T, result.sample_rate,
                      provenance.tags()))
        if i < n else None
        for i in range(musicgen.MAX_VARIANTS)
    ]
    picture = spectrograms_png(
        result.audio, result.sample_rate, out / f"{stem}_seed{result.seed}.png",
        titles=[f"variant {i + 1}" for i in range(n)],
    )
    details = "  \n".join([
        f"**Seed used: {result.seed}** (type it in the seed box to get the same music again) · "
        f"{n} × {result.duration:.1f} s at {result.sample_rate} Hz, {result.audio.shape[1]} channel(s)",
        *(f"⚠️ {note}" for note in result.notes),
    ])
    for note in result.notes:
        gr.Warning(note, duration=None)
    return [*audios, str(picture), result.params, details]


def run_music(
    melody_tab: bool, model_name: str | None, prompt: str, params: musicgen.SamplingParams, variants: float,
    melody: musicgen.Melody | None, cancel: threading.Event, progress: gr.Progress,
) -> tuple[musicgen.MusicResult, musicgen.MusicGenModel]:
    """Shared body of both MusicGen events: pick the cached model, generate, turn a stop into a message."""
    default = CONFIG.melody_model if melody_tab else CONFIG.musicgen_model
    model = musicgen.get_musicgen_model((model_name or "").strip() or default, CONFIG.device, melody=melody_tab)
    try:
        result = model.generate(
            prompt, params, whole(variants, "The number of variants"), melody=melody,
            progress=gradio_progress(progress), cancel=cancel,
        )
    except musicgen.GenerationCancelled as e:
        raise ValueError("Stopped. Press Generate to start again.") from e
    return result, model


@gpu_task("text_to_music")
def text_to_music(
    prompt: str,
    model_name: str | None,
    duration: float = musicgen.DEFAULT_DURATION_S,
    top_k: float = musicgen.DEFAULT_TOP_K,
    top_p: float = musicgen.DEFAULT_TOP_P,
    temperature: float = musicgen.DEFAULT_TEMPERATURE,
    guidance_scale: float = musicgen.DEFAULT_GUIDANCE_SCALE,
    seed: str | None = "",
    variants: float = 1,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> list[Any]:
    """Prompt -> music. Returns 4 audio slots (unused ones hidden), a picture, the parameters, details."""
    cancel = new_cancel_event(request)
    try:
        params = sampling_params(duration, top_k, top_p, temperature, guidance_scale, seed)
        result, _ = run_music(False, model_name, prompt, params, variants, None, cancel, progress)
        return music_outputs(result, new_run_dir("text-to-music"), "music")
    except Exception as e:  # noqa: BLE001 - every failure becomes a message; the app keeps serving
        raise user_error(e) from e


def melody_preview(path: str | None, start: float = 0.0, end: float = 0.0) -> tuple[str | None, str]:
    """The part of the melody that will be used, as a WAV, and a line about it."""
    if not path:
        return None, ""
    try:
        melody = musicgen.Melody.from_file(path, start, end)
        out = write_wav(new_run_dir("melody-preview") / "melody_part_used.wav", melody.audio, melody.sample_rate)
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e
    return str(out), f"Using {melody.duration:.1f} s of the melody (at most {musicgen.MAX_MELODY_SECONDS:.0f} s)."


def melody_loaded(path: str | None) -> tuple[Any, Any, str | None, str]:
    """When a melody arrives: fit the trim sliders to its length and show the part used."""
    if not path:
        return gr.Slider(value=0), gr.Slider(value=0), None, ""
    try:
        total = audio_duration(path)
    except ValueError as e:
        raise user_error(e) from e
    end = min(total, musicgen.MAX_MELODY_SECONDS)
    try:
        preview, info = melody_preview(path, 0.0, end)
    except gr.Error as e:  # unusable (silent, damaged...): say so beside the player, where the user looks
        gr.Warning(e.message, duration=None)
        preview, info = None, f"⚠️ {e.message}"
    return (
        gr.Slider(maximum=round(total, 2), value=0.0),
        gr.Slider(maximum=round(total, 2), value=round(end, 2)),
        preview,
        info,
    )


@gpu_task("melody_to_music")
def melody_to_music(
    melody_path: str | None,
    trim_start: float,
    trim_end: float,
    prompt: str | None = None,
    model_name: str | None = None,
    duration: float = musicgen.DEFAULT_DURATION_S,
    top_k: float = musicgen.DEFAULT_TOP_K,
    top_p: float = musicgen.DEFAULT_TOP_P,
    temperature: float = musicgen.DEFAULT_TEMPERATURE,
    guidance_scale: float = musicgen.DEFAULT_GUIDANCE_SCALE,
    seed: str | None = "",
    variants: float = 1,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> list[Any]:
    """Melody + prompt -> music. Returns the text tab's outputs plus the chroma picture."""
    cancel = new_cancel_event(request)
    try:
        params = sampling_params(duration, top_k, top_p, temperature, guidance_scale, seed)
        musicgen.check_prompt(prompt, required=False)
        melody = musicgen.Melody.from_file(melody_path, trim_start, trim_end)
        result, model = run_music(True, model_name, prompt, params, variants, melody, cancel, progress)
        out = new_run_dir("melody-to-music")
        outputs = music_outputs(result, out, "melody_music")
        frames_per_second = model.chroma.sampling_rate / model.chroma.hop_length
        picture = chroma_png(result.chroma, frames_per_second, out / "chroma.png", "Melody chroma the model follows")
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e
    return [*outputs, str(picture)]


APP_DEFAULT_MODEL = ""  # the model dropdowns' value meaning "the checkpoint the app was started with"
MODEL_LABEL = 'Model (hub id or local folder; "" = the one the app was started with)'


def model_choices(melody_tab: bool) -> list[tuple[str, str]]:
    """The model dropdown's choices: the app's own checkpoint (value "") first, then the official ones."""
    default = CONFIG.melody_model if melody_tab else CONFIG.musicgen_model
    official = musicgen.MELODY_CHECKPOINTS if melody_tab else musicgen.TEXT_CHECKPOINTS
    return [(f"{default} (the app's model)", APP_DEFAULT_MODEL), *((name, name) for name in official)]


def music_model_status(name: str | None, melody_tab: bool) -> str:
    """Where the chosen MusicGen checkpoint comes from (no network)."""
    name = (name or "").strip() or (CONFIG.melody_model if melody_tab else CONFIG.musicgen_model)
    line = f"**Model:** {describe_source(name)}"
    if melody_tab and name in musicgen.TEXT_CHECKPOINTS:
        line += " · ⚠️ text-only checkpoint: choose a melody one"
    return line


def text_model_status(name: str | None) -> str:
    return music_model_status(name, melody_tab=False)


def melody_model_status(name: str | None) -> str:
    return music_model_status(name, melody_tab=True)


def sampling_controls(tab: str) -> list[gr.components.Component]:
    """Duration, sampling settings, seed and variants (the same in both MusicGen tabs); ids start with ``tab``."""
    duration = gr.Slider(musicgen.MIN_DURATION_S, musicgen.MAX_DURATION_S, value=musicgen.DEFAULT_DURATION_S,
                         step=1, label="Duration (s)")
    with gr.Accordion("Sampling", open=False):
        with gr.Row():
            top_k = gr.Number(musicgen.DEFAULT_TOP_K, label="Top-k", precision=0, minimum=0, maximum=musicgen.MAX_TOP_K)
            top_p = gr.Number(musicgen.DEFAULT_TOP_P, label="Top-p (0 = off)", minimum=0, maximum=1, step=0.05)
            temperature = gr.Number(musicgen.DEFAULT_TEMPERATURE, label="Temperature", minimum=0.05, maximum=10,
                                    step=0.05)
            guidance = gr.Number(musicgen.DEFAULT_GUIDANCE_SCALE, label="Guidance scale (classifier-free)",
                                 minimum=1, maximum=musicgen.MAX_GUIDANCE_SCALE, step=0.5)
    with gr.Row():
        seed = gr.Textbox("", label="Seed (empty = random)", max_lines=1, placeholder="e.g. 42", elem_id=f"{tab}-seed")
        variants = gr.Slider(1, musicgen.MAX_VARIANTS, value=1, step=1, label="Variants", elem_id=f"{tab}-variants")
    return [duration, top_k, top_p, temperature, guidance, seed, variants]


def show_variants(variants: float) -> list[Any]:
    """Show as many players as variants asked for."""
    return [gr.Audio(visible=i < int(variants)) for i in range(musicgen.MAX_VARIANTS)]


def music_result_panel(tab: str) -> list[gr.components.Component]:
    """Variant players, picture, parameters and details (the same in both MusicGen tabs); ids start with ``tab``."""
    audios = [
        gr.Audio(type="filepath", label=f"Variant {i + 1}", interactive=False, visible=i == 0,
                 elem_id=f"{tab}-variant-{i + 1}")
        for i in range(musicgen.MAX_VARIANTS)
    ]
    details = gr.Markdown(elem_id=f"{tab}-details")
    picture = gr.Image(type="filepath", label="Waveform and spectrogram", interactive=False,
                       elem_id=f"{tab}-picture")
    with gr.Accordion("Parameters (to reproduce this result)", open=False):
        params = gr.JSON(label="Parameters", elem_id=f"{tab}-params")
    return [*audios, picture, params, details]


def build_text_tab() -> tuple[gr.Dropdown, gr.Markdown]:
    status = gr.Markdown()
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(label="Describe the music", lines=3, max_length=musicgen.MAX_PROMPT_CHARS,
                                placeholder=TEXT_PROMPT_EXAMPLES[-1], elem_id="text-prompt")
            model = gr.Dropdown(model_choices(False), value=APP_DEFAULT_MODEL, allow_custom_value=True,
                                label=MODEL_LABEL, elem_id="text-model")
            controls = sampling_controls("text")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="text-run")
                stop = gr.Button("Stop", variant="stop", elem_id="text-stop")
            gr.Examples([[p] for p in TEXT_PROMPT_EXAMPLES], inputs=[prompt], label="Examples")
        with gr.Column():
            outputs = music_result_panel("text")
    event = run.click(text_to_music, inputs=[prompt, model, *controls], outputs=outputs, api_name="text_to_music",
                      api_description=MUSIC_API_DOCS["text_to_music"],
                      concurrency_id=GPU_QUEUE, show_progress_on=outputs[0])
    controls[-1].change(show_variants, inputs=controls[-1], outputs=outputs[: musicgen.MAX_VARIANTS],
                        api_visibility="private", queue=False)
    stop.click(stop_generation, inputs=None, outputs=None, cancels=[event], api_name="text_to_music_stop", api_description=MUSIC_API_DOCS["stop"],
               queue=False)
    model.change(text_model_status, inputs=model, outputs=status, api_visibility="private")
    return model, status


def example_melodies() -> list[list[str]]:
    """The example melodies that are present, as [path, prompt] rows for gr.Examples."""
    return [[str(EXAMPLES_DIR / name), prompt] for name, prompt in EXAMPLE_MELODIES if (EXAMPLES_DIR / name).is_file()]


def build_melody_tab() -> tuple[gr.Dropdown, gr.Markdown]:
    status = gr.Markdown()
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
            model = gr.Dropdown(model_choices(True), value=APP_DEFAULT_MODEL, allow_custom_value=True,
                                label=MODEL_LABEL, elem_id="melody-model")
            controls = sampling_controls("melody")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="melody-run")
                stop = gr.Button("Stop", variant="stop", elem_id="melody-stop")
            gr.Examples([[p] for p in MELODY_PROMPT_EXAMPLES], inputs=[prompt], label="Examples")
            melodies = example_melodies()
            if melodies:
                gr.Examples(melodies, inputs=[melody, prompt], label="Example melodies (public-domain tunes)")
        with gr.Column():
            outputs = music_result_panel("melody")
            chroma = gr.Image(type="filepath", label="Melody chroma (what the model follows)", interactive=False,
                              elem_id="melody-chroma")
    melody.change(melody_loaded, inputs=melody, outputs=[start, end, preview, preview_info],
                  api_visibility="private")
    gr.on([start.release, end.release], melody_preview, inputs=[melody, start, end], outputs=[preview, preview_info],
          api_name="melody_preview", api_description=MUSIC_API_DOCS["melody_preview"])
    event = run.click(melody_to_music, inputs=[melody, start, end, prompt, model, *controls],
                      outputs=[*outputs, chroma], api_name="melody_to_music",
                      api_description=MUSIC_API_DOCS["melody_to_music"], concurrency_id=GPU_QUEUE,
                      show_progress_on=outputs[0])
    controls[-1].change(show_variants, inputs=controls[-1], outputs=outputs[: musicgen.MAX_VARIANTS],
                        api_visibility="private", queue=False)
    stop.click(stop_generation, inputs=None, outputs=None, cancels=[event], api_name="melody_to_music_stop", api_description=MUSIC_API_DOCS["stop"],
               queue=False)
    model.change(melody_model_status, inputs=model, outputs=status, api_visibility="private")
    return model, status


