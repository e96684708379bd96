"""Extraction: what a finews page *means*. Pure functions, no Scrapy, no network.

- ``post.parse_post_page(html, url) -> PostFields | None``: a post page's
  fields (``None`` for a page that is not a post: home, category, 404).
- ``share.parse_share_json(data) -> ShareFields | None``: the share JSON
  (``/NewsData/GetNewsText.do?id=<code>``).
- ``share.merge_share(post, share_or_None) -> PostFields``: every fallback
  (full text, title, date); call it for every post, with or without a share.

Helpers, each a small module with doctests: ``bylines`` (who wrote it),
``sources`` (which media), ``dates`` (aware UTC), ``body`` (the paragraph
walk), ``text`` (line cleaning, first sentence). ``python -m newscrawl.extract
PAGE.html`` prints what a saved page gives, and how long it takes.
"""
