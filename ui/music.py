"""The events of the "Text to music" and "Melody to music" tabs (their layout is ``ui.music_tabs``): each checks
the page's values, calls the model's entry point and the product writer, and hands the results to the page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from models import musicgen, separator
from models.catalogue import check_offered
from models.loading import unavailable
from models.cache import short_name
from models.translation import foreign_parts
from models.transcription import TRANSCRIBER_LABEL
from products.music import MusicFiles, make_music, params_notes, read_params
from products.music_midi import write_music_midi
from serving import backend
from ui.common import CONFIG, gpu_task, plain, run_folder, user_error, with_technical
from ui.fair import fair_share
from ui.runs import page_run, stop_run
from ui.i18n import say, spoken
from utils.audio import audio_duration, write_wav
from utils.files import safe_name
from utils.engraving import DEFAULT_PAPER

APP_DEFAULT_MODEL = ""  # the model dropdowns' value meaning "the checkpoint the app was started with"


def stop_generation(request: gr.Request, tab: str = "text") -> None:
    """Stop the run going in ``tab`` of this browser session (that tab's Stop button)."""
    stop_run(request, tab)


def stop_text(request: gr.Request) -> None:
    """Stop the text-to-music run of this session (the Text tab's Stop)."""
    stop_generation(request, "text")


def stop_melody(request: gr.Request) -> None:
    """Stop the melody-to-music run of this session (the Melody tab's Stop)."""
    stop_generation(request, "melody")


def given_english(loaded: dict[str, str] | None, prompt: str | None) -> str | None:
    """The English a loaded parameters file gave for ``prompt`` in this tab (``load_params`` keeps it in the tab's
    session state), or None when the prompt is not the file's."""
    if not loaded or not prompt or loaded.get("prompt") != prompt.strip():
        return None
    return loaded.get("english")


@spoken
def prompt_note(prompt: str | None) -> str:
    """Beside the prompt, before the run: what becomes of its parts in another language. The model reads English;
    they are translated first, or, where the translator is not available here, the page says so at once."""
    parts = foreign_parts(prompt or "")
    if not parts:
        return ""
    shown = ", ".join(f"“{part}”" for part in parts[:3]) + (" …" if len(parts) > 3 else "")
    why = unavailable("translator", CONFIG.translation_model)
    if not why:
        return say(f"The model reads English: {shown} will be translated into English first.")
    return with_technical(say(f"⚠️ The model reads English, and prompt translation is not available here, so it "
                              f"would not understand {shown}. Describe the music in English."), [why])


def sampling_params(
    duration: float, top_k: float, top_p: float, temperature: float, guidance_scale: float, seed: str | None,
    stride: float = musicgen.DEFAULT_STRIDE_S,
) -> musicgen.SamplingParams:
    """The page's sampling controls as checked SamplingParams."""
    return musicgen.SamplingParams.from_record(dict(duration=duration, top_k=top_k, top_p=top_p,
                                                    temperature=temperature, guidance_scale=guidance_scale,
                                                    seed=seed, stride=stride))


def music_outputs(result: musicgen.MusicResult, files: MusicFiles) -> list[Any]:
    """A result's files as the tab shows them: [WAV path or None x MAX_VARIANTS, picture, params, details,
    downloads]. The details say what a listener needs (the seed to make it again, the result's notes, once), then
    the technical details."""
    n = result.audio.shape[0]
    audios = [str(files.wavs[i]) if i < n else None for i in range(musicgen.MAX_VARIANTS)]
    pieces = (say(f"One piece of {result.duration:.0f} s.") if n == 1
              else say(f"{n} pieces of {result.duration:.0f} s each."))
    summary = "  \n".join([
        pieces + " " + say(f"Seed {result.seed}: type it in the seed box to make the same music again."),
        *([say(f"Made from: {result.prompt_english}")] if result.prompt_english else []),
        *("⚠️ " + say(note) for note in result.notes),
    ])
    made = result.params
    technical = [
        f"Model {made.get('model')}, {made.get('decode_loop')} decode loop, {made.get('decoder_weights')} "
        f"weights on {made.get('device')}.",
        f"{result.sample_rate} Hz, {'stereo' if result.audio.shape[1] == 2 else 'mono'}; made in "
        f"{len(result.windows)} window(s) of up to {musicgen.WINDOW_S:.0f} s.",
    ]
    if made.get("served_by"):
        technical.append(f"Made by {made['served_by']}.")
    if made.get("melody_source_used"):
        technical.append(f"Melody taken from: {made['melody_source_used']}.")
    if made.get("translation_model"):
        technical.append(f"Prompt translation: {made['translation_model']}"
                         + (f" could not be used ({made['translation_failed']})" if made.get("translation_failed")
                            else f", “{made['prompt']}” → “{result.prompt_english}”") + ".")
    technical.append(files.watermark_note or "Every audio file carries the app's inaudible AudioSeal watermark "
                     "(check one under “Check a file”).")
    details = with_technical(summary, technical)
    return [*audios, str(files.picture), result.params, details, [str(f) for f in files.downloads]]


def music_state(result: musicgen.MusicResult, melody_tab: bool, model_name: str | None, melody: dict | None) -> dict:
    """What Extend needs from a result: its codes and how it was made."""
    return {"codes": result.codes, "params": result.params, "melody_tab": melody_tab, "model_name": model_name,
            "melody": melody}


def offered_model(melody_tab: bool, model_name: str | None) -> str:
    """A tab's model choice checked against what this server offers ("" = the one the app was started with).

    Raises:
        ValueError: a model this server does not offer (the message lists those it does).
    """
    own = CONFIG.melody_model if melody_tab else CONFIG.musicgen_model
    return check_offered("melody" if melody_tab else "text", model_name, own)


def estimate_line(melody_tab: bool, model_name: str | None, duration: float, variants: float,
                  stride: float = musicgen.DEFAULT_STRIDE_S) -> str:
    """Roughly how long a piece will take here, from the speed measured on this machine's earlier runs."""
    try:
        name = offered_model(melody_tab, model_name)
        windows = musicgen.window_count(float(duration), float(stride))
        seconds = backend().estimate_seconds("melody" if melody_tab else "text", name, duration=float(duration),
                                             n_variants=int(variants), stride=float(stride))  # where it runs
    except Exception:  # noqa: BLE001 - an estimate is a courtesy; never fail on it
        return ""
    shape = say(f", made in {windows} windows of up to {musicgen.WINDOW_S:.0f} s") if windows > 1 else ""
    if seconds is None:
        return say(f"{float(duration):.0f} s of music{shape}. How long it takes here is shown after the first run.")
    took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
    return say(f"{float(duration):.0f} s of music{shape}: about **{took}** on this machine.")


@spoken
def clip_preview(path: str | None, start: float = 0.0, end: float = 0.0) -> tuple[str | None, str]:
    """The part of a clip that will be continued, as a WAV, and a line about it."""
    if not path:
        return None, ""
    try:
        clip = musicgen.Clip.from_file(path, start, end)
        out = write_wav(run_folder("clip-preview") / "clip_part_used.wav", clip.audio[0], clip.sample_rate)
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e
    return str(out), say(f"Continuing {clip.duration:.1f} s of the clip. The result starts with the clip as the "
                         "model hears it, then continues it.")


N_MUSIC_OUTPUTS = musicgen.MAX_VARIANTS + 5  # players, picture, params, details, downloads, state


@spoken
@fair_share
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
    stride: float = musicgen.DEFAULT_STRIDE_S,
    clip_path: str | None = None,
    clip_start: float = 0.0,
    clip_end: float = 0.0,
    loaded: dict[str, str] | None = None,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> Iterator[list[Any]]:
    """Make music from a text description (MusicGen), up to 5 minutes, optionally continuing an audio clip.

    Args:
        prompt: what the music should be, e.g. "lo-fi hip hop with warm piano, 80 bpm"; any language (other languages
            are translated into English where the translator is available); may be empty with a clip.
        model_name: one of the models this server offers (the tab's Model list); "" for the app's own.
        duration: seconds of music to make, 1 to 300.
        top_k: sample among the k likeliest codes, 0 to 2048 (0 = off).
        top_p: nucleus sampling, 0 to 1 (0 = off).
        temperature: sampling temperature, above 0 and at most 10.
        guidance_scale: how closely the music follows the prompt, 1 to 15.
        seed: a whole number as text for the same music again; "" for a random one.
        variants: how many different pieces, 1 to 4.
        stride: past 30 s, seconds each window adds, 10 to 25.
        clip_path: an audio clip to continue (optional, 1 to 25 s after trimming).
        clip_start: where the clip starts, in seconds.
        clip_end: where the clip ends, in seconds (0 = its end).

    Returns:
        4 audio slots (32 kHz WAV; empty past the variants asked for), a waveform and spectrogram PNG, the
        parameters (to make the same music again), details (markdown), and the downloads (WAV, MP3, JSON).
    """
    def work(hooks: dict[str, Any]) -> list[Any]:
        made = musicgen.MusicRequest(
            prompt, sampling_params(duration, top_k, top_p, temperature, guidance_scale, seed, stride), variants,
            clip=musicgen.Clip.from_file(clip_path, clip_start, clip_end) if clip_path else None,
            prompt_english=given_english(loaded, prompt))
        result, files = make_music("text", offered_model(False, model_name), made, run_folder("text-to-music"),
                                   watermark=CONFIG.watermark_model, **hooks)
        return [*music_outputs(result, files), music_state(result, False, model_name, None)]

    yield from page_run(request, "text", N_MUSIC_OUTPUTS, progress, work)


@spoken
@fair_share
def extend_music(
    state: dict[str, Any] | None,
    seconds: float = musicgen.DEFAULT_STRIDE_S,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> Iterator[list[Any]]:
    """``seconds`` more of this tab's last result, with the same prompt, settings, English and seed."""
    tab = "melody" if state and state.get("melody_tab") else "text"
    yield from page_run(request, tab, N_MUSIC_OUTPUTS + (1 if tab == "melody" else 0), progress,
                        lambda hooks: extend_work(state, seconds, hooks))


def extend_work(state: dict[str, Any] | None, seconds: float, hooks: dict[str, Any]) -> list[Any]:
    """Extend's work (see ``extend_music``)."""
    if not state or state.get("codes") is None:
        raise ValueError("Generate something first: Extend continues the last result of this tab.")
    made = state["params"]
    params = musicgen.SamplingParams.from_record(made, duration=seconds)
    melody = None
    if state["melody_tab"]:
        melody = musicgen.Melody.from_file(state["melody"]["path"], state["melody"]["start"], state["melody"]["end"])
    request = musicgen.MusicRequest(made["prompt"], params, made["variants"], melody=melody,
                                    melody_source=(state.get("melody") or {}).get("source"),
                                    codes=state["codes"], prompt_english=made.get("prompt_english"))
    role = "melody" if state["melody_tab"] else "text"
    result, files = make_music(role, offered_model(state["melody_tab"], state["model_name"]), request,
                               run_folder("extended"), suffix="_extended", watermark=CONFIG.watermark_model, **hooks)
    *outputs, downloads = music_outputs(result, files)
    chroma = [gr.skip()] if state["melody_tab"] else []  # the melody tab's chroma picture stays as it was
    return [*outputs, *chroma, downloads,
            music_state(result, state["melody_tab"], state["model_name"], state["melody"])]


@spoken
def melody_preview(path: str | None, start: float = 0.0, end: float = 0.0) -> tuple[str | None, str]:
    """The part of the melody that will be used, as a WAV, and a line about it."""
    if not path:
        return None, ""
    try:
        melody = musicgen.Melody.from_file(path, start, end)
        out = write_wav(run_folder("melody-preview") / "melody_part_used.wav", melody.audio, melody.sample_rate)
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e
    return str(out), say(f"Using {melody.duration:.1f} s of the melody (at most {musicgen.MAX_MELODY_SECONDS:.0f} s).")


@spoken
def melody_loaded(path: str | None) -> tuple[Any, Any, Any, str | None, Any]:
    """When a melody arrives: fit the trim sliders to its length and show the part used; one that is not usable
    audio is refused at once (the upload is cleared) with the reason beside it.

    Returns:
        (the upload: kept, or None when refused; trim start; trim end; the part used; the line beside it).
    """
    if not path:  # cleared: a refusal's reason stays beside the upload
        return gr.skip(), gr.Slider(value=0), gr.Slider(value=0), None, gr.skip()
    try:
        total = audio_duration(path)
        end = min(total, musicgen.MAX_MELODY_SECONDS)
        preview, info = melody_preview(path, 0.0, end)
    except (ValueError, gr.Error) as e:  # not audio, silent, damaged...: say so beside the upload
        message = e.message if isinstance(e, gr.Error) else plain(say(str(e)))
        return None, gr.skip(), gr.skip(), None, f"⚠️ {message}"
    return (
        gr.skip(),
        gr.Slider(maximum=round(total, 2), value=0.0),
        gr.Slider(maximum=round(total, 2), value=round(end, 2)),
        preview,
        info,
    )


@spoken
@fair_share
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
    stride: float = musicgen.DEFAULT_STRIDE_S,
    melody_source: str = separator.DEFAULT_MELODY_SOURCE,
    loaded: dict[str, str] | None = None,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> Iterator[list[Any]]:
    """Make music that follows a melody (MusicGen-Melody): a hummed, sung or played tune, or a whole song.

    Args:
        melody_path: the melody, a wav, mp3, flac or ogg file (at most 10 minutes; up to 30 s of it are used).
        trim_start: where the part used starts, in seconds.
        trim_end: where it ends, in seconds (0 = the end).
        prompt: the style, e.g. "a jazz trio"; may be empty.
        model_name: one of the melody models this server offers (the tab's Model list); "" for the app's own.
        duration: seconds of music to make, 1 to 300.
        top_k: sample among the k likeliest codes, 0 to 2048 (0 = off).
        top_p: nucleus sampling, 0 to 1 (0 = off).
        temperature: sampling temperature, above 0 and at most 10.
        guidance_scale: how closely the music follows the prompt, 1 to 15.
        seed: a whole number as text for the same music again; "" for a random one.
        variants: how many different pieces, 1 to 4.
        stride: past 30 s, seconds each window adds, 10 to 25.
        melody_source: "separated" (drums and bass taken out first) or "mix" (the melody as given).

    Returns:
        as text_to_music, with the melody's chroma PNG before the downloads.
    """
    def work(hooks: dict[str, Any]) -> list[Any]:
        made = musicgen.MusicRequest(
            prompt or "", sampling_params(duration, top_k, top_p, temperature, guidance_scale, seed, stride),
            variants, melody=musicgen.Melody.from_file(melody_path, trim_start, trim_end),
            melody_source=melody_source, prompt_english=given_english(loaded, prompt))
        result, files = make_music("melody", offered_model(True, model_name), made, run_folder("melody-to-music"),
                                   watermark=CONFIG.watermark_model, **hooks)
        *outputs, downloads = music_outputs(result, files)
        state = music_state(result, True, model_name,
                            {"path": melody_path, "start": trim_start, "end": trim_end, "source": made.melody_source})
        return [*outputs, str(files.chroma), downloads, state]

    yield from page_run(request, "melody", N_MUSIC_OUTPUTS + 1, progress, work)


@spoken
@fair_share
def music_midi(audio_path: str | None, paper: str = DEFAULT_PAPER, request: gr.Request = None,
               progress: gr.Progress = gr.Progress()) -> tuple[list[str], str | None, str]:
    """The notes of any music (a result, or any audio file) as a MIDI on its own beats, and as sheet music.

    Args:
        audio_path: the music, a wav, mp3, flac, ogg or mp4 file.
        paper: the score's page size, "a4" or "letter".

    Returns:
        the downloads (the MIDI, the score as MusicXML and PDF), the score's first page (PNG), and a line about them
        (notes, tempo in BPM).
    """
    try:
        if not audio_path:
            raise ValueError("Generate something first: this writes the notes of variant 1 as MIDI.")
        progress(0.1, desc=say("Listening for the notes"))
        made = write_music_midi(audio_path, run_folder("music-midi"), safe_name(Path(audio_path).stem, empty="music"),
                                score=True, paper=paper)
    except Exception as e:  # noqa: BLE001
        raise user_error(e) from e
    if made.notes == 1:
        summary = say(f"1 note at {made.bpm:.0f} BPM. The MIDI follows the music's beats, so its bars line up with "
                      "the music in your music software.")
    else:
        summary = say(f"{made.notes} notes at {made.bpm:.0f} BPM. The MIDI follows the music's beats, so its bars "
                      "line up with the music in your music software.")
    summary += ("  \n⚠️ " + say(made.note)) if made.note else ""
    line = with_technical(summary, [f"Notes heard by {TRANSCRIBER_LABEL}; beats tracked in the audio, a tempo change "
                                    "on every beat of the MIDI."])
    page = str(made.score.pages[0]) if made.score and made.score.pages else None
    return [str(f) for f in made.downloads], page, line


def load_params(path: str | None, melody_tab: bool) -> list[Any]:
    """A result's parameters JSON -> the tab's settings, to make the same music again.

    Returns:
        [prompt, model, duration, top_k, top_p, temperature, guidance_scale, seed, variants, stride, trim start,
        trim end, (melody source, melody tab only), note, the tab's loaded state]; settings the file does not hold
        are left as they are. The state holds the file's prompt and the English it was made from: the next runs of
        that prompt in this tab (of this browser session only) are made from the same English.

    Raises:
        gr.Error: not a parameters file, or one from the other tab.
    """
    try:
        made = read_params(path, "melody_to_music" if melody_tab else "text_to_music")
    except ValueError as e:
        raise user_error(e) from e

    def value(key: str, convert: Callable[[Any], Any] = lambda v: v) -> Any:
        return gr.skip() if made.get(key) is None else convert(made[key])

    loaded = ({"prompt": made["prompt"].strip(), "english": made["prompt_english"]}
              if made.get("prompt") and made.get("prompt_english") else None)
    model = made.get("model")
    try:
        offered = offered_model(melody_tab, model) if model else None
    except ValueError:  # made with a model this server does not offer: the tab keeps its choice, and says so
        offered = None
        made = {**made, "model_note": f"It was made with “{short_name(model)}”, which this server does not offer: "
                                      "the tab keeps its model, so the music will differ."}
    trim = made.get("melody_trim" if melody_tab else "clip_trim") or [None, None]
    updates = [
        value("prompt"),
        gr.skip() if offered is None else (APP_DEFAULT_MODEL if offered == offered_model(melody_tab, "") else offered),
        value("duration", float), value("top_k", int), value("top_p", float), value("temperature", float),
        value("guidance_scale", float), value("seed", str), value("variants", int), value("stride", float),
        gr.skip() if trim[0] is None else float(trim[0]), gr.skip() if trim[0] is None else float(trim[1] or 0.0),
    ]
    if melody_tab:
        updates.append(value("melody_source"))
    note = say(params_notes(made)) + (("  \n⚠️ " + say(made["model_note"])) if made.get("model_note") else "")
    return [*updates, note, loaded]


@spoken
def load_text_params(path: str | None) -> list[Any]:
    return load_params(path, melody_tab=False)


@spoken
def load_melody_params(path: str | None) -> list[Any]:
    return load_params(path, melody_tab=True)
