"""Audio loading, checking, mixing and writing.

Audio arrays are float32, mono, shape ``[T]`` with values in [-1, 1] unless said otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = ("wav", "mp3", "flac", "ogg")
SILENCE_PEAK = 1e-4  # a peak below this (-80 dBFS) counts as silence
OUTPUT_SAMPLE_RATE = 44100  # Hz, for rendered piano and mixes


RESAMPLERS = ("soxr_hq", "polyphase", "sinc_hann")
DEFAULT_RESAMPLER = "soxr_hq"


def resample(audio: np.ndarray, rate: int, target: int, method: str = DEFAULT_RESAMPLER) -> np.ndarray:
    """The app's one resampler: ``audio`` [..., T] at ``rate`` Hz -> float32 [..., T'] at ``target`` Hz.

    Args:
        method: "soxr_hq": soxr's high quality (librosa's default; SciPy's polyphase filter where soxr is not
            installed); "polyphase": SciPy's ``resample_poly`` (the watermark's, whose mark is pinned by its test);
            "sinc_hann": torchaudio's Hann-windowed sinc (rolloff 0.945, width 24), as MusicGen-Melody's chroma
            extractor resamples.
    """
    if method not in RESAMPLERS:
        raise ValueError(f"Unknown resampler {method!r}; one of {', '.join(RESAMPLERS)}.")
    if int(rate) <= 0 or int(target) <= 0:
        raise ValueError("Sample rates must be positive.")
    audio = np.asarray(audio, dtype=np.float32)
    if rate == target:
        return audio
    if method == "sinc_hann":
        import torch

        return sinc_resample(torch.from_numpy(np.ascontiguousarray(audio)), int(rate), int(target),
                             lowpass_filter_width=24, rolloff=0.945).numpy()
    if method == "soxr_hq":
        try:
            import soxr  # noqa: F401 - librosa runs it for soxr_hq
        except ImportError:
            method = "polyphase"
        else:
            return librosa.resample(audio, orig_sr=rate, target_sr=target, res_type="soxr_hq").astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(audio, int(target) // g, int(rate) // g, axis=-1).astype(np.float32)


def sinc_resample(waveform, orig_freq: int, new_freq: int, lowpass_filter_width: int = 6,  # noqa: ANN001
                  rolloff: float = 0.99):  # noqa: ANN201 - a torch.Tensor [..., T] in, one out
    """Band-limited resampling of a tensor [..., T] with a Hann-windowed sinc kernel (torchaudio's method, written
    out from its published formula; ``resample(..., "sinc_hann")`` on arrays)."""
    import math

    import torch

    if orig_freq <= 0 or new_freq <= 0:
        raise ValueError("Sample rates must be positive.")
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // gcd, int(new_freq) // gcd
    dtype = waveform.dtype
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    idx = torch.arange(-width, width + orig, dtype=dtype, device=waveform.device)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=dtype, device=waveform.device)[:, None, None] / new + idx
    t *= base_freq
    t = t.clamp_(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t *= math.pi
    kernel = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernel *= window * (base_freq / orig)

    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1])
    length = flat.shape[-1]
    flat = torch.nn.functional.pad(flat, (width, width + orig))
    out = torch.nn.functional.conv1d(flat[:, None], kernel, stride=orig)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    out = out[..., : int(math.ceil(new * length / orig))]
    return out.reshape(shape[:-1] + out.shape[-1:])


def _ends_where_it_says(path: Path, frames: int, sample_rate: int) -> bool:
    """Whether the file holds the last tenth of a second its header promises: a download cut off midway keeps the
    header of the whole file (an MP3's says 46 s where 0.6 s arrived), and only reading its end shows it."""
    tail = min(frames, max(1, sample_rate // 10))
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(frames - tail)
            return len(f.read(tail, dtype="float32")) == tail
    except Exception:  # noqa: BLE001 - a file that cannot seek to its end does not end where it says
        return False


def audio_duration(path: str | Path) -> float:
    """Duration of an audio file in seconds, read from its header when possible (no full decode).

    Raises:
        ValueError: the file is missing or is not audio we can read.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"The file `{path.name}` does not exist.")
    try:
        info = sf.info(str(path))
        if info.frames > 0 and info.samplerate > 0:
            if _ends_where_it_says(path, info.frames, info.samplerate):
                return info.frames / info.samplerate
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # cut off: only the part that is there
            return data.shape[0] / sr
    except Exception:  # noqa: BLE001 - fall through to the slower decoder below
        pass
    try:
        return float(librosa.get_duration(path=str(path)))
    except Exception as e:  # noqa: BLE001
        raise ValueError(
            f"Could not read `{path.name}` as audio. Supported formats: {', '.join(SUPPORTED_FORMATS)}."
        ) from e


def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32, resampled to ``sample_rate`` (Hz) when given.

    Args:
        path: wav, mp3, flac or ogg file, any sample rate, mono or multichannel.
        sample_rate: target rate in Hz; None keeps the file's rate.

    Returns:
        ``(audio [T], sample_rate)``.

    Raises:
        ValueError: missing file, or not audio we can decode.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"The file `{path.name}` does not exist.")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio = data.mean(axis=1)
    except Exception:  # noqa: BLE001 - libsndfile cannot read it; try librosa's other decoders
        try:
            audio, sr = librosa.load(str(path), sr=None, mono=True)
        except Exception as e:  # noqa: BLE001
            raise ValueError(
                f"Could not read `{path.name}` as audio. Supported formats: {', '.join(SUPPORTED_FORMATS)}."
            ) from e
    if audio.size == 0:
        raise ValueError(f"`{path.name}` contains no audio samples.")
    check_finite(audio, path.name)
    if sample_rate is not None and sr != sample_rate:
        audio = resample(audio, sr, sample_rate)
        sr = sample_rate
    return np.ascontiguousarray(audio, dtype=np.float32), int(sr)


VIDEO_SUFFIXES = (".mp4", ".m4a", ".mov", ".webm", ".mkv")  # containers read through ffmpeg


def load_media_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """The sound of an audio or video file as mono float32 [T] at ``sample_rate`` Hz: video containers (MP4...)
    through the ffmpeg of the imageio-ffmpeg wheel, everything else through ``load_audio``.

    Raises:
        ValueError: missing file, or no sound we can decode in it.
    """
    import subprocess

    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        return load_audio(path, sample_rate)[0]
    if not path.is_file():
        raise ValueError(f"The file `{path.name}` does not exist.")
    from utils.video import ffmpeg_exe

    done = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(sample_rate),
                           "-f", "f32le", "-"], capture_output=True, check=False)
    audio = np.frombuffer(done.stdout, dtype=np.float32)
    if done.returncode != 0 or audio.size == 0:
        raise ValueError(f"Could not read the sound of `{path.name}`: it has no audio track ffmpeg can decode.")
    check_finite(audio, path.name)
    return audio.copy()


def check_finite(audio: np.ndarray, name: str = "The audio") -> None:
    """Raise ValueError when ``audio`` holds NaN or infinite samples (a damaged or wrongly written float file)."""
    bad = ~np.isfinite(audio)
    if bad.any():
        count = int(bad.sum())
        raise ValueError(
            f"`{name}` holds {count} sample(s) that are not numbers (NaN or infinity), so it cannot be used: the "
            "file is damaged or was written wrongly. Export it again (16-bit WAV, FLAC or MP3) and upload that."
        )


def check_not_silent(audio: np.ndarray, name: str = "The audio") -> None:
    """Raise ValueError when ``audio`` [T] is silent (peak under -80 dBFS)."""
    if audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise ValueError(f"{name} is silent: there is nothing to arrange. Try another file or record closer.")


def check_duration(seconds: float, min_seconds: float, max_seconds: float, what: str = "song") -> None:
    """Raise ValueError when ``seconds`` lies outside ``[min_seconds, max_seconds]``."""
    if seconds < min_seconds:
        raise ValueError(
            f"The {what} is {seconds:.1f} s long: too short to find its beats. Use at least {min_seconds:.0f} s."
        )
    if seconds > max_seconds:
        raise ValueError(
            f"The {what} is {seconds / 60:.1f} minutes long; the limit here is {max_seconds / 60:.1f} minutes. "
            "Trim it, or raise the limit with --max-song-seconds."
        )


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad ``audio`` [T] to exactly ``length`` samples."""
    if audio.shape[0] >= length:
        return audio[:length]
    return np.pad(audio, (0, length - audio.shape[0]))


def normalize_peak(audio: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale ``audio`` so its absolute peak is ``peak`` (silence is returned unchanged)."""
    top = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio if top < SILENCE_PEAK else (audio * (peak / top)).astype(np.float32)


def mix(piano: np.ndarray, original: np.ndarray, balance: float) -> np.ndarray:
    """Blend two signals of the same rate: ``balance`` 0 = all original, 1 = all piano.

    Both are peak-normalised first so the balance means what it says; the result is [max(T1, T2)].
    """
    if not 0.0 <= balance <= 1.0:
        raise ValueError(f"The balance must lie between 0 and 1, got {balance}.")
    length = max(piano.shape[0], original.shape[0])
    out = balance * normalize_peak(fit_length(piano, length)) + (1.0 - balance) * normalize_peak(
        fit_length(original, length)
    )
    return np.clip(out, -1.0, 1.0).astype(np.float32)


WAV_TAGS = ("title", "comment", "software", "date", "artist", "copyright")  # what RIFF INFO chunks hold


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int, tags: dict[str, str] | None = None) -> Path:
    """Write ``audio`` [T] (or [T, C]) as 16-bit PCM WAV and return the path.

    Args:
        tags: text tags (``title``, ``comment``, ``software``, ``date``...) written as RIFF INFO chunks.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(audio, -1.0, 1.0)
    channels = 1 if data.ndim == 1 else data.shape[1]
    with sf.SoundFile(str(path), "w", sample_rate, channels, subtype="PCM_16", format="WAV") as out:
        for key, value in (tags or {}).items():
            if key in WAV_TAGS and value:
                setattr(out, key, value)
        out.write(data)
    return path


def read_tags(path: str | Path) -> dict[str, str]:
    """The text tags of an audio file (see ``write_wav``)."""
    with sf.SoundFile(str(path)) as f:
        return {k: v for k, v in f.copy_metadata().items() if v}


def trim(audio: np.ndarray, sample_rate: int, start: float = 0.0, end: float | None = None,
         max_seconds: float | None = None) -> np.ndarray:
    """The part of ``audio`` [T] from ``start`` to ``end`` seconds (None or 0 = to the end), at most ``max_seconds``.

    Raises:
        ValueError: start is negative or not before end.
    """
    total = audio.shape[0] / sample_rate
    end = total if end is None or end <= 0 or end > total else float(end)
    if start < 0 or start >= end:
        raise ValueError(f"The trim start ({start:g} s) must come before its end ({end:g} s); the clip is {total:.1f} s.")
    if max_seconds is not None:
        end = min(end, start + max_seconds)
    return audio[int(round(start * sample_rate)) : int(round(end * sample_rate))]


def write_mp3(path: str | Path, audio: np.ndarray, sample_rate: int, tags: dict[str, str] | None = None) -> Path:
    """Write ``audio`` [T] (or [T, C]) as MP3 (libsndfile's LAME encoder) with text tags; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(audio, -1.0, 1.0).astype(np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    with sf.SoundFile(str(path), "w", sample_rate, channels, format="MP3", subtype="MPEG_LAYER_III") as out:
        for key, value in (tags or {}).items():
            if key in WAV_TAGS and value and key != "software":
                setattr(out, key, value)
        out.write(data)
    return path
