"""``python -m newscrawl.extract PAGE.html [--url URL] [--share JSON] [--repeat N]``

Prints the fields a saved post page gives (after ``merge_share``) as JSON, and
with ``--repeat`` the time per page on stderr. A debugging and timing aid.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from newscrawl.extract.post import parse_post_page
from newscrawl.extract.share import merge_share, parse_share_json

DEFAULT_URL = "https://finews.withounder.com/emnews/2022/01/01/000000000000000000.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newscrawl.extract", description=__doc__)
    parser.add_argument("page", type=Path, help="a saved post page (UTF-8 HTML)")
    parser.add_argument("--url", default=None, help="the page's URL (default: its canonical link)")
    parser.add_argument("--share", type=Path, default=None, help="its share JSON answer")
    parser.add_argument("--repeat", type=int, default=0, help="time this many extractions")
    args = parser.parse_args(argv)
    html = args.page.read_text(encoding="utf-8")
    share_data = args.share.read_bytes() if args.share else None
    url = args.url
    if url is None:
        first = parse_post_page(html, DEFAULT_URL)
        url = (first.canonical_url if first else None) or DEFAULT_URL
    fields = parse_post_page(html, url)
    if fields is None:
        sys.stderr.write("not a post page\n")
        return 1
    share = parse_share_json(share_data) if share_data is not None else None
    merged = merge_share(fields, share)
    sys.stdout.write(
        json.dumps(dataclasses.asdict(merged), ensure_ascii=False, indent=2, default=str)
    )
    sys.stdout.write("\n")
    if args.repeat > 0:
        start = time.perf_counter()
        for _ in range(args.repeat):
            post = parse_post_page(html, url)
            if post is not None:
                merge_share(post, parse_share_json(share_data) if share_data is not None else None)
        per_page = (time.perf_counter() - start) / args.repeat
        sys.stderr.write(f"{per_page * 1e6:.0f} µs per page ({args.repeat} runs)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
