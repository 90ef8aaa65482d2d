"""The two ways a loaded MusicGen decodes one window of codes, built once when the model loads: the fast loop
(shared passes on the model thread) or transformers' stock ``generate``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import torch
from transformers.generation.stopping_criteria import StoppingCriteriaList

from models.devices import zero_gpu_env
from models.musicgen.codec import codebook_delays, undelay
from models.musicgen.decoding import PassCount
from models.musicgen.fast_loop import FastMusicgen, supports_fast_path
from models.progress import StepWatcher
from models.runtime import model_thread

FRAMES_EVERY = 10  # the fast loop hands finished frames to streaming every this many steps


class Backend(Protocol):
    """Decodes one window: codes [B, K, prompt + new frames], the prompt codes first, as given."""

    name: str  # as the parameters record says it
    stops_itself: bool  # True: it ends between steps on ``cancel`` and returns what it finished

    def decode_window(self, inputs: Any, prompt_codes: torch.Tensor | None, steps: int, sampling: dict[str, Any],
                      watcher: StepWatcher, input_features: torch.Tensor | None, cancel: threading.Event | None,
                      on_frames: Callable[[torch.Tensor], None] | None, generator: torch.Generator,
                      passes: PassCount) -> torch.Tensor: ...

    def end_request(self) -> None:
        """A request's windows are all decoded (or it stopped or failed)."""


class FastBackend:
    """The fast loop, stepped on the model thread, sharing its passes with the other requests decoding on this
    model at the time (in float32 each request gets exactly the tokens it gets alone; in a GPU's 16-bit types a
    shared product may round differently, see ``FastMusicgen.generate``). It stops between steps on ``cancel`` and
    returns the frames finished so far."""

    name = "fast"
    stops_itself = True

    def __init__(self, model: Any) -> None:
        # on ZeroGPU the GPU exists only inside a decorated call: the static step's buffers and CUDA graphs are
        # made inside it and dropped when the last request of the call ends (capture cost: bench/gpu_bench.py)
        self.loop = FastMusicgen(model, drop_when_idle=zero_gpu_env())

    def decode_window(self, inputs: Any, prompt_codes: torch.Tensor | None, steps: int, sampling: dict[str, Any],
                      watcher: StepWatcher, input_features: torch.Tensor | None, cancel: threading.Event | None,
                      on_frames: Callable[[torch.Tensor], None] | None, generator: torch.Generator,
                      passes: PassCount) -> torch.Tensor:
        return self.loop.generate_codes(
            inputs["input_ids"], inputs["attention_mask"], steps, on_step=watcher.tick, prompt_codes=prompt_codes,
            should_stop=(lambda: cancel.is_set()) if cancel is not None else None, on_frames=on_frames,
            frames_every=FRAMES_EVERY, input_features=input_features, generator=generator, joint=model_thread(),
            passes=passes, **sampling,
        )

    def end_request(self) -> None:
        model_thread().call(self.loop.let_go)


class StockBackend:
    """transformers' ``generate``, run whole on the model thread; the watcher stops it on ``cancel`` (raising) and
    keeps the ids it saw last, which are the window's codes in the delay pattern."""

    name = "transformers generate"
    stops_itself = False

    def __init__(self, model: Any) -> None:
        self.model = model

    def decode_window(self, inputs: Any, prompt_codes: torch.Tensor | None, steps: int, sampling: dict[str, Any],
                      watcher: StepWatcher, input_features: torch.Tensor | None, cancel: threading.Event | None,
                      on_frames: Callable[[torch.Tensor], None] | None, generator: torch.Generator,
                      passes: PassCount) -> torch.Tensor:
        model = self.model
        batch, k = inputs["input_ids"].shape[0], model.config.decoder.num_codebooks
        start = int(model.generation_config.decoder_start_token_id)
        first = torch.full((batch * k, 1), start, dtype=torch.long, device=inputs["input_ids"].device)
        if prompt_codes is not None:
            first = torch.cat([first, prompt_codes.reshape(batch * k, -1)], dim=1)
        extra = {} if input_features is None else {"input_features": input_features}
        watcher.last_ids = None
        model_thread().call(
            own_random_numbers, generator, model.generate, **inputs, **extra, decoder_input_ids=first,
            max_new_tokens=steps, stopping_criteria=StoppingCriteriaList([watcher]), **sampling,
        )
        ids = watcher.last_ids
        _, pattern = model.decoder.build_delay_pattern_mask(first, pad_token_id=start,
                                                            max_length=first.shape[1] + steps)
        ids = model.decoder.apply_delay_pattern_mask(ids, pattern[:, : ids.shape[1]])
        return undelay(ids.view(batch, k, -1), codebook_delays(model.config.decoder))

    def end_request(self) -> None:
        pass


def own_random_numbers(generator: torch.Generator, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` drawing from ``generator`` where it draws from torch's global generator (stock
    ``generate`` samples with the global one, which every request in the process shares): the global state is set
    from the request's generator, and the request's generator takes the state back after, so a request's windows
    continue its own sequence whoever ran between them; the global state is restored after."""
    cuda = generator.device.type == "cuda"
    index = (generator.device.index if generator.device.index is not None else torch.cuda.current_device()) \
        if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else []):
        if cuda:
            torch.cuda.set_rng_state(generator.get_state(), index)
        else:
            torch.set_rng_state(generator.get_state())
        try:
            return fn(*args, **kwargs)
        finally:
            generator.set_state(torch.cuda.get_rng_state(index) if cuda else torch.get_rng_state())


def build_backend(model: Any, fast_path: bool) -> Backend:
    """The fast loop where asked for and the model is covered by it; stock ``generate`` otherwise."""
    return FastBackend(model) if fast_path and supports_fast_path(model) else StockBackend(model)
