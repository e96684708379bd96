"""The command line refuses bad input in one line each, before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def newscrawl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "newscrawl", *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", ["crawl", "schedule"])
def test_an_unknown_spider_is_refused_at_once_with_the_known_ones(
    tmp_path: Path, command: str
) -> None:
    args = [command, "no-such-spider", *(["--once"] if command == "schedule" else [])]
    proc = newscrawl(tmp_path, *args)
    assert proc.returncode != 0
    assert f"newscrawl {command}: no spider named 'no-such-spider'" in proc.stderr
    assert "finews" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["crawl", "schedule"])
def test_settings_of_the_wrong_type_are_refused_each_in_one_line(
    tmp_path: Path, command: str
) -> None:
    bad = {
        "MONGO_BATCH_SIZE": "lots",  # a number
        "MONGO_ENABLED": "yes",  # a boolean
        "NEWSCRAWL_RECHECK_AFTER": "soon",  # a duration
        "DOWNLOAD_HANDLERS": "{not json",  # a JSON object
    }
    args = [command, "finews", *(["--once"] if command == "schedule" else [])]
    for name, value in {**bad, "DOWNLOAD_DELAY": "0.25", "LOG_LEVEL": "INFO"}.items():
        args += ["-s", f"{name}={value}"]
    proc = newscrawl(tmp_path, *args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert [line.split(":")[1].strip().split("=")[0] for line in lines] == list(bad)
    assert all(line.startswith(f"newscrawl {command}: ") for line in lines)
    assert not (tmp_path / ".newscrawl").exists()  # refused before anything started
