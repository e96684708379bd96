"""A smoke run of the near-duplicate benchmark (``python -m bench.neardup --quick``):
it runs end to end against the test database server and its numbers hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.neardup import main


def test_quick_benchmark_writes_its_report(
    tmp_path: Path, mongo_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "neardup.json"
    assert main(["--quick", "--mongo-uri", mongo_uri, "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    quality = report["quality"]
    assert quality["small_edit_copies"] > 10
    assert quality["false_links"] == 0 and quality["precision"] == 1.0
    assert quality["recall"] >= 0.98
    small, large = report["scale"]
    assert (small["size"], large["size"]) == (300, 1000)
    for run in (small, large):
        # measured, not extrapolated: every size is filled for real
        assert run["ms_per_article"] > 0 and run["data_bytes_per_article"] > 0
        assert 0 < run["process_bytes_per_article"] < 400
        assert run["quality"]["false_links"] == 0 and run["quality"]["recall"] >= 0.98
        # a second index opened what the first one wrote, and linked its copies to it
        assert run["reopen_entries"] == run["first_process_entries"] >= run["size"] * 0.8
        assert run["second_process_copies"] > 0 and run["second_process_recall"] >= 0.98
        # ... also from the band table the first one saved
        assert run["reopen_snapshot_restored"] == run["first_process_entries"]
        assert run["commands_per_batch"]["insert"] <= 1.0
    assert report["cpu_us"]["signature_us"] < report["cpu_us"]["datasketch_update_batch_sha1_us"]
    printed = capsys.readouterr().out
    assert "| articles |" in printed and "precision" in printed
