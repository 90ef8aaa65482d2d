"""The current figures in docs/PERFORMANCE.md are what bench/results says (``python -m bench.current``),
so they cannot drift from the measurements by hand-copying."""

from __future__ import annotations

from bench import current


def test_the_current_figures_are_what_the_results_say():
    assert current.main(["--check"]) == 0, "run: python -m bench.current"


def test_the_table_shows_each_hosts_newest_run_with_stock_from_the_same_run():
    made = current.table()
    assert "| a 30 s song with lyrics | 163.5 s | 60.5 s (first audio 27.2 s) | 0.37x |" in made  # app-cpu-song.json
    assert made.count("| what a user does, through the app |") == len(current.newest(current.runs()))  # one per host
    stale = current.placed(f"a\n{current.BEGIN}\nold figures\n{current.END}\nb", made)
    assert "old figures" not in stale and stale.startswith("a\n") and stale.endswith("\nb")
