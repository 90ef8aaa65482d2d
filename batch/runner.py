"""Batch machinery for the command line: items, atomic output folders, the manifest, and three ways to run.

- **Items.** Every input (a song, a prompt, a melody x prompt pair) becomes an ``Item`` with a stable id; its
  files go to ``<out>/<id>/``.
- **Atomic folders.** An item is written into a hidden ``<out>/.<id>.partial-<pid>`` folder and renamed to
  ``<out>/<id>`` only when every file is there, with ``item.json`` (its manifest row) inside. A run killed
  mid-item leaves only a hidden partial folder, which the next run removes; a folder named after an item is
  always complete.
- **Manifest.** ``<out>/manifest.jsonl`` gets one row per item as it finishes (done, failed or skipped), flushed
  at once, so it stays current through a crash. Read it with ``read_manifest`` (the last row of each id wins).
- **Resuming.** An item whose folder exists with the same settings in its ``item.json`` is skipped.
- **Running.** In this process; in ``workers`` processes (each loads the model once); or on a Ray cluster
  (an actor per worker keeps the model loaded; results come back as they finish, files included, and are
  written where the command runs, or workers write straight to a shared folder).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
ITEM_RECORD = "item.json"
PARTIAL = ".partial-"


@dataclass(frozen=True)
class Item:
    """One unit of batch work.

    Attributes:
        id: unique, file-name safe; the item's output folder is named after it.
        input: what it was made from, as given (a path, or the prompt).
        settings: everything that decides the output (style, products, seed...); a rerun with other settings redoes
            the item.
    """

    id: str
    input: str
    settings: dict[str, Any] = field(default_factory=dict)


def unique_ids(items: list[Item]) -> list[Item]:
    """Give repeated ids a numeric suffix, in order, so every item has its own folder."""
    seen: dict[str, int] = {}
    result = []
    for item in items:
        n = seen.get(item.id, 0)
        seen[item.id] = n + 1
        result.append(item if n == 0 else Item(f"{item.id}_{n + 1}", item.input, item.settings))
    return result


def find_audio(paths: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """Files and folders (searched recursively) -> (file, the root it was found under), sorted, no duplicates.

    Folders yield their files of every kind, so a stray non-audio file becomes a failed item with its message
    rather than vanishing; hidden files are skipped.
    """
    found: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts):
                    found.setdefault(file.resolve(), path)
        else:
            found.setdefault(path.resolve() if path.exists() else path, path.parent)
    return [(file, root) for file, root in found.items()]


def read_table(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV (with a header) or JSONL file, as dicts; a .txt file gives one ``{"prompt": line}`` per line.

    Raises:
        ValueError: the file is missing, of another kind, or holds a malformed JSON line (its number is given).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="") as f:
            return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]
    if suffix in {".jsonl", ".ndjson"}:
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}, line {number}: not JSON ({e.msg}).") from e
        return rows
    if suffix == ".txt":
        return [{"prompt": line.strip()} for line in path.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    raise ValueError(f"{path}: use a .csv (with a header row), .jsonl or .txt list.")


# ----------------------------------------------------------------------------------------- folders, manifest
def partial_dir(out: Path, item: Item) -> Path:
    """A fresh hidden folder to write ``item`` into."""
    folder = out / f".{item.id}{PARTIAL}{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir(parents=True)
    return folder


def finish(out: Path, item: Item, partial: Path, row: dict[str, Any]) -> Path:
    """Write ``row`` as the item's record and move its partial folder into place (replacing an older result)."""
    record = partial / ITEM_RECORD
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=2))
    tmp.replace(record)
    final = out / item.id
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return final


def clean_partials(out: Path) -> int:
    """Remove partial folders left by interrupted runs; returns how many."""
    count = 0
    if out.is_dir():
        for folder in out.glob(f".*{PARTIAL}*"):
            shutil.rmtree(folder, ignore_errors=True)
            count += 1
    return count


def is_done(out: Path, item: Item) -> bool:
    """Whether ``item`` has a complete folder made with the same settings."""
    record = out / item.id / ITEM_RECORD
    try:
        row = json.loads(record.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    files_there = all((out / item.id / name).is_file() for name in row.get("files", []))
    return row.get("status") == "done" and row.get("settings") == item.settings and files_there


class Manifest:
    """``manifest.jsonl``: a row per item as it finishes; each row is flushed and synced at once."""

    def __init__(self, out: Path) -> None:
        self.path = out / MANIFEST
        self.handle = self.path.open("a")

    def write(self, row: dict[str, Any]) -> None:
        self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


def read_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """The manifest's latest row per item id (a torn last line from a crash is ignored)."""
    rows: dict[str, dict[str, Any]] = {}
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        rows[row["id"]] = row
    return rows


# ------------------------------------------------------------------------------------------------ running
@dataclass
class Outcome:
    """What one item's work returns: its manifest row, and its files' bytes when they must travel (Ray)."""

    row: dict[str, Any]
    payload: dict[str, bytes] = field(default_factory=dict)


Work = Callable[[Item, Path], tuple[list[str], dict[str, Any]]]  # (item, folder) -> (file names, extra row fields)


def run_item(work: Work, item: Item, out: Path, ship_files: bool = False) -> Outcome:
    """Do one item in its partial folder; a failure becomes a failed row with the same message the app gives.

    With ``ship_files`` the finished files are returned as bytes (for a driver on another machine) and the
    partial folder is removed; otherwise it is moved into place here.
    """
    started = time.perf_counter()
    row: dict[str, Any] = {"id": item.id, "input": item.input, "settings": item.settings}
    partial = partial_dir(out, item)
    try:
        files, extra = work(item, partial)
        row |= {"status": "done", "files": files, **extra}
    except Exception as e:  # noqa: BLE001 - one bad input never stops the batch
        shutil.rmtree(partial, ignore_errors=True)
        message = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
        return Outcome(row | {"status": "failed", "error": message,
                              "seconds": round(time.perf_counter() - started, 2)})
    row["seconds"] = round(time.perf_counter() - started, 2)
    row["worker"] = f"{os.uname().nodename}:{os.getpid()}"
    if ship_files:
        payload = {name: (partial / name).read_bytes() for name in files}
        shutil.rmtree(partial, ignore_errors=True)
        return Outcome(row, payload)
    finish(out, item, partial, row)
    return Outcome(row)


def land(out: Path, item: Item, outcome: Outcome) -> None:
    """Write shipped files (from a remote worker) into the item's folder, atomically."""
    if not outcome.payload or outcome.row.get("status") != "done":
        return
    partial = partial_dir(out, item)
    for name, data in outcome.payload.items():
        (partial / name).parent.mkdir(parents=True, exist_ok=True)
        (partial / name).write_bytes(data)
    finish(out, item, partial, outcome.row)


# Worker processes: the model is loaded once per process, by the factory, in the initializer.
_WORKER: dict[str, Any] = {}


def _init_worker(factory: Callable[[], Work], threads: int) -> None:
    from models.runtime import model_thread

    model_thread().set_kernel_threads(threads)
    _WORKER["work"] = factory()


def _work_in_worker(args: tuple[Item, str]) -> Outcome:
    item, out = args
    return run_item(_WORKER["work"], item, Path(out))


def run_local(factory: Callable[[], Work], items: list[Item], out: Path, workers: int = 1) -> Iterator[Outcome]:
    """Run items here (``workers`` 1) or in ``workers`` processes; yields outcomes as they finish."""
    if workers <= 1:
        work = factory()
        for item in items:
            yield run_item(work, item, out)
        return
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(factory, threads)) as pool:
        yield from pool.imap_unordered(_work_in_worker, [(item, str(out)) for item in items])


class _RayWorker:
    """A Ray actor holding one loaded model."""

    def __init__(self, factory: Callable[[], Work], threads: int) -> None:
        from models.runtime import model_thread

        model_thread().set_kernel_threads(threads)
        self.work = factory()

    def process(self, item: Item, out: str, ship_files: bool) -> Outcome:
        Path(out).mkdir(parents=True, exist_ok=True)
        return run_item(self.work, item, Path(out), ship_files=ship_files)


def run_ray(factory: Callable[[], Work], items: list[Item], out: Path, address: str, workers: int,
            shared_dir: Path | None = None) -> Iterator[Outcome]:
    """Run items on a Ray cluster: ``workers`` actors, each with the model loaded; yields outcomes as they finish.

    Args:
        address: "local" starts Ray in this process (a one-machine cluster); "auto" or "ray://host:port" joins one.
        shared_dir: a folder every node can write (NFS...): workers write there directly. Without it, workers
            send the files back and they are written to ``out`` here.

    Raises:
        RuntimeError: Ray is not installed (``pip install -r requirements-batch.txt``).
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as e:
        raise RuntimeError("--ray needs Ray: pip install -r requirements-batch.txt") from e
    if not ray.is_initialized():
        if address == "local":  # a new one, never the latest cluster started on this machine (Ray's default)
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    threads = max(1, int(ray.cluster_resources().get("CPU", 1)) // max(1, workers))
    actor_class = ray.remote(num_cpus=1)(_RayWorker)
    actors = [actor_class.remote(factory, threads) for _ in range(workers)]
    pool = ActorPool(actors)
    target = shared_dir or out
    ship = shared_dir is None
    by_id = {item.id: item for item in items}
    for outcome in pool.map_unordered(lambda actor, item: actor.process.remote(item, str(target), ship), items):
        if ship:
            land(out, by_id[outcome.row["id"]], outcome)
        yield outcome


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def line(self, noun: str) -> str:
        rate = self.done / self.seconds * 3600 if self.seconds > 0 else 0.0
        return (f"{self.done} done, {self.skipped} skipped, {self.failed} failed in {self.seconds:.0f} s "
                f"({rate:.0f} {noun} per hour)")


def run_batch(items: list[Item], out: Path, factory: Callable[[], Work], workers: int = 1, ray: str | None = None,
              shared_dir: Path | None = None, noun: str = "items") -> Summary:
    """Run every item not yet done; write the manifest as items finish; show a progress bar; return the counts."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    removed = clean_partials(out)
    if removed:
        logger.info("Removed %d partial folder(s) of an interrupted run", removed)
    manifest = Manifest(out)
    summary = Summary()
    started = time.perf_counter()
    todo = []
    for item in items:
        if is_done(out, item):
            summary.skipped += 1
            manifest.write({"id": item.id, "input": item.input, "settings": item.settings, "status": "skipped",
                            "files": json.loads((out / item.id / ITEM_RECORD).read_text()).get("files", [])})
        else:
            todo.append(item)
    bar = tqdm(total=len(todo), unit=noun.rstrip("s") or "item", dynamic_ncols=True)
    try:
        outcomes = (run_ray(factory, todo, out, ray, max(1, workers), shared_dir) if ray
                    else run_local(factory, todo, out, workers))
        for outcome in outcomes:
            manifest.write(outcome.row)
            if outcome.row["status"] == "done":
                summary.done += 1
            else:
                summary.failed += 1
                bar.write(f"failed: {outcome.row['input']}: {outcome.row['error']}")
            bar.set_postfix(done=summary.done, failed=summary.failed, skipped=summary.skipped, refresh=False)
            bar.update(1)
    finally:
        bar.close()
        manifest.close()
        summary.seconds = time.perf_counter() - started
    return summary


__all__ = ["Item", "Manifest", "Outcome", "Summary", "read_manifest", "run_batch"]
