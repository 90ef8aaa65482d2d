"""Piano covers with Pop2Piano (``sweetcocoa/pop2piano``) through transformers.

The pipeline is transformers' reference one (``Pop2PianoFeatureExtractor`` -> ``generate`` ->
``Pop2PianoTokenizer.batch_decode``), with the changes a web demo needs:
- beats are tracked once, by essentia when importable and librosa otherwise (the reference requires essentia);
- the song's chunks (four beats each) are decoded together (in batches on a GPU), with progress after every step,
  by ``FastPop2Piano`` (same tokens as ``generate``, faster) and int8 weights on CPU;
- a chunk that runs out of length without an end token is decoded as far as it got, instead of crashing;
- the MIDI carries the detected tempo, so it lines up with the song in a DAW.
"""

from __future__ import annotations

import contextvars
import copy
import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pretty_midi
import torch
from transformers import Pop2PianoForConditionalGeneration, Pop2PianoTokenizer
from transformers.generation.stopping_criteria import StoppingCriteriaList
from transformers.models.pop2piano.feature_extraction_pop2piano import Pop2PianoFeatureExtractor

from models.devices import env_flag, pick_dtype, settle_attention_backend
from models.fast_pop2piano import FastPop2Piano
from models.int8 import quantize_int8_in_steps
from models.progress import StepWatcher
from models.loading import LoadedModel
from models.runtime import model_thread
from models.sources import ModelLoadError, ModelSource
from utils.audio import audio_duration, check_duration, check_not_silent, load_audio, resample
from utils.beats import BEAT_SAMPLE_RATE, Beats, track_beats
from utils.midi import grid_to_pretty_midi, notes_of
from utils.notes import STEPS_PER_BEAT, GridNotes
from utils.progress import Progress

logger = logging.getLogger(__name__)

PIANO_COVER_ENV_VAR = "PIANO_COVER_MODEL"
PIANO_COVER_CLI_FLAG = "--piano-model"
DEFAULT_PIANO_COVER_MODEL = "sweetcocoa/pop2piano"
MAX_SONG_SECONDS_ENV_VAR = "PIANO_COVER_MAX_SECONDS"
DEFAULT_MAX_SONG_SECONDS = 600.0  # 10 minutes
MIN_SONG_SECONDS = 3.0  # below this there are too few beats to arrange

COMPOSERS = tuple(f"composer{i}" for i in range(1, 22))  # the 21 arranger styles of the checkpoint
RANDOM_COMPOSER = "random"
DEFAULT_COMPOSER = "composer1"
MAX_TOKENS_PER_CHUNK = 256  # original Pop2Piano `target_length` for one chunk
# Chunks per generate() call: big batches are cheaper. On CPU all chunks go in one call, as in transformers'
# reference pipeline: int8 layers quantise activations per batch, so a different split would change the notes.
CHUNKS_PER_BATCH: dict[str, int | None] = {"cpu": None, "cuda": 256, "mps": 64}
CPU_INT8_ENV_VAR = "PIANO_COVER_CPU_INT8"  # "0" keeps float32 weights on CPU
FAST_PATH_ENV_VAR = "PIANO_COVER_FAST_PATH"  # "0" = stock transformers generate
RESAMPLER_ENV_VAR = "PIANO_COVER_RESAMPLER"  # "soxr_hq": ~3.5 s faster on a 3.5-min song, not the reference's
RESAMPLERS = ("kaiser_best", "soxr_hq")  # the song -> 22.05 kHz for the features (docs/performance-history.md)
# The reference extractor's resampy kaiser_best stays the default: soxr changes the top 20 of 512 mel bins
# (above ~10.5 kHz, near Nyquist) by up to 4.4 log units on average (docs/performance-history.md), not negligible.
DEFAULT_RESAMPLER = "kaiser_best"
BEATS_PER_CHUNK = 4  # the extractor's `num_bars` (2) * 4 half-beat steps = 8 steps = 4 beats

_PRECOMPUTED_BEATS: contextvars.ContextVar[Beats | None] = contextvars.ContextVar("_PRECOMPUTED_BEATS", default=None)


def default_model_name() -> str:
    """The piano-cover model from ``$PIANO_COVER_MODEL``, else the official checkpoint."""
    return os.environ.get(PIANO_COVER_ENV_VAR, "").strip() or DEFAULT_PIANO_COVER_MODEL


def default_max_song_seconds() -> float:
    """The song-length limit from ``$PIANO_COVER_MAX_SECONDS``, else 10 minutes."""
    value = os.environ.get(MAX_SONG_SECONDS_ENV_VAR, "").strip()
    return float(value) if value else DEFAULT_MAX_SONG_SECONDS


def composer_label(composer: str) -> str:
    """A readable label for a composer token, e.g. ``composer7`` -> ``Arranger 7``."""
    if composer == RANDOM_COMPOSER:
        return "Surprise me (random arranger)"
    return f"Arranger {composer.removeprefix('composer')}"


def check_composer(composer: str) -> str:
    """Validate an arranger style; ``"random"`` picks one. Returns the composer token to use."""
    if composer == RANDOM_COMPOSER:
        return random.choice(COMPOSERS)
    if composer not in COMPOSERS:
        raise ValueError(f"Unknown arranger style {composer!r}; choose one of composer1..composer21 or 'random'.")
    return composer


class BeatAwareFeatureExtractor(Pop2PianoFeatureExtractor):
    """Pop2Piano's feature extractor with a pluggable beat tracker.

    The reference calls essentia directly; this one uses the beats the caller already tracked
    (see ``PianoCoverModel.arrange``), or tracks them itself with essentia or librosa.
    """

    def extract_rhythm(self, audio: np.ndarray):
        beats = _PRECOMPUTED_BEATS.get() or track_beats(audio, BEAT_SAMPLE_RATE)
        return beats.bpm, beats.times, None, None, None


@dataclass
class PianoCover:
    """A generated piano cover.

    Attributes:
        midi: one piano track, notes in seconds from the song's start, tempo = detected BPM.
        beats: the song's beat grid.
        composer: the arranger style used (``composer1``..``composer21``).
        n_chunks: number of four-beat chunks generated.
        n_unfinished: chunks that hit the token limit without an end token (decoded as far as they went).
        warnings: notes for the user (fallbacks used, unfinished chunks).
        grid: the same notes on the song's half-beat grid (for the tempo-mapped MIDI, the score, the video).
    """

    midi: pretty_midi.PrettyMIDI
    beats: Beats
    composer: str
    n_chunks: int
    n_unfinished: int
    warnings: list[str] = field(default_factory=list)
    grid: GridNotes | None = None

    @property
    def n_notes(self) -> int:
        return len(notes_of(self.midi))


class PianoCoverModel(LoadedModel):
    """Pop2Piano, loaded lazily on first use and kept.

    Args:
        name: hub id or local folder; default ``$PIANO_COVER_MODEL`` or ``sweetcocoa/pop2piano``.
        device: "cuda", "mps", "cpu"...; default: the best available.
    """

    what = "Piano cover model"
    env_var = PIANO_COVER_ENV_VAR
    cli_flag = PIANO_COVER_CLI_FLAG
    checkpoints = (DEFAULT_PIANO_COVER_MODEL,)

    def __init__(self, name: str | None = None, device: str | None = None) -> None:
        super().__init__(name, device)
        self.dtype = pick_dtype(self.device, float16_ok=False)  # a small T5: float32 where bf16 is missing
        self.int8 = self.device.type == "cpu" and env_flag(CPU_INT8_ENV_VAR)
        self.fast_path = env_flag(FAST_PATH_ENV_VAR)
        self.resampler = os.environ.get(RESAMPLER_ENV_VAR, "").strip() or DEFAULT_RESAMPLER
        if self.resampler not in RESAMPLERS:
            raise ValueError(f"`{RESAMPLER_ENV_VAR}` must be one of {', '.join(RESAMPLERS)}, got {self.resampler!r}.")
        self.model: Pop2PianoForConditionalGeneration | None = None
        self.feature_extractor: BeatAwareFeatureExtractor | None = None
        self.tokenizer: Pop2PianoTokenizer | None = None

    @classmethod
    def default_name(cls) -> str:
        return default_model_name()

    def _keep(self, parts: tuple[Any, BeatAwareFeatureExtractor, Pop2PianoTokenizer]) -> None:
        model, feature_extractor, tokenizer = parts
        if feature_extractor.feature_size != model.config.d_model:
            raise ModelLoadError(
                f"Piano cover model `{self.name}`: the feature extractor makes {feature_extractor.feature_size} "
                f"mel bins but the model expects {model.config.d_model}; the folder mixes two checkpoints."
            )
        missing = [c for c in COMPOSERS if c not in getattr(model.generation_config, "composer_to_feature_token", {})]
        if missing:
            raise ModelLoadError(
                f"Piano cover model `{self.name}`: generation_config.json lacks the arranger styles "
                f"{', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}."
            )
        model = model.to(self.device).eval()
        if self.int8:  # weights read as int8: faster matrix products on CPU
            # block by block, so that loading peaks near the final footprint
            model = quantize_int8_in_steps(model, [*model.encoder.block, *model.decoder.block], owner=model)
        self.model, self.feature_extractor, self.tokenizer = model, feature_extractor, tokenizer

    def _after_load(self) -> None:
        if self.resampler == "kaiser_best":
            _warm_up_resampler()
        attention = settle_attention_backend(self.device)
        logger.info("Piano cover model: %s; %s", self.dtype, attention)

    def _drop(self) -> None:
        self.model = self.feature_extractor = self.tokenizer = None

    def _from_source(
        self, source: ModelSource
    ) -> tuple[Pop2PianoForConditionalGeneration, BeatAwareFeatureExtractor, Pop2PianoTokenizer]:
        kwargs = {"local_files_only": source.local_files_only}
        return (
            Pop2PianoForConditionalGeneration.from_pretrained(source.location, dtype=self.dtype, **kwargs),
            BeatAwareFeatureExtractor.from_pretrained(source.location, **kwargs),
            Pop2PianoTokenizer.from_pretrained(source.location, **kwargs),
        )

    def arrange(
        self,
        audio: np.ndarray,
        sample_rate: int = BEAT_SAMPLE_RATE,
        composer: str = DEFAULT_COMPOSER,
        beats: Beats | None = None,
        progress: Progress | None = None,
        max_tokens_per_chunk: int = MAX_TOKENS_PER_CHUNK,
    ) -> PianoCover:
        """Arrange ``audio`` for piano.

        Args:
            audio: mono float32 song, shape [T].
            sample_rate: rate of ``audio`` in Hz (44.1 kHz avoids a resample for beat tracking).
            composer: arranger style, ``composer1``..``composer21`` or ``random``.
            beats: the song's beats if already tracked; tracked here otherwise.
            progress: called with (fraction, message) as work advances.
            max_tokens_per_chunk: token limit for each chunk.

        Runs on the model thread (one team of CPU kernel threads for every model; see ``ModelThread``).
        """
        return model_thread().call(self._transcribe, audio, sample_rate, composer, beats, progress,
                                   max_tokens_per_chunk)

    @torch.inference_mode()
    def _transcribe(self, audio: np.ndarray, sample_rate: int, composer: str, beats: Beats | None,
                    progress: Progress | None, max_tokens_per_chunk: int) -> PianoCover:
        report = progress or (lambda fraction, message: None)
        composer = check_composer(composer)
        self.load()
        assert self.model is not None and self.feature_extractor is not None and self.tokenizer is not None
        warnings: list[str] = []

        if beats is None:
            report(0.05, "Finding the beats")
            audio_for_beats = audio
            if sample_rate != BEAT_SAMPLE_RATE:
                audio_for_beats = resample(audio, sample_rate, BEAT_SAMPLE_RATE)
            beats = track_beats(audio_for_beats, BEAT_SAMPLE_RATE)
        if beats.warning:
            warnings.append(beats.warning)

        report(0.15, "Computing features")
        target = self.feature_extractor.sampling_rate
        if sample_rate != target and self.resampler != "kaiser_best":
            # soxr (opt-in) instead of the extractor's resampy kaiser_best: ~100x faster; its features differ in the
            # top mel bins (docs/performance-history.md)
            audio, sample_rate = resample(audio, sample_rate, target), target
        token = _PRECOMPUTED_BEATS.set(beats)
        try:
            features = self.feature_extractor(
                audio=audio, sampling_rate=sample_rate, steps_per_beat=STEPS_PER_BEAT, return_tensors="np"
            )
        finally:
            _PRECOMPUTED_BEATS.reset(token)

        input_features = torch.from_numpy(features["input_features"]).to(self.device, self.model.dtype)
        n_chunks = int(input_features.shape[0])
        generation_config = copy.deepcopy(self.model.generation_config)
        generation_config.max_length = max_tokens_per_chunk
        generation_config.max_new_tokens = None
        batch = CHUNKS_PER_BATCH.get(self.device.type, 8) or n_chunks
        n_batches = -(-n_chunks // batch)
        outputs: list[torch.Tensor] = []
        for index, start in enumerate(range(0, n_chunks, batch)):
            label = (
                f"Arranging beats {BEATS_PER_CHUNK * start + 1}-{BEATS_PER_CHUNK * min(start + batch, n_chunks)} "
                f"of {BEATS_PER_CHUNK * n_chunks}"
            )
            report(0.2 + 0.7 * index / n_batches, label)
            steps = StepWatcher(n_batches * max_tokens_per_chunk, report, (0.2, 0.9), reports=200,
                                done=index * max_tokens_per_chunk, label=label)
            chunk = input_features[start : start + batch]
            if self.fast_path:
                ids = FastPop2Piano(self.model).generate(chunk, composer, max_tokens_per_chunk, on_step=steps.tick)
            else:
                ids = self.model.generate(
                    input_features=chunk,
                    composer=composer,
                    generation_config=copy.deepcopy(generation_config),
                    stopping_criteria=StoppingCriteriaList([steps]),
                )
            outputs.append(ids.cpu())
        report(0.92, "Writing the notes")
        token_ids, n_unfinished = self._join_chunks(outputs)
        if n_unfinished:
            warnings.append(
                f"{n_unfinished} of {n_chunks} chunks reached the {max_tokens_per_chunk}-token limit "
                "without finishing; they were kept as far as they went."
            )
        grid = self._decode_grid(token_ids, features).cut_at(audio.shape[0] / sample_rate)  # none past the end
        midi = grid_to_pretty_midi(grid, bpm=beats.bpm)
        return PianoCover(midi, beats, composer, n_chunks, n_unfinished, warnings, grid)

    def _decode_grid(self, token_ids: np.ndarray, features: Any) -> GridNotes:
        """Token ids [N, L] -> notes on the song's half-beat grid, decoded as ``Pop2PianoTokenizer.batch_decode``
        decodes them (same notes, same seconds), but keeping each note's grid step instead of only its time."""
        assert self.tokenizer is not None
        eos = int(str(self.tokenizer.eos_token))
        ids = token_ids[:, : np.max(np.where(token_ids == eos)[1]) + 1]
        notes = self.tokenizer.relative_batch_tokens_ids_to_notes(
            tokens=ids, beat_offset_idx=0, bars_per_batch=self.tokenizer.num_bars,
            cutoff_time_idx=(self.tokenizer.num_bars + 1) * 4,
        )
        beatsteps = np.asarray(features["beatsteps"][0], dtype=np.float64)
        extrapolated = np.asarray(features["extrapolated_beatstep"][0], dtype=np.float64)
        # the reference's note times: extrapolated[step] - extrapolated[0], then + beatsteps[0]
        step_times = (extrapolated - extrapolated[0]) + beatsteps[0]
        return GridNotes.from_steps(np.asarray(notes).reshape(-1, 4), step_times)

    def _join_chunks(self, outputs: list[torch.Tensor]) -> tuple[np.ndarray, int]:
        """Pad per-batch token ids [B_i, L_i] to one array [N, L+1] ending in an end-token column.

        The reference decoder cuts every row at the last end token it finds and fails when there is none;
        the final end-token column makes a row that never finished decode as far as it went, while rows
        that did finish still stop at their own end token. Returns (ids, rows that never finished).
        """
        # Pop2Piano's special tokens are the ids written as strings ("0", "1"), as the reference decoder reads them.
        pad = int(str(self.tokenizer.pad_token))
        eos = int(str(self.tokenizer.eos_token))
        length = max(o.shape[1] for o in outputs)
        ids = np.concatenate(
            [np.pad(o.numpy(), ((0, 0), (0, length - o.shape[1])), constant_values=pad) for o in outputs]
        )
        unfinished = int((~(ids[:, 1:] == eos).any(axis=1)).sum())
        ids = np.concatenate([ids, np.full((ids.shape[0], 1), eos, dtype=ids.dtype)], axis=1)
        return ids, unfinished

    def cover_file(
        self,
        path: str | None,
        composer: str = DEFAULT_COMPOSER,
        max_seconds: float | None = None,
        progress: Progress | None = None,
    ) -> tuple[PianoCover, np.ndarray, int]:
        """Check, read and arrange a song file.

        Args:
            path: the uploaded or recorded file (wav, mp3, flac, ogg).
            composer: arranger style or ``random``.
            max_seconds: longest song accepted; default ``$PIANO_COVER_MAX_SECONDS`` or 10 minutes.
            progress: called with (fraction, message).

        Returns:
            ``(cover, song [T], sample_rate)``, the song as read (mono, 44.1 kHz) for mixing.

        Raises:
            ValueError: no file, unreadable, silent, too short, too long, or no beats found.
            ModelLoadError: the model cannot be loaded.
        """
        composer = check_composer(composer)
        song, sr = read_song(path, max_seconds)
        return self.cover_audio(song, sr, composer, progress), song, sr

    def cover_audio(self, song: np.ndarray, sample_rate: int, composer: str = DEFAULT_COMPOSER,
                    progress: Progress | None = None) -> PianoCover:
        """Arrange a song already read and checked (``read_song``): mono ``song`` [T] at ``sample_rate`` Hz (the
        model's work: its beats, then the arrangement).

        Raises:
            ValueError: an unknown style, or no beats found.
            ModelLoadError: the model cannot be loaded.
        """
        report = progress or (lambda fraction, message: None)
        composer = check_composer(composer)
        report(0.0, "Loading the model" if not self.loaded else "Finding the beats")
        self.load()
        report(0.05, "Finding the beats")
        beats = track_beats(song, sample_rate)
        return self.arrange(song, sample_rate, composer, beats=beats, progress=report)


def read_song(path: str | None, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Check and read a song file for a cover: ``(song [T], sample_rate)``, mono at BEAT_SAMPLE_RATE.

    Raises:
        ValueError: no file, unreadable, silent, too short or too long (``max_seconds``; default
            ``$PIANO_COVER_MAX_SECONDS`` or 10 minutes).
    """
    if not path:
        raise ValueError("Please upload a song or record one first.")
    limit = default_max_song_seconds() if max_seconds is None else max_seconds
    check_duration(audio_duration(path), MIN_SONG_SECONDS, limit)
    song, sr = load_audio(path, BEAT_SAMPLE_RATE)
    check_duration(song.shape[0] / sr, MIN_SONG_SECONDS, limit)
    check_not_silent(song, "The song")
    return song, sr


def _warm_up_resampler() -> None:
    """Compile resampy's kernel (numba, ~2 s), which the feature extractor uses, at load time, not on the first song."""
    import librosa

    librosa.core.resample(np.zeros(4410, dtype=np.float32), orig_sr=44100, target_sr=22050, res_type="kaiser_best")


__all__ = [
    "COMPOSERS",
    "DEFAULT_PIANO_COVER_MODEL",
    "ModelLoadError",
    "PianoCover",
    "PianoCoverModel",
]
