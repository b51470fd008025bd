"""HTTP helpers shared by the gateway's services: reading a request body under a size limit."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

# After the limit is hit, keep reading (and discarding) up to this much more so the client, still busy
# sending, can read the 413 instead of seeing its connection reset; beyond it, the connection is dropped.
DRAIN_LIMIT = 64 * 1024 * 1024


class BodyTooLarge(Exception):
    """The request body is larger than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or ``BodyTooLarge`` once more than ``limit`` bytes arrived.

    The stream is counted as it arrives, so a missing or lying ``Content-Length`` (chunked uploads)
    cannot get past the limit; a declared length above it is refused before reading anything.
    """
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                too_large = True
            if too_large:
                if size > limit + DRAIN_LIMIT:
                    break
                continue
            chunks.append(chunk)
    except ClientDisconnect:
        if too_large:
            raise BodyTooLarge(limit) from None
        raise
    if too_large:
        raise BodyTooLarge(limit)
    return b"".join(chunks)
