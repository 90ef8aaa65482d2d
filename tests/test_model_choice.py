"""Many strangers on one server: a visitor chooses only among the models the server offers, and no visitor's choice
lets a model go under another's run. The cache's rules with stand-in models, then the app's events with tiny real
MusicGen checkpoints (two folders: the app's own and a copy the operator offers)."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
import soundfile as sf

from models import cache, catalogue
from models import cache as cache_module
from models.cache import ModelCache, ModelTooBig
from tests.test_app import FakeRequest, last, tiny_app  # noqa: F401 - the fixture
from ui import music

MB = 1_000_000


class StandIn:
    """A model as the cache sees one: a name, a device, and whether it was let go."""

    def __init__(self, name: str) -> None:
        self.name, self.device, self.unloaded = name, "cpu", False

    def unload(self) -> None:
        self.unloaded = True


def holder(cache: ModelCache, name: str, need: int, budget: int, hold: threading.Event, log: list,
           waited: list | None = None) -> threading.Thread:
    """A run on ``name`` in its own thread: it holds the model until ``hold`` is set."""
    def run() -> None:
        try:
            with cache.use("text", name, None, lambda: StandIn(name), need, budget=budget,
                           waiting=(waited.append if waited is not None else None)) as model:
                log.append(("start", name, model))
                hold.wait(10)
                log.append(("end", name, model.unloaded))
        except Exception as e:  # noqa: BLE001
            log.append(("error", name, e))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_another_model_waits_for_the_runs_on_the_one_in_use_and_is_not_starved():
    cache = ModelCache(per_role=2)
    budget = 150 * MB  # A and B do not fit together
    log: list = []
    a_hold, b_hold, a2_hold = threading.Event(), threading.Event(), threading.Event()
    a = holder(cache, "A", 100 * MB, budget, a_hold, log)
    wait_for(lambda: ("start", "A", cache.peek("text", "A")) in log)
    waited: list = []
    b = holder(cache, "B", 100 * MB, budget, b_hold, log, waited)
    wait_for(lambda: waited)
    assert waited[0] == "Waiting for 1 run on “A” to finish"
    a2 = holder(cache, "A", 100 * MB, budget, a2_hold, log)  # more runs on A come after B: they wait behind it
    time.sleep(0.3)
    assert [e[:2] for e in log] == [("start", "A")]  # A runs alone; B and the second A wait
    a_hold.set()
    a.join(10)
    wait_for(lambda: any(e[:2] == ("start", "B") for e in log))
    assert ("end", "A", False) in log  # A's run had its model to the end
    assert not any(e[:2] == ("start", "A") for e in log[2:])  # the second A waits for B
    b_hold.set()
    a2_hold.set()
    for t in (b, a2):
        t.join(10)
    assert [e[:2] for e in log] == [("start", "A"), ("end", "A"), ("start", "B"), ("end", "B"), ("start", "A"),
                                   ("end", "A")]
    assert not any(e[0] == "error" for e in log)


def test_another_model_loads_beside_when_memory_allows_and_same_model_runs_go_together():
    cache = ModelCache(per_role=2)
    log: list = []
    holds = [threading.Event() for _ in range(3)]
    threads = [holder(cache, "A", 10 * MB, 1000 * MB, holds[0], log)]
    wait_for(lambda: len(log) == 1)
    threads.append(holder(cache, "B", 10 * MB, 1000 * MB, holds[1], log))
    threads.append(holder(cache, "A", 10 * MB, 1000 * MB, holds[2], log))
    wait_for(lambda: len(log) == 3)  # all three at once: B beside A, and the second A on the same model
    assert log[0][2] is log[2][2]
    assert cache.in_use("text") == {"A": 2, "B": 1}
    for h in holds:
        h.set()
    for t in threads:
        t.join(10)
    # a third model: the role holds two at most, so the least recently used idle one goes
    with cache.use("text", "C", None, lambda: StandIn("C"), 10 * MB, budget=1000 * MB):
        assert sorted(m.name for m in cache.held("text")) in (["B", "C"], ["A", "C"])


def test_a_model_too_big_for_the_machine_is_refused_and_nothing_is_let_go():
    cache = ModelCache()
    with cache.use("text", "A", None, lambda: StandIn("A"), 100 * MB, budget=1000 * MB) as a:
        with pytest.raises(ModelTooBig, match=r"“musicgen-large” needs about 13\.6 GB of memory, and this machine "
                                              r"has 1\.0 GB for it"):
            with cache.use("text", "facebook/musicgen-large", None, lambda: StandIn("x"),
                           catalogue.model_bytes("facebook/musicgen-large", "cpu"), budget=1000 * MB):
                pass
        assert not a.unloaded and cache.held("text") == [a]


# ------------------------------------------------------------------------------------------ the app's events
@pytest.fixture()
def two_models(tiny_app, tiny_musicgen_dir, tmp_path, monkeypatch):  # noqa: F811
    """The app with its own tiny text model and a copy in another folder that the operator offers; a fresh cache."""
    other = shutil.copytree(tiny_musicgen_dir, tmp_path / "other-musicgen")
    monkeypatch.setattr(cache, "_MODEL_CACHE", ModelCache(per_role=2))
    catalogue.set_offered("text", [str(other)])
    yield tiny_app, str(tiny_musicgen_dir), str(other)
    catalogue.set_offered("text", None)


def text_run(app, model: str, seconds: float, session: str, progress=lambda *a, **k: None) -> list:
    return last(app.text_to_music("pop", model, seconds, 250, 0, 1.0, 3.0, "5", 1, request=FakeRequest(session),
                                  progress=progress))


def test_a_choice_during_anothers_run_never_breaks_it(two_models, monkeypatch):
    app, own, other = two_models
    need = catalogue.model_bytes(own, "cpu")
    monkeypatch.setenv(catalogue.MEMORY_BUDGET_ENV_VAR, str(1.5 * need / 1e9))  # one tiny model at a time
    results: dict[str, list] = {}
    going = threading.Event()
    said: list[str] = []

    def a_progress(fraction, desc=""):
        if " s made" in desc:
            going.set()

    a = threading.Thread(target=lambda: results.__setitem__("a", text_run(app, "", 20, "a", a_progress)))
    a.start()
    assert going.wait(60)
    b = threading.Thread(target=lambda: results.__setitem__(
        "b", text_run(app, other, 2, "b", lambda f, desc="": said.append(desc))))
    b.start()
    a.join(180)
    b.join(180)
    *_, a_params, _details, _downloads, _state, _live, _line = results["a"]
    assert a_params["seconds"] == pytest.approx(20, abs=0.01) and not a_params.get("stopped")
    assert sf.info(results["a"][0]).duration == pytest.approx(20, abs=0.01)  # whole
    assert results["b"][5]["model"] == cache.short_name(other) and sf.info(results["b"][0]).duration == pytest.approx(2, abs=0.01)
    assert f"Waiting for 1 run on “{cache.short_name(own)}” to finish" in said  # B's page said why it waited


def test_a_model_not_offered_is_refused_with_the_names_and_nothing_is_fetched(tiny_app, monkeypatch):  # noqa: F811
    import huggingface_hub

    def no_download(*args, **kwargs):
        raise AssertionError("the hub was asked for a model a visitor named")

    for fn in ("hf_hub_download", "snapshot_download"):
        monkeypatch.setattr(huggingface_hub, fn, no_download)
        monkeypatch.setattr(f"huggingface_hub.file_download.{fn}" if fn == "hf_hub_download"
                            else f"huggingface_hub._snapshot_download.{fn}", no_download)
    before = cache.model_cache().held("text")
    for name in ("facebook/musicgen-large", "/etc", "someone/anything", "large"):
        with pytest.raises(Exception, match="is not offered on this server. Choose one of: “") as error:
            text_run(tiny_app, name, 2, "x")
        assert f"“{cache.short_name(tiny_app.CONFIG.musicgen_model)}”" in str(error.value)  # a folder by its name
        assert "/tmp" not in str(error.value)
    assert cache.model_cache().held("text") == before
    # the offered folder, named as the message names it, is accepted
    assert len(text_run(tiny_app, cache.short_name(tiny_app.CONFIG.musicgen_model), 1, "x")[0]) > 0


def test_the_dropdowns_offer_exactly_the_catalogue(tiny_app, tiny_musicgen_dir):  # noqa: F811
    from models.catalogue import available_models
    from ui.music_tabs import model_choices

    assert available_models("text", str(tiny_musicgen_dir)) == [str(tiny_musicgen_dir)]  # nothing cached here
    assert [value for _, value in model_choices(False)] == [""]
    catalogue.set_offered("text", ["medium", str(tiny_musicgen_dir)])
    try:
        assert available_models("text", str(tiny_musicgen_dir)) == [str(tiny_musicgen_dir), "facebook/musicgen-medium"]
        assert [value for _, value in model_choices(False)] == ["", "facebook/musicgen-medium"]
    finally:
        catalogue.set_offered("text", None)
    for dropdown in (tiny_app.page.text_model, tiny_app.page.melody_model):
        assert not dropdown.allow_custom_value


# ------------------------------------------------------------------------------------------------ fair shares
def test_fair_share_caps_runs_per_visitor_and_per_address():
    from types import SimpleNamespace

    import gradio as gr

    from ui.fair import FairShare, address_of

    shares = FairShare(per_visitor=2, per_address=3)

    def req(session: str, host: str, forwarded: str | None = None):
        return SimpleNamespace(session_hash=session, client=SimpleNamespace(host=host),
                               headers={"x-forwarded-for": forwarded} if forwarded else {})

    assert address_of(req("s", "8.8.4.4")) == "8.8.4.4"
    assert address_of(req("s", "127.0.0.1", "9.9.9.9, 10.0.0.1")) == "9.9.9.9"  # a proxy says who
    assert address_of(req("s", "127.0.0.1")) is None  # a share link's tunnel: nobody told apart
    assert address_of(req("s", "8.8.4.4", "1.2.3.4")) == "8.8.4.4"  # a stranger's own header is ignored
    with shares.turn(req("a", "8.8.4.4")), shares.turn(req("a", "8.8.4.4")):
        with pytest.raises(gr.Error, match="You already have 2 pieces being made"):
            with shares.turn(req("a", "8.8.4.4")):
                pass
        with shares.turn(req("b", "8.8.4.4")):  # a new session from the same address: the address cap
            with pytest.raises(gr.Error, match="3 pieces are being made for your network address"):
                with shares.turn(req("c", "8.8.4.4")):
                    pass
            with shares.turn(req("d", "127.0.0.1")):  # a share link's visitors are not one address
                assert shares.running(req("d", "127.0.0.1")) == 1
    assert shares.running(req("a", "8.8.4.4")) == 0


def test_a_greedy_client_does_not_hold_up_an_ordinary_one(live_app, tmp_path):
    """One client starts six 12 s pieces, another a 2 s one: the first gets two at once (the rest are refused in
    plain words), and the second's run starts at once and is done while the first's are still being made."""
    from gradio_client import Client

    greedy, ordinary = (Client(live_app.url, verbose=False, download_files=str(tmp_path / name))
                        for name in ("greedy", "ordinary"))
    args = ("", 1, 250, 0.0, 1.0, 3.0, "9", 1, 18)
    jobs = [greedy.submit("pop", "", 12, *args[2:], api_name="/text_to_music") for _ in range(6)]
    while sum(1 for j in jobs if j.outputs()) < 2:  # two of them are making music
        time.sleep(0.05)
    *_, params, _details, _downloads = ordinary.predict("jazz", "", 2, *args[2:], api_name="/text_to_music")
    assert params["seconds"] == pytest.approx(2, abs=0.01)
    assert sum(1 for j in jobs if not j.done()) >= 1  # the greedy client's pieces are still being made
    refused, made = [], []
    for job in jobs:
        try:
            made.append(job.result())
        except Exception as e:  # noqa: BLE001
            refused.append(str(e))
    assert len(made) == 2 and all(m[5]["seconds"] == pytest.approx(12, abs=0.01) for m in made)
    assert len(refused) == 4 and all("You already have 2 pieces being made" in r for r in refused)


def test_a_model_that_cannot_fit_is_refused_in_plain_words_and_the_others_go_on(two_models, monkeypatch):
    app, own, other = two_models
    need = catalogue.model_bytes(other, "cpu")
    assert 1e6 < need < 1e8  # a tiny model of the real architecture, counted from its config.json
    text_run(app, "", 1, "a")  # the app's model is loaded and used
    monkeypatch.setenv(catalogue.MEMORY_BUDGET_ENV_VAR, str(0.5 * need / 1e9))
    with pytest.raises(Exception, match=r"“other-musicgen” needs about \d+ MB of memory, and this machine has "
                                         r"\d+ MB for it\. Choose a smaller model\."):
        text_run(app, other, 1, "b")
    assert [m.name for m in cache.model_cache().held("text")] == [own]  # nothing was let go or built
    assert cache.model_cache().held("text")[0].loaded


# ------------------------------------------------------------------------------------- unloading idle models
class Loaded(StandIn):
    """A stand-in that loads again on its next use, as the wrappers do."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.loaded = True

    def unload(self) -> None:
        super().unload()
        self.loaded = False


def test_a_model_unused_for_the_set_time_is_unloaded_and_one_in_a_run_never_is():
    cache = ModelCache(per_role=2)
    hold, log = threading.Event(), []
    running = holder(cache, "a", 0, None, hold, log)
    wait_for(lambda: log)
    with cache.use("melody", "b", None, lambda: Loaded("b")):
        pass
    a, b = cache.held("text")[0], cache.held("melody")[0]
    assert cache.unload_idle(60) == []  # both used just now
    later = time.monotonic() + 120
    assert cache.unload_idle(60, now=later) == ["b"]  # "a" is in a run
    assert b.unloaded and not a.unloaded
    assert cache.held("melody") == [b]  # the wrapper stays: its next use loads it again, no second copy
    hold.set()
    running.join(10)
    assert cache.peek("text", "a") is a  # found: used now
    assert cache.unload_idle(60, now=time.monotonic() + 30) == []
    assert cache.unload_idle(60, now=time.monotonic() + 120) == ["a"] and a.unloaded


def test_the_watch_unloads_on_the_callers_thread_and_the_latest_setting_wins(monkeypatch):
    from models.runtime import model_thread

    cache = ModelCache()
    with cache.use("watermark", "w", None, lambda: Loaded("w")):
        pass
    threads = []

    def on_model_thread(fn):
        threads.append(threading.current_thread().name)
        return model_thread().call(fn)

    stop = cache_module.start_unloading_idle(0.001, on_model_thread, cache)  # 60 ms
    try:
        wait_for(lambda: cache.held("watermark")[0].unloaded)
    finally:
        stop.set()
    assert threads and all(name == "unload-idle-models" for name in threads)
    assert cache_module.start_unloading_idle(0, on_model_thread, cache) is None
    monkeypatch.setenv(cache_module.UNLOAD_AFTER_ENV_VAR, "soon")
    with pytest.raises(ValueError, match="MUSIC_DEMO_UNLOAD_AFTER_MIN='soon'"):
        cache_module.unload_after_min()
    with pytest.raises(ValueError, match="--unload-after='-1.0'"):
        cache_module.unload_after_min(-1.0)
    assert cache_module.unload_after_min(2.5) == 2.5  # the flag before the variable


def test_a_model_unloaded_while_idle_loads_again_saying_so_and_gives_the_same_music(two_models):
    app, own, _ = two_models
    said: list[str] = []
    first = text_run(app, "", 1, "a")
    model = cache.model_cache().held("text")[0]
    assert model.loaded
    from models.runtime import model_thread

    assert model_thread().call(lambda: cache.model_cache().unload_idle(0)) == [own] and not model.loaded
    again = text_run(app, "", 1, "a", lambda f, desc="": said.append(desc))
    assert model.loaded and cache.model_cache().held("text") == [model]
    assert "Loading the model" in said
    assert sf.read(again[0])[0].tolist() == sf.read(first[0])[0].tolist()  # the same seed, the same music


# ------------------------------------------------------------------------------ every job holds its model
def test_a_model_taken_out_for_room_is_unloaded_on_the_model_thread():
    """Only the model thread lets a model's weights go: the request that needs the room takes the idle model out of
    the cache, and the unload runs where the models compute."""
    unloaded_on: list[str] = []

    class Watched(StandIn):
        def unload(self) -> None:
            unloaded_on.append(threading.current_thread().name)
            super().unload()

    cache = ModelCache(per_role=2)
    with cache.use("text", "A", None, lambda: Watched("A"), 100 * MB, budget=150 * MB) as a:
        pass
    with cache.use("text", "B", None, lambda: Watched("B"), 100 * MB, budget=150 * MB):
        assert a.unloaded and unloaded_on == ["model-thread"]
        assert [m.name for m in cache.held("text")] == ["B"]


def test_a_helper_that_would_wait_for_its_own_run_is_refused_not_waited_for():
    """A run holding its model asks for a helper (the translator, the separator) that fits only if that model went:
    ``wait=False`` says so at once instead of waiting for itself, and lets nothing go."""
    cache = ModelCache(per_role=2)
    with cache.use("text", "A", None, lambda: StandIn("A"), 100 * MB, budget=150 * MB) as a:
        with pytest.raises(cache_module.ModelBusy, match=r"“helper” cannot load now.*1 run on “A”"):
            with cache.use("translator", "helper", None, lambda: StandIn("helper"), 100 * MB, budget=150 * MB,
                           wait=False):
                pass
        assert not a.unloaded and cache.held("translator") == []


def hold_while_another_asks(job, role: str, other_dir: str) -> tuple[object, list[str], list[str]]:
    """Run ``job(progress)`` (a cover or a sheet-music run through the seam) while, at its first progress report,
    another visitor asks for ``role``'s model ``other_dir``, which does not fit beside it. Returns (the job's result, what the other
    visitor was told while it waited, the order of events)."""
    order: list[str] = []
    told: list[str] = []
    asked = threading.Event()

    def other_visitor() -> None:
        from models.loading import use_model

        try:
            with use_model(role, other_dir, "cpu", waiting=lambda message: (told.append(message), asked.set())):
                order.append("other visitor's model loaded")
        except Exception as e:  # noqa: BLE001 - the test says what went wrong
            order.append(f"other visitor failed: {e!r}")
            asked.set()

    def progress(fraction: float, message: str) -> None:
        if not asked.is_set() and "Loading" not in message:
            threading.Thread(target=other_visitor, daemon=True).start()
            assert asked.wait(20), "the other visitor did not wait: the running job's model was let go"

    result = job(progress)
    order.append("job done")
    wait_for(lambda: len(order) == 2, 30)
    return result, told, order


def count_loads(monkeypatch, cls) -> list[str]:
    """The names ``cls`` (a wrapper class) loads, as it loads them."""
    loads: list[str] = []
    original = cls._load_parts

    def counted(self):
        loads.append(self.name)
        return original(self)

    monkeypatch.setattr(cls, "_load_parts", counted)
    return loads


def test_a_cover_and_a_sheet_music_run_keep_their_models_while_another_visitors_choice_needs_the_memory(
        tiny_pop2piano_dir, tiny_transkun_dir, tiny_musicgen_dir, chorale, monkeypatch):
    pytest.importorskip("transkun", reason="requirements-transcribe.txt installs it (./run.sh)")
    from models.piano_transcription import PianoTranscriber
    from models.pop2piano import PianoCoverModel
    from serving.in_process import InProcess
    from utils.audio import load_audio

    monkeypatch.setattr(cache, "_MODEL_CACHE", ModelCache(per_role=2))

    def one_at_a_time(*folders) -> None:  # a memory budget that holds either model, not both
        sizes = [catalogue.model_bytes(str(d), "cpu") for d in folders]
        monkeypatch.setenv(catalogue.MEMORY_BUDGET_ENV_VAR, str((max(sizes) + 0.5 * min(sizes)) / 1e9))

    piano_loads, transkun_loads = count_loads(monkeypatch, PianoCoverModel), count_loads(monkeypatch, PianoTranscriber)
    backend = InProcess()
    backend.settings.device = "cpu"
    song, rate = load_audio(chorale[0])

    one_at_a_time(tiny_pop2piano_dir, tiny_musicgen_dir)
    cover, told, order = hold_while_another_asks(
        lambda progress: backend.cover(str(tiny_pop2piano_dir), song[: rate * 4], rate, "composer1",
                                       progress=progress), "text", str(tiny_musicgen_dir))
    assert cover.n_chunks > 0 and order == ["job done", "other visitor's model loaded"]  # after the cover
    assert told and "“" + cache.short_name(str(tiny_pop2piano_dir)) + "”" in told[0]
    assert piano_loads == [str(tiny_pop2piano_dir)]  # loaded once: no second copy the cache does not know of

    one_at_a_time(tiny_transkun_dir, tiny_pop2piano_dir)
    _notes, told, order = hold_while_another_asks(  # now the piano model is the other visitor's choice
        lambda progress: backend.piano_notes(str(tiny_transkun_dir), song[: rate * 4], rate, progress=progress),
        "piano", str(tiny_pop2piano_dir))
    assert order == ["job done", "other visitor's model loaded"] and "“" + cache.short_name(str(tiny_transkun_dir)) + "”" in told[0]
    assert transkun_loads == [str(tiny_transkun_dir)]
