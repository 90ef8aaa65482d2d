"""The GPU benchmark of record: the path the app takes, on one GPU, ours and stock in the same run.

It runs the app's wrappers (``MusicGenModel``, ``PianoCoverModel``) on the runtime's model thread, as the page and the
CLI call them, and the product layer that writes what a user downloads (``products.music.write_music``: WAV, MP3,
parameters, pictures, the watermark; ``products.piano``: MIDI and score). gradio does not travel to the GPU machine
(no network there, and its wheels exceed what a run may carry), so the HTTP layer is left out; on a CPU the benchmark
of record through ``app.py`` stays ``bench/app_bench.py``. Models are full size with random weights of the published
architectures (speed does not depend on weight values), saved to folders and loaded by the app's own loading code.

Workloads, most wanted first (each one written to the results file as soon as it ends; a workload whose estimate does
not fit in the time left is skipped and says so):
- ``small_30s``: musicgen-small, 30 s, ours (fast loop, static step, CUDA graphs, the GPU's dtype) then stock
  (``MUSICGEN_FAST_PATH=0``, same dtype); the time to the first streamed audio is measured on ours;
- ``melody_30s``: musicgen-melody, 30 s following a 30 s melody (whole mix: demucs is not carried), ours then stock;
- ``users_8x10s``: eight users ask for 10 s at the same moment, against one alone (``ratio``: all / one);
- ``cover_210s``: a 3.5-minute song to a piano cover with its MIDI and score, ours then stock;
- ``large_30s``: musicgen-large (48 x 2048 decoder), 30 s, ours then stock;
- ``small_30s_float32``: ours in float32, to compare the dtypes on the same GPU.

Each row holds ``workload``, ``model``, ``seconds`` (of music), ``path`` (ours/stock), ``total_s`` (the request as a
user waits for it, files written), and what explains it: ``generate_s``, ``products_s``, ``ms_per_step``,
``first_audio_s``, ``peak_gpu_mb``, ``dtype``, ``graphs`` (captures and their cost), ``ratio`` for the users.

    python -m bench.gpu_bench                                   # on the GPU machine (bench/gpu_kit.sh runs it)
    python -m bench.gpu_bench --dry-run --device cpu --out /tmp/x   # tiny models, 1 s: checks the bench itself
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

PROMPT = "lo-fi hip hop with warm piano and vinyl crackle, 80 bpm"
USER_PROMPTS = ["lo-fi hip hop with warm piano", "fast punk rock with loud guitars", "calm ambient pads",
                "jazz trio with brushed drums", "epic orchestral trailer", "reggae with a walking bass",
                "synthwave with gated drums", "acoustic folk guitar and whistling"]
WORKLOADS = ("small_30s", "melody_30s", "users_8x10s", "cover_210s", "large_30s", "small_30s_float32")
LARGE = dict(hidden_size=2048, num_hidden_layers=48, num_attention_heads=32, ffn_dim=8192)  # musicgen-large


class Bench:
    """The run: settings, the results so far (rewritten to ``out`` after each workload), the time left."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.time()
        self.deadline = self.started + args.budget
        self.device = torch.device(args.device)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        self.path = self.out / (f"gpu-dry-run-{stamp}.json" if args.dry_run else f"gpu-{stamp}.json")
        self.rows: list[dict] = []
        self.meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(self.device),
                     "command": " ".join(["python -m bench.gpu_bench", *sys.argv[1:]]), "dry_run": args.dry_run,
                     "torch": torch.__version__}

    def left(self) -> float:
        return self.deadline - time.time()

    def record(self, row: dict) -> None:
        self.rows.append(row)
        self.path.write_text(json.dumps({**self.meta, "rows": self.rows}, indent=2) + "\n")
        brief = {k: row[k] for k in ("path", "model", "seconds", "total_s", "ratio", "ms_per_step",
                                     "first_audio_s", "peak_gpu_mb", "error") if k in row}
        print(f"[{time.time() - self.started:6.1f} s] {row['workload']}: {json.dumps(brief)}", flush=True)

    def fits(self, workload: str, estimate: float) -> bool:
        if self.args.dry_run or estimate <= self.left():
            return True
        self.record({"workload": workload, "skipped": f"estimated {estimate:.0f} s, {self.left():.0f} s left"})
        return False


def machine(device: torch.device) -> str:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    return f"{gpu}; {os.cpu_count()} cores; Python {platform.python_version()}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None


# ------------------------------------------------------------------------------------------------------- models
def folders(bench: Bench) -> dict[str, Path]:
    """Model folders: tiny ones for a dry run, else full size with random weights (built once, kept)."""
    root = Path(bench.args.models)
    paths = {"small": root / "musicgen-small", "melody": root / "musicgen-melody", "pop2piano": root / "pop2piano",
             "large": root / "musicgen-large"}
    if bench.args.dry_run:
        from tests.tiny_models import build_tiny_musicgen, build_tiny_pop2piano

        for name, build in (("small", lambda p: build_tiny_musicgen(p)),
                            ("melody", lambda p: build_tiny_musicgen(p, melody=True)),
                            ("large", lambda p: build_tiny_musicgen(p, seed=1)),
                            ("pop2piano", build_tiny_pop2piano)):
            if not (paths[name] / "config.json").is_file():
                build(paths[name])
        watermark(paths, root, dry=True)
        return paths
    watermark(paths, root, dry=False)
    from bench.full_size import save_musicgen_pair

    if not (paths["melody"] / "config.json").is_file():
        began = time.time()
        save_musicgen_pair(paths["small"], paths["melody"])
        print(f"built full-size musicgen-small and -melody in {time.time() - began:.0f} s", flush=True)
    if not (paths["pop2piano"] / "config.json").is_file():
        from bench.full_size import save_full_size_pop2piano

        save_full_size_pop2piano(paths["pop2piano"])
    return paths


def watermark(paths: dict[str, Path], root: Path, dry: bool) -> None:
    """The watermark the products add, as the app adds it: AudioSeal with random weights of the released size
    (tiny in a dry run), when audioseal imports; else the products say why they are not watermarked."""
    import importlib.util

    if importlib.util.find_spec("audioseal") is None:
        print("audioseal is not installed: results are written without the watermark (their notes say so)")
        return
    from tests.tiny_models import build_tiny_watermarker

    paths["audioseal"] = root / "audioseal"
    if not (paths["audioseal"] / "generator_base.pth").is_file():
        build_tiny_watermarker(paths["audioseal"], full_size=not dry)
    os.environ["WATERMARK_MODEL"] = str(paths["audioseal"])


def save_large(folder: Path, device: torch.device) -> None:
    """musicgen-large with random weights: built on the GPU (fast), saved in bfloat16 (half the bytes to write)."""
    from bench.full_size import SIZES, build_musicgen
    from tests.tiny_models import build_t5_tokenizer

    SIZES.setdefault("musicgen-large", LARGE)
    began = time.time()
    with torch.device(device):
        model = build_musicgen("musicgen-large", seed=2)
    model.to(torch.bfloat16).save_pretrained(folder)
    build_t5_tokenizer(folder)
    del model
    print(f"built full-size musicgen-large in {time.time() - began:.0f} s", flush=True)


def set_path(path: str, dtype: str | None) -> None:
    """The environment a wrapper reads when it is made: stock or ours, and the dtype (None: the GPU's choice)."""
    os.environ["MUSICGEN_FAST_PATH"] = "0" if path == "stock" else "1"
    os.environ["PIANO_COVER_FAST_PATH"] = "0" if path == "stock" else "1"
    if dtype:
        os.environ["MUSIC_DEMO_DTYPE"] = dtype
    else:
        os.environ.pop("MUSIC_DEMO_DTYPE", None)


def graph_stats(model) -> dict:
    loop = getattr(model.backend, "loop", None)
    pool = getattr(loop, "pool", None)
    if pool is None:
        return {"graphs": "none (eager step)" if loop is not None else "none (stock generate)"}
    return {"graphs": {"on": pool.graphs_on, "failure": pool.graph_failure, "captures": pool.captures,
                       "capture_s": round(pool.capture_seconds, 3), "pool_rows": pool.rows,
                       "pool_length": pool.length}}


# ---------------------------------------------------------------------------------------------------- workloads
def music_request(bench: Bench, workload: str, folder: Path, name: str, path: str, seconds: float,
                  melody_audio: tuple[np.ndarray, int] | None = None, dtype: str | None = None) -> dict:
    """One user's request through the wrapper on the model thread, then its files through the product layer."""
    from models.musicgen import Melody, MusicGenModel, SamplingParams
    from models.devices import free_accelerator_memory

    set_path(path, dtype)
    model = MusicGenModel(str(folder), str(bench.device), melody=melody_audio is not None)
    began = time.perf_counter()
    model.load()
    load_s = time.perf_counter() - began
    params = SamplingParams(duration=seconds, seed=1)
    warm = SamplingParams(duration=min(1.0, seconds), seed=0)

    def ask(p: SamplingParams, stream=None):
        if melody_audio is None:
            return model.generate(PROMPT, p, stream=stream)
        audio, rate = melody_audio
        return model.generate_with_melody(PROMPT, Melody(audio, rate, (0.0, audio.shape[-1] / rate)), p,
                                          melody_source="mix", stream=stream)

    began = time.perf_counter()
    ask(warm)  # the app's first request pays set-up (kernels, graph capture); users after it do not
    warm_s = time.perf_counter() - began
    peak_reset(bench.device)
    first: list[float] = []
    sync(bench.device)
    began = time.perf_counter()
    result = ask(params, stream=lambda chunk: first or first.append(time.perf_counter() - began))
    sync(bench.device)
    generate_s = time.perf_counter() - began
    products_s, products = write_products(result, bench.out / "files" / workload / path)
    steps = model.n_steps(seconds)
    row = {"workload": workload, "model": name, "seconds": seconds, "path": path,
           "total_s": round(generate_s + (products_s or 0.0), 3), "generate_s": round(generate_s, 3),
           "products_s": None if products_s is None else round(products_s, 3), "products": products,
           "first_audio_s": round(first[0], 3) if first else None, "ms_per_step": round(1000 * generate_s / steps, 2),
           "audio_s": round(result.duration, 2), "peak_gpu_mb": peak_mb(bench.device), "load_s": round(load_s, 1),
           "first_request_s": round(warm_s, 2), "dtype": result.params.get("dtype"),
           "decode_loop": result.params.get("decode_loop"), **graph_stats(model)}
    model.unload()
    free_accelerator_memory()
    return row


def write_products(result, out: Path) -> tuple[float | None, str]:
    """The files a user downloads (WAV, MP3, parameters, pictures, watermark), timed; or why they could not be."""
    try:
        from products.music import write_music
    except ImportError as e:
        return None, f"not written here ({e})"
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    files = write_music(result, out, "bench")
    seconds = time.perf_counter() - began
    return seconds, (f"{len(files.wavs)} WAV, {len(files.mp3s)} MP3, parameters, "
                     f"{'pictures' if files.picture else 'no pictures'}; watermark: {files.watermark_note or 'yes'}")


def users(bench: Bench, folder: Path, n_users: int, seconds: float) -> dict:
    """``n_users`` ask for ``seconds`` at the same moment (each in its own thread, as the app's workers); against
    one alone, on the same loaded model."""
    from models.musicgen import MusicGenModel, SamplingParams

    set_path("ours", None)
    model = MusicGenModel(str(folder), str(bench.device))
    model.load()
    model.generate(PROMPT, SamplingParams(duration=1.0, seed=0))  # warm: one request's graph
    sync(bench.device)
    began = time.perf_counter()
    model.generate(USER_PROMPTS[0], SamplingParams(duration=seconds, seed=1))
    alone = time.perf_counter() - began
    peak_reset(bench.device)
    waits: list[float] = [0.0] * n_users
    errors: list[str] = []
    gate = threading.Barrier(n_users)

    def user(i: int) -> None:
        gate.wait()
        start = time.perf_counter()
        try:
            model.generate(USER_PROMPTS[i % len(USER_PROMPTS)], SamplingParams(duration=seconds, seed=i + 1))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        waits[i] = time.perf_counter() - start

    threads = [threading.Thread(target=user, args=(i,)) for i in range(n_users)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = time.perf_counter() - began
    row = {"workload": f"users_{n_users}x{seconds:g}s", "model": "musicgen-small", "seconds": seconds,
           "path": "ours", "users": n_users, "total_s": round(total, 3), "alone_s": round(alone, 3),
           "ratio": round(total / alone, 3), "waits_s": [round(w, 2) for w in waits],
           "peak_gpu_mb": peak_mb(bench.device), **graph_stats(model)}
    if errors:
        row["error"] = errors[0]
    model.unload()
    return row


def song_file(out: Path, seconds: float) -> Path:
    """A 118 bpm pop loop (kick, snare, chords) of ``seconds``, written as WAV. Synthesised here because the GPU
    machine has neither music21's corpus nor FluidSynth, which ``bench.pop2piano_bench.make_song`` renders with."""
    import soundfile as sf

    sr, bpm = 44100, 118.0
    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    beat = 60.0 / bpm
    song = np.zeros(n)
    for i, start in enumerate(np.arange(0, seconds, beat)):
        s = int(start * sr)
        k = np.arange(min(int(0.25 * sr), n - s)) / sr
        song[s : s + k.size] += 0.8 * np.sin(2 * np.pi * (60 + 60 * np.exp(-k * 30)) * k) * np.exp(-k * 12)
        if i % 2:
            song[s : s + k.size] += 0.3 * rng.standard_normal(k.size) * np.exp(-k * 20)
    chords = [(57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62)]
    for j, start in enumerate(np.arange(0, seconds, 4 * beat)):
        s, e = int(start * sr), min(int((start + 4 * beat) * sr), n)
        for p in chords[j % 4]:
            song[s:e] += 0.08 * np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * t[s:e])
    path = out / f"song_{seconds:g}s.wav"
    sf.write(path, (0.9 * song / np.abs(song).max()).astype(np.float32), sr)
    return path


def cover(bench: Bench, folder: Path, path: str, song: Path, seconds: float) -> dict:
    """A song to a piano cover (beats, Pop2Piano), then its tempo-mapped MIDI and score, as the Piano tab does."""
    from models.pop2piano import PianoCoverModel

    set_path(path, None)
    model = PianoCoverModel(str(folder), str(bench.device))
    model.load()
    peak_reset(bench.device)
    began = time.perf_counter()
    made, audio, rate = model.cover_file(str(song))
    sync(bench.device)
    arrange_s = time.perf_counter() - began
    products, products_s = "", None
    try:
        from products.piano import start_cover, write_midis, write_score

        out = bench.out / "files" / "cover" / path
        out.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        job = start_cover(made, audio, rate, str(folder), str(song), out, watermark="off")
        write_midis(job)
        score = write_score(job)
        products_s = time.perf_counter() - began
        products = f"MIDI + score ({', '.join(p.suffix for p in vars(score).values() if isinstance(p, Path))})"
    except Exception as e:  # noqa: BLE001 - a missing engraver on the GPU machine: the model part still counts
        products = f"not written here ({type(e).__name__}: {e})"
    row = {"workload": f"cover_{seconds:g}s", "model": "pop2piano", "seconds": seconds, "path": path,
           "total_s": round(arrange_s + (products_s or 0.0), 3), "arrange_s": round(arrange_s, 3),
           "products_s": None if products_s is None else round(products_s, 3), "products": products,
           "notes": made.n_notes, "peak_gpu_mb": peak_mb(bench.device)}
    model.unload()
    return row


# ---------------------------------------------------------------------------------------------------------- run
def run(bench: Bench) -> None:
    args, only = bench.args, set(bench.args.only)
    dry = args.dry_run
    seconds = 1.0 if dry else 30.0
    paths = folders(bench)

    def attempt(workload: str, fn, *a, **kw) -> dict | None:
        try:
            row = fn(*a, **kw)
        except Exception as e:  # noqa: BLE001 - one failure must not cost the rest of the run
            traceback.print_exc()
            row = {"workload": workload, "path": kw.get("path", a[3] if len(a) > 3 else ""), "error": repr(e)}
        bench.record(row)
        return row

    def pair(workload: str, folder: Path, name: str, estimates: tuple[float, float], **kw) -> None:
        for path, estimate in zip(("ours", "stock"), estimates):
            if bench.fits(f"{workload} {path}", estimate):
                attempt(workload, music_request, bench, workload, folder, name, path, seconds, **kw)

    if "small_30s" in only:
        pair("small_30s", paths["small"], "musicgen-small", (40, 90))
    if "melody_30s" in only:
        from models.musicgen import Melody  # noqa: F401 - fail here, not inside the timing, if it cannot import

        rate = 32000
        t = np.arange(int((2.0 if dry else 30.0) * rate)) / rate
        tune = (0.3 * np.sin(2 * np.pi * 440 * 2 ** (np.floor(t * 2) % 8 / 12) * t)).astype(np.float32)
        pair("melody_30s", paths["melody"], "musicgen-melody", (60, 150), melody_audio=(tune, rate))
    if "users_8x10s" in only and bench.fits("users_8x10s", 60):
        attempt("users_8x10s", users, bench, paths["small"], 2 if dry else 8, 1.0 if dry else 10.0)
    if "cover_210s" in only:
        song = song_file(bench.out, 20.0 if dry else 210.0)
        for path, estimate in (("ours", 45), ("stock", 60)):
            if bench.fits(f"cover_210s {path}", estimate):
                attempt("cover_210s", cover, bench, paths["pop2piano"], path, song, 20.0 if dry else 210.0)
    if "large_30s" in only and bench.fits("large_30s", 150):
        if not (paths["large"] / "config.json").is_file():
            save_large(paths["large"], bench.device)
        pair("large_30s", paths["large"], "musicgen-large", (60, 150))
    if "small_30s_float32" in only and bench.fits("small_30s_float32", 45):
        attempt("small_30s_float32", music_request, bench, "small_30s_float32", paths["small"], "musicgen-small",
                "ours", seconds, dtype="float32")
    print(f"results: {bench.path}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default=str(Path(tempfile.gettempdir()) / "music-demo-gpu-models"),
                        help="folder for the model checkpoints (built when missing, kept)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--budget", type=float, default=420.0, help="seconds: no workload starts past its estimate")
    parser.add_argument("--only", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--dry-run", action="store_true", help="tiny models, 1 s pieces: checks the bench itself")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available here: use --device cpu with --dry-run to check the bench itself.")
    run(Bench(args))


if __name__ == "__main__":
    main()
