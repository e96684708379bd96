"""What is specific to the finews site: hosts, URL forms, identity.

See the README's "The finews site" section (and SITE.md in the shared notes).
"""

from __future__ import annotations

import re

SITE = "finews"
#: the site itself
MAIN_HOST = "finews.withounder.com"
#: the same site under another name (every page's first og:url points here)
ALIAS_HOSTS = ("finews.zning.me",)
#: share / origin hosts: /html_News/NewsShare.html?infoCode=<code>
SHARE_HOSTS = ("finews.zning.xyz", "choicewzp1.eastmoney.com")
#: the share host we fetch the JSON from (the older host serves the same path)
SITE_HOSTS = (MAIN_HOST, *ALIAS_HOSTS)
ALLOWED_HOSTS = (*SITE_HOSTS, *SHARE_HOSTS)

HOME_URL = f"https://{MAIN_HOST}/"
FEED_PATH = "/feed.xml"
SHARE_PATH = "/html_News/NewsShare.html"
SHARE_JSON_PATH = "/NewsData/GetNewsText.do"
SITE_TIMEZONE = "Asia/Shanghai"

#: /<category segments>/<yyyy>/<mm>/<dd>/<id>.html
POST_PATH_RE = re.compile(
    r"^/(?P<cats>(?:[^/]+/)+?)(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<id>[^/]+)\.html$"
)
#: /category/<slug>.html
CATEGORY_PAGE_RE = re.compile(r"^/category/(?P<slug>[^/]+)\.html$")
#: article ids: NW + 18 digits (media news) or 18 digits (rolling news)
INFO_CODE_RE = re.compile(r"^(?:NW)?\d{18}$")
