"""Prompts in any language: the parts MusicGen's T5 cannot read, translated into English with MarianMT.

MusicGen's T5 vocabulary predates byte fallback, so most CJK characters (and accents, and other scripts) become one
``<unk>`` token it cannot tell apart (``models.musicgen.inputs.unknown_prompt_parts``). When a prompt has such parts,
the runs of it in another language are translated with a MarianMT model (default ``Helsinki-NLP/opus-mt-mul-en``,
many languages into English) and the model is given the English. Runs already readable in Latin script stay as
written: "欢快的国风摇滚 with guzheng and drums" keeps " with guzheng and drums".

Set the model with ``--translation-model`` / ``$PROMPT_TRANSLATION_MODEL`` (a hub id, a folder, or ``off``). It loads
on first need, on the model thread. Without it the prompt goes to MusicGen as written, and the result says which
parts the model could not read, as before.
"""

from __future__ import annotations

import logging
import os
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

from models.cache import ModelBusy
from models.loading import LoadedModel, use_model
from models.runtime import model_thread
from models.sources import NOT_HERE, ModelLoadError, ModelSource, is_off

logger = logging.getLogger(__name__)

TRANSLATION_ENV_VAR = "PROMPT_TRANSLATION_MODEL"
TRANSLATION_CLI_FLAG = "--translation-model"
DEFAULT_TRANSLATION_MODEL = "Helsinki-NLP/opus-mt-mul-en"
MAX_NEW_TOKENS = 64  # an English phrase for a prompt's run; a random or confused model stops here
TOKENS_PER_SOURCE_TOKEN = 2  # ... or at twice the run's own tokens, plus a few: an English phrase is never longer
EXTRA_TOKENS = 8
NUM_BEAMS = 4  # beam search, as the opus-mt checkpoints' generation configs ask
REMEMBERED = 256  # translations kept: the same prompt gets the same English from the same model, at no cost

# What the translator itself made, by (model, prompt): the same computation anyone's request would make, so sharing
# it between users changes nothing. An English given from outside (a parameters file) is never kept here: it is
# passed with its one request (``translate_prompt(..., english=...)``).
_remembered: OrderedDict[tuple[str, str], str] = OrderedDict()
_remembered_lock = threading.Lock()


def default_translation_name() -> str:
    """The translation model from ``$PROMPT_TRANSLATION_MODEL``, else opus-mt-mul-en on the hub."""
    return os.environ.get(TRANSLATION_ENV_VAR, "").strip() or DEFAULT_TRANSLATION_MODEL


def _remember(name: str, prompt: str, english: str) -> None:
    with _remembered_lock:
        _remembered[(name, prompt)] = english
        _remembered.move_to_end((name, prompt))
        while len(_remembered) > REMEMBERED:
            _remembered.popitem(last=False)


def remembered(name: str, prompt: str) -> str | None:
    """What model ``name`` made of ``prompt`` before, or None."""
    with _remembered_lock:
        return _remembered.get((name, prompt))


# ------------------------------------------------------------------------------------------- which parts
def _script(char: str) -> str:
    """"latin", "other" (a letter of another script) or "neutral" (space, digit, punctuation, symbol)."""
    if not char.isalpha():
        return "neutral"
    if char.isascii() or unicodedata.name(char, "").startswith("LATIN"):
        return "latin"
    return "other"


def script_runs(prompt: str) -> list[tuple[str, str]]:
    """``prompt`` cut where the script of its letters changes: [(script, text)], spaces and punctuation staying
    with the letters before them (at the start, with the letters after). The texts join back into ``prompt``."""
    runs: list[list[str]] = []
    for char in prompt:
        kind = _script(char)
        if not runs:
            runs.append([kind, char])
        elif kind == "neutral" or kind == runs[-1][0]:
            runs[-1][1] += char
        elif runs[-1][0] == "neutral":  # only spaces so far: they open this run
            runs[-1] = [kind, runs[-1][1] + char]
        else:
            runs.append([kind, char])
    return [(kind, text) for kind, text in runs]


def runs_to_translate(prompt: str, unknown_parts: list[str]) -> list[bool]:
    """For each of ``script_runs(prompt)``: translate it? A run in another script, or a Latin run with a letter
    the model cannot read (an accent: "música alegre"), is translated; readable Latin runs stay as written."""
    unreadable = {c for part in unknown_parts for c in part if c.isalpha()}
    return [kind == "other" or (kind == "latin" and any(c in unreadable for c in text))
            for kind, text in script_runs(prompt)]


def foreign_parts(prompt: str) -> list[str]:
    """The parts of ``prompt`` MusicGen's T5 most likely cannot read, told without its tokenizer: runs in another
    script, and Latin words with letters outside ASCII ("música")."""
    parts = []
    for kind, text in script_runs(prompt):
        core = _edges(text)[1]
        if core and (kind == "other" or (kind == "latin" and not core.isascii())):
            parts.append(core)
    return parts


def _edges(text: str) -> tuple[str, str, str]:
    """(leading, core, trailing): spaces and punctuation at the edges, and the words between."""
    start = 0
    while start < len(text) and not text[start].isalnum():
        start += 1
    end = len(text)
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[:start], text[start:end], text[end:]


def english_prompt(prompt: str, unknown_parts: list[str], translate: Callable[[list[str]], list[str]]) -> str:
    """``prompt`` with its runs in other languages replaced by their English (see ``runs_to_translate``).

    Args:
        unknown_parts: what MusicGen's tokenizer cannot read (``unknown_prompt_parts``).
        translate: texts -> their English, in order (one batched call).
    """
    runs = script_runs(prompt)
    chosen = runs_to_translate(prompt, unknown_parts)
    pieces = [_edges(text) for _, text in runs]
    todo = [core for (_, core, _), pick in zip(pieces, chosen) if pick and core]
    done = iter(translate(todo) if todo else [])
    out = []
    for (lead, core, trail), pick in zip(pieces, chosen):
        if pick and core:
            english = next(done).strip()
            if english.endswith(".") and not core.endswith((".", "。")):  # Marian ends phrases with a period
                english = english[:-1].rstrip()
            if trail.startswith(("，", "、", "。", "；")):  # CJK punctuation after an English run: English marks
                trail = {"，": ", ", "、": ", ", "。": ". ", "；": "; "}[trail[0]] + trail[1:].lstrip()
            core = english
        if out and out[-1] and not out[-1][-1].isspace() and (lead + core)[:1].isalnum():
            lead = " " + lead  # "钢琴with" -> "piano with"
        out.append(lead + core + trail)
    return " ".join("".join(out).split())


# ------------------------------------------------------------------------------------------- the model
class PromptTranslator(LoadedModel):
    """A MarianMT checkpoint, loaded on first use and kept.

    Args:
        name: hub id or local folder; default from ``$PROMPT_TRANSLATION_MODEL``; "off" disables translation.
        device: "cuda", "cpu"...; default: the best available.
    """

    what = "Prompt translation model (MarianMT)"
    job = "Prompt translation"
    env_var = TRANSLATION_ENV_VAR
    cli_flag = TRANSLATION_CLI_FLAG
    optional = True
    checkpoints = (DEFAULT_TRANSLATION_MODEL,)

    def __init__(self, name: str | None = None, device: str | None = None) -> None:
        super().__init__(name, device)
        self.model: Any = None
        self.tokenizer: Any = None

    @classmethod
    def default_name(cls) -> str:
        return default_translation_name()

    def _keep(self, parts: tuple[Any, Any]) -> None:
        self.model, self.tokenizer = parts

    def _drop(self) -> None:
        self.model = self.tokenizer = None

    def _from_source(self, source: ModelSource) -> tuple[Any, Any]:
        from transformers import MarianMTModel, MarianTokenizer

        tokenizer = MarianTokenizer.from_pretrained(source.location, local_files_only=source.local_files_only)
        model = MarianMTModel.from_pretrained(source.location, local_files_only=source.local_files_only)
        return model.to(self.device).eval(), tokenizer

    def translate(self, texts: list[str]) -> list[str]:
        """``texts`` in English, in order (one batched beam search on the model thread).

        Raises:
            ModelLoadError: the model cannot be loaded.
        """
        return model_thread().call(self._translate, texts)

    @torch.inference_mode()
    def _translate(self, texts: list[str]) -> list[str]:
        self._load()
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        limit = min(MAX_NEW_TOKENS, TOKENS_PER_SOURCE_TOKEN * int(batch["input_ids"].shape[1]) + EXTRA_TOKENS)
        out = self.model.generate(**batch, num_beams=NUM_BEAMS, max_new_tokens=limit, do_sample=False)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def translate_prompt(prompt: str, unknown_parts: list[str], name: str | None = None,
                     english: str | None = None) -> tuple[str | None, str]:
    """The English MusicGen is given for ``prompt``, or None when translation is off or unavailable.

    Args:
        english: the English to use for this one request (a parameters file's ``prompt_english``, to reproduce
            its result); nothing is translated, and nothing is remembered for anyone else.

    Returns:
        (English or None, why there is none: "" when translated or turned off, else the load error).
    """
    if english:
        return (english if english != prompt else None), ""
    if not unknown_parts:
        return None, ""
    name = (name or default_translation_name()).strip()
    if is_off(name):
        return None, ""
    known = remembered(name, prompt)
    if known is not None:
        return (known if known and known != prompt else None), ""
    try:
        with use_model("translator", name, wait=False) as translator:  # asked for by a run holding its own model
            english = english_prompt(prompt, unknown_parts, translator.translate)
    except (ModelLoadError, ModelBusy) as e:  # the why and the fix are for whoever runs the app: the log
        logger.warning("The prompt was not translated: %s", e)
        return None, f"the prompt translator is {NOT_HERE}"
    _remember(name, prompt, english)  # the same prompt gets the same English from this model, at no cost
    return (english if english and english != prompt else None), ""
