"""The operator dashboard and the docs page: static pages (HTML, CSS, JS, no framework and no
CDN) that read this API from the browser. The shells hold no data; their API calls carry the
operator's key.

Files are read on their first request and kept for the life of the process, so importing
this module costs nothing at cold start.
"""

from __future__ import annotations

import hashlib
from functools import cache, lru_cache
from pathlib import Path

from chalicelib.domain.errors import AssetNotFound

HERE = Path(__file__).resolve().parent
# name -> Content-Type: the only files served as assets (never a path from the request)
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",  # the docs page's (/docs, docs.html)
    "docs.css": "text/css; charset=utf-8",
}
PAGES = ("index.html", "docs.html")  # served at /dashboard and /docs, not as assets
# The page is small and names its assets with a content hash (?v=...), so it is revalidated
# on every load and the assets can be cached by the browser for a day.
PAGE_CACHE_CONTROL = "no-cache"
ASSET_CACHE_CONTROL = "public, max-age=86400"


@cache
def _read(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _version() -> str:
    digest = hashlib.sha256()
    for name in sorted(ASSETS):
        digest.update(_read(name).encode())
    return digest.hexdigest()[:12]


def page(name: str = "index.html") -> tuple[str, dict[str, str | list[str]]]:
    """An HTML page (the dashboard's shell, or the docs page) and its headers. Its scripts
    and styles are files of their own: the pages' policy allows no inline script or style."""
    body = _read(name).replace("{{version}}", _version())
    return body, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": PAGE_CACHE_CONTROL}


def asset(name: str) -> tuple[str, dict[str, str | list[str]]]:
    """One asset of the page and its headers; 404 `asset_not_found` for any other name."""
    if name == "index.html":
        return page()
    if name not in ASSETS:
        raise AssetNotFound(f"No dashboard asset '{name[:100]}'. Assets: {', '.join(sorted(ASSETS))}.")
    return _read(name), {"Content-Type": ASSETS[name], "Cache-Control": ASSET_CACHE_CONTROL}
