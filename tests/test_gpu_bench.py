"""The GPU benchmark of record checked on the CPU (``--dry-run``: tiny models, 1 s pieces): it runs the wrappers and
the products, writes every workload's row with the fields the results need, and the users' ratio."""

from __future__ import annotations

import json
import os
from unittest.mock import patch

from bench import gpu_bench


def test_dry_run_writes_the_rows_of_record(tmp_path, tiny_musicgen_dir):
    out = tmp_path / "out"
    with patch.dict(os.environ):  # the script sets its process's model variables: they must not reach later tests
        gpu_bench.main(["--dry-run", "--device", "cpu", "--out", str(out), "--models", str(tmp_path / "models"),
                        "--only", "small_30s", "users_8x10s"])
    (path,) = out.glob("gpu-dry-run-*.json")
    run = json.loads(path.read_text())
    assert run["dry_run"] and run["command"].startswith("python -m bench.gpu_bench")
    rows = run["rows"]
    assert [(r["workload"], r["path"]) for r in rows] == [("small_30s", "ours"), ("small_30s", "stock"),
                                                         ("users_2x1s", "ours")]
    for row in rows:
        assert "error" not in row, row
        assert row["model"] == "musicgen-small" and row["seconds"] == 1.0 and row["total_s"] > 0
    ours, stock, users = rows
    assert ours["decode_loop"] == "fast" and stock["decode_loop"] == "transformers generate"
    assert ours["audio_s"] == stock["audio_s"] == 1.0
    assert ours["first_audio_s"] is not None and ours["first_audio_s"] < ours["total_s"]
    assert "WAV" in ours["products"] and ours["products_s"] > 0  # the files a user downloads were written
    assert abs(users["ratio"] - users["total_s"] / users["alone_s"]) < 0.05 and len(users["waits_s"]) == 2
