"""What one song asks for (``SongRequest``, checked once when built, by the page, the API and the command line alike),
an edit of a song made here (``SongEdit``), and what comes back (``SongResult``)."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAMPLE_RATE = 48000  # ACE-Step 1.5's VAE: 48 kHz stereo
CHANNELS = 2
LATENT_RATE = 25.0  # latent frames a second (48000 / 1920)
MIN_SECONDS = 10.0
MAX_SECONDS = 240.0  # the page's 4 minutes (the model goes to 10)
DEFAULT_SECONDS = 30.0
MAX_VARIANTS = 2
MAX_STYLE_CHARS = 512
MAX_LYRICS_CHARS = 4000
MAX_LYRIC_TOKENS = 2048  # what the pipeline's lyric encoder reads (``max_lyric_length``); more is refused, not cut
MIN_BPM, MAX_BPM = 30, 300
MAX_EDIT_SECONDS = 120.0  # what Extend adds at most in one go
MIN_SPAN_SECONDS = 1.0  # the shortest part an edit makes again
INSTRUMENTAL = "[Instrumental]"  # ACE-Step's lyrics for a song without words
STRUCTURE_TAGS = ("[intro]", "[verse]", "[pre-chorus]", "[chorus]", "[bridge]", "[outro]", "[instrumental]")
KEYS = tuple(f"{note} {mode}" for mode in ("major", "minor")
             for note in ("C", "C#", "Db", "D", "Eb", "E", "F", "F#", "Gb", "G", "Ab", "A", "Bb", "B"))
TIME_SIGNATURES = ("2", "3", "4", "6")  # beats a bar, as ACE-Step writes them ("4" is 4/4)

# The lyric languages ACE-Step 1.5 was trained on (its constants list 50+), by code; "auto" is told from the script
LANGUAGES = {
    "en": "English", "zh": "Chinese", "yue": "Cantonese", "ja": "Japanese", "ko": "Korean", "fr": "French",
    "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "ru": "Russian", "uk": "Ukrainian",
    "pl": "Polish", "nl": "Dutch", "sv": "Swedish", "no": "Norwegian", "da": "Danish", "fi": "Finnish",
    "cs": "Czech", "sk": "Slovak", "hu": "Hungarian", "ro": "Romanian", "bg": "Bulgarian", "hr": "Croatian",
    "sr": "Serbian", "el": "Greek", "tr": "Turkish", "ar": "Arabic", "fa": "Persian", "he": "Hebrew", "hi": "Hindi",
    "bn": "Bengali", "ta": "Tamil", "te": "Telugu", "ur": "Urdu", "pa": "Punjabi", "ne": "Nepali", "th": "Thai",
    "vi": "Vietnamese", "id": "Indonesian", "ms": "Malay", "tl": "Tagalog", "sw": "Swahili", "is": "Icelandic",
    "lt": "Lithuanian", "ca": "Catalan", "az": "Azerbaijani", "la": "Latin", "ht": "Haitian Creole",
    "sa": "Sanskrit",
}
AUTO = "auto"
DEFAULT_LANGUAGE = "en"  # "auto" on lyrics in Latin letters (many languages share them): English

# script (a Unicode name's first word) -> language; Han alone is Chinese, Han with kana Japanese
_SCRIPTS = {"HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko", "CJK": "zh", "CYRILLIC": "ru", "ARABIC": "ar",
            "HEBREW": "he", "DEVANAGARI": "hi", "THAI": "th", "GREEK": "el", "BENGALI": "bn", "TAMIL": "ta",
            "TELUGU": "te", "GURMUKHI": "pa"}


def script_language(text: str) -> str | None:
    """The language the letters of ``text`` tell (Chinese for Han characters, Japanese with kana, Korean for Hangul,
    Russian for Cyrillic...), or None for Latin letters or no letters (many languages share them)."""
    counts: dict[str, int] = {}
    for ch in text:
        if not ch.isalpha():
            continue
        script = unicodedata.name(ch, "").split(" ")[0]
        if script in _SCRIPTS:
            counts[_SCRIPTS[script]] = counts.get(_SCRIPTS[script], 0) + 1
    if not counts:
        return None
    if "ja" in counts:  # kana anywhere: Japanese (its Kanji are Han characters)
        return "ja"
    return max(counts, key=counts.get)


def check_language(language: str | None, lyrics: str) -> tuple[str, str]:
    """(the language code the model is given, how it was chosen: "chosen", "from the script", "default").

    Raises:
        ValueError: a language the model does not know (the message lists the codes it does).
    """
    code = (language or AUTO).strip().lower()
    if code == AUTO:
        told = script_language(lyrics)
        return (told, "from the script") if told else (DEFAULT_LANGUAGE, "default")
    if code not in LANGUAGES:
        for known, name in LANGUAGES.items():  # a language's name works as well as its code
            if name.lower() == code:
                return known, "chosen"
        raise ValueError(f"The song model does not know the language “{language}”. Choose one of: "
                         f"{', '.join(LANGUAGES)} (or “auto”, told from the lyrics' script).")
    return code, "chosen"


def check_seconds(seconds: float, low: float = MIN_SECONDS, high: float = MAX_SECONDS, what: str = "A song") -> float:
    """``seconds`` as a float within [low, high].

    Raises:
        ValueError: out of range, or not a number.
    """
    try:
        value = float(seconds)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}'s length must be a number of seconds, not “{seconds}”.") from e
    if not low <= value <= high:
        raise ValueError(f"{what} is {low:.0f} to {high:.0f} s long; {value:g} s was asked for.")
    return value


def check_seed(seed: Any) -> int:
    """A seed from the page or the API ("" or None: a new random one).

    Raises:
        ValueError: not a whole number from 0 to 2**32 - 1.
    """
    text = "" if seed is None else str(seed).strip()
    if not text:
        return random.randrange(2**31)
    try:
        value = int(float(text)) if text.replace(".", "", 1).isdigit() and float(text).is_integer() else int(text)
    except ValueError as e:
        raise ValueError(f"The seed must be a whole number (e.g. 42), not “{text[:40]}”.") from e
    if not 0 <= value < 2**32:
        raise ValueError(f"The seed must be from 0 to {2**32 - 1}.")
    return value


def check_bpm(bpm: Any) -> int | None:
    """The tempo asked for (None or 0: the model chooses).

    Raises:
        ValueError: outside MIN_BPM..MAX_BPM.
    """
    if bpm in (None, "", 0, 0.0):
        return None
    value = int(round(float(bpm)))
    if not MIN_BPM <= value <= MAX_BPM:
        raise ValueError(f"The tempo is {MIN_BPM} to {MAX_BPM} BPM (or empty for the model's choice), not {value}.")
    return value


def check_key(key: str | None) -> str | None:
    """The key asked for ("" or None: the model chooses), as "C major", "F# minor"...

    Raises:
        ValueError: not a key the model is told (the message lists them).
    """
    text = " ".join((key or "").split())
    if not text:
        return None
    for known in KEYS:
        if known.lower() == text.lower():
            return known
    raise ValueError(f"The key “{text[:40]}” is not one the model knows: use e.g. “C major” or “A minor”.")


def check_time_signature(value: str | None) -> str | None:
    """Beats a bar ("4" or "4/4"; "" or None: the model chooses).

    Raises:
        ValueError: not 2, 3, 4 or 6 beats a bar.
    """
    text = str(value or "").strip()
    if not text:
        return None
    beats = text.split("/")[0].strip()
    if beats not in TIME_SIGNATURES:
        raise ValueError(f"The time signature is 2/4, 3/4, 4/4 or 6/8 (beats a bar: {', '.join(TIME_SIGNATURES)}), "
                         f"not “{text[:20]}”.")
    return beats


@dataclass
class SongRequest:
    """One song to make, checked when built (every check raises ``ValueError`` with a plain message).

    Attributes:
        style: what it sounds like ("upbeat pop with bright female vocals"); English is what the model reads best.
        lyrics: the words, with structure tags ([verse], [chorus]...); "" with ``instrumental`` for no words.
        language: the lyrics' language code, or "auto" (told from the script).
        seconds: its length, MIN_SECONDS to MAX_SECONDS.
        bpm, key, time_signature: optional; None lets the model choose.
        seed: the same seed and settings make the same song on the same device and dtype ("" = random).
        variants: 1 or 2 songs; variant i is made from seed + i.
        instrumental: no words (the lyrics are ignored).
        style_english: the style as the model reads it when it was translated (None: as written).
    """

    style: str
    lyrics: str = ""
    language: str = AUTO
    seconds: float = DEFAULT_SECONDS
    bpm: Any = None
    key: str | None = None
    time_signature: str | None = None
    seed: Any = ""
    variants: int = 1
    instrumental: bool = False
    style_english: str | None = None
    language_how: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.style = " ".join((self.style or "").split())
        self.lyrics = (self.lyrics or "").replace("\r\n", "\n").strip()
        if len(self.style) > MAX_STYLE_CHARS:
            raise ValueError(f"The style is {len(self.style)} characters long; keep it under {MAX_STYLE_CHARS}.")
        if len(self.lyrics) > MAX_LYRICS_CHARS:
            raise ValueError(f"The lyrics are {len(self.lyrics)} characters long: the model reads at most about "
                             f"{MAX_LYRICS_CHARS}. Shorten them, or make the song in parts (Edit a part).")
        if self.instrumental or self.lyrics.lower() == INSTRUMENTAL.lower():
            self.instrumental, self.lyrics = True, ""
        if not self.style and not self.lyrics and not self.instrumental:
            raise ValueError("Nothing to sing and nothing to play: describe the style, write lyrics, or both.")
        self.seconds = check_seconds(self.seconds)
        self.language, self.language_how = check_language(self.language, self.lyrics)
        self.bpm = check_bpm(self.bpm)
        self.key = check_key(self.key)
        self.time_signature = check_time_signature(self.time_signature)
        self.seed = check_seed(self.seed)
        try:
            self.variants = int(self.variants)
        except (TypeError, ValueError) as e:
            raise ValueError("Variants must be 1 or 2.") from e
        if not 1 <= self.variants <= MAX_VARIANTS:
            raise ValueError(f"Variants must be 1 to {MAX_VARIANTS}, not {self.variants}.")

    @property
    def sung(self) -> str:
        """The lyrics as the model reads them ("[Instrumental]" for none)."""
        return INSTRUMENTAL if self.instrumental or not self.lyrics else self.lyrics

    @property
    def style_read(self) -> str:
        """The style as the model reads it (its English when translated)."""
        return self.style_english or self.style

    def record(self) -> dict[str, Any]:
        """The settings, as the parameters JSON keeps them (enough to make the same song again)."""
        return {"style": self.style, "style_english": self.style_english, "lyrics": self.lyrics,
                "instrumental": self.instrumental, "language": self.language, "seconds": self.seconds,
                "bpm": self.bpm, "key": self.key, "time_signature": self.time_signature, "seed": self.seed,
                "variants": self.variants}


@dataclass
class SongEdit:
    """A part of a song made here, made again (``start``..``end`` seconds), or the song made longer (``extend_by``
    seconds after its end): the song's kept latents are the context, so outside the part nothing changes but what
    the VAE's reach at the part's edges touches.

    Attributes:
        latents: the song's latents [frames, channels] (its ``SongResult.latents[variant]``), float32.
        made: the song's parameters record (``SongResult.params``).
        start, end: the part made again, in seconds (an extension: the old end and the new end).
        style, lyrics: for that part ("" keeps the song's own).
        seed: for the new part ("" = random).
        extend_by: seconds to add (0: an edit).
        gain: the song's loudness gain (``SongResult.gains[variant]``), so the kept part sounds as before.
    """

    latents: np.ndarray
    made: dict[str, Any]
    start: float = 0.0
    end: float = 0.0
    style: str = ""
    lyrics: str = ""
    seed: Any = ""
    extend_by: float = 0.0
    gain: float | None = None

    def __post_init__(self) -> None:
        self.latents = np.asarray(self.latents, dtype=np.float32)
        if self.latents.ndim != 2 or not self.made:
            raise ValueError("Make a song here first: Edit and Extend work only on songs made by this app.")
        length = self.latents.shape[0] / LATENT_RATE
        self.seed = check_seed(self.seed)
        if self.extend_by:
            self.extend_by = check_seconds(self.extend_by, MIN_SPAN_SECONDS, MAX_EDIT_SECONDS, "An extension")
            total = length + self.extend_by
            if total > MAX_SECONDS + 1e-6:
                raise ValueError(f"The song would be {total:.0f} s long; songs here are at most {MAX_SECONDS:.0f} s.")
            self.start, self.end = length, total
            return
        try:
            self.start, self.end = float(self.start), float(self.end)
        except (TypeError, ValueError) as e:
            raise ValueError("The part to make again is given in seconds (from, to).") from e
        if not (0.0 <= self.start < self.end <= length + 1e-6):
            raise ValueError(f"The part to make again must lie inside the song (0 to {length:.1f} s) and end after "
                             f"it starts; {self.start:g} to {self.end:g} s was asked for.")
        if self.end - self.start < MIN_SPAN_SECONDS:
            raise ValueError(f"The part to make again must be at least {MIN_SPAN_SECONDS:.0f} s long.")


@dataclass
class SongResult:
    """What a song run gives back.

    Attributes:
        audio: float32 [variants, 2, samples] at ``sample_rate``, loudness as the stock pipeline sets it.
        sample_rate: 48000.
        latents: float32 [variants, frames, channels]: what Edit and Extend work from.
        gains: each variant's loudness gain (audio = decoded * gain).
        seed: the first variant's seed.
        params: the parameters record (model, settings, dtype, device, what was edited).
        lyrics: the lyrics sung ("" for an instrumental).
        notes: things the listener should know (plain English; the page translates them).
    """

    audio: np.ndarray
    sample_rate: int
    latents: np.ndarray
    gains: list[float]
    seed: int
    params: dict[str, Any]
    lyrics: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate
