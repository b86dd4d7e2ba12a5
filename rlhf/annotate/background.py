"""Serve an ASGI app (the annotation server) on 127.0.0.1 in a background thread.

Used where one process both serves and uses the API: the demo pipeline, whose scripted teacher
posts labels through the real HTTP endpoints, and the tests.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class BackgroundServer:
    """uvicorn on a free loopback port; `with BackgroundServer(app) as s:` or `start()`/`close()`."""

    def __init__(self, app: Any, start_timeout_s: float = 30.0) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout_s = start_timeout_s
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> BackgroundServer:
        """Start serving; returns once uvicorn accepts connections (RuntimeError if it does not)."""
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the annotation server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
