"""The house's floors (docs/ARCHITECTURE.md), checked from the source: no import runs back up a floor, no torch in
the UI, no Gradio below it, and the map names every room."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# app -> ui / cli -> products / batch -> serving (the seam) -> models (the runtime among them) -> utils; a room imports
# its own floor or the floors below it, never one above.
FLOORS = {"app": 6, "ui": 5, "cli": 5, "products": 4, "batch": 4, "serving": 3, "models": 2, "utils": 1}
NO_TORCH = ("app", "ui", "cli", "products", "batch", "serving")  # model compute lives in models/ only
NO_GRADIO = ("products", "batch", "serving", "models", "utils")  # the page's framework stays on the page's floor


def modules() -> list[Path]:
    """Every module of the house (the floors), without tests, benchmarks and examples."""
    found = [ROOT / "app.py", ROOT / "cli.py"]
    for package in ("ui", "products", "batch", "serving", "models", "utils"):
        found += sorted((ROOT / package).rglob("*.py"))
    return found


def floor_of(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def imported(source: str) -> list[tuple[str, int]]:
    """The top-level names a module imports, anywhere in it (functions included), with line numbers."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.module.split(".")[0], node.lineno))
    return names


def violations(floor: str, source: str) -> list[str]:
    """What in ``source`` (a module on ``floor``) breaks the floors' rules."""
    found = []
    for name, line in imported(source):
        if name in FLOORS and FLOORS[name] > FLOORS[floor]:
            found.append(f"line {line}: {floor} imports {name}, a floor above it")
        if name == "torch" and floor in NO_TORCH:
            found.append(f"line {line}: torch in {floor} (model compute belongs in models/)")
        if name == "gradio" and floor in NO_GRADIO:
            found.append(f"line {line}: gradio in {floor} (the page's framework stays in ui/ and app.py)")
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_up_a_floor(path: Path) -> None:
    assert violations(floor_of(path), path.read_text(encoding="utf-8")) == []


def test_the_check_catches_an_import_up_a_floor() -> None:
    """The rule itself fails where it should: a model importing the page, a helper importing a model, a function's
    own import, torch in the UI, Gradio in a product writer."""
    assert violations("models", "from ui.common import CONFIG\n")
    assert violations("utils", "def f():\n    from models import runtime\n")
    assert violations("ui", "import torch\n")
    assert violations("products", "import gradio as gr\n")
    assert violations("serving", "from products.music import write_music\n")
    assert violations("models", "from serving import backend\n")
    assert not violations("ui", "from models import musicgen\nfrom products.music import write_music\n")


def test_the_map_names_every_room() -> None:
    """docs/ARCHITECTURE.md lists every module: a new room cannot appear without its line on the map."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(ROOT)) for p in modules()
               if p.name != "__init__.py" and str(p.relative_to(ROOT)) not in text]
    assert missing == []


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(paths: list[Path], root: Path = ROOT) -> dict[str, set[str]]:
    """Which of ``paths``' modules each one imports, anywhere in it (functions and ``TYPE_CHECKING`` blocks too):
    ``from a.b import c`` names ``a.b.c`` when that is a module, else ``a.b``."""
    names = {module_name(p, root): p for p in paths}

    def known(name: str) -> str | None:
        while name and name not in names:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {known(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package
                    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
                edges |= {known(f"{base}.{alias.name}") for alias in node.names}
        graph[name] = {e for e in edges if e and e != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected parts of two modules or more (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while not part or part[-1] != v:
                part.append(stack.pop())
            if len(part) > 1:
                found.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    """Each module reads alone: no two modules of the house or the benchmarks import each other, directly or round a
    longer circle (type-only and function-level imports count: they tie the rooms together all the same)."""
    paths = modules() + sorted((ROOT / "bench").rglob("*.py"))
    assert circles(import_graph(paths)) == []


def test_the_circle_check_finds_a_circle(tmp_path: Path) -> None:
    """The check itself: a circle of three modules (one import inside a function, one type-only) is found, a chain
    is not."""
    package = tmp_path / "house"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from house import b\n")
    (package / "b.py").write_text("def f():\n    from house.c import thing\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import X\n")
    paths = sorted(package.glob("*.py"))
    assert circles(import_graph(paths, tmp_path)) == [["house.a", "house.b", "house.c"]]
    (package / "c.py").write_text("import os\n")
    assert circles(import_graph(paths, tmp_path)) == []
