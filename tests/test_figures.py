"""The current figures in docs/PERFORMANCE.md are what bench/results says (``python -m bench.current``),
so they cannot drift from the measurements by hand-copying."""

from __future__ import annotations

from bench import current


def test_the_current_figures_are_what_the_results_say():
    assert current.main(["--check"]) == 0, "run: python -m bench.current"


def test_the_table_shows_each_hosts_newest_run_with_stock_from_the_same_run():
    made = current.table()
    older = {"benchmark": "app", "machine": "AMD EPYC, 2 cores", "date": "2026-12-07T18:43", "source": "a.json",
             "apps": {"ours": {"song_30s": {"total_s": 60.5}}, "stock": {"song_30s": {"total_s": 163.5}}}}
    newer = {**older, "date": "2026-12-08T00:31", "source": "b.json",
             "apps": {"ours": {"song_30s": {"total_s": 52.1}}}}  # stock left out of this run
    song = current.newest([older, newer])["AMD EPYC, 2 cores"]["song_30s"]
    assert (song.source, song.ours["total_s"], song.stock) == ("b.json", 52.1, None)  # never stock from another run
    for host in current.newest(current.runs()).values():  # the real table: each row from its newest run
        for figure in host.values():
            row = next(line for line in made.splitlines() if f"| {current.WORKLOADS[figure.workload][0]} |" in line
                       and figure.source in line)
            assert f"| {current._cell(figure.stock, current.WORKLOADS[figure.workload][1])} |" in row
    assert made.count("| what a user does, through the app |") == len(current.newest(current.runs()))  # one per host
    stale = current.placed(f"a\n{current.BEGIN}\nold figures\n{current.END}\nb", made)
    assert "old figures" not in stale and stale.startswith("a\n") and stale.endswith("\nb")
