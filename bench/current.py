"""The current figures, made from the results, not copied: for each host, the newest run of each workload of the
benchmark of record (``bench/app_bench.py``: the app started as a user starts it, driven over its API), stock beside
ours, with the date and the command that made it.

    python -m bench.current            # rewrite the tables in docs/PERFORMANCE.md
    python -m bench.current --check    # fail when the table there is not what the results say (tests run this)

The table sits between two markers in each file; everything else in them is written by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = (ROOT / "docs" / "PERFORMANCE.md",)  # README.md points to it
BEGIN = "<!-- current figures: made by `python -m bench.current` from bench/results; do not edit by hand -->"
END = "<!-- end of current figures -->"

# workload -> what a user does, and which figure of it the table shows (in the order a visitor meets them)
WORKLOADS = {
    "text_10s": ("10 s of music from a prompt", "total_s"),
    "text_30s": ("30 s of music from a prompt", "total_s"),
    "translated_10s": ("10 s from a prompt in Chinese (translated)", "total_s"),
    "melody_10s": ("10 s of music from a hummed melody", "total_s"),
    "cover": ("a piano cover of a 3.5-minute song", "total_s"),
    "sheet_music": ("sheet music of a 3.5-minute piano recording", "total_s"),
    "video": ("the cover's falling-notes video", "total_s"),
    "midi_30s": ("MIDI of a 30 s result", "total_s"),
    "check": ("checking a file for the watermark", "total_s"),
    "song_30s": ("a 30 s song with lyrics", "total_s"),
    "users_4x10s": ("four visitors, 10 s each, at once (x one visitor)", "total_over_one"),
    "song_users_2x30s": ("two visitors, a 30 s song each (x one visitor)", "total_over_one"),
}
FIRST_AUDIO = ("text_10s", "text_30s", "song_30s")  # where the live player starts before the end


@dataclass
class Figure:
    """One workload's newest figures on one host."""

    workload: str
    ours: dict[str, Any]
    stock: dict[str, Any] | None
    date: str
    command: str
    source: str


def runs() -> list[dict[str, Any]]:
    """Every result of the benchmark of record, oldest first, each with its file's name."""
    found = []
    for path in sorted(RESULTS.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("benchmark") == "app" and "apps" in data:
            found.append({**data, "source": path.name})
    return sorted(found, key=lambda d: d.get("date", ""))


def host_of(machine: str) -> str:
    """The host's name without the Python version the results also record."""
    return ", ".join(part for part in machine.split(", ") if not part[:1].isdigit() or "core" in part)


def newest(results: list[dict[str, Any]]) -> dict[str, dict[str, Figure]]:
    """host -> workload -> its newest figures (a later run of the same workload replaces an earlier one)."""
    table: dict[str, dict[str, Figure]] = {}
    for run in results:
        ours, stock = run["apps"].get("ours", {}), run["apps"].get("stock")
        for workload in WORKLOADS:
            if isinstance(ours.get(workload), dict):
                table.setdefault(host_of(run.get("machine", "?")), {})[workload] = Figure(
                    workload, ours[workload], (stock or {}).get(workload), run.get("date", "?")[:16],
                    run.get("command", ""), run["source"])
    return table


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"


def _cell(figure: dict[str, Any] | None, key: str) -> str:
    if not figure or figure.get(key) is None:
        return "not run"
    value = figure[key]
    shown = f"{value:.2f}x" if key == "total_over_one" else _seconds(value)
    if key == "total_s" and figure.get("first_audio_s") is not None and figure["first_audio_s"] < value * 0.9:
        shown += f" (first audio {figure['first_audio_s']:.1f} s)"
    return shown


def table() -> str:
    """The markdown of the current figures: one table per host, newest host first."""
    hosts = newest(runs())
    order = sorted(hosts, key=lambda h: max(f.date for f in hosts[h].values()), reverse=True)
    lines = []
    for host in order:
        figures = hosts[host]
        lines += [f"**{host}** (newest run of each workload; full-size models with random weights; the command of "
                  "each run is in its results file)", "",
                  "| what a user does, through the app | stock | ours | ours / stock | peak RSS, ours | run (UTC) "
                  "| results |", "|---|---|---|---|---|---|---|"]
        for workload, (what, key) in WORKLOADS.items():
            figure = figures.get(workload)
            if figure is None:
                continue
            ratio = ""
            if key == "total_s" and figure.stock and figure.stock.get("total_s"):
                ratio = f"{figure.ours['total_s'] / figure.stock['total_s']:.2f}x"
            peak = figure.ours.get("peak_rss_gb")
            lines.append(f"| {what} | {_cell(figure.stock, key)} | {_cell(figure.ours, key)} | {ratio} | "
                         f"{'' if peak is None else f'{peak:.2f} GB'} | {figure.date.replace('T', ' ')} | "
                         f"`{figure.source}` |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def placed(text: str, made: str) -> str:
    """``text`` with the part between the markers replaced by ``made``."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"the markers are missing: {BEGIN} ... {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{made}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the docs' tables are current")
    args = parser.parse_args(argv)
    made = table()
    stale = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        new = placed(text, made)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"Not the current figures: {', '.join(map(str, stale))}. Run: python -m bench.current", file=sys.stderr)
        return 1
    print("\n".join(f"{'stale' if args.check else 'wrote'} {p}" for p in stale) or "current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
