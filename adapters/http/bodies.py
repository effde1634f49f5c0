"""Request bodies read with a cap, as they arrive.

``request.body()`` reads everything before anyone can look at its size, and a
chunked request has no ``Content-Length`` to check first: issue 9 grew the
server from 113 to 521 MB with one unsigned 200 MB chunked webhook. Here the
declared length is checked before reading (a non-numeric or negative one is
a 400, as HTTP says it is malformed, not a 500), and the stream is counted
while it is read, so a body over the cap is answered 413 the moment it
passes the cap: the rest is never read, and uvicorn closes the connection.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

#: more digits than any cap needs; a longer (zero-padded) number is refused
#: as too large before ``int`` sees it (int() refuses past 4,300 digits)
_MAX_LENGTH_DIGITS = 15


def _too_large() -> Response:
    return JSONResponse({"error": "body too large", "kind": "BodyTooLarge"}, status_code=413)


def _bad_request(why: str) -> Response:
    return JSONResponse({"error": why, "kind": "InvalidInput"}, status_code=400)


async def capped_body(request: Request, cap: int) -> bytes | Response:
    """The whole body if it is at most ``cap`` bytes, else the answer to send."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            return _bad_request("Content-Length must be a non-negative integer")
        if len(declared.lstrip("0")) > _MAX_LENGTH_DIGITS or int(declared) > cap:
            return _too_large()
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                return _too_large()
    except ClientDisconnect:  # nobody is left to answer; not a server error
        return _bad_request("client disconnected before the body ended")
    return bytes(body)
