"""Bounded reading of what apps and HR systems answer: a response body over the cap is refused
as it streams in (or at once, when its Content-Length says so), so one huge or endless answer
costs at most the cap in memory, and fails only the call that asked for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

DEFAULT_MAX_RESPONSE = 16 << 20  # bytes: far above any page of records, far below trouble
MAX_PAGES = 10000  # pages in one listing (a million records at 100 a page)


class ResponseTooLarge(httpx.DecodingError):
    """An answer over the configured cap (not transient: asking again gets the same answer).
    `answer_status`: the answer's status code, so a caller can tell a write the app took (2xx) whose
    answer was too large to read from one it refused. (Not `status`: that would make the error
    transient for `kit.http.is_transient`, and asking again gets the same answer.)"""

    def __init__(self, message: str, *, request: httpx.Request, status: int, cap: int):
        super().__init__(message, request=request)
        self.answer_status = status
        self.cap = cap


def too_large(app: str, request: httpx.Request, cap: int, status: int) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"{app}: the answer to {request.method} {request.url.path} is larger than {cap} bytes "
        "(max_response_bytes); refused",
        request=request,
        status=status,
        cap=cap,
    )


class CappedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, cap: int, error: ResponseTooLarge):
        self._stream = stream
        self._cap = cap
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._stream:
            size += len(chunk)
            if size > self._cap:
                await self._stream.aclose()
                raise self._error
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


async def capped(response: httpx.Response, request: httpx.Request, app: str, cap: int) -> httpx.Response:
    """`response` with its body limited to `cap` bytes; raises at once if it declares more."""
    error = too_large(app, request, cap, response.status_code)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        await response.aclose()
        raise error
    stream = response.stream
    if isinstance(stream, httpx.AsyncByteStream):
        response.stream = CappedStream(stream, cap, error)
    return response
