"""Run the replica proxy as a child process (for tests, the demo and benchmarks).

::

    with ReplicaProcess.start(site_dir, access_log=tmp / "access.jsonl") as replica:
        os.environ["https_proxy"] = replica.proxy_url
        ...

The child is ``python -m newscrawl.replica serve --site DIR --port 0``; its
first stdout line gives the port. If it dies or stays silent, starting fails
with the child's stderr in the message.
"""

from __future__ import annotations

import logging
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

logger = logging.getLogger(__name__)

_READY_RE = re.compile(r"^replica proxy listening on 127\.0\.0\.1:(\d+)$")


class ReplicaStartError(RuntimeError):
    """The replica process did not come up."""


class ReplicaProcess:
    """A running replica proxy process. Attributes: ``port``, ``proxy_url``, ``access_log``."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        port: int,
        access_log: Path | None,
        stderr: IO[bytes],
    ) -> None:
        self.proc = proc
        self.port = port
        self.proxy_url = f"http://127.0.0.1:{port}"
        self.access_log = access_log
        self._stderr = stderr
        self._stderr_final: str | None = None

    @classmethod
    def start(
        cls,
        site_dir: Path,
        access_log: Path | None = None,
        *,
        timeout: float = 30.0,
        log_level: str = "WARNING",
        faults: bool = True,
    ) -> ReplicaProcess:
        """Launch the server on a free port and wait for its ready line
        (``faults=False``: ignore the site's fault plan)."""
        cmd = [
            sys.executable,
            "-m",
            "newscrawl.replica",
            "--log-level",
            log_level,
            "serve",
            "--site",
            str(site_dir),
            "--port",
            "0",
        ]
        if access_log is not None:
            cmd += ["--access-log", str(access_log)]
        if not faults:
            cmd.append("--no-faults")
        stderr = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr)
        assert proc.stdout is not None
        line = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    cls._fail(proc, stderr, f"no ready line within {timeout:.0f}s")
                chunk = proc.stdout.read1(256)  # type: ignore[attr-defined]
                if not chunk:
                    cls._fail(proc, stderr, f"exited with status {proc.wait()}")
                line += chunk
        m = _READY_RE.match(line.decode("utf-8", "replace").strip())
        if not m:
            cls._fail(proc, stderr, f"unexpected first line {line!r}")
        assert m is not None
        port = int(m[1])
        logger.debug("replica process %d listening on port %d", proc.pid, port)
        return cls(proc, port, access_log, stderr)

    @staticmethod
    def _fail(proc: subprocess.Popen[bytes], stderr: IO[bytes], why: str) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.seek(0)
        err = stderr.read().decode("utf-8", "replace").strip()
        stderr.close()
        raise ReplicaStartError(f"replica proxy did not start: {why}; stderr:\n{err}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then kill. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("replica process %d ignored SIGTERM; killing it", self.proc.pid)
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._stderr_final is None:
            self._stderr_final = self.stderr_text()
            self._stderr.close()
        return int(self.proc.returncode)

    def stderr_text(self) -> str:
        """What the child wrote to stderr (all of it once stopped)."""
        if self._stderr_final is not None:
            return self._stderr_final
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def __enter__(self) -> ReplicaProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
