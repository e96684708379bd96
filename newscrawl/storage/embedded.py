"""The embedded default database: a SecantusDB server run as a child process.

When the user gives no ``MONGO_URI``, newscrawl starts ``secantusd-py`` (PyPI
``SecantusDB``: a MongoDB-wire server over WiredTiger) on loopback and talks to
it with plain pymongo, exactly as it would talk to a real ``mongod``. The
server is never imported (licence and GIL): it is a separate process.

Files, for a storage path ``.newscrawl/mongo``:

- ``.newscrawl/mongo/``: the WiredTiger data, kept across runs;
- ``.newscrawl/mongo/server.json``: pid, port, start time and the processes
  using the server, so a second crawl on the same data reuses the running
  server instead of failing on WiredTiger's lock;
- ``.newscrawl/mongo/server.lock``: serializes start/stop decisions between
  processes;
- ``.newscrawl/secantusd.log``: the server's output.

The server is stopped by the last process that uses it. Nothing here ever
deletes or resets data, whatever fails.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from newscrawl.storage.errors import EmbeddedMongoError

logger = logging.getLogger(__name__)

EXECUTABLE_NAME = "secantusd-py"
HOST = "127.0.0.1"
INSTALL_HINT = (
    "install it into the virtualenv with `.venv/bin/pip install -r requirements.txt` "
    "(package SecantusDB), or set MONGO_URI to use an existing MongoDB server"
)
#: what the server logs once its socket is bound
LISTENING_RE = re.compile(r"secantus listening on (?P<host>[0-9.]+):(?P<port>\d+)")
LOG_TAIL_LINES = 20
POLL_SECONDS = 0.05


def find_executable(name: str = EXECUTABLE_NAME) -> str | None:
    """The server executable: next to the running Python first (the venv's
    ``bin/``), then on ``PATH``; None when it is nowhere."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def parse_listening_port(log_text: str) -> int | None:
    """The port from the server's "listening" log line, if it is there yet.

    >>> parse_listening_port("... INFO secantus.server: secantus listening on 127.0.0.1:40123\\n")
    40123
    >>> parse_listening_port("... INFO secantus.cli: loaded config\\n") is None
    True
    """
    match = LISTENING_RE.search(log_text)
    return int(match.group("port")) if match else None


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # the state is the first field after the parenthesized command name
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def ping(port: int, timeout: float = 1.0) -> bool:
    """True when a MongoDB-wire server on loopback ``port`` answers ``ping``."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        HOST,
        port,
        directConnection=True,
        serverSelectionTimeoutMS=int(timeout * 1000),
        connectTimeoutMS=int(timeout * 1000),
        appname="newscrawl-probe",
    )
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


class EmbeddedMongo:
    """A SecantusDB server for one storage path, started or reused.

    ``start()`` returns ``mongodb://127.0.0.1:PORT/``. The port comes from the
    server's own log (it binds port 0), so no port is ever guessed; ``port``
    asks for a given one instead (restarting a server where its clients
    point). ``args`` are passed on to ``secantusd-py`` (e.g.
    ``("--enable-test-commands",)``).
    """

    def __init__(
        self,
        storage_path: Path,
        executable: str | None = None,
        *,
        port: int = 0,
        args: tuple[str, ...] = (),
        start_timeout: float = 30.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.storage_path = Path(storage_path).absolute()
        self.executable = executable
        self.wanted_port = port
        self.args = tuple(args)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.storage_path.parent / "secantusd.log"
        self.info_path = self.storage_path / "server.json"
        self.lock_path = self.storage_path / "server.lock"
        self.port: int | None = None
        self.pid: int | None = None
        #: True when start() found a live server and uses it
        self.reused = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._user = [os.getpid(), uuid.uuid4().hex]

    @property
    def uri(self) -> str | None:
        """``mongodb://127.0.0.1:PORT/`` while started, else None."""
        return f"mongodb://{HOST}:{self.port}/" if self.port is not None else None

    def __repr__(self) -> str:
        return f"EmbeddedMongo({str(self.storage_path)!r}, port={self.port}, pid={self.pid})"

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Start the server (or join the live one for this storage path) and
        return its URI. Raises EmbeddedMongoError with the server's last log
        lines when it cannot be started."""
        if self.uri is not None:
            return self.uri
        self.storage_path.mkdir(parents=True, exist_ok=True)
        with self._locked():
            info = self._read_info()
            if info is not None and self._is_live(info):
                self.port, self.pid, self.reused = int(info["port"]), int(info["pid"]), True
                logger.info(
                    "Reusing SecantusDB pid %d on port %d for %s",
                    self.pid,
                    self.port,
                    self.storage_path,
                )
            else:
                if info is not None:
                    logger.warning(
                        "Replacing stale %s (pid %s, port %s no longer answers)",
                        self.info_path,
                        info.get("pid"),
                        info.get("port"),
                    )
                info = self._spawn()
            users = [u for u in info.get("users", []) if pid_alive(int(u[0]))]
            info["users"] = [*users, self._user]
            self._write_info(info)
        atexit.register(self.stop)
        assert self.uri is not None
        return self.uri

    def stop(self) -> None:
        """Leave the server: stop it when no other live process uses it,
        else leave it running for them. Data is never touched."""
        if self.port is None:
            return
        atexit.unregister(self.stop)
        with self._locked():
            info = self._read_info()
            same_server = info is not None and info.get("pid") == self.pid
            others = []
            if info is not None and same_server:
                others = [
                    u for u in info.get("users", []) if u != self._user and pid_alive(int(u[0]))
                ]
            if others:
                assert info is not None
                info["users"] = others
                self._write_info(info)
                logger.info(
                    "SecantusDB on port %d still used by pid(s) %s; leaving it running",
                    self.port,
                    sorted({int(u[0]) for u in others}),
                )
            else:
                self._terminate()
                if same_server:
                    self.info_path.unlink(missing_ok=True)
        self.port = self.pid = None
        self._proc = None

    # -- internals ---------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read_info(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.info_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring unreadable %s: %s", self.info_path, exc)
            return None
        if not isinstance(data, dict) or not {"pid", "port"} <= data.keys():
            logger.warning("Ignoring malformed %s", self.info_path)
            return None
        return data

    def _write_info(self, info: dict[str, Any]) -> None:
        tmp = self.info_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.info_path)

    def _is_live(self, info: dict[str, Any]) -> bool:
        try:
            pid, port = int(info["pid"]), int(info["port"])
        except (TypeError, ValueError):
            return False
        return pid_alive(pid) and ping(port)

    def _spawn(self) -> dict[str, Any]:
        executable = self.executable or find_executable()
        if executable is None:
            raise EmbeddedMongoError(
                f"cannot start the embedded database: {EXECUTABLE_NAME!r} was found neither "
                f"next to {sys.executable} nor on PATH; {INSTALL_HINT}"
            )
        args = [
            executable,
            "--host",
            HOST,
            "--port",
            str(self.wanted_port),
            "--storage-path",
            str(self.storage_path),
            "--log-level",
            "INFO",
            *self.args,
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        logger.info("Starting SecantusDB for %s (log: %s)", self.storage_path, self.log_path)
        with open(self.log_path, "ab") as log_file:
            try:
                proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=self.storage_path,
                    # its own session: a Ctrl-C meant for the crawl must not stop
                    # the database before the crawl has written its last batch
                    start_new_session=True,
                )
            except OSError as exc:
                raise EmbeddedMongoError(
                    f"cannot run {executable!r} for the embedded database: {exc}; {INSTALL_HINT}"
                ) from exc
        self._proc = proc
        port = self._wait_until_ready(proc, offset)
        self.port, self.pid, self.reused = port, proc.pid, False
        logger.info("SecantusDB pid %d listening on %s:%d", proc.pid, HOST, port)
        return {
            "pid": proc.pid,
            "port": port,
            "host": HOST,
            "started_at": datetime.now(tz=UTC).isoformat(),
            "storage_path": str(self.storage_path),
            "executable": executable,
            "users": [],
        }

    def _wait_until_ready(self, proc: subprocess.Popen[bytes], offset: int) -> int:
        deadline = time.monotonic() + self.start_timeout
        port: int | None = None
        while True:
            if port is None:
                port = parse_listening_port(self._log_since(offset))
            if port is not None and ping(port, timeout=0.5):
                return port
            code = proc.poll()
            if code is not None:
                self._proc = None
                raise EmbeddedMongoError(
                    f"the embedded database (SecantusDB, data {self.storage_path}) exited with "
                    f"code {code} while starting; last lines of {self.log_path}:\n"
                    f"{self._log_tail(offset)}"
                )
            if time.monotonic() > deadline:
                self._terminate()
                what = "did not log its port" if port is None else f"did not answer on {port}"
                raise EmbeddedMongoError(
                    f"the embedded database (SecantusDB, data {self.storage_path}) {what} "
                    f"within {self.start_timeout:g}s; last lines of {self.log_path}:\n"
                    f"{self._log_tail(offset)}"
                )
            time.sleep(POLL_SECONDS)

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _log_tail(self, offset: int) -> str:
        lines = self._log_since(offset).splitlines()[-LOG_TAIL_LINES:]
        return "\n".join(lines) if lines else "(no output)"

    def _terminate(self) -> None:
        """Stop the server gracefully (SIGTERM: it checkpoints and exits),
        SIGKILL only when it does not exit in time."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            proc.terminate()
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                logger.error("SecantusDB pid %d ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait()
            logger.info("SecantusDB pid %d stopped (exit code %s)", proc.pid, proc.returncode)
            return
        pid, port = self.pid, self.port
        if pid is None or port is None or not pid_alive(pid):
            return
        if not ping(port):
            logger.warning(
                "Not stopping pid %d: it no longer answers on port %d (not our server?)", pid, port
            )
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                logger.error("SecantusDB pid %d ignored SIGTERM; killing it", pid)
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(POLL_SECONDS)
        logger.info("SecantusDB pid %d stopped", pid)
