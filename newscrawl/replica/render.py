"""The pages of the replica: post, home, category, folder, feed, 404, share.

Our own templates after the real site's layouts (theme "minimal" plus the
site's ``default``/``post``/``category`` layouts, jekyll-seo-tag and
jekyll-feed): see SITE.md "A post page, as served". Deliberate choices:

- ``og:description`` carries the rendered content HTML-escaped (the real
  layout inserts it unescaped, which would spill the body into ``<head>``).
- The ``<title>`` is ``TITLE - 金融消息`` (just ``金融消息`` when the title is
  empty, as jekyll-seo-tag does).
- ``<link rel="prev">``/``<link rel="next">`` point to the older/newer post of
  the whole site; ``article:published_time`` and the JSON-LD dates are
  omitted when the post has no date, and the stamp is then empty.
- Liquid does not escape: titles go into ``<h1>`` and listings as written.
- Listing entries (home, category and folder pages) mostly use the post's
  root-relative path; a stable few use the alias host, ``http://``,
  protocol-relative ``//`` or a ``?from=`` query (see :func:`listing_href`).
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime

from newscrawl.replica.kramdown import first_block, render_markdown
from newscrawl.replica.posts import SHANGHAI, Post, category_page_path, folder_page_path
from newscrawl.replica.site import ALIAS_HOST, MAIN_HOST, SITE_TITLE, Site, stable_fraction

_TAG_RE = re.compile(r"<[^>]*>")
_WS_RE = re.compile(r"[ \t\r\n\f\v]+")


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _escape_once(value: str) -> str:
    """Escape ``& < > "`` but keep existing entities (Liquid's ``escape_once``).

    >>> _escape_once('a &amp; b & <c> "d"')
    'a &amp; b &amp; &lt;c&gt; &quot;d&quot;'
    """
    value = re.sub(r"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);)", "&amp;", value)
    return value.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def excerpt_text(body: str) -> str:
    """The meta description: the first block, rendered, tags stripped, spaces squeezed.

    >>> excerpt_text("> 据悉，A。\\n\\n<p>B</p>")
    '据悉，A。'
    """
    rendered = render_markdown(first_block(body))
    return _WS_RE.sub(" ", _TAG_RE.sub("", rendered)).strip()


def _iso(value: datetime) -> str:
    return value.astimezone(SHANGHAI).isoformat()


def _head(
    *,
    title: str,
    path: str,
    og_description: str,
    description: str | None,
    og_type: str,
    site: Site,
    published: datetime | None = None,
    prev_url: str | None = None,
    next_url: str | None = None,
    json_ld_type: str = "WebPage",
    headline: str | None = None,
) -> str:
    canonical = f"https://{MAIN_HOST}{path}"
    full_title = f"{title} - {SITE_TITLE}" if title else SITE_TITLE
    lines = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "  <head>",
        '    <meta charset="UTF-8">',
        '    <meta http-equiv="X-UA-Compatible" content="IE=edge">',
        '    <meta name="viewport" content="width=device-width, initial-scale=1">',
        '    <meta content="ZNing" name="author" />',
        '    <meta property="og:type" content="website" />',
        f'    <meta property="og:title" content="{_attr(title)}">',
        f'    <meta property="og:description" content="{_attr(og_description)}">',
        '    <meta property="og:image" content="https://withounder.com/images/newzningnetcircle.png">',
        f'    <meta property="og:url" content="https://{ALIAS_HOST}{path}">',
        '    <meta name="theme-color" content="#1976D2">',
        '    <link rel="shortcut icon" href="https://withounder.com/images/favicon.ico">',
        "",
        "<!-- Begin Jekyll SEO tag v2.8.0 -->",
        f"<title>{_escape_once(full_title)}</title>",
        '<meta name="generator" content="Jekyll v3.9.3" />',
        f'<meta property="og:title" content="{_escape_once(title or SITE_TITLE)}" />',
        '<meta name="author" content="ZNing" />',
        '<meta property="og:locale" content="zh_CN" />',
    ]
    if description:
        lines += [
            f'<meta name="description" content="{_escape_once(description)}" />',
            f'<meta property="og:description" content="{_escape_once(description)}" />',
        ]
    lines += [
        f'<link rel="canonical" href="{canonical}" />',
        f'<meta property="og:url" content="{canonical}" />',
        f'<meta property="og:site_name" content="{SITE_TITLE}" />',
        f'<meta property="og:type" content="{og_type}" />',
    ]
    if published is not None:
        lines.append(f'<meta property="article:published_time" content="{_iso(published)}" />')
    if prev_url:
        lines.append(f'<link rel="prev" href="{prev_url}" />')
    if next_url:
        lines.append(f'<link rel="next" href="{next_url}" />')
    lines += [
        '<meta name="twitter:card" content="summary" />',
        f'<meta property="twitter:title" content="{_escape_once(title or SITE_TITLE)}" />',
    ]
    ld: dict[str, object] = {"@context": "https://schema.org", "@type": json_ld_type}
    if json_ld_type == "BlogPosting":
        ld["author"] = {"@type": "Person", "name": "ZNing"}
        if published is not None:
            ld["dateModified"] = _iso(published)
            ld["datePublished"] = _iso(published)
    if description:
        ld["description"] = description
    ld["headline"] = headline if headline is not None else (title or SITE_TITLE)
    if json_ld_type == "BlogPosting":
        ld["mainEntityOfPage"] = {"@type": "WebPage", "@id": canonical}
    ld["url"] = canonical
    ld_text = json.dumps(ld, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    lines += [
        '<script type="application/ld+json">',
        ld_text + "</script>",
        "<!-- End Jekyll SEO tag -->",
        "",
        f'    <link rel="stylesheet" href="/assets/css/style.css?v={site.config.build_revision}">',
        "    <!--[if lt IE 9]>",
        '    <script src="https://cdnjs.cloudflare.com/ajax/libs/html5shiv/3.7.3/html5shiv.min.js">'
        "</script>",
        "    <![endif]-->",
        '    <script type="text/JavaScript">',
        "      function AutoRefresh( t ) {",
        '       setTimeout("location.reload(true);", t);',
        "      }",
        "    </script>",
        "  </head>",
    ]
    return "\n".join(lines)


def _page(head: str, content: str) -> str:
    return (
        f"{head}\n"
        '  <body onload="JavaScript:AutoRefresh(60000);">\n'
        '    <div class="wrapper">\n'
        "      <header>\n"
        f'        <h1><a href="https://{MAIN_HOST}/">{SITE_TITLE}</a></h1>\n'
        "\n"
        "        <p></p>\n"
        "\n"
        "      </header>\n"
        "      <section>\n"
        "\n"
        f"      {content}\n"
        "\n"
        "      </section>\n"
        "      <footer>\n"
        "        <p>&copy; 2021</p>\n"
        "      </footer>\n"
        "    </div>\n"
        '    <script src="/assets/js/scale.fix.js"></script>\n'
        "  </body>\n"
        "</html>\n"
    )


def render_post_content(post: Post) -> str:
    """The post's body as HTML (what Jekyll calls the post's ``content``)."""
    return render_markdown(post.body)


def render_post_page(post: Post, site: Site) -> str:
    """The full HTML page of ``post`` as the site serves it.

    ``site`` gives the neighbours (``rel=prev/next``) and the build revision;
    a one-post ``Site([post])`` is enough for a single page.
    """
    content = render_post_content(post)
    path = site.path(post)
    prev_post, next_post = site.previous(post), site.next(post)
    head = _head(
        title=post.title,
        path=path,
        og_description=content,
        description=excerpt_text(post.body),
        og_type="article",
        site=site,
        published=post.date,
        prev_url=site.url(prev_post) if prev_post else None,
        next_url=site.url(next_post) if next_post else None,
        json_ld_type="BlogPosting",
    )
    stamp = post.date.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if post.date else ""
    tags = "</em> - <em>".join(post.tags)
    section = (
        f"<small>(GMT+8, Asia/Shanghai, CST) {stamp}</small>\n"
        f"<h1>{post.title}</h1>\n"
        "\n"
        f"{content}\n"
        "\n"
        f"  <small>tags: <em>{tags}</em></small>\n"
    )
    return _page(head, section)


def listing_href(site: Site, post: Post, page: str) -> str:
    """The ``href`` a listing page uses for ``post``.

    Mostly the root-relative path (what Jekyll's ``post.url`` gives); a
    stable ~20% use the alias host, ``http://``, ``//`` or a ``?from=``
    query, so a crawler meets every URL form of one post.
    """
    path = site.path(post)
    roll = stable_fraction(site.config.link_salt, page, post.file_name or post.id)
    if roll < 0.05:
        return f"https://{ALIAS_HOST}{path}"
    if roll < 0.10:
        return f"http://{MAIN_HOST}{path}"
    if roll < 0.15:
        return f"//{MAIN_HOST}{path}"
    if roll < 0.20:
        return f"{path}?from={page.split('/')[0]}"
    return path


def render_home(site: Site) -> str:
    """``/``: one ``<h2>`` + ``<ul>`` of the newest posts per tag (posts only)."""
    chunks: list[str] = []
    for tag, posts in site.tags().items():
        items = "\n".join(
            f'  <li><a href="{_attr(listing_href(site, p, "home"))}">{p.title}</a></li>'
            for p in posts[: site.config.home_per_tag]
        )
        chunks.append(f'<h2 id="{_attr(tag)}">{tag}</h2>\n<ul>\n{items}\n</ul>\n<hr />')
    head = _head(
        title="首页",
        path="/",
        og_description="\n".join(chunks),
        description=None,
        og_type="website",
        site=site,
    )
    return _page(head, "\n".join(chunks))


def render_category_page(site: Site, slug: str) -> str:
    """``/category/<slug>.html``: every post of the category.

    As in the real layout the ``<h2>`` is empty (it reads ``page.tags``,
    which a category page does not have) and the title is the hand-written
    one, which can be wrong.
    """
    posts = site.categories().get(slug, [])
    items = "\n".join(
        f'    <li><a href="{_attr(listing_href(site, p, "category/" + slug))}">{p.title}</a></li>'
        for p in posts
    )
    h2 = '<h2 id=""></h2>\n' if posts else ""
    content = f"{h2}<ul>\n{items}\n</ul>"
    head = _head(
        title=site.category_title(slug),
        path=category_page_path(slug),
        og_description=content,
        description=None,
        og_type="website",
        site=site,
    )
    return _page(head, content)


def render_folder_page(site: Site, slug: str) -> str:
    """``/<slug>/``: the older folder form of a category page (like the real ``/emnews/``).

    Lists the category's posts under the heading of its first tag, links
    opening in a new tab. The real ``/emnews/`` stopped at 20 posts; the
    replica lists them all (so that rolling news stays reachable).
    """
    posts = site.categories().get(slug, [])
    tag = posts[0].tags[0] if posts and posts[0].tags else slug
    items = "\n".join(
        f'      <li><a href="{_attr(listing_href(site, p, slug + "/"))}" target="_blank">'
        f"{p.title}</a></li>"
        for p in posts
    )
    content = f'<h2 id="{_attr(tag)}">{tag}</h2>\n    <ul>\n{items}\n    </ul>'
    head = _head(
        title=tag,
        path=folder_page_path(slug),
        og_description=content,
        description=None,
        og_type="website",
        site=site,
    )
    return _page(head, content)


def _xml(value: str) -> str:
    """Liquid's ``xml_escape``: every ``& < > " '`` escaped (entities included)."""
    return html.escape(value, quote=True)


def _cdata(value: str) -> str:
    """Text inside a CDATA section (jekyll-feed wraps content and summary so)."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render_feed(site: Site) -> str:
    """``/feed.xml``: jekyll-feed's Atom document of the newest posts (full content in CDATA)."""
    base = f"https://{MAIN_HOST}"
    entries: list[str] = []
    for post in site.newest(site.config.feed_limit):
        url = site.url(post)
        when = _iso(post.date) if post.date else _iso(site.config.now)
        content = render_post_content(post)
        cats = "".join(f'<category term="{_xml(c)}" />' for c in post.categories)
        tags = "".join(f'<category term="{_xml(t)}" />' for t in post.tags)
        entries.append(
            f'<entry xml:lang="zh-CN"><title type="html">{_xml(post.title)}</title>'
            f'<link href="{url}" rel="alternate" type="text/html" title="{_xml(post.title)}" />'
            f"<published>{when}</published><updated>{when}</updated><id>{url}</id>"
            f'<content type="html" xml:base="{url}">{_cdata(content.strip())}</content>'
            f"<author><name>ZNing</name></author>{cats}{tags}"
            f'<summary type="html">{_cdata(excerpt_text(post.body))}</summary></entry>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-CN">'
        '<generator uri="https://jekyllrb.com/" version="3.9.3">Jekyll</generator>'
        f'<link href="{base}/feed.xml" rel="self" type="application/atom+xml" />'
        f'<link href="{base}/" rel="alternate" type="text/html" hreflang="zh-CN" />'
        f"<updated>{_iso(site.config.now)}</updated><id>{base}/feed.xml</id>"
        f'<title type="html">{SITE_TITLE}</title><author><name>ZNing</name></author>'
        + "".join(entries)
        + "</feed>\n"
    )


def render_404(site: Site) -> str:
    """The 404 page: says 404 找不到页面 and sends the browser home by script."""
    content = (
        '<script language="JavaScript">\n'
        '  function myrefresh(){window.location="/";}\n'
        "  setTimeout('myrefresh()',5000);\n"
        "</script>\n"
        "\n"
        '<h2 id="404-找不到页面-page-not-found">404 找不到页面 Page Not Found</h2>\n'
        "\n"
        "<p>此页面不存在，您可能访问了过期的消息或者输入错误的网址。</p>\n"
        "\n"
        '<script language="JavaScript">\n'
        "    var url = window.location.pathname;\n"
        '    var url2 = url.split("/");\n'
        "    var url3 = 'https://github.com/zning1994/finews/blob/main/old_post/'"
        "+url2[2]+'-'+url2[3]+'-'+url2[4]+'-'+url2[5].split(\".\")[0]+'.md';\n"
        "    var hotText = '本站消息时效性为三天，三天前的消息已归档，"
        "如需要可以点击此处连接查看';\n"
        "    document.write(hotText.link(url3));\n"
        "</script>\n"
        '<p><br />\n如继续浏览，请访问<a href="/">首页</a></p>\n'
        "\n"
        '<h2 id="本页面将于5秒后跳转至首页">本页面将于5秒后跳转至首页</h2>'
    )
    head = _head(
        title="404",
        path="/404.html",
        og_description=content,
        description=None,
        og_type="website",
        site=site,
    )
    return _page(head, content)


def render_share_page() -> str:
    """``/html_News/NewsShare.html``: a script page; the article text is not in its HTML.

    Its script reads ``infoCode`` from the query and loads
    ``/NewsData/GetNewsText.do?id=<code>`` (keys ``title``, ``showtime``,
    ``mediaName`` and ``text``, or ``content`` for rolling news).
    """
    return """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, user-scalable=no">
<title>资讯分享</title>
<style>body{margin:0 16px;font-family:sans-serif}#newsInfo{color:#999}</style>
</head>
<body>
<h1 id="newsTitle"></h1>
<div id="newsInfo"><span id="newsTime"></span> <span id="newsSource"></span></div>
<div id="newsContent">正在加载…</div>
<script type="text/javascript">
(function () {
  function param(name) {
    var m = new RegExp("[?&]" + name + "=([^&#]*)", "i").exec(window.location.search);
    return m ? decodeURIComponent(m[1]) : "";
  }
  var xhr = new XMLHttpRequest();
  xhr.open("GET", "/NewsData/GetNewsText.do?id=" + encodeURIComponent(param("infoCode")), true);
  xhr.onreadystatechange = function () {
    if (xhr.readyState !== 4) { return; }
    var data = {};
    try { data = JSON.parse(xhr.responseText); } catch (e) { data = {}; }
    if (!data.title && !data.text && !data.content) {
      document.getElementById("newsContent").innerHTML = "资讯不存在或已删除";
      return;
    }
    document.title = data.title || document.title;
    document.getElementById("newsTitle").innerHTML = data.title || "";
    document.getElementById("newsTime").innerHTML = data.showtime || "";
    document.getElementById("newsSource").innerHTML = data.mediaName || "";
    document.getElementById("newsContent").innerHTML = data.text || data.content || "";
  };
  xhr.send();
})();
</script>
</body>
</html>
"""
