"""The model runtime: the model thread that runs all model compute, and its row budget. (The loaded models are kept
by ``models.cache``.)

One thread runs every model computation of the process, and only it gets CPU kernel threads.

Requests run in their own threads (gradio's workers, the CLI's main thread) and hand their model work to the model
thread: jobs (``call``: loading, text encoding, EnCodec, chroma, Demucs, a whole piano cover) and decodes (``run``).
The thread takes rounds: in each, every decode in progress takes one step, the decodes of one model together in one
pass (``models.musicgen.rounds``), so each layer's weights are read from memory once for all of them. A job waiting
runs between two rounds. A decode's callbacks (progress, Stop, streaming) run here too, in its request's context, so
progress reaches the request's page and a step costs no hand-over between threads.

**One OpenMP team, enforced.** torch's CPU kernels run on OpenMP, and libgomp keeps a pool of worker threads for
every thread that ever opened a parallel region. Once pooled threads outnumber the cores, libgomp stops spinning
between kernels in *every* team (its "throttled" spin count), and each of a decode step's ~400 kernels then waits for
sleeping threads to wake: after a second thread had computed with torch (a request thread converting a tensor,
transformers' weight-loading pool), every decode ran about 2x slower, for the rest of the process's life
(docs/performance-history.md, "One OpenMP team"). The same happened after a piano cover: Debian's FluidSynth renders with
OpenMP, through the same libgomp, in the request's thread. So:
- importing ``models`` (before torch loads) sets ``OMP_NUM_THREADS=1``: one thread is libgomp's default for every
  thread, whatever library opens the parallel region; a team of one runs inline and never gets a pool;
- importing this module makes one kernel thread torch's default too (``torch.set_num_threads(1)``), and warns when
  torch was loaded first with another OpenMP default;
- the model thread is started at once and takes the cores for itself (``KERNEL_THREADS``).
The one team of the process is the model thread's. ``tests/test_runtime.py`` checks this by counting the process's
threads after other threads computed with torch and with OpenMP directly.

**Memory.** When the thread has had no work for a second it hands the memory the work freed back to the OS, once
(``models.int8.return_freed_memory``): glibc otherwise keeps freed pages (a decode's caches, a cover's arrays), and
the server's resident size would only grow from request to request (docs/performance-history.md, issue 35).

**Faults.** An error in one request's work (a bad input, running out of memory: torch raises) is raised in that
request's thread; the other requests go on. If the model thread itself fails, every request in flight gets a
``RuntimeFailure`` saying so, and the next request starts a fresh model thread (the loaded models stay). A crash of
the whole process (a segfault in a native library, the kernel's out-of-memory killer) ends the app: results already
written stay in the output folder, and the host (a Space, a notebook cell) starts the app again. We keep the runtime
in-process because the measured cause of the slowdown is removed here (a decode runs as fast after every endpoint
was used as in a fresh process: docs/performance-history.md); a worker process would add a copy of every audio chunk,
progress report and Stop across a process boundary for no speed.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import logging
import os
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch

from models import KERNEL_THREADS_ENV_VAR
from models.int8 import return_freed_memory

logger = logging.getLogger(__name__)

T = TypeVar("T")

OTHER_THREADS_KERNEL_THREADS = 1  # every other thread computes inline: no OpenMP team of its own


def _kernel_threads() -> int:
    """The model thread's kernel threads: ``$MODEL_KERNEL_THREADS`` (set by ``models/__init__.py`` from the cores
    or the user's ``$OMP_NUM_THREADS``), else what torch would use."""
    value = os.environ.get(KERNEL_THREADS_ENV_VAR, "").strip()
    return max(1, int(value)) if value else torch.get_num_threads()


KERNEL_THREADS = _kernel_threads()
torch.set_num_threads(OTHER_THREADS_KERNEL_THREADS)  # torch's default for threads to come, and this thread's


def openmp_default() -> int | None:
    """The OpenMP team size that a thread which never set one gets from the OpenMP runtime torch loaded (libgomp),
    asked from a fresh thread; None where it cannot be asked (no libgomp: macOS, Windows)."""
    try:
        omp_get_max_threads = ctypes.CDLL("libgomp.so.1").omp_get_max_threads  # the copy torch loaded
    except (OSError, AttributeError):
        return None
    box: list[int] = []
    probe = threading.Thread(target=lambda: box.append(omp_get_max_threads()), name="openmp-probe")
    probe.start()
    probe.join()
    return box[0]


if (default := openmp_default()) not in (None, OTHER_THREADS_KERNEL_THREADS):
    logger.warning(
        "torch was loaded before the `models` package, with an OpenMP default of %d threads: a native library using "
        "OpenMP in another thread (FluidSynth, say) can then open a second team and slow every decode down. Import "
        "`models` before torch, or start Python with OMP_NUM_THREADS=1.", default)


def take_the_cores(threads: int) -> None:
    """Give the calling thread ``threads`` kernel threads while the default for other threads stays one.

    ``torch.set_num_threads`` sets the calling thread's OpenMP team size and, as a side effect, the default that
    threads take on their first torch call; a short-lived helper thread puts that default back.
    """
    torch.get_num_threads()  # this thread's first torch call: it takes the default (one) now, not later
    torch.set_num_threads(threads)
    helper = threading.Thread(target=torch.set_num_threads, args=(OTHER_THREADS_KERNEL_THREADS,), name="kernel-default")
    helper.start()
    helper.join()


class RuntimeFailure(RuntimeError):
    """The model thread failed while it worked on this request (the request did nothing wrong)."""


class Steps(Protocol):
    """Stepwise work handed to the model thread: a decode in progress. ``advance`` takes one step for each item of
    a batch of the same ``group`` (callbacks included), and sets ``finished`` or ``error`` on the items."""

    finished: bool
    error: BaseException | None

    @property
    def group(self) -> Hashable: ...

    @staticmethod
    def advance(batch: list[Any]) -> None: ...


@dataclass(eq=False)
class _Job:
    fn: Callable[[], Any]
    result: Any = None
    done: bool = False
    error: BaseException | None = None


@dataclass(eq=False)
class _Active:
    steps: Any  # a Steps
    done: bool = False
    error: BaseException | None = None  # the runtime's own failure (the decode's are on ``steps``)


IDLE_BEFORE_FREEING_S = 1.0  # the thread hands freed memory back after this long without work (not between a run's jobs)


class ModelThread:
    """The one thread that runs the models' work for every request of this process (see the module's docstring).

    ``max_rows`` bounds the decoder rows decoding at once (each holds a key/value cache): a request that would
    pass it waits for room before it starts (``seat``); one request alone is always let in.

    Args:
        max_rows: see above; None = no bound.
        kernel_threads: the model thread's CPU kernel threads (default ``KERNEL_THREADS``).
    """

    def __init__(self, max_rows: int | None = None, kernel_threads: int | None = None) -> None:
        self.max_rows = max_rows
        self.kernel_threads = kernel_threads or KERNEL_THREADS
        self._cond = threading.Condition()
        self._rows = 0  # rows of the requests seated
        self._incoming: list[_Active] = []
        self._jobs: list[_Job] = []
        self._active: list[_Active] = []
        self._current: _Job | None = None  # the job running now
        self._worker: threading.Thread | None = None
        self.failures = 0  # times the thread failed and was replaced

    @property
    def on_it(self) -> bool:
        """Whether the caller is this thread."""
        return threading.current_thread() is self._worker

    def start(self) -> None:
        """Start the thread now (it also starts on the first work handed in, and again after a failure)."""
        with self._cond:
            self._ensure_worker()

    def set_kernel_threads(self, threads: int) -> None:
        """Change the model thread's kernel threads (a batch worker process sharing the cores with others)."""
        self.kernel_threads = max(1, int(threads))
        self.call(take_the_cores, self.kernel_threads)

    @contextlib.contextmanager
    def seat(self, rows: int) -> Iterator[None]:
        """Take part for one request with ``rows`` decoder rows (waits for room first)."""
        with self._cond:
            while self.max_rows is not None and self._rows > 0 and self._rows + rows > self.max_rows:
                self._cond.wait()
            self._rows += rows
        try:
            yield
        finally:
            with self._cond:
                self._rows -= rows
                self._cond.notify_all()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on this thread, in the caller's context (so progress reports reach its page),
        in inference mode; its result, or its error raised here."""
        if self.on_it:
            return fn(*args, **kwargs)
        context = contextvars.copy_context()
        job = _Job(lambda: context.run(fn, *args, **kwargs))
        self._hand_in(job, self._jobs)
        if job.error is not None:
            raise job.error
        return job.result

    def run(self, steps: Steps) -> None:
        """Step ``steps`` until it is finished, in rounds with the other decodes in progress; its error raised
        here."""
        if self.on_it:  # called from a job: it runs alone, to its end
            with torch.inference_mode():
                while not steps.finished and steps.error is None:
                    steps.advance([steps])
        else:
            active = _Active(steps)
            self._hand_in(active, self._incoming)
            if active.error is not None:
                raise active.error
        if steps.error is not None:
            raise steps.error

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="model-thread", daemon=True)
            self._worker.start()

    def _hand_in(self, item: Any, queue: list) -> None:
        with self._cond:
            self._ensure_worker()
            queue.append(item)
            self._cond.notify_all()
            while not item.done:
                self._cond.wait()

    def _work(self) -> None:
        try:
            take_the_cores(self.kernel_threads)
            worked = False  # since memory was last handed back
            while True:
                with self._cond:
                    rested = False
                    while not self._jobs and not self._incoming and not self._active:
                        if not worked:
                            self._cond.wait()
                        elif not self._cond.wait(IDLE_BEFORE_FREEING_S):
                            rested = True  # idle for a while after some work
                            break
                    if not rested:
                        self._active.extend(self._incoming)
                        self._incoming.clear()
                        job = self._jobs.pop(0) if self._jobs else None
                        self._current = job
                if rested:  # hand the memory the work freed back to the OS, once
                    return_freed_memory()
                    worked = False
                    continue
                worked = True
                with torch.inference_mode():
                    if job is not None:
                        self._run_job(job)
                        self._finish_job(job)
                    else:
                        self._round()
        except BaseException as e:  # noqa: BLE001 - the thread itself failed: tell every request in flight
            logger.exception("The model thread failed; the requests in flight get an error and a new thread starts")
            self._fail_all(e)

    @staticmethod
    def _run_job(job: _Job) -> None:
        try:
            job.result = job.fn()
        except BaseException as e:  # noqa: BLE001 - raised in the caller's thread
            job.error = e

    def _round(self) -> None:
        """One step for every decode in progress, the decodes of one group (one model's loop) together."""
        groups: dict[Any, list[Any]] = {}
        for a in self._active:
            groups.setdefault(a.steps.group, []).append(a.steps)
        for batch in groups.values():
            try:
                batch[0].advance(batch)
            except Exception as e:  # noqa: BLE001 - the batch's requests get it; the runtime goes on
                for s in batch:
                    s.error = s.error or e
        with self._cond:
            for a in self._active:
                a.done = a.steps.finished or a.steps.error is not None
            self._active = [a for a in self._active if not a.done]
            self._cond.notify_all()

    def _fail_all(self, cause: BaseException) -> None:
        failure = RuntimeFailure(
            f"The model runtime failed while working on this request ({type(cause).__name__}: {cause}). "
            "Nothing you sent was wrong: please try again."
        )
        with self._cond:
            running = [self._current] if self._current is not None and not self._current.done else []
            for item in [*running, *self._jobs, *self._incoming, *self._active]:
                item.error = failure
                item.done = True
            self._jobs.clear()
            self._incoming.clear()
            self._active.clear()
            self._worker = None
            self.failures += 1
            self._cond.notify_all()

    def _finish_job(self, job: _Job) -> None:
        with self._cond:
            job.done = True
            self._current = None
            self._cond.notify_all()


_MODEL_THREAD = ModelThread()
_MODEL_THREAD.start()  # now, before requests: it takes the cores while no other thread computes


def model_thread() -> ModelThread:
    """The process's model thread (the wrappers hand it their work)."""
    return _MODEL_THREAD


ROWS_PER_REQUEST = 2  # decoder rows of one MusicGen piece under guidance: conditional and unconditional


def set_concurrency(requests: int) -> None:
    """Let up to ``requests`` one-piece requests decode at once on the model thread, sharing its passes; a
    request with variants counts as that many. Their key/value caches are the memory this costs; a request past
    the limit waits for room."""
    model_thread().max_rows = ROWS_PER_REQUEST * max(1, int(requests))
