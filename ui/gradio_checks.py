"""The gradio this page was written for, and the places where it works around gradio rather than through it.

Everything else uses gradio's documented API. These five have no documented way in gradio 6.31, and each touches
only our own objects (never a gradio class for the whole process); ``tests/test_gradio_ways.py`` reproduces each
upstream behaviour, so the day gradio changes it the test says the workaround can go (or must change):
- ``ui/i18n.py`` ``english_api_labels``: gradio's API info (and so the API page and the MCP tools' schemas) lists a
  ``gr.I18n`` label as translation metadata, not as words; our page's ``get_api_info`` gives the English words.
- ``ui/i18n.py`` ``localize_page``: on a props update (``gr.Dropdown(choices=...)``) gradio rebuilds a component from
  the arguments it was constructed with (``constructor_args``), so a label swapped for its ``gr.I18n`` key after the
  build is swapped in those arguments too.
- ``ui/streaming.py`` ``LivePlayer``/``ProgressLine``: a page-only output is left out of an event's API outputs by
  ``skip_api`` (as gradio's ``gr.State`` is), on subclasses of our own marked ``is_template`` (as gradio's own
  ``gr.Microphone`` is).
- ``ui/common.py`` ``PAGE_CSS``: gradio's page titles an error toast "Error" whatever ``gr.Error(title=...)`` says
  (it reads the title from a field the server never fills), so a Chinese page's CSS shows its own word there.
- ``ui/page_words.py``: gradio's front end writes a waiting run's line ("queue: 2/3 | 37.4/19.0s") and an upload's
  refusal ("Invalid file type: ...") itself, in English; a page script shows ours in their place.

``check_gradio()`` runs at start (``app.main``) and says in one log line when the installed gradio is not the one
this was written and tested for. ``requirements.txt`` pins gradio to the range the tests cover.
"""

from __future__ import annotations

import gradio as gr

WRITTEN_FOR = "6.31"  # gradio's major.minor these workarounds were written and tested for
WORKAROUNDS = ("ui/i18n.py english_api_labels", "ui/i18n.py localize_page (constructor_args)",
               "ui/streaming.py page-only outputs (skip_api)", "ui/common.py PAGE_CSS (the error toast's title)",
               "ui/page_words.py (gradio's queue and upload-refusal lines)")


def check_gradio(version: str | None = None) -> str | None:
    """A warning when gradio ``version`` (default: the installed one) is not the one the page was written for;
    None when it is."""
    version = version or gr.__version__
    if ".".join(version.split(".")[:2]) == WRITTEN_FOR:
        return None
    return (f"gradio {version} is installed, but this app was written and tested for gradio {WRITTEN_FOR}.x: check "
            f"its workarounds ({'; '.join(WORKAROUNDS)}) with tests/test_gradio_ways.py, or install "
            f"'gradio[mcp]=={WRITTEN_FOR}.0'.")
