"""Pure ASGI middleware: security headers on every response, a body size cap, and no
more requests at work per process than the database pool has connections."""

import asyncio
import json

from starlette.exceptions import HTTPException

from app.settings import get_settings

SECURITY_HEADERS = [
    # No inline script anywhere: every script is a file under /static.
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in names
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimit:
    """413 for bodies over TUNELOOP_MAX_BODY_BYTES, declared or streamed."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = get_settings().max_body_bytes
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _too_large(send, limit)
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await _too_large(send, limit)


class BodyTooLarge(HTTPException):
    # An HTTPException, so that FastAPI, reading a chunked body when it is
    # raised, passes it on (a 413) instead of turning it into a 400.
    def __init__(self, limit: int):
        super().__init__(413, f"request body over {limit} bytes")


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class DatabaseConcurrency:
    """Requests beyond the pool's steady size wait here, holding neither a thread nor a connection.

    FastAPI runs a request's sync dependencies and its endpoint as separate thread
    jobs, and the session's connection stays checked out in between. With more
    requests in flight than connections, every thread can end up waiting for a
    connection while the requests holding them wait for a thread: a deadlock that
    only the pool timeout breaks, 30 s later, with an error.

    The steady size, not the overflow: overflow connections are closed when returned,
    so a load that swings around the steady size would open and close them all the
    time, each a new PostgreSQL backend that forks and plans every statement anew
    (with 1,000 raters that churn cost PostgreSQL more CPU than the ratings did). The
    overflow stays as headroom for a request that needs a second connection. The steady
    size is small on purpose (TUNELOOP_DB_POOL_SIZE, app.settings says why).
    """

    EXEMPT = ("/healthz", "/static/")

    def __init__(self, app):
        self.app = app
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(self.EXEMPT):
            return await self.app(scope, receive, send)
        if self._slots is None:  # made on first use, inside the server's event loop
            from app.db import get_engine, steady_connections

            self._slots = asyncio.Semaphore(steady_connections(get_engine()))
        async with self._slots:
            await self.app(scope, receive, send)
