"""Music demo: piano covers of pop songs, text to music, and melody to music.

Run ``python app.py --help`` for the launch flags. The UI is built here; the models live in ``models/``.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

try:  # Hugging Face ZeroGPU: `spaces` must be imported before torch (models/ imports torch)
    import spaces  # noqa: E402
except ImportError:  # not on a Space, and not installed: plain calls
    spaces = None

from models import musicgen, pop2piano  # noqa: E402
from models.common import DEVICE_ENV_VAR, ModelLoadError, describe_source, pick_device  # noqa: E402
from utils.audio import (  # noqa: E402
    OUTPUT_SAMPLE_RATE,
    audio_duration,
    fit_length,
    load_audio,
    mix,
    write_wav,
)
from utils.beats import essentia_available  # noqa: E402
from utils.files import DEFAULT_MAX_AGE_S, DEFAULT_MAX_OUTPUT_MB, DEFAULT_OUTPUT_ROOT  # noqa: E402
from utils.files import new_run_dir as make_run_dir  # noqa: E402
from utils.midi import fluidsynth_available, render_midi  # noqa: E402
from utils.plots import chroma_png, piano_roll_png, spectrograms_png  # noqa: E402

logger = logging.getLogger("music_demo")

DESCRIPTION = """\
# 🎹 Music demo
**Piano cover**: upload a pop song and get a piano arrangement (audio, MIDI with the song's tempo, notes).
**Text to music**: describe music and hear it. **Melody to music**: hum or upload a tune and restyle it.
"""
PIANO_COVER_HELP = """\
Arranged by [Pop2Piano](https://huggingface.co/sweetcocoa/pop2piano) in one of 21 arrangers' styles.
Songs are cut into four-beat chunks at the detected beats; long songs take a while on a CPU, and the progress bar
shows how far it has got.
"""
DEFAULT_BALANCE = 0.7  # 1 = piano only, 0 = original only
OUTPUT_DIR_ENV_VAR = "MUSIC_DEMO_OUTPUT_DIR"  # where each request's files are written (a folder per request)
MAX_OUTPUT_MB_ENV_VAR = "MUSIC_DEMO_MAX_OUTPUT_MB"  # size cap of that folder; the oldest requests go first
MAX_UPLOAD_MB_ENV_VAR = "MUSIC_DEMO_MAX_UPLOAD_MB"
OUTPUT_MAX_AGE_S = DEFAULT_MAX_AGE_S  # run folders older than this are removed when a new run starts
DEFAULT_MAX_UPLOAD_MB = 200.0  # a 10-minute WAV at 48 kHz stereo is ~110 MB
DEFAULT_QUEUE_SIZE = 32  # requests waiting at once; more get "queue is full"
GPU_QUEUE = "models"  # every model event shares one worker, so two models never fight over GPU memory
TEXT_PROMPT_EXAMPLES = [
    "An 80s driving pop song with heavy drums and synth pads in the background",
    "A cheerful country song with acoustic guitars",
    "90s rock song with electric guitar and heavy drums",
    "a light and cheerful EDM track, with syncopated drums, airy pads, and strong emotions, bpm: 130",
    "lo-fi hip hop with warm piano and vinyl crackle, 80 bpm",
]
MELODY_PROMPT_EXAMPLES = [
    "a grand orchestral arrangement with strings and horns",
    "a jazz trio: upright bass, brushed drums, piano",
    "an 8-bit chiptune with punchy square-wave leads",
]


@dataclass
class AppConfig:
    """Settings chosen at launch (env vars, then CLI flags); read by the event handlers at run time."""

    piano_model: str = field(default_factory=pop2piano.default_model_name)
    musicgen_model: str = field(default_factory=lambda: musicgen.default_model_name(melody=False))
    melody_model: str = field(default_factory=lambda: musicgen.default_model_name(melody=True))
    device: str | None = field(default_factory=lambda: os.environ.get(DEVICE_ENV_VAR) or None)
    max_song_seconds: float = field(default_factory=pop2piano.default_max_song_seconds)
    output_dir: Path = field(
        default_factory=lambda: Path(os.environ.get(OUTPUT_DIR_ENV_VAR, "").strip() or DEFAULT_OUTPUT_ROOT)
    )
    max_output_mb: float = field(
        default_factory=lambda: float(os.environ.get(MAX_OUTPUT_MB_ENV_VAR, "").strip() or DEFAULT_MAX_OUTPUT_MB)
    )
    max_upload_mb: float = field(
        default_factory=lambda: float(os.environ.get(MAX_UPLOAD_MB_ENV_VAR, "").strip() or DEFAULT_MAX_UPLOAD_MB)
    )


CONFIG = AppConfig()


def new_run_dir(prefix: str) -> Path:
    """A fresh folder for one request's files; folders over the age limit or the size cap are swept away."""
    return make_run_dir(prefix, CONFIG.output_dir, OUTPUT_MAX_AGE_S, int(CONFIG.max_output_mb * 1024 * 1024))


# ZeroGPU lends a GPU per call for at most this long (seconds); longer calls are cut off by the Space.
GPU_SECONDS = {"piano_cover": 120, "text_to_music": 120, "melody_to_music": 180}


def on_zero_gpu() -> bool:
    """Whether the app runs on a Hugging Face ZeroGPU Space (``spaces`` importable and ``SPACES_ZERO_GPU`` set)."""
    return spaces is not None and os.environ.get("SPACES_ZERO_GPU", "").lower() in {"1", "t", "true"}


def gpu_task(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a model event with ``spaces.GPU`` when `spaces` is importable (it does nothing off ZeroGPU)."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=GPU_SECONDS[name])


def runtime_line() -> str:
    """How model calls run: plain, or through ZeroGPU's decorator (for the status lines and the launch log)."""
    if spaces is None:
        return "ZeroGPU: off (`spaces` not installed: plain calls)"
    return "ZeroGPU: on" if on_zero_gpu() else "ZeroGPU: off (`spaces` installed, not on a ZeroGPU Space)"


def user_error(e: Exception) -> gr.Error:
    """Turn a failure into a message in the page; unexpected ones are logged with their traceback."""
    if isinstance(e, (ValueError, ModelLoadError)):
        return gr.Error(str(e), duration=None)
    logger.error("Unexpected failure:\n%s", traceback.format_exc())
    return gr.Error(f"Something went wrong ({type(e).__name__}: {e}). Please try again or try another file.")


def gradio_progress(progress: gr.Progress) -> Callable[[float, str], None]:
    """Adapt a gr.Progress to the models' ``(fraction, message)`` callback."""
    return lambda fraction, message: progress(fraction, desc=message)


# ------------------------------------------------------------------------------------- API documentation
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
API_DOCS = {
    "piano_cover": (
        "Arrange a song for piano with Pop2Piano. `song_path` (required): a wav, mp3, flac or ogg file of "
        f"{pop2piano.MIN_SONG_SECONDS:g} s up to the app's song limit (--max-song-seconds, default "
        f"{pop2piano.DEFAULT_MAX_SONG_SECONDS / 60:g} minutes); `style`: the arranger, composer1..composer21 or "
        f"random (default composer1); `balance`: the mix, 0 = original only, 1 = piano only (default "
        f"{DEFAULT_BALANCE:g}). Returns the piano WAV (44.1 kHz), the MIDI, the piano+original mix WAV, a "
        "piano-roll PNG, the tempo in BPM, a details line (markdown) and the state /piano_cover_remix uses."
    ),
    "piano_cover_remix": (
        "Mix this session's last cover with its original again. `balance`: 0 = original only, 1 = piano only. "
        "Returns the mix WAV (44.1 kHz), or None before any cover."
    ),
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


# ---------------------------------------------------------------------------------------------- piano cover
STYLE_CHOICES = [(pop2piano.composer_label(c), c) for c in (*pop2piano.COMPOSERS, pop2piano.RANDOM_COMPOSER)]


def piano_cover_status() -> str:
    """One line on where the piano model comes from and what renders the audio (no network)."""
    try:
        device = str(pick_device(CONFIG.device))
    except ValueError as e:
        device = f"⚠️ {e}"
    lines = [f"**Model:** {describe_source(CONFIG.piano_model)} · **device:** {device}"]
    if not essentia_available():
        lines.append("⚠️ essentia is not installed: beats are tracked with librosa (less accurate).")
    if not fluidsynth_available():
        lines.append("⚠️ FluidSynth is not installed: the piano is rendered with sine tones (`apt-get install libfluidsynth3`).")
    return "  \n".join(lines)


@gpu_task("piano_cover")
def piano_cover(
    song_path: str | None,
    style: str,
    balance: float = DEFAULT_BALANCE,
    progress: gr.Progress = gr.Progress(),
) -> tuple[str, str, str, str, float, str, dict[str, Any]]:
    """Arrange a song for piano.

    Returns:
        piano WAV, MIDI file, piano+original mix WAV, piano-roll PNG, tempo (BPM), details (markdown),
        and the state the balance slider needs to re-mix.
    """
    try:
        model = pop2piano.get_piano_cover_model(CONFIG.piano_model, CONFIG.device)
        cover, song, sr = model.cover_file(
            song_path, style, max_seconds=CONFIG.max_song_seconds, progress=gradio_progress(progress)
        )
        progress(0.95, desc="Rendering the piano")
        rendered = render_midi(cover.midi, OUTPUT_SAMPLE_RATE)
        piano = fit_length(rendered.audio, int(round(song.shape[0] / sr * OUTPUT_SAMPLE_RATE)))
        out = new_run_dir("piano-cover")
        stem = Path(song_path).stem[:60] if song_path else "song"
        piano_wav = write_wav(out / f"{stem}_piano_{cover.composer}.wav", piano, OUTPUT_SAMPLE_RATE)
        midi_path = out / f"{stem}_piano_{cover.composer}.mid"
        cover.midi.write(str(midi_path))
        song_wav = write_wav(out / f"{stem}_original.wav", song, sr)
        mix_wav = write_wav(out / f"{stem}_mix.wav", mix(piano, song, balance), OUTPUT_SAMPLE_RATE)
        roll = piano_roll_png(
            cover.midi,
            out / f"{stem}_piano_roll.png",
            beat_times=cover.beats.times,
            title=f"{pop2piano.composer_label(cover.composer)} · {cover.beats.bpm:.1f} BPM · {cover.n_notes} notes",
        )
    except Exception as e:  # noqa: BLE001 - every failure becomes a message; the app keeps serving
        raise user_error(e) from e
    details = [
        f"**{pop2piano.composer_label(cover.composer)}** (`{cover.composer}`) · {cover.n_notes} notes · "
        f"{cover.beats.bpm:.1f} BPM from {cover.beats.backend} (first beat at {cover.beats.times[0]:.2f} s) · "
        f"{cover.n_chunks} chunks of {pop2piano.BEATS_PER_CHUNK} beats",
        f"Rendered with {rendered.renderer}" + (f" ({rendered.soundfont.name})" if rendered.soundfont else ""),
        *(f"⚠️ {w}" for w in (*cover.warnings, rendered.warning) if w),
    ]
    state = {"piano": str(piano_wav), "song": str(song_wav), "out": str(out), "stem": stem}
    return (
        str(piano_wav),
        str(midi_path),
        str(mix_wav),
        str(roll),
        round(cover.beats.bpm, 2),
        "  \n".join(details),
        state,
    )


def remix(state: dict[str, Any] | None, balance: float) -> str | None:
    """Re-mix the last cover with the original at a new balance (0 = original, 1 = piano)."""
    if not state:
        return None
    try:
        piano, _ = load_audio(state["piano"], OUTPUT_SAMPLE_RATE)
        song, _ = load_audio(state["song"], OUTPUT_SAMPLE_RATE)
        path = Path(state["out"]) / f"{state['stem']}_mix_{int(round(balance * 100))}.wav"
        return str(write_wav(path, mix(piano, song, balance), OUTPUT_SAMPLE_RATE))
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e


def build_piano_cover_tab() -> gr.Markdown:
    """The "Piano cover" tab: song in, piano audio / MIDI / mix / picture / tempo out. Returns its status line."""
    gr.Markdown(PIANO_COVER_HELP)
    status = gr.Markdown(elem_id="piano-cover-status")
    with gr.Row():
        with gr.Column():
            song = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Song (wav, mp3, flac, ogg)",
                            elem_id="piano-song")
            style = gr.Dropdown(STYLE_CHOICES, value="composer1", label="Arranger style", elem_id="piano-style")
            balance = gr.Slider(0.0, 1.0, value=DEFAULT_BALANCE, step=0.05, label="Mix balance: original ↔ piano",
                                elem_id="piano-balance")
            run = gr.Button("Make a piano cover", variant="primary", elem_id="piano-run")
        with gr.Column():
            piano_audio = gr.Audio(type="filepath", label="Piano cover", interactive=False, elem_id="piano-audio")
            mix_audio = gr.Audio(type="filepath", label="Piano + original", interactive=False, elem_id="piano-mix")
            with gr.Row():
                midi_file = gr.File(label="MIDI download", interactive=False, height=90, scale=3, elem_id="piano-midi")
                tempo = gr.Number(value=None, label="Detected tempo (BPM)", interactive=False, scale=1,
                                  elem_id="piano-tempo")
            details = gr.Markdown(elem_id="piano-cover-details")
    roll = gr.Image(type="filepath", label="Piano roll", interactive=False, elem_id="piano-roll")
    state = gr.State(None)

    run.click(
        piano_cover,
        inputs=[song, style, balance],
        outputs=[piano_audio, midi_file, mix_audio, roll, tempo, details, state],
        api_name="piano_cover",
        api_description=API_DOCS["piano_cover"],
        show_progress_on=[piano_audio, roll],
        concurrency_id=GPU_QUEUE,
    )
    balance.release(remix, inputs=[state, balance], outputs=mix_audio, api_name="piano_cover_remix",
                    api_description=API_DOCS["piano_cover_remix"])
    return status


# ------------------------------------------------------------------------------------- text and melody to music
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
    audios: list[str | None] = [
        str(write_wav(out / f"{stem}_seed{result.seed}_v{i + 1}.wav", result.audio[i].T, result.sample_rate))
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
                      api_description=API_DOCS["text_to_music"],
                      concurrency_id=GPU_QUEUE, show_progress_on=outputs[0])
    controls[-1].change(show_variants, inputs=controls[-1], outputs=outputs[: musicgen.MAX_VARIANTS],
                        api_visibility="private", queue=False)
    stop.click(stop_generation, inputs=None, outputs=None, cancels=[event], api_name="text_to_music_stop", api_description=API_DOCS["stop"],
               queue=False)
    model.change(text_model_status, inputs=model, outputs=status, api_visibility="private")
    return model, status


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
        with gr.Column():
            outputs = music_result_panel("melody")
            chroma = gr.Image(type="filepath", label="Melody chroma (what the model follows)", interactive=False,
                              elem_id="melody-chroma")
    melody.change(melody_loaded, inputs=melody, outputs=[start, end, preview, preview_info],
                  api_visibility="private")
    gr.on([start.release, end.release], melody_preview, inputs=[melody, start, end], outputs=[preview, preview_info],
          api_name="melody_preview", api_description=API_DOCS["melody_preview"])
    event = run.click(melody_to_music, inputs=[melody, start, end, prompt, model, *controls],
                      outputs=[*outputs, chroma], api_name="melody_to_music",
                      api_description=API_DOCS["melody_to_music"], concurrency_id=GPU_QUEUE,
                      show_progress_on=outputs[0])
    controls[-1].change(show_variants, inputs=controls[-1], outputs=outputs[: musicgen.MAX_VARIANTS],
                        api_visibility="private", queue=False)
    stop.click(stop_generation, inputs=None, outputs=None, cancels=[event], api_name="melody_to_music_stop", api_description=API_DOCS["stop"],
               queue=False)
    model.change(melody_model_status, inputs=model, outputs=status, api_visibility="private")
    return model, status


def initial_settings() -> tuple[str, Any, str, Any, str]:
    """Per page load: status lines and model choices from the launch settings."""
    return (
        piano_cover_status(),
        gr.Dropdown(choices=model_choices(False), value=APP_DEFAULT_MODEL),
        music_model_status(CONFIG.musicgen_model, False),
        gr.Dropdown(choices=model_choices(True), value=APP_DEFAULT_MODEL),
        music_model_status(CONFIG.melody_model, True),
    )


with gr.Blocks(title="Music demo", delete_cache=(3600, OUTPUT_MAX_AGE_S)) as demo:
    gr.Markdown(DESCRIPTION)
    with gr.Tab("Piano cover"):
        piano_status = build_piano_cover_tab()
    with gr.Tab("Text to music"):
        text_model, text_status = build_text_tab()
    with gr.Tab("Melody to music"):
        melody_model, melody_status = build_melody_tab()
    demo.load(initial_settings, outputs=[piano_status, text_model, text_status, melody_model, melody_status],
              api_visibility="private")


SHARE_WITHOUT_LOGIN_WARNING = (
    "WARNING: --share without --auth/--auth-file: anyone with the link can use this machine's models, upload "
    "files and download what the app makes. Add --auth USER:PASS or --auth-file FILE to require a login."
)


def read_auth_file(path: str | Path) -> list[tuple[str, str]]:
    """Logins from a file: one ``user:password`` a line; blank lines and ``#`` comments are skipped.

    Raises:
        ValueError: the file is missing, a line has no ``:``, a user or password is empty, or there is no login.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--auth-file {path}: no such file.")
    logins = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError(f"--auth-file {path}, line {number}: expected user:password.")
        logins.append((user.strip(), password))
    if not logins:
        raise ValueError(f"--auth-file {path} holds no user:password line.")
    return logins


def parse_auth(auth: str | None, auth_file: str | None) -> list[tuple[str, str]] | None:
    """The logins from ``--auth USER:PASS`` and ``--auth-file FILE`` together, or None for an open app."""
    logins = []
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth wants USER:PASS")
        logins.append((user, password))
    if auth_file:
        logins.extend(read_auth_file(auth_file))
    return logins or None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--server-name", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--server-port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login")
    parser.add_argument("--auth-file", metavar="FILE", help="require a login: one user:password a line")
    parser.add_argument("--device", default=CONFIG.device, help="cuda, cuda:N, mps or cpu (default: best available)")
    parser.add_argument(pop2piano.PIANO_COVER_CLI_FLAG, default=CONFIG.piano_model,
                        help=f"Pop2Piano hub id or local folder (env {pop2piano.PIANO_COVER_ENV_VAR})")
    parser.add_argument(musicgen.MUSICGEN_CLI_FLAG, default=CONFIG.musicgen_model,
                        help=f"MusicGen hub id or local folder for text to music (env {musicgen.MUSICGEN_ENV_VAR})")
    parser.add_argument(musicgen.MELODY_CLI_FLAG, default=CONFIG.melody_model,
                        help=f"MusicGen-Melody hub id or local folder (env {musicgen.MELODY_ENV_VAR})")
    parser.add_argument("--max-song-seconds", type=float, default=CONFIG.max_song_seconds,
                        help=f"longest song accepted (env {pop2piano.MAX_SONG_SECONDS_ENV_VAR})")
    parser.add_argument("--max-upload-mb", type=float, default=CONFIG.max_upload_mb,
                        help=f"largest upload accepted, in MB (env {MAX_UPLOAD_MB_ENV_VAR})")
    parser.add_argument("--output-dir", type=Path, default=CONFIG.output_dir,
                        help=f"where results are written, a folder per request (env {OUTPUT_DIR_ENV_VAR})")
    parser.add_argument("--max-output-mb", type=float, default=CONFIG.max_output_mb,
                        help=f"size cap of --output-dir in MB; the oldest results go first (env {MAX_OUTPUT_MB_ENV_VAR})")
    parser.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE,
                        help="requests that may wait at once; more are refused with 'queue is full'")
    return parser.parse_args(argv)


def configure(args: argparse.Namespace) -> None:
    """Apply launch flags to the settings the event handlers read."""
    CONFIG.piano_model = args.piano_model
    CONFIG.musicgen_model = args.musicgen_model
    CONFIG.melody_model = args.melody_model
    CONFIG.device = args.device
    CONFIG.max_song_seconds = args.max_song_seconds
    CONFIG.max_upload_mb = args.max_upload_mb
    CONFIG.output_dir = Path(args.output_dir)
    CONFIG.max_output_mb = args.max_output_mb


def preload_models() -> None:
    """Load every model now (ZeroGPU wants weights loaded at start-up, in the main process, not per call)."""
    pop2piano.get_piano_cover_model(CONFIG.piano_model, CONFIG.device).load()
    musicgen.get_musicgen_model(CONFIG.musicgen_model, CONFIG.device, melody=False).load()
    musicgen.get_musicgen_model(CONFIG.melody_model, CONFIG.device, melody=True).load()


def main(argv: list[str] | None = None, block: bool = True) -> gr.Blocks:
    """Parse the flags and launch the app; with ``block=False`` (a notebook) return once it is serving."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        auth = parse_auth(args.auth, args.auth_file)
    except ValueError as e:
        raise SystemExit(str(e)) from e
    configure(args)
    if args.share and auth is None:
        print(SHARE_WITHOUT_LOGIN_WARNING, flush=True)
    logger.info(runtime_line())
    if on_zero_gpu():
        try:
            preload_models()
        except Exception as e:  # noqa: BLE001 - the tabs say what is missing when they are used
            logger.warning("Could not preload the models: %s", e)
    demo.queue(default_concurrency_limit=1, max_size=args.queue_size).launch(
        share=args.share,
        server_name=args.server_name,
        server_port=args.server_port,
        auth=auth,
        max_file_size=f"{args.max_upload_mb:g}mb",
        prevent_thread_lock=not block,
        allowed_paths=[str(CONFIG.output_dir)],
    )
    return demo


if __name__ == "__main__":
    main()
