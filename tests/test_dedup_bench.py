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
    measured, extrapolated = report["scale"]
    assert measured["measured"] and measured["size"] == 300
    assert measured["data_bytes_per_article"] > 0 and measured["ms_per_article"] > 0
    assert not extrapolated["measured"] and "extrapolated" in extrapolated["note"]
    assert report["cpu_us"]["signature_us"] < report["cpu_us"]["datasketch_update_batch_sha1_us"]
    printed = capsys.readouterr().out
    assert "| articles |" in printed and "precision" in printed
