"""Credentials stay with the origin they were configured for. A client's auth (a bearer token,
Basic credentials, an API key header) goes to its base URL's scheme, host and port, and to its
token endpoint; a paging link, a Location or a $ref that points anywhere else is refused, so a
hostile or compromised app cannot have our credentials for another app sent to a host it owns."""

from __future__ import annotations

from collections.abc import Iterable

import httpx


class CrossOrigin(httpx.RequestError):
    """A request to an origin the client was not configured for (never retried)."""


def origin_of(url: httpx.URL | str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host.lower(), port


def allowed_origins(urls: Iterable[str | None]) -> frozenset[tuple[str, str, int | None]]:
    return frozenset(origin_of(url) for url in urls if url and httpx.URL(url).host)


def check_origin(app: str, request: httpx.Request, allowed: frozenset[tuple[str, str, int | None]]) -> None:
    if allowed and origin_of(request.url) not in allowed:
        scheme, host, port = origin_of(request.url)
        raise CrossOrigin(
            f"{app}: refused to send credentials to {scheme}://{host}:{port}, "
            "an origin other than the configured base_url (a link, Location or $ref from the app)",
            request=request,
        )


class UnsafePath(httpx.RequestError):
    """A path built from an app's id that would leave the resource it names."""


def relative_path(app: str, path: str, *, query: bool = False) -> str:
    """`path` (relative to the base URL, built from ids an app gave us), refused when a segment
    could climb out of it: an account id like `../../x` would otherwise aim our credentials at
    another endpoint of the app, and one with `?` or `#` would change the request (`query`: the
    configured path may carry a query of its own, so only climbing is refused)."""
    lowered = path.lower()
    segments = path.partition("?")[0].split("/")
    if (
        any(s in (".", "..") for s in segments)
        or "\\" in path
        or (not query and ("?" in path or "#" in path))
        or "%2e" in lowered
        or "%2f" in lowered
        or "%5c" in lowered
        or not path.isprintable()
        or "://" in path
    ):
        raise UnsafePath(f"{app}: refused a path built from an id the app gave: {path[:80]!r}", request=None)
    return path
