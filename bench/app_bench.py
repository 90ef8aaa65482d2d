"""The benchmark of record: the app as a user runs it.

Starts ``app.py`` as its own process with full-size model folders (random weights of the published architectures:
speed does not depend on weight values; ``bench/full_size.py``), and drives it over its API with ``gradio_client``,
as a script or the page does. The same workloads run against a second app started the stock way on the same folders
(``MUSICGEN_FAST_PATH=0``, ``PIANO_COVER_FAST_PATH=0``, ``MUSICGEN_CPU_INT8=0``, ``PIANO_COVER_CPU_INT8=0``), in the
same run, one app after the other (never both at once).

Workloads, in order, after a warm-up that loads every model (a 2 s text piece, a 2 s melody piece, a 20 s cover):
- ``text_10s``: 10 s of text to music, fresh: total, and the time to the first streamed audio (the first update the
  page gets while the music is made);
- ``text_30s``: the same for 30 s;
- ``midi_30s``: "MIDI of this" on that 30 s piece (transcription, beats, MIDI, score); ``check``: the watermark
  check on its WAV;
- ``translated_10s``: 10 s from a prompt in Chinese and English (its Chinese run translated first);
- ``melody_10s``: 10 s of melody to music with the melody separated (Demucs) from a 30 s song;
- ``cover``: a 3.5-minute song to a piano cover with its MIDI and score; ``video``: then its video;
- ``every_endpoint``: the cover's instrument, score and remix actions, a streamed text piece extended (each
  endpoint used once, on top of the above);
- ``users_4x10s``: four users ask for 10 s at the same moment: each one's wait, and the total;
- ``text_10s_after``: ``text_10s`` again, after all of the above: the decode speed must not depend on what ran
  before (it did: docs/performance-history.md);
- ``sheet_music``: a 3.5-minute piano recording to its MIDI and A4 score (Transkun);
- ``song_30s``: a 30 s song with lyrics (ACE-Step 1.5, 2B turbo): total, the first streamed audio, the server's
  peak RSS; ``song_users_2x30s``: two visitors ask for a 30 s song at the same moment. With only song workloads
  chosen, the other roles get the tests' tiny models (they are loaded, never used) and the watermark is off, so
  the figures are the song's alone; the stock app runs ``AceStepPipeline`` the doc page's way (float32, one-pass
  decode: ``SONG_FAST_PATH=0``), and the SNR of ours against stock (same seed) is recorded.
- ``cover_abba``: does a cover slow the music made after it? 10 s of text in the order A B B A: A right after
  another piece, B right after a 3.5-minute cover (A1, cover, B1, cover, B2, A2); B over A pair by pair.

    python -m bench.app_bench --models ~/.cache/music-demo/full-size            # ours, then stock
    python -m bench.app_bench --apps ours --skip users_4x10s                       # a quicker look
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
DEFAULT_MODELS = Path.home() / ".cache" / "music-demo" / "full-size"
PROMPT = "lo-fi hip hop with warm piano and vinyl crackle, 80 bpm"
USER_PROMPTS = ["lo-fi hip hop with warm piano", "fast punk rock with loud guitars", "calm ambient pads",
                "jazz trio with brushed drums"]
SONG_SECONDS = 210.0  # the 3.5-minute cover
MELODY_SONG_SECONDS = 30.0
TRANSLATED_PROMPT = "欢快的国风摇滚 with guzheng and drums"
WORKLOADS = ("text_10s", "text_30s", "midi_30s", "check", "translated_10s", "melody_10s", "cover", "video", "every_endpoint", "users_4x10s",
             "text_10s_after", "sheet_music", "cover_abba", "song_30s", "song_users_2x30s")
SONG_WORKLOADS = ("song_30s", "song_users_2x30s")
STOCK_ENV = {"MUSICGEN_FAST_PATH": "0", "PIANO_COVER_FAST_PATH": "0", "MUSICGEN_CPU_INT8": "0",
             "PIANO_COVER_CPU_INT8": "0", "SONG_FAST_PATH": "0"}
SONG_STYLE = "upbeat pop, bright female vocals, electric guitar and drums"
SONG_LYRICS = ("[verse]\nCity lights are shining bright tonight\nWe sing along until the morning light\n"
               "[chorus]\nHold on, hold on, the night is young\nEvery song we know is sung")


def machine() -> str:
    import os

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return f"{cpu}, {os.cpu_count()} cores, {platform.python_version()}"


class Timed:
    """One request through ``gradio_client``: its total time and the time of its first streamed update."""

    def __init__(self, client, *args, api_name: str) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.job = client.submit(*args, api_name=api_name)
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        """Notes when the first update arrives (the app yields one per streamed chunk before the results)."""
        while not self.job.done():
            if self.job.outputs():
                self.first = time.perf_counter() - self.started
                return
            time.sleep(0.02)

    def result(self) -> tuple[object, dict]:
        outputs = self.job.result(timeout=3600)
        total = time.perf_counter() - self.started
        streamed_updates = len(self.job.outputs()) - 1  # every update before the final one came while streaming
        first = self.first if streamed_updates > 0 and self.first is not None else total
        return outputs, {"total_s": round(total, 2), "first_audio_s": round(first, 2)}


def text(client, seconds: float, seed: int, prompt: str = PROMPT) -> Timed:
    return Timed(client, prompt, "", seconds, 250, 0.0, 1.0, 3.0, str(seed), 1, 18, api_name="/text_to_music")


def make_song(client, seconds: float, seed: int, style: str = SONG_STYLE) -> Timed:
    return Timed(client, style, SONG_LYRICS, False, "auto", seconds, 0, "", "", str(seed), 1, "", api_name="/song")


def song_figures(outputs, timing: dict, seconds: float) -> dict:
    params = outputs[3]
    return {**timing, "seconds": seconds, "wav": outputs[0], "dtype": params.get("dtype_note"),
            "steps": params.get("steps"), "real_time_factor": round(timing["total_s"] / seconds, 2)}


def music_figures(outputs, timing: dict, seconds: float) -> dict:
    params = outputs[5]
    steps = sum(w["end"] - w["start"] for w in params["windows"]) + 3 * len(params["windows"])  # + codebook delay
    figures = {**timing, "seconds": seconds, "steps": steps, "real_time_factor": round(timing["total_s"] / seconds, 2),
               "ms_per_step_overall": round(1000 * timing["total_s"] / steps, 1),
               "decode_loop": params.get("decode_loop"), "decoder_weights": params.get("decoder_weights")}
    if "decode_passes" in params:
        figures["decode_passes"] = params["decode_passes"]
    return figures


class ServerPeak:
    """A process's peak RSS in GB, sampled every 0.5 s in a thread: over the whole watch, and since ``reset``."""

    def __init__(self, pid: int) -> None:
        self.overall = 0.0
        self.current = 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(pid,), daemon=True).start()

    def _run(self, pid: int) -> None:
        import psutil

        process = psutil.Process(pid)
        while not self._stop.wait(0.5):
            try:
                rss = process.memory_info().rss / 2**30
            except psutil.Error:
                return
            self.overall, self.current = max(self.overall, rss), max(self.current, rss)

    def reset(self) -> None:
        self.current = 0.0

    def stop(self) -> None:
        self._stop.set()


def run_app(name: str, folders: dict[str, Path], env: dict[str, str], workloads: list[str], song: Path,
            melody_song: Path, short_song: Path, log: Path) -> dict:
    """Start one app, warm it up, run the workloads in order; returns their figures."""
    from gradio_client import Client, handle_file

    from tests.live_app import start_app

    figures: dict[str, object] = {}
    extra = ["--separator-model", str(folders["htdemucs"])]
    if "marian" in folders:  # every app marks its audio and translates, so that only the runtime differs
        extra += ["--translation-model", str(folders["marian"]), "--watermark-model", str(folders["audioseal"])]
    songs_only = all(w in SONG_WORKLOADS for w in workloads)
    if "ace-step" in folders:
        extra += ["--song-model", str(folders["ace-step"])]
    if songs_only:  # the song's figures alone (see the module docstring)
        extra += ["--watermark-model", "off"]
    # without the page's progress line in the stream: the client then sees audio chunks only, and times the first
    env = {"MUSIC_DEMO_PROGRESS_LINE": "0", **env}
    app = start_app(folders["pop2piano"], folders["musicgen-small"], folders["musicgen-melody"],
                    log_name=log.name, extra_args=extra, env=env)
    peak = ServerPeak(app.process.pid)
    try:
        client = Client(app.url, verbose=False, download_files=str(log.parent / f"{name}-downloads"))
        started = time.perf_counter()
        if not songs_only:
            text(client, 2, 0).result()
            Timed(client, handle_file(str(melody_song)), 0, 0, "piano", "", 2, 250, 0.0, 1.0, 3.0, "0", 1, 18,
                  "separated", api_name="/melody_to_music").result()
            Timed(client, handle_file(str(short_song)), "composer1", api_name="/piano_cover").result()
        if any(w in SONG_WORKLOADS for w in workloads):
            make_song(client, 10, 0).result()
        figures["warm_up_s"] = round(time.perf_counter() - started, 1)
        print(f"[{name}] warm-up (loads every model) {figures['warm_up_s']} s", flush=True)
        piece_30s = None
        figures["peak_rss_gb_warm_up"] = round(peak.current, 2)
        for workload in workloads:
            peak.reset()
            if workload in ("text_10s", "text_30s", "text_10s_after"):
                seconds = 30 if workload == "text_30s" else 10
                outputs, timing = text(client, seconds, 1).result()
                figures[workload] = music_figures(outputs, timing, seconds)
                piece_30s = outputs[0] if seconds == 30 else piece_30s
            elif workload == "song_30s":
                outputs, timing = make_song(client, 30, 1).result()
                figures[workload] = song_figures(outputs, timing, 30)
            elif workload == "song_users_2x30s":
                users = [Client(app.url, verbose=False, download_files=str(log.parent / f"{name}-song{i}"))
                         for i in range(2)]
                t0 = time.perf_counter()
                jobs = [make_song(user, 30, 20 + i) for i, user in enumerate(users)]
                done = [job.result() for job in jobs]
                figures[workload] = {"waits_s": [d[1]["total_s"] for d in done],
                                     "total_s": round(time.perf_counter() - t0, 2)}
            elif workload == "midi_30s":
                outputs, timing = Timed(client, handle_file(piece_30s), api_name="/text_to_music_midi").result()
                figures[workload] = {**timing, "line": outputs[2]}
            elif workload == "check":
                outputs, timing = Timed(client, handle_file(piece_30s), api_name="/check_watermark").result()
                figures[workload] = {**timing, "verdict": outputs}
            elif workload == "translated_10s":
                outputs, timing = text(client, 10, 1, TRANSLATED_PROMPT).result()
                figures[workload] = {**music_figures(outputs, timing, 10),
                                     "prompt_english": outputs[5].get("prompt_english")}
            elif workload == "melody_10s":
                outputs, timing = Timed(client, handle_file(str(melody_song)), 0, 0, "a jazz trio", "", 10, 250, 0.0,
                                        1.0, 3.0, "1", 1, 18, "separated", api_name="/melody_to_music").result()
                figures[workload] = {**music_figures(outputs, timing, 10),
                                     "melody_source_used": outputs[5].get("melody_source_used")}
            elif workload == "cover":
                outputs, timing = Timed(client, handle_file(str(song)), "composer1",
                                        api_name="/piano_cover").result()
                figures[workload] = {**timing, "song_seconds": SONG_SECONDS,
                                     "products": [Path(p).suffix for p in outputs[:10] if isinstance(p, str)]}
            elif workload == "sheet_music":  # a 3.5-minute piano recording to its MIDI and A4 score (Transkun)
                recording = make_piano_recording(log.parent / "piano-210s.wav", SONG_SECONDS)
                outputs, timing = Timed(client, handle_file(str(recording)), False, "a4",
                                        api_name="/piano_to_sheet_music").result()
                figures[workload] = {**timing, "recording_seconds": SONG_SECONDS,
                                     "products": [Path(p).suffix for p in outputs[:10] if isinstance(p, str)],
                                     "bpm": outputs[4]}
            elif workload == "video":
                outputs, timing = Timed(client, "Acoustic grand piano", 1.0, "landscape",
                                        api_name="/piano_cover_video").result()
                figures[workload] = timing
            elif workload == "every_endpoint":
                spent = {}
                for label, args, api in [
                    ("instrument", ("Harp", 0.7), "/piano_cover_instrument"),
                    ("score", (True,), "/piano_cover_score"),
                    ("remix", (0.5,), "/piano_cover_remix"),
                    ("text_5s", (PROMPT, "", 5, 250, 0.0, 1.0, 3.0, "2", 1, 18), "/text_to_music"),
                    ("extend_5s", (5,), "/text_to_music_extend"),
                ]:
                    spent[label] = Timed(client, *args, api_name=api).result()[1]["total_s"]
                figures[workload] = spent
            elif workload == "cover_abba":
                times = {}
                text(client, 10, 1).result()  # "right after another piece" for A1
                for label in ("A1", "cover", "B1", "cover", "B2", "A2"):
                    if label == "cover":
                        Timed(client, handle_file(str(song)), "composer1", api_name="/piano_cover").result()
                    else:
                        times[label] = text(client, 10, 1).result()[1]["total_s"]
                figures[workload] = {**times, "B1_over_A1": round(times["B1"] / times["A1"], 3),
                                     "B2_over_A2": round(times["B2"] / times["A2"], 3),
                                     "mean_B_over_mean_A": round((times["B1"] + times["B2"]) /
                                                                 (times["A1"] + times["A2"]), 3)}
            elif workload == "users_4x10s":
                users = [Client(app.url, verbose=False, download_files=str(log.parent / f"{name}-user{i}"))
                         for i in range(4)]
                t0 = time.perf_counter()
                jobs = [text(user, 10, 10 + i, USER_PROMPTS[i]) for i, user in enumerate(users)]
                done = [job.result() for job in jobs]
                total = time.perf_counter() - t0
                figures[workload] = {"waits_s": [d[1]["total_s"] for d in done], "total_s": round(total, 2),
                                     "shared_passes": [d[0][5].get("decode_passes") for d in done]}
            if isinstance(figures[workload], dict):
                figures[workload]["peak_rss_gb"] = round(peak.current, 2)  # the server's, during this workload
            print(f"[{name}] {workload}: {json.dumps(figures[workload])}", flush=True)
        if "users_4x10s" in figures and "text_10s" in figures:
            figures["users_4x10s"]["total_over_one"] = round(
                figures["users_4x10s"]["total_s"] / figures["text_10s"]["total_s"], 2)
        if "song_users_2x30s" in figures and "song_30s" in figures:
            figures["song_users_2x30s"]["total_over_one"] = round(
                figures["song_users_2x30s"]["total_s"] / figures["song_30s"]["total_s"], 2)
        if "text_10s_after" in figures and "text_10s" in figures:
            figures["after_over_fresh"] = round(
                figures["text_10s_after"]["total_s"] / figures["text_10s"]["total_s"], 3)
    finally:
        peak.stop()
        figures["peak_rss_gb"] = round(peak.overall, 2)
        app.stop()
    return figures


def tiny_folders(root: Path) -> dict[str, Path]:
    from tests.tiny_models import (
        build_tiny_ace_step,
        build_tiny_htdemucs,
        build_tiny_musicgen,
        build_tiny_pop2piano,
        build_tiny_translator,
        build_tiny_watermarker,
    )

    root.mkdir(parents=True, exist_ok=True)
    return {"musicgen-small": build_tiny_musicgen(root / "musicgen-small"),
            "musicgen-melody": build_tiny_musicgen(root / "musicgen-melody", melody=True),
            "pop2piano": build_tiny_pop2piano(root / "pop2piano"),
            "htdemucs": build_tiny_htdemucs(root / "htdemucs"),
            "marian": build_tiny_translator(root / "marian"),
            "audioseal": build_tiny_watermarker(root / "audioseal"),
            "ace-step": build_tiny_ace_step(root / "ace-step")}


def make_piano_recording(path: Path, seconds: float) -> Path:
    """A piano recording of ``seconds``: Joplin's Maple Leaf Rag (music21's corpus) on the piano, FluidSynth, looped."""
    if path.is_file():
        return path
    import tempfile

    import music21
    import numpy as np
    import pretty_midi
    import soundfile as sf

    from utils.render import render_midi

    with tempfile.TemporaryDirectory() as tmp:
        midi_path = Path(tmp) / "rag.mid"
        music21.corpus.parse("joplin/maple_leaf_rag").write("midi", fp=str(midi_path))
        midi = pretty_midi.PrettyMIDI(str(midi_path))
    for inst in midi.instruments:
        inst.program = 0
    audio = render_midi(midi, 44100).audio
    audio = np.tile(audio, int(np.ceil(seconds * 44100 / audio.shape[0])))[: int(seconds * 44100)]
    sf.write(str(path), audio, 44100)
    return path


def make_songs(folder: Path) -> tuple[Path, Path, Path]:
    """The 3.5-minute song (a chorale with drums, looped), a 30 s one for the melody, and 20 s for the warm-up."""
    from bench.pop2piano_bench import make_song

    return (make_song(folder / "song-210s.wav", SONG_SECONDS),
            make_song(folder / "song-30s.wav", MELODY_SONG_SECONDS),
            make_song(folder / "song-20s.wav", 20.0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS,
                        help="where the full-size folders are (built there on first use, ~10 GB)")
    parser.add_argument("--apps", nargs="+", default=["ours", "stock"], choices=["ours", "stock"])
    parser.add_argument("--skip", nargs="*", default=[], choices=WORKLOADS, help="workloads to leave out")
    parser.add_argument("--stock-skip", nargs="*", default=[], choices=WORKLOADS,
                        help="workloads to leave out of the stock app only")
    parser.add_argument("--tiny", action="store_true",
                        help="the tests' tiny models instead (checks the benchmark itself, measures nothing)")
    parser.add_argument("--out", type=Path, default=RESULTS / "app-cpu.json")
    args = parser.parse_args(argv)

    chosen = [w for w in WORKLOADS if w not in set(args.skip)]
    if args.tiny:
        folders = tiny_folders(args.models)
    elif all(w in SONG_WORKLOADS for w in chosen):  # the song alone: the other roles tiny (loaded, never used)
        from bench.full_size import save_full_size_ace_step

        folders = {k: v for k, v in tiny_folders(args.models / "tiny").items() if k not in ("marian", "audioseal")}
        folders["ace-step"] = save_full_size_ace_step(args.models / "ace-step")
    else:
        from bench.full_size import save_full_size_ace_step, save_full_size_folders

        folders = save_full_size_folders(args.models)
        folders["ace-step"] = save_full_size_ace_step(args.models / "ace-step")
    work = args.models / "bench-run"
    work.mkdir(exist_ok=True)
    song, melody_song, short_song = make_songs(work)
    results = {"benchmark": "app", "command": "python -m bench.app_bench " + " ".join(argv or sys.argv[1:]),
               "date": datetime.now(UTC).isoformat(timespec="minutes"), "machine": machine(), "apps": {}}
    for name in args.apps:
        skip = set(args.skip) | (set(args.stock_skip) if name == "stock" else set())
        workloads = [w for w in WORKLOADS if w not in skip]
        env = STOCK_ENV if name == "stock" else {}
        results["apps"][name] = run_app(name, folders, env, workloads, song, melody_song, short_song,
                                        work / f"app-{name}.log")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")  # after each app: a partial run is kept
    song_snr(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def song_snr(results: dict) -> None:
    """Ours against stock for the same 30 s song (same seed): the SNR in dB, into the results."""
    apps = results["apps"]
    if not all("song_30s" in apps.get(name, {}) for name in ("ours", "stock")):
        return
    import numpy as np
    import soundfile as sf

    ours, _ = sf.read(apps["ours"]["song_30s"]["wav"])
    stock, _ = sf.read(apps["stock"]["song_30s"]["wav"])
    results["song_30s_snr_db_ours_vs_stock"] = round(float(10 * np.log10(np.sum(stock**2) /
                                                                         max(np.sum((ours - stock) ** 2), 1e-20))), 2)
    results["song_30s_ours_over_stock"] = round(apps["ours"]["song_30s"]["total_s"] /
                                                apps["stock"]["song_30s"]["total_s"], 3)


if __name__ == "__main__":
    main()
