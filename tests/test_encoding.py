"""Encodings on real bytes: the real sample pages encoded to UTF-8, GBK and
GB18030, with and without a charset header, with lying headers and metas.

Each case goes through a real ``scrapy.http.HtmlResponse`` built from the
bytes (Scrapy's own detection: BOM, header, meta, auto-detect), then through
``EncodingMiddleware``; the text must parse to exactly the fields of the
original page. The table also records which cases Scrapy alone gets wrong
(the reason the middleware exists), and a real crawl over loopback HTTP
checks the same through the downloader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler

from newscrawl.extract.encoding import choose_encoding
from newscrawl.extract.post import PostFields, parse_post_page
from newscrawl.extract.share import parse_share_json
from newscrawl.middlewares import STATS_FIXED, EncodingMiddleware

GOLDEN = Path(__file__).resolve().parent / "golden"
SEED = GOLDEN / "2022-02-18-NW202202182281010830.html"
PAGES = [
    SEED,
    GOLDEN / "2021-12-08-202112082207168450.html",
    GOLDEN / "undated-202205262391921712.html",
]
META = '<meta charset="UTF-8">'
URL = "https://finews.withounder.com/x/2022/02/18/{}.html"


@dataclass(frozen=True)
class Case:
    """How a page is served: its bytes' encoding, the ``<meta>`` and header charsets."""

    name: str
    encoding: str
    meta: str | None  # the meta tag's charset (None: no meta tag)
    header: str | None  # the Content-Type charset (None: text/html alone)
    scrapy_alone_ok: bool  # does Scrapy's detection alone get the text right?
    meta_form: str = "charset"  # or "http-equiv"
    bom: bool = False

    def body(self, html: str) -> bytes:
        if self.meta is None:
            tag = ""
        elif self.meta_form == "http-equiv":
            tag = f'<meta http-equiv="Content-Type" content="text/html; charset={self.meta}">'
        else:
            tag = f'<meta charset="{self.meta}">'
        data = html.replace(META, tag, 1).encode(self.encoding)
        return b"\xef\xbb\xbf" + data if self.bom else data

    def content_type(self) -> str:
        return f"text/html; charset={self.header}" if self.header else "text/html"


CASES = [
    Case("utf8 meta only", "utf-8", "UTF-8", None, True),
    Case("utf8 no label", "utf-8", None, None, True),
    Case("utf8 header and meta", "utf-8", "UTF-8", "utf-8", True),
    Case("gbk meta only", "gbk", "gbk", None, True),
    Case("gbk meta gb2312", "gbk", "gb2312", None, True),
    Case("gbk meta http-equiv", "gbk", "gbk", None, True, meta_form="http-equiv"),
    Case("gb18030 meta only", "gb18030", "gb18030", None, True),
    Case("gbk header gbk", "gbk", "gbk", "GBK", True),
    Case("gbk no label", "gbk", None, None, True),
    Case("utf8 bom, header gbk", "utf-8", "UTF-8", "gbk", True, bom=True),
    # lying labels: Scrapy alone gives mojibake
    Case("gbk, header utf-8 over meta gbk", "gbk", "gbk", "utf-8", False),
    Case("gbk, template meta UTF-8", "gbk", "UTF-8", None, False),
    Case("gb18030, header utf-8, no meta", "gb18030", None, "utf-8", False),
    Case("gbk, header iso-8859-1", "gbk", "gbk", "iso-8859-1", False),
    Case("utf8, header gbk", "utf-8", "UTF-8", "gbk", False),
    Case("utf8, header gb2312, no meta", "utf-8", None, "gb2312", False),
]


def _fields(html: str, url: str) -> PostFields:
    fields = parse_post_page(html, url)
    assert fields is not None
    return fields


def _same(got: PostFields, want: PostFields) -> None:
    for name in ("title", "body", "summary", "authors", "correspondents", "source", "tags"):
        assert getattr(got, name) == getattr(want, name), name


def _response(case: Case, page: Path) -> tuple[HtmlResponse, str]:
    url = URL.format(page.stem.rsplit("-", 1)[-1])
    body = case.body(page.read_text(encoding="utf-8"))
    headers = {"Content-Type": case.content_type()}
    return HtmlResponse(url, body=body, headers=headers), url


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_text_comes_out_right(case: Case, page: Path) -> None:
    want = _fields(page.read_text(encoding="utf-8"), "https://finews.withounder.com/")
    response, url = _response(case, page)
    # what Scrapy alone does (why the middleware exists)
    alone = parse_post_page(response.text, url)
    alone_ok = alone is not None and (alone.title, alone.body) == (want.title, want.body)
    assert alone_ok == case.scrapy_alone_ok
    # with the middleware: always right, and honest pages untouched
    crawler = get_crawler(settings_dict={})
    middleware = EncodingMiddleware.from_crawler(crawler)
    fixed = middleware.process_response(response.request, response)  # type: ignore[arg-type]
    assert isinstance(fixed, TextResponse)
    _same(_fields(fixed.text, url), want)
    assert "\ufffd" not in fixed.text
    assert (fixed is response) == case.scrapy_alone_ok
    assert crawler.stats is not None
    assert crawler.stats.get_value(STATS_FIXED, 0) == (0 if case.scrapy_alone_ok else 1)


def test_the_middleware_can_be_switched_off() -> None:
    from scrapy.exceptions import NotConfigured

    with pytest.raises(NotConfigured):
        EncodingMiddleware.from_crawler(
            get_crawler(settings_dict={"NEWSCRAWL_ENCODING_ENABLED": False})
        )


def test_non_text_and_empty_responses_pass_through() -> None:
    from scrapy.http import Response

    middleware = EncodingMiddleware()
    binary = Response("https://finews.withounder.com/a.jpg", body=b"\xff\xd8\xff")
    assert middleware.process_response(binary.request, binary) is binary  # type: ignore[arg-type]
    empty = HtmlResponse("https://finews.withounder.com/", body=b"")
    assert middleware.process_response(empty.request, empty) is empty  # type: ignore[arg-type]


def test_a_utf8_page_cut_inside_a_character_stays_utf8() -> None:
    data = SEED.read_text(encoding="utf-8").encode("utf-8")
    cut = data[: data.index("某企业负责人说".encode()) + 2]  # inside 某 (3 bytes)
    assert choose_encoding(cut, "utf-8", ["utf-8"]) is None
    assert choose_encoding(cut, "gb18030", ["gbk"]) == "utf-8"


def test_latin1_pages_keep_their_honest_label() -> None:
    page = "<html><p>Café société, naïve résumé: déjà vu à Genève.</p></html>"
    assert choose_encoding(page.encode("cp1252"), "cp1252", ["cp1252"]) is None
    assert choose_encoding(page.encode("latin-1"), "cp1252", ["iso-8859-1", None]) is None


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_share_json_in_any_encoding(encoding: str) -> None:
    text = (
        "<p>本报记者 张环泽</p><p>峄城精准监督护航营商环境。</p>"
        '<p class="em_media">（文章来源：大众日报）</p>'
    )
    doc = {"text": text, "title": "峄城精准监督护航营商环境", "showtime": "2022-02-18 10:01:44"}
    data = json.dumps(doc, ensure_ascii=False).encode(encoding)
    share = parse_share_json(data)
    assert share is not None
    assert (share.title, share.body, share.authors, share.source) == (
        "峄城精准监督护航营商环境",
        "峄城精准监督护航营商环境。",
        ["张环泽"],
        "大众日报",
    )


# -- a real crawl over loopback HTTP ---------------------------------------------

SPIDER = """
import scrapy
from newscrawl.extract.post import parse_post_page

class EncodingSpider(scrapy.Spider):
    name = "encodings"
    custom_settings = {
        "DOWNLOADER_MIDDLEWARES": {"newscrawl.middlewares.EncodingMiddleware": 580},
        "ROBOTSTXT_OBEY": False,
        "LOG_LEVEL": "INFO",
    }

    def __init__(self, base, paths, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.base, self.paths = base, paths.split(",")

    async def start(self):
        for path in self.paths:
            yield scrapy.Request(self.base + path, cb_kwargs={"path": path})

    def parse(self, response, path):
        fields = parse_post_page(response.text, response.url)
        yield {"path": path, "encoding": response.encoding,
               "title": fields.title if fields else None, "body": fields.body if fields else None}
"""


@pytest.fixture
def served() -> Iterator[tuple[str, dict[str, Case]]]:
    """A loopback HTTP server answering ``/<n>.html`` with case n's bytes and header."""
    cases = {f"/{i}.html": case for i, case in enumerate(CASES)}
    html = SEED.read_text(encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            case = cases.get(self.path)
            if case is None:
                self.send_error(404)
                return
            body = case.body(html)
            self.send_response(200)
            self.send_header("Content-Type", case.content_type())
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", cases
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.crawl
def test_a_real_crawl_reads_every_case_right(
    served: tuple[str, dict[str, Case]], tmp_path: Path
) -> None:
    base, cases = served
    spider = tmp_path / "encoding_spider.py"
    spider.write_text(SPIDER)
    out = tmp_path / "items.jsonl"
    cmd = [
        sys.executable, "-m", "scrapy", "runspider", str(spider), "-o", str(out),
        "-a", f"base={base}", "-a", f"paths={','.join(cases)}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {row["path"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert set(items) == set(cases)
    want = _fields(SEED.read_text(encoding="utf-8"), "https://finews.withounder.com/")
    for path, case in cases.items():
        assert (items[path]["title"], items[path]["body"]) == (want.title, want.body), case.name
    fixed = sum(1 for case in cases.values() if not case.scrapy_alone_ok)
    assert f"'{STATS_FIXED}': {fixed}" in proc.stderr
