"""Fair shares on one link: at most a few runs in flight per visitor, so that one visitor (or one script) cannot take
every seat of the server while strangers wait behind it.

A visitor is a browser session, or a ``gradio_client`` session over the API (gradio's ``session_hash``): at most
``--runs-per-visitor`` runs at once (default 2). A script that opens a new session for each run meets the higher cap
per client address (``--runs-per-address``, default 6): the address the connection comes from, or, when that is a
proxy on this machine or a private network (a Space's, nginx), the first address of its ``X-Forwarded-For``. When a
local proxy does not say who is behind it (a share link's tunnel), there is no address cap: every visitor would
share one address.

A run past a cap is **refused at once**, in plain words, rather than kept waiting: a waiting run would hold one of the
server's ``--concurrency`` seats (gradio's workers) and so make everyone else wait behind it, which is the thing
this prevents. The visitor can start it again when one of theirs finishes.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import ipaddress
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gradio as gr

from ui.common import page_error
from ui.runs import session_of as visitor_of  # a visitor is a browser or API session

RUNS_PER_VISITOR_ENV_VAR = "MUSIC_DEMO_RUNS_PER_VISITOR"
RUNS_PER_ADDRESS_ENV_VAR = "MUSIC_DEMO_RUNS_PER_ADDRESS"
DEFAULT_RUNS_PER_VISITOR = 2
DEFAULT_RUNS_PER_ADDRESS = 6

F = TypeVar("F", bound=Callable[..., Any])


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return max(1, int(value)) if value else default


class FairShare:
    """Runs in flight per visitor and per client address, with their caps (see the module's docstring)."""

    def __init__(self, per_visitor: int | None = None, per_address: int | None = None) -> None:
        self.per_visitor = per_visitor or _env_int(RUNS_PER_VISITOR_ENV_VAR, DEFAULT_RUNS_PER_VISITOR)
        self.per_address = per_address or _env_int(RUNS_PER_ADDRESS_ENV_VAR, DEFAULT_RUNS_PER_ADDRESS)
        self._visitors: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()
        self._lock = threading.Lock()

    def running(self, request: Any) -> int:
        """Runs of this request's visitor in flight now."""
        with self._lock:
            return self._visitors[visitor_of(request)]

    @contextlib.contextmanager
    def turn(self, request: Any) -> Iterator[None]:
        """One run of this request's visitor, for as long as the block runs.

        Raises:
            gr.Error: the visitor, or their address, already has as many runs in flight as allowed.
        """
        visitor, address = visitor_of(request), address_of(request)
        with self._lock:
            if self._visitors[visitor] >= self.per_visitor:
                raise page_error(
                    f"You already have {self._visitors[visitor]} pieces being made, as many as one visitor may have "
                    "at once here. Wait for one to finish (or stop it), then try again.")
            if address is not None and self._addresses[address] >= self.per_address:
                raise page_error(
                    f"{self._addresses[address]} pieces are being made for your network address already, as many "
                    "as one address may have at once here. Wait for one to finish, then try again.")
            self._visitors[visitor] += 1
            if address is not None:
                self._addresses[address] += 1
        try:
            yield
        finally:
            with self._lock:
                self._visitors[visitor] -= 1
                if not self._visitors[visitor]:
                    del self._visitors[visitor]
                if address is not None:
                    self._addresses[address] -= 1
                    if not self._addresses[address]:
                        del self._addresses[address]


def _is_proxy(host: str | None) -> bool:
    """Whether the connection comes from where a proxy in front of the app sits (this machine, a private net)."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private


def address_of(request: Any) -> str | None:
    """A request's client address (see the module's docstring); None when none can be told apart."""
    host = getattr(getattr(request, "client", None), "host", None)
    if not _is_proxy(host):
        return host
    headers = getattr(request, "headers", None) or {}
    forwarded = (headers.get("x-forwarded-for") or "").split(",")[0].strip()
    return forwarded or None


_SHARES = FairShare()


def fair_shares() -> FairShare:
    """The process's fair shares (every model event goes through them)."""
    return _SHARES


def set_caps(per_visitor: int, per_address: int) -> None:
    """The launch flags' caps (``--runs-per-visitor``, ``--runs-per-address``)."""
    _SHARES.per_visitor, _SHARES.per_address = max(1, per_visitor), max(1, per_address)


def fair_share(fn: F) -> F:
    """Wrap a model event (a function or a generator) so that each call takes a turn of its visitor's share; the
    event must take ``request: gr.Request``."""
    signature = inspect.signature(fn)
    if "request" not in signature.parameters:
        raise TypeError(f"{fn.__name__} needs a `request: gr.Request` parameter to be fairly shared")

    def request_of(args: tuple, kwargs: dict) -> Any:
        return signature.bind_partial(*args, **kwargs).arguments.get("request")

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with _SHARES.turn(request_of(args, kwargs)):
                yield from fn(*args, **kwargs)

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any) -> Any:
        with _SHARES.turn(request_of(args, kwargs)):
            return fn(*args, **kwargs)

    return plain  # type: ignore[return-value]
