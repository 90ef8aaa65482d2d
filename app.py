"""Music demo: piano covers of pop songs, text to music, and melody to music.

Run ``python app.py --help`` for the launch flags. This file assembles the tabs (``ui/``) and launches the app;
the models live in ``models/``, the helpers in ``utils/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from ui import common  # noqa: E402  (first: it imports `spaces` before anything imports torch)
from ui import fair  # noqa: E402
from ui.common import (  # noqa: E402
    CONFIG,
    PAGE_CSS,
    DEFAULT_QUEUE_SIZE,
    MAX_OUTPUT_MB_ENV_VAR,
    MAX_SHARE_MB_ENV_VAR,
    MAX_UPLOAD_MB_ENV_VAR,
    OUTPUT_DIR_ENV_VAR,
    OUTPUT_MAX_AGE_S,
    on_zero_gpu,
    page_error,
    runtime_line,
)
from ui.check import build_check_box, check_box_state, check_watermark  # noqa: E402
from ui.i18n import english_api_labels, localize_page, page_i18n, say, speak_examples, spoken  # noqa: E402
from ui.runs import forget_session  # noqa: E402
from ui.share import wire_opening  # noqa: E402
from ui.tools import MCP_TOOLS, building, page_api  # noqa: E402
from ui.gradio_checks import check_gradio  # noqa: E402
from ui.music import (  # noqa: E402
    APP_DEFAULT_MODEL,
    melody_preview,
    melody_to_music,
    stop_generation,
    text_to_music,
)
from ui.music_docs import MUSIC_API_DOCS  # noqa: E402
from ui.page_words import page_script  # noqa: E402
from ui.music_tabs import build_melody_tab, build_text_tab, model_choices, music_model_status  # noqa: E402
from ui.piano import build_piano_cover_tab, piano_cover, piano_cover_status, remix  # noqa: E402
from ui.piano_sheet import piano_to_sheet_music, sheet_music_status  # noqa: E402
from ui.song import make_song  # noqa: E402
from ui.song_tab import build_song_tab, song_model_choices, song_model_status  # noqa: E402

from models import cache, catalogue, pop2piano, runtime  # noqa: E402
from models.loading import load_model  # noqa: E402
from models.devices import pick_device  # noqa: E402
from models.loading import add_model_flags  # noqa: E402
from serving import InProcess, use_backend  # noqa: E402
from serving import ray_serve as ray_serving  # noqa: E402 - imports Ray only when started

logger = logging.getLogger("music_demo")
__all__ = [  # what tests and notebooks reach through `app`
    "CONFIG", "check_watermark", "common", "demo", "main", "melody_preview", "melody_to_music", "piano_cover",
    "piano_to_sheet_music", "remix", "make_song",
    "stop_generation", "text_to_music",
]

DESCRIPTION = """\
# 🎹 Music demo
Turn a song into a piano cover, a description into music, or a hummed tune into a whole arrangement.

**Piano cover**: sheet music to print, a MIDI for your music software, a falling-notes video.
**Text to music**: up to 5 minutes, or continue your own clip. **Melody to music**: hum it, upload it, restyle it.
"""

def initial_settings() -> tuple[str, Any, str, Any, str, Any, str]:
    """Per page load: status lines and model choices from the launch settings."""
    return (
        piano_cover_status(),
        gr.Dropdown(choices=model_choices(False), value=APP_DEFAULT_MODEL),
        music_model_status(CONFIG.musicgen_model, False),
        gr.Dropdown(choices=model_choices(True), value=APP_DEFAULT_MODEL),
        music_model_status(CONFIG.melody_model, True),
        gr.Dropdown(choices=song_model_choices(), value=APP_DEFAULT_MODEL),
        song_model_status(),
    )


@spoken
def send_to_melody(path: str | None) -> tuple[str, Any]:
    """"Use as melody": the text tab's result becomes the melody tab's input, and that tab opens."""
    if not path:
        raise page_error("Generate something first: this sends the first variant to the melody tab.")
    return path, gr.Tabs(selected="melody")


MCP_ENV_VAR = "GRADIO_MCP_SERVER"  # gradio's own switch, read here so that --mcp / --no-mcp and it agree


def mcp_requested() -> bool:
    """Whether ``$GRADIO_MCP_SERVER`` asks for the MCP server."""
    return os.environ.get(MCP_ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Page:
    """The app's page and the components launch settings reach."""

    demo: gr.Blocks
    text_model: gr.Dropdown
    melody_model: gr.Dropdown


def build_page(mcp: bool = False) -> Page:
    """The whole page, from the settings as they are now (``CONFIG``, the model catalogue); with ``mcp``, its jobs
    are also API-only tools for AI agents and the page's own events stay out of the API docs (``ui/tools.py``)."""
    with building(mcp), gr.Blocks(title="Music demo", delete_cache=(3600, OUTPUT_MAX_AGE_S)) as blocks:
        gr.Markdown(DESCRIPTION, elem_classes="app-intro")
        with gr.Tabs() as tabs:
            with gr.Tab("Piano cover", id="piano"):
                piano_status, sheet_status, piano_share = build_piano_cover_tab()
            with gr.Tab("Text to music", id="text"):
                text_model, text_status, use_as_melody, first_variant, text_share = build_text_tab()
            with gr.Tab("Melody to music", id="melody"):
                melody_model, melody_status, melody_input, melody_share = build_melody_tab()
            with gr.Tab("Song with lyrics", id="song"):
                song_model, song_status, song_share = build_song_tab()
        check_note, check_button = build_check_box()
        wire_opening(blocks, tabs, [piano_share, text_share, melody_share, song_share])  # a Share link opens its one result
        use_as_melody.click(send_to_melody, inputs=first_variant, outputs=[melody_input, tabs],
                            api_visibility=page_api(), api_name="use_as_melody",
                            api_description=MUSIC_API_DOCS["use_as_melody"])
        blocks.load(initial_settings, outputs=[piano_status, text_model, text_status, melody_model, melody_status,
                                               song_model, song_status],
                    api_visibility="private")
        blocks.load(check_box_state, outputs=[check_note, check_button], api_visibility="private")
        blocks.load(sheet_music_status, outputs=sheet_status, api_visibility="private")
        blocks.unload(forget_session)  # a closed page's Stop flags go with it
        speak_examples(blocks)  # the examples tables' headers and cells in the browser's language
    localize_page(blocks)  # its words in the browser's language (ui/i18n.py)
    english_api_labels(blocks)  # and the API's in English
    return Page(blocks, text_model, melody_model)


page = build_page(mcp=mcp_requested())  # as the environment sets it; main() builds it anew from the launch flags
demo = page.demo


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


DEFAULT_CONCURRENCY = 4  # model requests in flight at once (launch flag --concurrency); their work shares one thread


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--server-name", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--server-port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login")
    parser.add_argument("--auth-file", metavar="FILE", help="require a login: one user:password a line")
    parser.add_argument("--device", default=CONFIG.device, help="cuda, cuda:N, mps or cpu (default: best available)")
    add_model_flags(parser, "piano", "text", "melody", "separator", "translator", "watermark", "piano_transcriber",
                    "song",
                    defaults={"piano": CONFIG.piano_model, "text": CONFIG.musicgen_model, "melody": CONFIG.melody_model,
                              "song": CONFIG.song_model,
                              "separator": CONFIG.separator_model, "translator": CONFIG.translation_model,
                              "watermark": CONFIG.watermark_model,
                              "piano_transcriber": CONFIG.piano_transcription_model})
    for role, what in (("text", "text to music"), ("melody", "melody to music"), ("song", "songs with lyrics")):
        parser.add_argument(catalogue.OFFERED_CLI_FLAGS[role], default=os.environ.get(catalogue.OFFERED_ENV_VARS[role]),
                            metavar="NAMES",
                            help=f"the other models visitors may choose for {what}, besides the app's own: hub ids, "
                                 "short names (medium, melody-large...) or local folders, separated by commas (env "
                                 f"{catalogue.OFFERED_ENV_VARS[role]}; default: the official checkpoints already in "
                                 "this machine's hub cache that fit its memory). Nothing else can be chosen")
    parser.add_argument("--max-song-seconds", type=float, default=CONFIG.max_song_seconds,
                        help=f"longest song accepted (env {pop2piano.MAX_SONG_SECONDS_ENV_VAR})")
    parser.add_argument("--max-upload-mb", type=float, default=CONFIG.max_upload_mb,
                        help=f"largest upload accepted, in MB (env {MAX_UPLOAD_MB_ENV_VAR})")
    parser.add_argument("--output-dir", type=Path, default=CONFIG.output_dir,
                        help=f"where results are written, a folder per request (env {OUTPUT_DIR_ENV_VAR})")
    parser.add_argument("--max-output-mb", type=float, default=CONFIG.max_output_mb,
                        help=f"size cap of --output-dir in MB; the oldest results go first (env {MAX_OUTPUT_MB_ENV_VAR})")
    parser.add_argument("--max-share-mb", type=float, default=CONFIG.max_share_mb,
                        help=f"size cap of the shared results in MB, their own (kept apart from --max-output-mb); "
                             f"the oldest go first (env {MAX_SHARE_MB_ENV_VAR})")
    parser.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE,
                        help="requests that may wait at once; more are refused with 'queue is full' and its size")
    parser.add_argument("--mcp", action=argparse.BooleanOptionalAction, default=mcp_requested(),
                        help="also serve the app as an MCP server for AI agents, at /gradio_api/mcp/ (Streamable "
                             f"HTTP): its tools are {', '.join(MCP_TOOLS)} (env {MCP_ENV_VAR}=1; needs the mcp "
                             "package: pip install 'gradio[mcp]==6.31.0')")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help="model requests in flight at once (default 4). Their model work runs on one model "
                             "thread, where MusicGen requests share each decode step's pass (in float32, as on a CPU, "
                             "each still gets exactly the result it gets alone; a GPU's 16-bit passes may round "
                             "differently); 1 serves them one after another")
    parser.add_argument("--runs-per-visitor", type=int, default=fair.fair_shares().per_visitor,
                        help="runs one visitor (a browser or API session) may have in flight at once; more are "
                             f"refused with a plain message (env {fair.RUNS_PER_VISITOR_ENV_VAR}; default "
                             f"{fair.DEFAULT_RUNS_PER_VISITOR})")
    parser.add_argument("--runs-per-address", type=int, default=fair.fair_shares().per_address,
                        help="runs one client address may have in flight at once, across its sessions (behind a "
                             f"proxy: X-Forwarded-For) (env {fair.RUNS_PER_ADDRESS_ENV_VAR}; default "
                             f"{fair.DEFAULT_RUNS_PER_ADDRESS})")
    parser.add_argument("--unload-after", type=float, default=None, metavar="MINUTES",
                        help="unload a model's weights when nobody has used it for this many minutes; it loads again "
                             f"on its next use (default: ${cache.UNLOAD_AFTER_ENV_VAR}, else "
                             f"{cache.DEFAULT_UNLOAD_AFTER_MIN:g}; 0: never)")
    serve = parser.add_argument_group("serving on Ray Serve (optional: pip install -r requirements-serve.txt)")
    serve.add_argument("--replicas", type=int, default=None, metavar="N",
                       help="serve each model role as a Ray Serve deployment of N replicas on a local Ray cluster "
                            "(started here), or on the cluster --ray-address names; the page stays here")
    serve.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS") or None, metavar="ADDR",
                       help="join this Ray cluster (ray://host:10001, or auto) instead of starting one; a second "
                            "front end on the same cluster uses the deployments already there (env RAY_ADDRESS)")
    serve.add_argument("--replica-threads", type=int, default=1, metavar="T",
                       help="CPU threads of each replica (and the Ray CPUs it takes), so replicas do not fight "
                            "over cores (default 1)")
    serve.add_argument("--replica-gpus", type=float, default=None, metavar="G",
                       help="GPUs of each replica (Ray shows a replica only those; 0.5 lets two share one). Default: "
                            "1 when --device asks for CUDA or this machine has a CUDA GPU, else 0")
    serve.add_argument("--serve-roles", default=",".join(ray_serving.ROLES), metavar="ROLES",
                       help="the model roles served on Ray Serve, separated by commas (default all: "
                            f"{', '.join(ray_serving.ROLES)}); the others run in this process")
    serve.add_argument("--replica-requests", type=int, default=None, metavar="R",
                       help="requests one replica works on at once, sharing its passes (default: --concurrency)")
    serve.add_argument("--replica-queue", type=int, default=ray_serving.DEFAULT_MAX_QUEUED, metavar="Q",
                       help="requests that may wait for a replica, per front end, before visitors are told the "
                            f"servers are busy (default {ray_serving.DEFAULT_MAX_QUEUED})")
    return parser.parse_args(argv)


def start_serving(args: argparse.Namespace) -> None:
    """Put Ray Serve behind the seam when the flags ask for it (``--replicas`` / ``--ray-address``).

    Raises:
        SystemExit: Ray Serve is not installed, a role is unknown, or the cluster cannot be reached: said plainly.
    """
    if args.replicas is None and not args.ray_address:
        return
    roles = tuple(r.strip() for r in args.serve_roles.split(",") if r.strip())
    unknown = sorted(set(roles) - set(ray_serving.ROLES))
    if unknown:
        raise SystemExit(f"--serve-roles: unknown role(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(ray_serving.ROLES)}.")
    settings = ray_serving.ServeSettings(
        replicas=max(1, args.replicas or 1), address=args.ray_address, threads=max(1, args.replica_threads),
        gpus=replica_gpus(args.replica_gpus, CONFIG.device),
        roles=roles, models_per_replica=catalogue_cache_cap(),
        max_ongoing=max(1, args.replica_requests or args.concurrency),
        max_queued=max(1, args.replica_queue))
    model_settings = {"device": CONFIG.device, "translation_model": CONFIG.translation_model,
                      "separator_model": CONFIG.separator_model,
                      "unload_after_min": cache.unload_after_min(args.unload_after)}  # replicas unload as we do
    try:
        use_backend(ray_serving.start(settings, model_settings, InProcess(CONFIG)))
    except RuntimeError as e:
        raise SystemExit(f"--replicas / --ray-address: {e}") from e


def replica_gpus(asked: float | None, device: str | None) -> float:
    """GPUs per replica: as asked, else one where the models would run on CUDA here, else none."""
    if asked is not None:
        return max(0.0, asked)
    if device:  # as named: the replicas may run where the front end has no GPU
        return 1.0 if device.startswith("cuda") else 0.0
    return 1.0 if pick_device(None).type == "cuda" else 0.0


def catalogue_cache_cap() -> int:
    """Models of one role a replica may hold, as the in-process cache (``MUSIC_DEMO_MODELS_PER_ROLE``)."""
    from models.cache import model_cache

    return model_cache().per_role


def configure(args: argparse.Namespace) -> None:
    """Apply launch flags to the settings the event handlers read."""
    CONFIG.piano_model = args.piano_model
    CONFIG.musicgen_model = args.musicgen_model
    CONFIG.melody_model = args.melody_model
    CONFIG.song_model = args.song_model
    CONFIG.separator_model = args.separator_model
    CONFIG.translation_model = args.translation_model
    CONFIG.watermark_model = args.watermark_model
    CONFIG.piano_transcription_model = args.piano_transcription_model
    CONFIG.device = args.device
    CONFIG.max_song_seconds = args.max_song_seconds
    CONFIG.max_upload_mb = args.max_upload_mb
    CONFIG.output_dir = Path(args.output_dir)
    CONFIG.max_output_mb = args.max_output_mb
    CONFIG.max_share_mb = args.max_share_mb
    runtime.set_concurrency(args.concurrency)
    try:
        cache.start_unloading_idle(cache.unload_after_min(args.unload_after), runtime.model_thread().call)
    except ValueError as e:
        raise SystemExit(str(e)) from e
    fair.set_caps(args.runs_per_visitor, args.runs_per_address)
    offer_models(args.musicgen_models, args.melody_models, args.song_models)


def offer_models(text: str | None, melody: str | None, song: str | None = None) -> None:
    """What visitors may choose in the two MusicGen tabs (``models.catalogue.available_models``); the page built after this
    offers exactly these."""
    catalogue.set_offered("text", catalogue.split_names(text) or None)
    catalogue.set_offered("melody", catalogue.split_names(melody) or None)
    catalogue.set_offered("song", catalogue.split_names(song) or None)
    logger.info("Models offered to visitors: text %s; melody %s", ", ".join(catalogue.available_models(
        "text", CONFIG.musicgen_model)), ", ".join(catalogue.available_models("melody", CONFIG.melody_model)))


def preload_models() -> None:
    """Load every model now (ZeroGPU wants weights loaded at start-up, in the main process, not per call)."""
    load_model("piano", CONFIG.piano_model, CONFIG.device).load()
    load_model("text", CONFIG.musicgen_model, CONFIG.device).load()
    load_model("melody", CONFIG.melody_model, CONFIG.device).load()
    optional = [  # without them: the whole mix, prompts as written, files unmarked; each says so
        ("Melody separator", lambda: load_model("separator", CONFIG.separator_model)),
        ("Prompt translator", lambda: load_model("translator", CONFIG.translation_model)),
        ("Watermark", lambda: load_model("watermark", CONFIG.watermark_model)),
    ]
    for what, model in optional:
        try:
            model().load()
        except Exception as e:  # noqa: BLE001
            logger.warning("%s not preloaded: %s", what, e)


def main(argv: list[str] | None = None, block: bool = True) -> gr.Blocks:
    """Parse the flags and launch the app; with ``block=False`` (a notebook) return once it is serving."""
    global page, demo
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
    if (mismatch := check_gradio()) is not None:
        logger.warning(mismatch)
    start_serving(args)
    if on_zero_gpu():
        try:
            preload_models()
        except Exception as e:  # noqa: BLE001 - the tabs say what is missing when they are used
            logger.warning("Could not preload the models: %s", e)
    mcp = bool(args.mcp)
    if mcp and importlib.util.find_spec("mcp") is None:
        logger.warning("--mcp: the mcp package is not installed, so the app runs without its MCP server. Install "
                       "it with: pip install 'gradio[mcp]==6.31.0'")
        mcp = False
    page = build_page(mcp)  # from the settings as the flags made them: model lists, tools
    demo = page.demo
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.queue_size).launch(
        share=args.share,
        server_name=args.server_name,
        server_port=args.server_port,
        auth=auth,
        max_file_size=f"{args.max_upload_mb:g}mb",
        prevent_thread_lock=not block,
        allowed_paths=[str(CONFIG.output_dir)],
        css=PAGE_CSS,
        js=page_script(),  # gradio's own lines (a waiting run, a refused upload) in our words (ui/page_words.py)
        i18n=page_i18n(),
        mcp_server=mcp,
        show_error=True,  # an API or MCP client gets the message a page user sees, not "hidden"
    )
    if mcp:
        logger.info("MCP server: %s/gradio_api/mcp/ (tools: %s)", demo.local_url.rstrip("/") if demo.local_url
                    else "", ", ".join(MCP_TOOLS))
    return demo


if __name__ == "__main__":
    main()
