"""The Colab notebook, run top to bottom in a real Jupyter kernel against tiny local models.

Its parameters cell is overridden the way papermill does it (a cell injected right after it): no clone, apt or
pip (the checkout and .venv are already here), no share link, a free port. The notebook's own last cell calls
the app's API from inside the kernel; the test reads what it printed.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.live_app import ARTIFACTS, ROOT, free_port

NOTEBOOK = ROOT / "notebooks" / "colab.ipynb"


def with_overrides(notebook: nbformat.NotebookNode, overrides: str) -> nbformat.NotebookNode:
    index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    cell = nbformat.v4.new_code_cell(overrides)
    cell.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, cell)
    return notebook


def test_notebook_runs_and_its_app_answers_an_api_call(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir,
                                                        tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    overrides = "\n".join([
        "import os",
        f"os.environ['GRADIO_SERVER_PORT'] = '{free_port()}'",
        "os.environ['HF_HUB_OFFLINE'] = '1'",
        f"REPO_DIR = {str(ROOT)!r}",
        f"PIANO_MODEL = {str(tiny_pop2piano_dir)!r}",
        f"MUSICGEN_MODEL = {str(tiny_musicgen_dir)!r}",
        f"MELODY_MODEL = {str(tiny_melody_dir)!r}",
        "SHARE = False",
        "SETUP = False",
        "USE_DRIVE = False",
        "SMOKE_TEST = True",
    ])
    notebook = with_overrides(notebook, overrides)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()
    ARTIFACTS.mkdir(exist_ok=True)
    nbformat.write(notebook, ARTIFACTS / "colab-executed.ipynb")
    printed = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "Local URL: http://127.0.0.1:" in printed
    assert "API check passed: 1.0 s of audio at 32000 Hz from " + tiny_musicgen_dir.name in printed  # its name
    assert "Public link" not in printed


def test_parameters_cell_is_tagged_and_the_defaults_are_the_official_models():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assert 'PIANO_MODEL = "sweetcocoa/pop2piano"' in cell.source and "SHARE = True" in cell.source
    assert notebook.metadata["accelerator"] == "GPU"
    installs = [line for line in Path(NOTEBOOK).read_text().splitlines() if "pip install" in line]
    assert len(installs) == 2 and "requirements.txt" in installs[0]  # Colab's torch is kept: no torch install
    assert "--no-deps" in installs[1] and "requirements-transcribe.txt" in installs[1]  # basic-pitch without TF
