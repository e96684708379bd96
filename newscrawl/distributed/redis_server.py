"""A throw-away ``redis-server`` on loopback, for tests, the benchmark hook and
local trials of distributed mode.

Redis cannot bind port 0 and report the port, so a free port is picked (bound
by the OS, then released), the server started on it, and polled with PING
until it answers; if it exits (the port was taken meanwhile) another port is
tried. Nothing is saved: ``--save "" --appendonly no``, in a temporary folder.

::

    with RedisServer.start(tmp_path) as server:
        url = server.url  # redis://127.0.0.1:PORT/0
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

logger = logging.getLogger(__name__)

EXECUTABLE = "redis-server"
POLL_SECONDS = 0.02


class RedisStartError(RuntimeError):
    """redis-server is missing or did not come up."""


def free_port() -> int:
    """A port the OS just had free on 127.0.0.1 (redis-server takes no port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A running ``redis-server`` child. Attributes: ``port``, ``url``, ``proc``."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log_path = log_path

    @classmethod
    def start(cls, directory: Path, *, attempts: int = 5, timeout: float = 10.0) -> RedisServer:
        """Start a server with its files in ``directory`` (created); retry on
        another port when the first one was taken before the server bound it."""
        executable = shutil.which(EXECUTABLE)
        if executable is None:
            raise RedisStartError(
                f"{EXECUTABLE} not found: install it (Debian: apt-get install redis-server)"
            )
        directory.mkdir(parents=True, exist_ok=True)
        errors = []
        for _ in range(attempts):
            port = free_port()
            log_path = directory / f"redis-{port}.log"
            cmd = [
                executable,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(directory),
                "--logfile", str(log_path),
                "--daemonize", "no",
            ]  # fmt: skip
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            server = cls(proc, port, log_path)
            why = server._wait_ready(timeout)
            if why is None:
                logger.debug("redis-server %d listening on port %d", proc.pid, port)
                return server
            errors.append(f"port {port}: {why}")
            server.stop()
        raise RedisStartError("redis-server did not start: " + "; ".join(errors))

    def _wait_ready(self, timeout: float) -> str | None:
        """None once the server answers PING, else why not."""
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return f"exited with status {self.proc.returncode}: {self.log_tail()}"
                try:
                    if client.ping():
                        return None
                except redis.RedisError:
                    pass  # not listening yet: poll again
                time.sleep(POLL_SECONDS)
            return f"no answer to PING within {timeout:g}s: {self.log_tail()}"
        finally:
            client.close()

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the server's log (why it failed)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            text = ""
        if self.proc.stderr is not None and self.proc.poll() is not None:
            text += self.proc.stderr.read().decode(errors="replace")
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("redis-server %d ignored SIGTERM; killing it", self.proc.pid)
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
