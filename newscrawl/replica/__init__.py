"""The replica of the finews site: posts, rendering, generator, builder and proxy server.

Rendering one post page (for golden fixtures)::

    from newscrawl.replica.posts import load_posts, sample_posts_dir
    from newscrawl.replica.site import Site
    from newscrawl.replica.render import render_post_page

    site = Site(load_posts(sample_posts_dir()))  # every post: gives rel=prev/next
    html = render_post_page(site.posts[0], site)  # render_post_page(post: Post, site: Site) -> str
    url = site.url(site.posts[0])                 # https://finews.withounder.com/<path>

``Site([post])`` is enough for a single page (it then has no prev/next links).

A whole site, served::

    from newscrawl.replica.build import build_site, build_site_from_posts
    from newscrawl.replica.process import ReplicaProcess

    build_site(out, articles=300, seed=1)  # posts/ share/ www/ expected.jsonl manifest.json
    with ReplicaProcess.start(out, access_log=out / "access.jsonl") as replica:
        ...  # http_proxy / https_proxy = replica.proxy_url; crawl https://finews.withounder.com/

or ``python -m newscrawl.replica build --articles N --seed S --out DIR [--now ISO]`` and
``python -m newscrawl.replica serve --site DIR --port 0 [--access-log FILE]``.

Modules: ``posts`` (post files, URLs), ``kramdown`` (Markdown as Jekyll renders it),
``site`` (ordering, hosts, settings), ``render`` (every page), ``share`` (the share
JSON), ``vocab``/``textgen``/``body``/``generate`` (the generator, with ground truth),
``reach`` (what a link-following crawler reaches), ``build``, ``server``, ``tls``,
``process``, ``cli``.
"""
