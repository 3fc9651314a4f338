"""The site's ASGI server: Uvicorn with the limits the site relies on, in one place.

`make run` (Procfile), the tests' live server and the benchmarks all start the site with
`python -m sersite.server --host H --port P`, so they run the same server the same way.

Uvicorn hands a request body to the application in pieces as they arrive and stops
reading the socket while more than 64 kB of it wait unread, so an upload never piles up
in the server; sersite.bodylimit refuses bodies past the upload limit.
"""

import argparse
import os

import uvicorn

# A request head (request line and headers) larger than this is refused with 400: h11
# buffers at most this much of an unfinished head, so endless headers cannot fill memory.
MAX_HEAD_BYTES = 64 * 1024
# WebSocket messages from pages are small JSON commands (cancel, subscribe).
MAX_WS_MESSAGE_BYTES = 64 * 1024
# Open connections (pages, sockets) served at once; past it new requests get 503. The
# channel layer's Redis pool allows 2000 connections, so the two limits agree.
MAX_CONNECTIONS = 2000


def config(host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        "sersite.asgi:application",
        host=host,
        port=port,
        # h11 bounds the request head (httptools does not); bodies stream either way.
        http="h11",
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        loop="uvloop",
        ws="websockets-sansio",
        ws_max_size=MAX_WS_MESSAGE_BYTES,
        limit_concurrency=int(os.environ.get("WEB_MAX_CONNECTIONS", MAX_CONNECTIONS)),
        # Django's ASGI handler has no lifespan events.
        lifespan="off",
        # Client addresses (login throttling) from X-Forwarded-For only when a proxy on
        # this machine sent the request; set FORWARDED_ALLOW_IPS for a proxy elsewhere.
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        server_header=False,
        # Ctrl-C: open WebSockets get this long to close before the server stops anyway.
        timeout_graceful_shutdown=5,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    uvicorn.Server(config(args.host, args.port)).run()


if __name__ == "__main__":
    main()
