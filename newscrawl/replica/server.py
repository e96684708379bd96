"""The replica's HTTP proxy: serves a built site for the real host names, on loopback.

A crawler sets ``http_proxy``/``https_proxy`` to ``http://127.0.0.1:PORT`` and
crawls the true URLs. The server accepts:

- absolute-form proxy requests (``GET http://finews.withounder.com/ HTTP/1.1``);
- origin-form requests with a ``Host`` header (``curl --resolve`` works too;
  a ``Host`` of ``localhost``/``127.0.0.1`` gets the main site);
- ``CONNECT host:443`` followed by TLS (one self-signed certificate covering
  every replica host), then any number of requests inside the tunnel.

Hosts: ``finews.withounder.com`` and its alias ``finews.zning.me`` share one
static tree; ``finews.zning.xyz`` and ``choicewzp1.eastmoney.com`` share the
other. ``/NewsData/GetNewsText.do?id=CODE`` answers the JSON of CODE; an
unknown or missing code gets ``{"success": false, ...}`` with status 200 (an
API that reports errors in its body, as the share service's did). Any other
host is third-party: the proxy answers 502 and logs it (the crawler must
never fetch one).

Static pages ignore the query string. Paths are percent-decoded, ``/x/``
serves ``/x/index.html``, ``/x`` redirects to ``/x/`` when it is a folder and
serves ``/x.html`` when that exists (as GitHub Pages does). Responses carry
``Content-Type`` with charset, ``Content-Length``, ``Last-Modified`` (the
file's mtime) and ``ETag`` (a hash of the bytes); a matching
``If-None-Match`` (or, without one, a not-older ``If-Modified-Since``) gets
304. Every request is written to the access log (JSON lines: ``time``,
``method``, ``url``, ``status``, ``bytes``, ``agent``, and ``fault`` when one
was applied; a reset connection is logged with status 0).

A site with a fault plan (``faults.json``, see :mod:`newscrawl.replica.faults`)
is served with its faults: error statuses for the first tries, resets, slow
answers, re-encoded pages, bad pages, traps and the plan's ``robots.txt``
(``ReplicaServer(..., faults=False)`` serves the clean site).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import html
import json
import logging
import os
import posixpath
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, unquote, urlsplit

from newscrawl.replica.faults import (
    CALENDAR_RE,
    CHARSET,
    EMPTY,
    ENORMOUS,
    GONE,
    GZIP_BOMB,
    HOP_RE,
    INVALID_JSON,
    JUMP_RE,
    JUMP_TARGET,
    PAGINATION_RE,
    REDIRECT_LOOP,
    RESET,
    SLOW,
    SOFT_404,
    STATUS,
    TRUNCATED,
    Fault,
    FaultPlan,
    calendar_previous,
    cut_json,
    enormous_page,
    fault_key,
    gzip_bomb,
    reencode,
    trap_page,
    truncate_html,
    url_key,
)
from newscrawl.replica.site import (
    ALIAS_HOST,
    HOST_TREES,
    MAIN_HOST,
    SHARE_HOST,
    SHARE_JSON_DIR,
    SHARE_NOT_FOUND_FILE,
    WWW_DIR,
)
from newscrawl.replica.tls import server_context

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})
SHARE_JSON_PATH = "/" + SHARE_JSON_DIR
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class StaticFile:
    """A file's bytes and validators, cached until its mtime or size changes."""

    mtime_ns: int
    size: int
    body: bytes
    etag: str
    last_modified: str


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Served:
    """A response and how the connection delivers it (faults)."""

    response: Response
    delay: float = 0.0  # seconds before answering
    reset: str | None = None  # "before": close without a byte; "mid": close half way through
    fault: str | None = None  # the fault applied (for the access log)


def parse_etags(value: str) -> set[str]:
    """The entity tags of an ``If-None-Match`` header (weak prefixes dropped).

    >>> sorted(parse_etags('W/"a", "b" ,*'))
    ['"a"', '"b"', '*']
    """
    tags = set()
    for part in value.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag:
            tags.add(tag)
    return tags


def split_host(value: str) -> str:
    """A ``Host`` header or authority without its port, lower case.

    >>> split_host("Finews.Withounder.com:443"), split_host("[::1]:80"), split_host("a.b.")
    ('finews.withounder.com', '::1', 'a.b')
    """
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")]
    return value.rsplit(":", 1)[0].rstrip(".") if ":" in value else value.rstrip(".")


class FileCache:
    """Static files read once and kept while their mtime and size are unchanged."""

    def __init__(self) -> None:
        self._files: dict[str, StaticFile] = {}

    def get(self, path: str) -> StaticFile | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None
        cached = self._files.get(path)
        if cached is not None and cached.mtime_ns == st.st_mtime_ns and cached.size == st.st_size:
            return cached
        with open(path, "rb") as fh:
            body = fh.read()
        entry = StaticFile(
            mtime_ns=st.st_mtime_ns,
            size=st.st_size,
            body=body,
            etag='"' + hashlib.sha1(body).hexdigest()[:20] + '"',
            last_modified=email.utils.formatdate(st.st_mtime, usegmt=True),
        )
        self._files[path] = entry
        return entry


class ReplicaServer:
    """Serves ``site_dir/www`` as a proxy for the replica hosts (see module doc)."""

    def __init__(
        self, site_dir: Path, access_log: Path | None = None, *, faults: bool = True
    ) -> None:
        self.site_dir = Path(site_dir)
        self.www = self.site_dir / WWW_DIR
        self.access_log_path = access_log
        self.files = FileCache()
        plan = FaultPlan.load(self.site_dir) if faults else None
        self.faults = FaultInjector(plan, self) if plan is not None else None
        self._log: IO[str] | None = None
        self._server: asyncio.Server | None = None
        self._tls: ssl.SSLContext | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, port: int = 0) -> int:
        """Bind 127.0.0.1:``port`` (0: any free port) and return the bound port."""
        self._tls = server_context(self.site_dir)
        if self.access_log_path is not None:
            self.access_log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.access_log_path, "a", encoding="utf-8", buffering=1)
        self._server = await asyncio.start_server(
            self._client, host="127.0.0.1", port=port, limit=MAX_HEAD_BYTES
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        logger.info("replica proxy serving %s on 127.0.0.1:%d", self.www, self.port)
        return self.port

    async def close(self) -> None:
        """Stop listening, close open connections and the access log."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- logging -----------------------------------------------------------

    def _access(
        self,
        method: str,
        url: str,
        status: int,
        size: int,
        agent: str | None = None,
        fault: str | None = None,
    ) -> None:
        if self._log is None:
            return
        record: dict[str, object] = {
            "time": datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": method,
            "url": url,
            "status": status,
            "bytes": size,
            "agent": agent,
        }
        if fault:
            record["fault"] = fault
        self._log.write(json.dumps(record, ensure_ascii=False) + "\n")

    # -- connections -------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._serve_connection(reader, writer, "http", None)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            logger.debug("connection ended: %r", exc)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve_connection(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        scheme: str,
        tunnel_host: str | None,
    ) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                await self._send(writer, Response(431, b"header too large\n", "text/plain"), False)
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                await self._send(writer, Response(400, b"bad request line\n", "text/plain"), False)
                return
            method, target, version = parts
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or "0")
            if length:
                await reader.readexactly(length)
            conn = headers.get("connection", "").lower()
            keep = "close" not in conn if version == "HTTP/1.1" else "keep-alive" in conn

            if method == "CONNECT":
                await self._connect(reader, writer, target)
                return
            if target.startswith(("http://", "https://")):
                parts_url = urlsplit(target)
                req_scheme, authority = parts_url.scheme, parts_url.netloc
                path_qs = parts_url.path or "/"
                if parts_url.query:
                    path_qs += "?" + parts_url.query
            else:
                req_scheme = scheme
                authority = headers.get("host", "") or (tunnel_host or "")
                path_qs = target
            url = f"{req_scheme}://{authority}{path_qs}"
            host = split_host(authority)
            response = self.route(method, host, path_qs, headers)
            served = (
                self.faults.apply(method, req_scheme, host, path_qs, response)
                if self.faults is not None
                else Served(response)
            )
            agent = headers.get("user-agent")
            if served.delay:
                await asyncio.sleep(served.delay)
            if served.reset is not None:
                sent = 0
                if served.reset == "mid":
                    sent = await self._send(writer, served.response, keep, partial=True)
                self._access(method, url, 0, sent, agent, served.fault)
                writer.transport.abort()
                return
            response = served.response
            sent = await self._send(writer, response, keep, head_only=method == "HEAD")
            self._access(method, url, response.status, sent, agent, served.fault)
            if not keep:
                return

    async def _connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str
    ) -> None:
        host = split_host(target)
        port = target.rsplit(":", 1)[1] if ":" in target else "443"
        if host not in HOST_TREES and host not in LOCAL_HOSTS:
            body = f"replica proxy: {host} is not a replica host\n".encode()
            sent = await self._send(writer, Response(502, body, "text/plain; charset=utf-8"), False)
            self._access("CONNECT", target, 502, sent)
            return
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await writer.drain()
        self._access("CONNECT", target, 200, 0)
        if port == "80":
            await self._serve_connection(reader, writer, "http", target)
            return
        assert self._tls is not None
        await writer.start_tls(self._tls)
        await self._serve_connection(reader, writer, "https", target)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        response: Response,
        keep: bool,
        head_only: bool = False,
        partial: bool = False,
    ) -> int:
        """Write the response; ``partial``: only half of the body (a reset follows)."""
        body = b"" if head_only or response.status == 304 else response.body
        if partial:
            body = body[: len(body) // 2]
        lines = [
            f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
            "Server: replica",
            f"Date: {email.utils.formatdate(time.time(), usegmt=True)}",
        ]
        if response.status != 304:
            lines.append(f"Content-Type: {response.content_type}")
            lines.append(f"Content-Length: {len(response.body)}")
        lines += [f"{k}: {v}" for k, v in response.headers]
        lines.append("Connection: keep-alive" if keep else "Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        return len(body)

    # -- routing -----------------------------------------------------------

    def route(self, method: str, host: str, path_qs: str, headers: dict[str, str]) -> Response:
        """The response to ``method host path_qs`` (pure apart from reading files)."""
        if method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", "text/plain; charset=utf-8")
        tree = HOST_TREES.get(host) or (MAIN_HOST if host in LOCAL_HOSTS else None)
        if tree is None:
            body = f"replica proxy: {host or '(no host)'} is a third-party host\n".encode()
            return Response(502, body, "text/plain; charset=utf-8")
        root = self.www / tree
        raw_path, _, query = path_qs.partition("?")
        path = unquote(raw_path, errors="replace")
        if not path.startswith("/"):
            path = "/" + path
        if tree == SHARE_HOST and path == SHARE_JSON_PATH:
            return self._share_json(root, query, headers)
        trailing = path.endswith("/")
        clean = posixpath.normpath(path)
        rel = clean.lstrip("/")
        fs_path = os.path.join(str(root), rel) if rel else str(root)
        if trailing or not rel:
            return self._file(os.path.join(fs_path, "index.html"), headers, root)
        if os.path.isdir(fs_path):
            location = raw_path + "/" + (("?" + query) if query else "")
            return Response(301, b"", "text/html; charset=utf-8", [("Location", location)])
        if not os.path.isfile(fs_path) and os.path.isfile(fs_path + ".html"):
            fs_path += ".html"
        return self._file(fs_path, headers, root)

    def _share_json(self, root: Path, query: str, headers: dict[str, str]) -> Response:
        code = (parse_qs(query).get("id") or [""])[0].strip()
        if code and "/" not in code and not code.startswith("."):
            found = self._file(str(root / SHARE_JSON_DIR / f"{code}.json"), headers, None)
            if found.status != 404:
                return found
        missing = self.files.get(str(root / SHARE_JSON_DIR / SHARE_NOT_FOUND_FILE))
        body = (
            missing.body
            if missing
            else b'{"success": false, "message": "infoCode not found", "text": null}'
        )
        return Response(200, body, CONTENT_TYPES[".json"])

    def _file(self, fs_path: str, headers: dict[str, str], root: Path | None) -> Response:
        entry = self.files.get(fs_path)
        if entry is None:
            return self._not_found(root)
        validators = [
            ("Last-Modified", entry.last_modified),
            ("ETag", entry.etag),
            ("Cache-Control", "max-age=600"),
        ]
        inm = headers.get("if-none-match")
        if inm is not None:
            tags = parse_etags(inm)
            if "*" in tags or entry.etag in tags:
                return Response(304, b"", headers=validators)
        else:
            ims = headers.get("if-modified-since")
            if ims:
                try:
                    since = email.utils.parsedate_to_datetime(ims).timestamp()
                except (TypeError, ValueError):
                    since = None
                if since is not None and entry.mtime_ns // 1_000_000_000 <= since:
                    return Response(304, b"", headers=validators)
        ext = os.path.splitext(fs_path)[1].lower()
        ctype = CONTENT_TYPES.get(ext, "application/octet-stream")
        return Response(200, entry.body, ctype, validators)

    def _not_found(self, root: Path | None) -> Response:
        page = self.files.get(str(root / "404.html")) if root is not None else None
        body = page.body if page else b"<h1>404 Not Found</h1>\n"
        return Response(404, body, "text/html; charset=utf-8")


class FaultInjector:
    """Applies a :class:`~newscrawl.replica.faults.FaultPlan` to the server's answers.

    Tries are counted per page (:func:`~newscrawl.replica.faults.fault_key`), so a
    fault ``times=2`` fails the first two fetches of the page in any URL form.
    """

    def __init__(self, plan: FaultPlan, server: ReplicaServer) -> None:
        self.plan = plan
        self.server = server
        self.rules: dict[str, Fault] = {}
        for fault in plan.faults:
            key = url_key(fault.url)
            if key is not None:
                self.rules[key] = fault
        self.links: dict[str, list[str]] = {}
        for page, hrefs in plan.links.items():
            key = url_key(page)
            if key is not None:
                self.links[key] = hrefs
        self.tries: dict[str, int] = {}
        self._bodies: dict[tuple[str, int], bytes] = {}

    def apply(
        self, method: str, scheme: str, host: str, path_qs: str, response: Response
    ) -> Served:
        """The answer to a request, given the fault-free ``response``."""
        tree = HOST_TREES.get(host) or (MAIN_HOST if host in LOCAL_HOSTS else None)
        if tree is None or method not in ("GET", "HEAD"):
            return Served(response)
        raw_path, _, query = path_qs.partition("?")
        path = unquote(raw_path, errors="replace")
        if tree == MAIN_HOST:
            if self.plan.https_only and (scheme != "https" or host != MAIN_HOST):
                location = f"https://{MAIN_HOST}{path_qs}"
                headers = [("Location", location)]
                return Served(Response(301, b"", headers=headers), fault="https_only")
            if path == "/robots.txt" and self.plan.robots:
                return Served(Response(200, self.plan.robots.encode(), CONTENT_TYPES[".txt"]))
            if self.plan.traps:
                trap = self._trap(scheme, host, path, query)
                if trap is not None:
                    return trap
        key = fault_key(tree, raw_path, query)
        tries = self.tries[key] = self.tries.get(key, 0) + 1
        rule = self.rules.get(key)
        if rule is None or (rule.times is not None and tries > rule.times):
            return Served(self._with_links(key, response))
        return self._fault(rule, scheme, host, raw_path, query, response)

    # -- faults ----------------------------------------------------------------------

    def _fault(
        self, rule: Fault, scheme: str, host: str, raw_path: str, query: str, response: Response
    ) -> Served:
        kind = rule.kind
        if kind == STATUS:
            status = rule.status or 503
            body = f"<html><body><h1>{status} {REASONS.get(status, '')}</h1></body></html>\n"
            headers = [("Retry-After", str(rule.retry_after))] if rule.retry_after else []
            return Served(Response(status, body.encode(), headers=headers), fault=kind)
        if kind == RESET:
            return Served(response, reset=rule.where or "before", fault=f"{kind}:{rule.where}")
        if kind == SLOW:
            return Served(response, delay=rule.delay or self.plan.slow_seconds, fault=kind)
        if kind in (GONE, SOFT_404):
            page = self.server._not_found(self.server.www / MAIN_HOST)
            return Served(Response(404 if kind == GONE else 200, page.body), fault=kind)
        if kind == REDIRECT_LOOP:
            if scheme == "https" and host == MAIN_HOST:
                location = f"http://{ALIAS_HOST}{raw_path}"
            else:
                location = f"https://{MAIN_HOST}{raw_path}"
            return Served(Response(301, b"", headers=[("Location", location)]), fault=kind)
        if response.status != 200:
            return Served(response)
        if kind == EMPTY:
            return Served(Response(200, b"", response.content_type), fault=kind)
        if kind == TRUNCATED:
            return Served(Response(200, truncate_html(response.body)), fault=kind)
        if kind == INVALID_JSON:
            return Served(Response(200, cut_json(response.body), response.content_type), fault=kind)
        if kind == CHARSET:
            data, label = reencode(response.body, rule.charset or "gbk")
            ctype = f"text/html; charset={rule.header}" if rule.header else "text/html"
            return Served(Response(200, data, ctype), fault=f"{kind}:{label}:{rule.header}")
        if kind == ENORMOUS:
            size = rule.size or 0
            cache = (kind, size)
            if cache not in self._bodies:
                self._bodies[cache] = enormous_page(response.body, size)
            return Served(Response(200, self._bodies[cache]), fault=kind)
        if kind == GZIP_BOMB:
            size = rule.size or 0
            cache = (kind, size)
            if cache not in self._bodies:
                self._bodies[cache] = gzip_bomb(size)
            headers = [("Content-Encoding", "gzip")]
            return Served(Response(200, self._bodies[cache], headers=headers), fault=kind)
        logger.warning("unknown fault kind %r for %s", kind, rule.url)
        return Served(response)

    def _with_links(self, key: str, response: Response) -> Response:
        hrefs = self.links.get(key)
        if not hrefs or response.status != 200 or b"</section>" not in response.body:
            return response
        extra = "".join(f'<li><a href="{html.escape(h)}">更多</a></li>' for h in hrefs)
        body = response.body.replace(
            b"</section>", f'<ul class="more">{extra}</ul>\n</section>'.encode(), 1
        )
        kept = [(k, v) for k, v in response.headers if k not in ("ETag", "Last-Modified")]
        return Response(200, body, response.content_type, kept)

    # -- traps -------------------------------------------------------------------------

    def _trap(self, scheme: str, host: str, path: str, query: str) -> Served | None:
        page = PAGINATION_RE.match(path)
        if page:
            n = int(page[1])
            html_text = trap_page(f"第{n}页", f"/page{n + 1}/")
            return Served(Response(200, html_text.encode()), fault="trap:pagination")
        day = CALENDAR_RE.match(path)
        if day:
            prev = calendar_previous(int(day[1]), int(day[2]), int(day[3]))
            html_text = trap_page(f"{day[1]}年{day[2]}月{day[3]}日", prev)
            return Served(Response(200, html_text.encode()), fault="trap:calendar")
        if HOP_RE.match(path):
            n = int((parse_qs(query).get("n") or ["0"])[0] or 0)
            location = f"{scheme}://{host}{path}?n={n + 1}"
            return Served(Response(302, b"", headers=[("Location", location)]), fault="trap:hop")
        if JUMP_RE.match(path):
            headers = [("Location", JUMP_TARGET)]
            return Served(Response(302, b"", headers=headers), fault="trap:jump")
        return None
