"""The words drawn into the files a visitor downloads (a picture's titles and axes, a score's subtitle and foot, a
video's title card), in the language of the page that asked for them, and the fonts that draw them.

The drawing code sits below the page, so it does not know the page's language: it asks ``words(text)``, and the page
registers how to say a text for the request being served (``ui.i18n`` registers its ``say``, which reads the
request's language from its context). Where nothing is registered (the command line) and for a request in English,
the words stay English; so they do where no font here draws the translation (a server without a CJK font draws
English, and says so once in the log).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

logger = logging.getLogger(__name__)

_say: Callable[[str], str] | None = None
_warned = False


def register(say: Callable[[str], str]) -> None:
    """How to say a text in the language of the request being served (the page's ``say``)."""
    global _say
    _say = say


# Fonts that draw Chinese, in the order tried (Debian's fonts-wqy-microhei is what run.sh and packages.txt install).
CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK JP", "Droid Sans Fallback")
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@functools.cache
def cjk_font() -> str | None:
    """The first of CJK_FONTS this machine has (matplotlib's list of its fonts), or None."""
    from matplotlib import font_manager

    names = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in names), None)


def font_family(text: str) -> str:
    """The font family that draws ``text``: DejaVu Sans, or the CJK font where the text has Chinese and one is here."""
    return cjk_font() if CJK.search(text) and cjk_font() else "DejaVu Sans"


def font_file(text: str, bold: bool = False) -> str:
    """The file of ``font_family(text)`` (regular or bold)."""
    from matplotlib import font_manager

    return font_manager.findfont(font_manager.FontProperties(family=font_family(text),
                                                             weight="bold" if bold else "normal"))


def with_cjk_fallback() -> dict[str, object]:
    """matplotlib settings that draw Chinese glyphs with the CJK font where DejaVu Sans has none (empty without
    one)."""
    return {"font.family": ["DejaVu Sans", cjk_font()]} if cjk_font() else {}


def can_draw(text: str) -> bool:
    """Whether this machine's fonts draw ``text`` (Chinese needs one of CJK_FONTS)."""
    return not CJK.search(text) or cjk_font() is not None


def words(text: str) -> str:
    """Words drawn into a file (a picture's title, a score's subtitle, a video's title card) in the language of the
    page that asked for it, where a font here draws them; else as they are."""
    global _warned
    if _say is None:
        return text
    said = _say(text)
    if said == text or can_draw(said):
        return said
    if not _warned:
        _warned = True
        logger.warning("Pictures, scores and videos are titled in English: no font here draws %r (install "
                       "fonts-wqy-microhei, as run.sh and packages.txt do).", said)
    return text
