"""The pages people arrive at say what works: every relative link in README.md and docs/ points to a file (and a
heading) that exists, and every command in their shell blocks is one the app, the command line, run.sh or the
benchmarks accept as written (parsed, not run: running them is the other tests' work)."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SHELL_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file, or heading, is not there."""
    broken = []
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code is not linked
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto...
            continue
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            broken.append(f"{target}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target}: no such heading")
    return broken


def commands(page: Path) -> list[list[str]]:
    """The commands in ``page``'s shell blocks, each as its words (continued lines joined, comments and leading
    VAR=value settings dropped)."""
    found = []
    for block in SHELL_BLOCK.findall(page.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
                words = words[1:]
            if words:
                found.append(words)
    return found


def refusal(words: list[str]) -> str | None:
    """Why a command would be refused as written (None when it is accepted or is not ours to check)."""
    if words[0] in ("python", ".venv/bin/python") and words[1:2] == ["-m"]:
        module = words[2]
        return None if importlib.util.find_spec(module) is not None else f"no module {module}"
    if words[0] in ("python", ".venv/bin/python") and words[1:2] == ["cli.py"]:
        import cli

        return _parses(cli.build_parser().parse_args, words[2:])
    if words[0] == "./run.sh":
        if words[1:2] == ["app"]:
            import app

            return _parses(app.parse_args, words[2:])
        return None if words[1:2] == ["test"] else f"run.sh has no mode {words[1:2]}"
    if words[0] == "bash" and words[1].endswith(".sh"):
        return None if (ROOT / words[1]).is_file() else f"no script {words[1]}"
    return None


def _parses(parse, args: list[str]) -> str | None:
    try:
        parse(args)
    except SystemExit as e:
        return f"refused ({e.code}): {' '.join(args)}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_somewhere(page: Path) -> None:
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_is_accepted_as_written(page: Path) -> None:
    refused = [f"{' '.join(words)}: {why}" for words in commands(page) if (why := refusal(words))]
    assert refused == []


def test_the_checks_catch_a_broken_page(tmp_path: Path) -> None:
    """The checks themselves: a missing file, a missing heading, an unknown flag and an unknown benchmark fail."""
    page = tmp_path / "page.md"
    page.write_text("# Top\n[a](nowhere.md) [b](#top) [c](#bottom) [d](https://example.org)\n"
                    "```bash\n./run.sh app --no-such-flag\npython -m bench.no_such_bench\n./run.sh app --share\n```\n")
    assert broken_links(page) == ["nowhere.md: no such file", "#bottom: no such heading"]
    assert [refusal(w) is not None for w in commands(page)] == [True, True, False]


def test_the_readme_is_for_people_who_arrive() -> None:
    """README.md stays a visitor's page: what it does, the two commands, the tabs (operators' and developers'
    material lives in docs/OPERATING.md and docs/DEVELOPING.md, which it links)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    assert "./run.sh app" in text and "./run.sh test" in text
    assert "docs/OPERATING.md" in text and "docs/DEVELOPING.md" in text
