"""nginx as the replica's HTTP proxy: the static tree of a built site, served
fast enough that the server is never what limits a crawl.

The Python replica (``newscrawl.replica.server``) is the reference; the
generated configuration mimics it for plain-http proxy requests:

- absolute-form requests (``GET http://finews.withounder.com/ HTTP/1.1``):
  nginx picks the ``server`` by the request line's host, one ``server`` per
  static tree, aliases in ``server_name``; any other host gets 502;
- ``/x/`` serves ``/x/index.html``, ``/x`` redirects to ``/x/`` when it is a
  folder and serves ``/x.html`` when that exists; paths are percent-decoded;
  the query string is ignored;
- a missing page is the tree's ``404.html`` with status 404 (the share host
  has none: a one-line 404 body, like the Python replica's);
- ``/NewsData/GetNewsText.do?id=CODE`` on the share hosts serves
  ``NewsData/GetNewsText.do/CODE.json``, an unknown code ``_notfound.json``
  with status 200.

https through ``CONNECT`` is not something stock nginx does: the bench crawls
http URLs (see :mod:`bench.handlers`).

The listening socket is bound here on port 0 (the OS picks the port) and
handed to nginx through its ``NGINX`` environment variable (the inherited
sockets of nginx's binary upgrade), so no port is ever guessed.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from newscrawl.replica.site import (
    HOST_TREES,
    MAIN_HOST,
    SHARE_HOST,
    SHARE_JSON_DIR,
    SHARE_NOT_FOUND_FILE,
    WWW_DIR,
)

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
#: the hosts the Python replica serves as its main site besides the real names
LOCAL_HOSTS = ("localhost", HOST)
CONTENT_TYPES = {
    "text/html": "html htm",
    "application/xml": "xml",
    "application/json": "json",
    "text/css": "css",
    "application/javascript": "js",
    "text/plain": "txt",
}
SHARE_NOT_FOUND_BODY = "<h1>404 Not Found</h1>\\n"


class NginxError(RuntimeError):
    """nginx could not be installed, configured or started."""


def ensure_nginx() -> str:
    """The nginx executable; installs Debian's ``nginx`` with apt-get when it
    is missing (``apt-get update`` first when the package is unknown)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise NginxError("nginx is not installed and there is no apt-get to install it")
    logger.warning("nginx not found: installing the Debian package (apt-get install -y nginx)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "nginx"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NginxError(f"apt-get install nginx failed:\n{done.stderr[-2000:]}")
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        raise NginxError("apt-get installed nginx but no nginx executable was found")
    return found


def _server_names(tree: str) -> list[str]:
    """The host names one static tree answers for.

    >>> _server_names("finews.withounder.com")
    ['finews.withounder.com', 'finews.zning.me', 'localhost', '127.0.0.1']
    >>> _server_names("finews.zning.xyz")
    ['finews.zning.xyz', 'choicewzp1.eastmoney.com']
    """
    names = [host for host, target in HOST_TREES.items() if target == tree]
    names.sort(key=lambda host: host != tree)
    if tree == MAIN_HOST:
        names += LOCAL_HOSTS
    return names


def render_config(
    site_dir: Path,
    port: int,
    run_dir: Path,
    *,
    workers: int = 1,
    access_log: Path | None = None,
) -> str:
    """The nginx.conf serving ``site_dir/www`` on ``127.0.0.1:port`` (see the
    module doc); logs, pid and temp files go under ``run_dir``. With
    ``access_log``, every request is logged there (``$msec $host $uri
    $status $bytes $request_time``, buffered)."""
    log = (
        f'access_log "{Path(access_log).absolute()}" timed buffer=256k flush=1s'
        if access_log is not None
        else "access_log off"
    )
    www = Path(site_dir).absolute() / WWW_DIR
    run = Path(run_dir).absolute()
    types = "\n".join(f"        {ctype} {exts};" for ctype, exts in CONTENT_TYPES.items())
    listen = f"listen {HOST}:{port}"
    servers = []
    for tree in sorted(set(HOST_TREES.values())):
        root = www / tree
        lines = [
            "    server {",
            f"        {listen};",
            f"        server_name {' '.join(_server_names(tree))};",
            f'        root "{root}";',
            "        location / { try_files $uri $uri/ $uri.html =404; }",
            "        location ~ /$ { try_files ${uri}index.html =404; }",
        ]
        if tree == SHARE_HOST:
            json_dir = "/" + SHARE_JSON_DIR
            lines += [
                f"        location = {json_dir} {{",
                f"            try_files {json_dir}/$share_id.json",
                f"                      {json_dir}/{SHARE_NOT_FOUND_FILE};",
                "        }",
                "        error_page 404 @notfound;",
                "        location @notfound {",
                "            types { }",
                "            default_type text/html;",
                f'            return 404 "{SHARE_NOT_FOUND_BODY}";',
                "        }",
            ]
        else:
            lines.append("        error_page 404 /404.html;")
        lines.append("    }")
        servers.append("\n".join(lines))
    # as root, nginx's workers would run as nobody, who may not read the tree
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""# generated by bench/nginx.py for {www}
{user}daemon off;
master_process on;
worker_processes {workers};
pid "{run}/nginx.pid";
error_log "{run}/nginx-error.log" warn;
events {{
    worker_connections 4096;
    multi_accept on;
}}
http {{
    types {{
{types}
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/html application/xml application/json text/css
                  application/javascript text/plain;
    log_format timed '$msec $host "$request_uri" $status $body_bytes_sent $request_time';
    {log};
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    open_file_cache max=20000 inactive=120s;
    open_file_cache_errors on;
    absolute_redirect off;
    client_body_temp_path "{run}/tmp/body";
    proxy_temp_path "{run}/tmp/proxy";
    fastcgi_temp_path "{run}/tmp/fastcgi";
    uwsgi_temp_path "{run}/tmp/uwsgi";
    scgi_temp_path "{run}/tmp/scgi";
    map $arg_id $share_id {{
        "~^[A-Za-z0-9_-]+$" $arg_id;
        default "{Path(SHARE_NOT_FOUND_FILE).stem}";
    }}
    # any host that is not a replica host: third party, never to be fetched
    server {{
        {listen} default_server;
        server_name _;
        default_type text/plain;
        return 502 "nginx replica: $host is a third-party host\\n";
    }}
{chr(10).join(servers)}
}}
"""


def child_pids(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc; empty elsewhere)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(stat.parent.name))
    return sorted(children)


class NginxProxy:
    """nginx serving a built site as the replica proxy, in its own process.

    ::

        with NginxProxy(site_dir, run_dir) as nginx:
            os.environ["http_proxy"] = nginx.proxy_url

    Attributes once started: ``port``, ``proxy_url``, ``pid``, ``config_path``.
    """

    def __init__(
        self,
        site_dir: Path,
        run_dir: Path,
        *,
        workers: int = 1,
        access_log: Path | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        self.site_dir = Path(site_dir)
        self.run_dir = Path(run_dir).absolute()
        self.workers = workers
        self.access_log = access_log
        self.start_timeout = start_timeout
        self.config_path = self.run_dir / "nginx.conf"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def proxy_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> NginxProxy:
        """Bind a loopback socket on a port from the OS, write the config, start
        nginx on that socket and wait until it answers."""
        executable = ensure_nginx()
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.run_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stderr = open(self.run_dir / "nginx-stderr.log", "ab")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, 0))
            sock.listen(4096)
            # nginx takes inherited sockets as they are: a blocking one would
            # hang a worker in accept() (O_NONBLOCK is shared with the child)
            sock.setblocking(False)
            self.port = int(sock.getsockname()[1])
            self.config_path.write_text(
                render_config(
                    self.site_dir,
                    self.port,
                    self.run_dir,
                    workers=self.workers,
                    access_log=self.access_log,
                ),
                encoding="utf-8",
            )
            check = subprocess.run(
                [executable, "-t", "-q", "-c", str(self.config_path), "-p", str(self.run_dir)],
                capture_output=True,
                text=True,
                check=False,
            )
            if check.returncode != 0:
                raise NginxError(f"nginx rejected {self.config_path}:\n{check.stderr}")
            env = {**os.environ, "NGINX": f"{sock.fileno()};"}
            self._proc = subprocess.Popen(
                [executable, "-c", str(self.config_path), "-p", str(self.run_dir)],
                env=env,
                pass_fds=[sock.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        finally:
            sock.close()
            stderr.close()
        self._wait_ready()
        logger.info("nginx pid %d serving %s on %s", self._proc.pid, self.site_dir, self.proxy_url)
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise NginxError(f"nginx exited with {code} while starting: {self._log_tail()}")
            conn = http.client.HTTPConnection(HOST, self.port, timeout=1.0)
            try:
                conn.request("GET", f"http://{MAIN_HOST}/robots.txt")
                conn.getresponse().read()
                return  # it answers, whatever the page
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise NginxError(f"nginx did not answer on {self.proxy_url}") from None
                time.sleep(0.05)
            finally:
                conn.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop nginx (SIGQUIT: graceful); after ``timeout``, SIGKILL the
        master and its workers (a killed master leaves its workers running)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            workers = child_pids(proc.pid)
            proc.send_signal(signal.SIGQUIT)  # nginx's graceful shutdown
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.error("nginx pid %d did not stop; killing it and %s", proc.pid, workers)
                proc.kill()
                proc.wait()
                for pid in workers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    def _log_tail(self, lines: int = 20) -> str:
        text = ""
        for name in ("nginx-stderr.log", "nginx-error.log"):
            path = self.run_dir / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text or "(no output)"

    def __enter__(self) -> NginxProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
