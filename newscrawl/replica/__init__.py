"""The replica of the finews site: posts, rendering, generator, builder and proxy server.

Rendering one post page (for golden fixtures)::

    from newscrawl.replica.posts import load_posts, sample_posts_dir
    from newscrawl.replica.site import Site
    from newscrawl.replica.render import render_post_page

    site = Site(load_posts(sample_posts_dir()))  # every post: gives rel=prev/next
    html = render_post_page(site.posts[0], site)  # render_post_page(post: Post, site: Site) -> str
    url = site.url(site.posts[0])                 # https://finews.withounder.com/<path>

``Site([post])`` is enough for a single page (it then has no prev/next links).
"""
