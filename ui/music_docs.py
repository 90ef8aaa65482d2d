"""What the view-API page (and ``Client.view_api()``) says of each MusicGen endpoint: every parameter with units,
range and default, from the same constants the code and the sliders use."""

from __future__ import annotations

from models import musicgen, separator

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
    f"`variants`: 1-{musicgen.MAX_VARIANTS} pieces from one batched call (default 1); "
    f"`stride`: seconds each window adds past the first {musicgen.WINDOW_S:g} s, {musicgen.MIN_STRIDE_S:g}-"
    f"{musicgen.MAX_STRIDE_S:g} (default {musicgen.DEFAULT_STRIDE_S:g}). "
)
MODEL_API_DOC = ('`model_name`: one of the models this server offers (the tab\'s Model list; any other name is '
                 'refused with the list); "" (the default) = the app\'s own model. ')
MUSIC_RETURNS_API_DOC = (
    f"Returns {musicgen.MAX_VARIANTS} audio files (32 kHz WAV; None past the variants asked for), a "
    "waveform/spectrogram PNG, the parameters (dict, to reproduce the result: prompt, seed, windows, stride, "
    "model; a prompt in another language also holds `prompt_english`, the English the model was given) and a "
    "details line (markdown: \"Made from: <English>\" for a translated prompt, which parts of the prompt the "
    "model's vocabulary does not know, and when a Stop cut the piece short). Where this server has its watermark "
    "model, every audio file carries the app's inaudible watermark (the details say whether it does)"
)
MUSIC_API_DOCS = {
    "text_to_music": (
        "Make music from a text description with MusicGen. `prompt` (required): what the music should be, at most "
        f"{musicgen.MAX_PROMPT_CHARS} characters, in any language (parts the model cannot read are translated "
        "into English first) (may be empty with a clip). " + MODEL_API_DOC
        + SAMPLING_API_DOC + "`clip_path`: audio to continue (optional, "
        f"{musicgen.MIN_CLIP_SECONDS:g}-{musicgen.MAX_CLIP_SECONDS:g} s after trimming; the result is the clip, "
        "re-encoded by the model's codec, then `duration` s more); `clip_start` / `clip_end`: its trim in seconds, "
        "0 = from the start / to the end. " + MUSIC_RETURNS_API_DOC + ", then the downloads (WAV, MP3, JSON)."
    ),
    "melody_to_music": (
        "Make music that follows a melody with MusicGen-Melody. `melody_path` (required): a wav, mp3, flac or ogg "
        f"file (at most {musicgen.MAX_MELODY_FILE_SECONDS / 60:g} minutes); `trim_start` / `trim_end`: the part "
        f"used, in seconds, 0 = from the start / to the end (at most {musicgen.MAX_MELODY_SECONDS:g} s are used); "
        "`prompt`: the style, may be empty. " + MODEL_API_DOC + SAMPLING_API_DOC + MUSIC_RETURNS_API_DOC
        + ", the melody's chroma PNG, then the downloads (WAV, MP3, JSON). Past 30 s each window follows the part "
        "of the melody under its own time, the melody looping. `melody_source`: "
        + ", ".join(f'"{key}" = {label.lower()}' for key, label in separator.MELODY_SOURCES.items())
        + f' (default "{separator.DEFAULT_MELODY_SOURCE}"; when the Demucs separator cannot be loaded the whole mix '
        "is used and the details say so)."
    ),
    "load_params": (
        "`path`: a parameters JSON file (the one in a result's downloads). Returns the tab's settings from it, "
        "to make the same music again: the prompt, model, duration, top-k, top-p, temperature, guidance scale, "
        "seed, variants and stride, then the tab's trim settings (and, for the melody tab, the melody source), and "
        "a note. The audio it used (melody or clip) is not in the file: give the same file again."
    ),
    "melody_preview": (
        "The part of a melody that will be used. `path`: the melody file; `start` / `end`: seconds, end 0 = to "
        f"the end (at most {musicgen.MAX_MELODY_SECONDS:g} s). Returns that part as WAV and a line about it."
    ),
    "stop": ("Stop this session's running generation: it ends at the next step and the running call returns "
             "what was finished (details say so). No parameters."),
    "extend": ("Continue this session's last result of the tab by `seconds` (1-300) with the same prompt, "
               "settings and seed; the result holds the earlier music then the new part. Returns as the tab's "
               "generate endpoint."),
    "clip_preview": ("The part of a clip that will be continued. `path`: the clip; `start` / `end`: seconds, end 0 = "
                     "to the end. Returns that part as WAV and a line about it."),
    "use_as_melody": "Send an audio file to the melody tab's input (returns the same file).",
    "midi": ("The notes of a piece of music as MIDI and sheet music. `audio_path` (required): the music, e.g. a "
             "result's variant 1 (any wav, mp3, flac or ogg works); `paper`: \"a4\" (default) or \"letter\" for "
             "the score. The notes are heard by basic-pitch (its ICASSP-2022 model) and placed on the music's "
             "tracked beats. Returns the downloads (the tempo-mapped MIDI, the score's MusicXML and PDF), the "
             "score's first page as PNG, and a line (notes, tempo)."),
    "check_watermark": ("Whether a file carries this app's inaudible watermark (AudioSeal, message 0x4d44). "
                        "`path` (required): a WAV, MP3, FLAC, OGG or MP4 file. Returns one line: the verdict, the "
                        "detector's score (0-1; over 0.5 means marked) and the 16-bit message it read; on a server "
                        "without the watermark model, a line that says so."),
}
