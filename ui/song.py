"""The events of the "Song with lyrics" tab (its layout is ``ui.song_tab``): each checks the page's values, calls the
song model through the seam and the product writer, and hands the results to the page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from models import song
from models.catalogue import check_offered
from products.song import SongFiles, edit_song as edit_a_song, make_song as make_a_song, read_song_params
from serving import backend
from ui.common import CONFIG, gpu_task, run_folder, user_error, with_technical
from ui.fair import fair_share
from ui.i18n import say, spoken
from ui.runs import page_run, stop_run

APP_DEFAULT_MODEL = ""  # the model dropdown's value meaning "the checkpoint the app was started with"
TAB = "song"


def offered_song_model(model_name: str | None) -> str:
    """The tab's model choice checked against what this server offers ("" = the one the app was started with).

    Raises:
        ValueError: a model this server does not offer (the message lists those it does).
    """
    return check_offered("song", model_name, CONFIG.song_model)


def stop_song(request: gr.Request) -> None:
    """Stop the song run of this session (the tab's Stop): it ends at the next step, and keeps nothing."""
    stop_run(request, TAB)


def song_request(style: str | None, lyrics: str | None, instrumental: bool, language: str | None, seconds: float,
                 bpm: Any, key: str | None, time_signature: str | None, seed: Any, variants: Any) -> song.SongRequest:
    """The page's values as a checked ``SongRequest``.

    Raises:
        ValueError: any value the song cannot be made with (plain message).
    """
    return song.SongRequest(style or "", lyrics or "", language or song.AUTO, seconds, bpm, key or None,
                            time_signature or None, seed, variants, bool(instrumental))


def song_outputs(result: song.SongResult, files: SongFiles) -> list[Any]:
    """A song's files as the tab shows them: [WAV or None x MAX_VARIANTS, picture, params, details, downloads]."""
    n = result.audio.shape[0]
    audios = [str(files.wavs[i]) if i < n else None for i in range(song.MAX_VARIANTS)]
    made = result.params
    language = song.LANGUAGES.get(str(made.get("language")), str(made.get("language")))
    if made.get("task") == "song_edit":
        first = say(f"The part from {made['span'][0]:.1f} to {made['span'][1]:.1f} s was made again; the rest "
                    "stays as it was.")
    elif made.get("task") == "song_extend":
        first = say(f"The song now lasts {result.duration:.0f} s; the first {made['span'][0]:.0f} s stay as they "
                    "were.")
    else:
        first = (say(f"One song of {result.duration:.0f} s.") if n == 1
                 else say(f"{n} songs of {result.duration:.0f} s each."))
    sung = say("Instrumental (no words).") if made.get("instrumental") else say(f"Sung in {language}.")
    summary = "  \n".join([first + " " + sung,
                           say(f"Seed {result.seed}: type it in the seed box to make the same song again."),
                           *("⚠️ " + say(note) for note in result.notes)])
    technical = [
        f"ACE-Step 1.5, checkpoint {made.get('model')}, through {made.get('pipeline')}: {made.get('steps')} steps"
        + (" (turbo: no guidance pass)" if made.get("turbo") else f", guidance {made.get('guidance_scale')}") + ".",
        f"Weights in {made.get('dtype_note') or made.get('dtype')} on {made.get('device')}; "
        f"{result.sample_rate} Hz stereo; lyrics language {made.get('language')} ({made.get('language_how')}).",
        f"Made in {made.get('seconds_taken')} s.",
    ]
    if made.get("translation_model") and made.get("style_english"):
        technical.append(f"Style translated by {made['translation_model']}: “{made.get('style')}” → "
                         f"“{made['style_english']}”.")
    if made.get("served_by"):
        technical.append(f"Made by {made['served_by']}.")
    technical.append(files.watermark_note or "Every audio file carries the app's inaudible AudioSeal watermark "
                     "(check one under “Check a file”).")
    return [*audios, str(files.picture) if files.picture else None, made, with_technical(summary, technical),
            [str(f) for f in files.downloads]]


def song_state(result: song.SongResult, model_name: str | None) -> dict[str, Any]:
    """What Edit and Extend need from a song: its latents, loudness, settings and model."""
    return {"latents": result.latents, "gains": result.gains, "params": result.params, "model_name": model_name,
            "seed": result.seed}


N_SONG_OUTPUTS = song.MAX_VARIANTS + 5  # players, picture, params, details, downloads, state


@spoken
@fair_share
@gpu_task("song")
def make_song(
    style: str,
    lyrics: str = "",
    instrumental: bool = False,
    language: str = song.AUTO,
    seconds: float = song.DEFAULT_SECONDS,
    bpm: float | None = None,
    key: str | None = "",
    time_signature: str | None = "",
    seed: str | None = "",
    variants: float = 1,
    model_name: str | None = APP_DEFAULT_MODEL,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> Iterator[list[Any]]:
    """Make a song with a voice singing your lyrics (ACE-Step 1.5), 10 s to 4 minutes, 48 kHz stereo.

    Args:
        style: what it sounds like, e.g. "upbeat pop, bright female vocals, electric guitar"; any language (other
            languages are translated into English where the translator is available).
        lyrics: the words, with structure tags on their own lines ([verse], [chorus], [bridge]...); may be empty
            with instrumental.
        instrumental: no words: the lyrics are ignored.
        language: the lyrics' language code ("en", "zh", "ja"...), or "auto" to tell it from the script.
        seconds: the song's length, 10 to 240.
        bpm: the tempo, 30 to 300, or empty/0 for the model's choice.
        key: e.g. "C major" or "A minor", or "" for the model's choice.
        time_signature: beats a bar, "2", "3", "4" or "6", or "" for the model's choice.
        seed: a whole number as text for the same song again; "" for a random one.
        variants: 1 or 2 songs (variant 2 is made from seed + 1).
        model_name: one of the song models this server offers (the tab's Model list); "" for the app's own.

    Returns:
        2 audio slots (48 kHz stereo WAV; the second empty for one variant), a waveform and spectrogram PNG, the
        parameters (to make the same song again), details (markdown), and the downloads (WAV, MP3, lyrics, JSON).
    """
    def work(hooks: dict[str, Any]) -> list[Any]:
        result, files = make_a_song(offered_song_model(model_name), song_request(
            style, lyrics, instrumental, language, seconds, bpm, key, time_signature, seed, variants),
            run_folder("song"), watermark=CONFIG.watermark_model, translator=CONFIG.translation_model, **hooks)
        return [*song_outputs(result, files), song_state(result, model_name)]

    yield from page_run(request, TAB, N_SONG_OUTPUTS, progress, work)


def song_edit_work(state: dict[str, Any] | None, variant: Any, start: float, end: float, extend_by: float,
                   style: str | None, lyrics: str | None, seed: Any, hooks: dict[str, Any]) -> list[Any]:
    """Edit's and Extend's work: the chosen variant of the tab's last song, made again from ``start`` to ``end``
    (or ``extend_by`` seconds longer), with new style or lyrics for it ("" keeps the song's)."""
    if not state or state.get("latents") is None:
        raise ValueError("Make a song here first: Edit and Extend work only on songs made by this app.")
    index = max(0, min(int(float(variant or 1)) - 1, len(state["latents"]) - 1))
    edit = song.SongEdit(state["latents"][index], state["params"], start, end, style or "", lyrics or "", seed,
                         extend_by, state["gains"][index])
    result, files = edit_a_song(offered_song_model(state.get("model_name")), edit, run_folder("song-edit"),
                                watermark=CONFIG.watermark_model, translator=CONFIG.translation_model, **hooks)
    return [*song_outputs(result, files), song_state(result, state.get("model_name"))]


@spoken
@fair_share
def edit_song(
    state: dict[str, Any] | None,
    variant: float = 1,
    start: float = 0.0,
    end: float = 10.0,
    style: str = "",
    lyrics: str = "",
    seed: str | None = "",
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> Iterator[list[Any]]:
    """Make a part of this tab's last song again (from ``start`` to ``end`` seconds), with new lyrics or style for it;
    the rest of the song stays as it was (only the edges of the part blend, within ~0.3 s).

    Args:
        variant: which of the song's variants to edit, 1 or 2.
        start: where the part starts, in seconds.
        end: where it ends, in seconds.
        style: the style for the new part ("" keeps the song's).
        lyrics: the lyrics for the new part ("" keeps the song's).
        seed: a whole number as text, or "" for a random one.
    """
    yield from page_run(request, TAB, N_SONG_OUTPUTS, progress, lambda hooks: song_edit_work(
        state, variant, start, end, 0.0, style, lyrics, seed, hooks))


@spoken
@fair_share
def extend_song(
    state: dict[str, Any] | None,
    variant: float = 1,
    seconds: float = 20.0,
    style: str = "",
    lyrics: str = "",
    seed: str | None = "",
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
) -> Iterator[list[Any]]:
    """Make this tab's last song ``seconds`` longer (1 to 120 s more, up to 240 s in all); what it had stays as it
    was. New lyrics for the new part go in ``lyrics`` ("" keeps the song's)."""
    yield from page_run(request, TAB, N_SONG_OUTPUTS, progress, lambda hooks: song_edit_work(
        state, variant, 0.0, 0.0, seconds, style, lyrics, seed, hooks))


@spoken
def lyrics_note(lyrics: str | None, language: str | None, instrumental: bool) -> str:
    """Beside the lyrics, before the run: the language they will be sung in, and how it was chosen."""
    if instrumental:
        return say("Instrumental: the lyrics are not sung.")
    if not (lyrics or "").strip():
        return ""
    try:
        code, how = song.check_language(language, lyrics or "")
    except ValueError as e:
        return "⚠️ " + say(str(e))
    name = song.LANGUAGES.get(code, code)
    if how == "from the script":
        return say(f"Sung in {name} (told from the lyrics' script).")
    if how == "default":
        return say(f"Sung in {name}. For another language written in Latin letters, choose it in Language.")
    return say(f"Sung in {name}.")


def estimate_song(model_name: str | None, seconds: float, variants: float) -> str:
    """Roughly how long a song will take here, from this machine's earlier runs."""
    try:
        took = backend().estimate_seconds("song", offered_song_model(model_name), seconds=float(seconds),
                                          variants=int(variants))  # where the model runs; nothing is loaded
    except Exception:  # noqa: BLE001 - an estimate is a courtesy; never fail on it
        return ""
    if took is None:
        return say(f"A {float(seconds):.0f} s song. How long it takes here is shown after the first run.")
    shown = f"{took:.0f} s" if took < 90 else f"{took / 60:.1f} min"
    return say(f"A {float(seconds):.0f} s song: about **{shown}** on this machine.")


@spoken
def load_song_params(path: str | None) -> list[Any]:
    """A song's parameters JSON -> the tab's settings, to make the same song again.

    Returns:
        [style, lyrics, instrumental, language, seconds, bpm, key, time signature, seed, variants, note].
    """
    try:
        made = read_song_params(path)
    except ValueError as e:
        raise user_error(e) from e
    note = say(f"Loaded the settings of seed {made.get('seed')}.")
    if made.get("task") != "song":
        note += " " + say("It was an edit of an earlier song: these settings remake the song it came from; make it, "
                          "then edit it again.")
        made = {**made, **(made.get("edited_from") or {})}
    return [made.get("style", ""), made.get("lyrics", ""), bool(made.get("instrumental")),
            made.get("language") or song.AUTO, float(made.get("seconds") or song.DEFAULT_SECONDS),
            made.get("bpm") or 0, made.get("key") or "", made.get("time_signature") or "", str(made.get("seed", "")),
            int(made.get("variants") or 1), note]
