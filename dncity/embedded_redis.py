"""The embedded profile's Redis: fakeredis's TCP server (with Lua), shared by every process.

Streams, consumer groups and Lua scripts behave as on Redis, so events and rate limits run the same
code in the embedded profile as in production.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

from fakeredis import TcpFakeServer


@dataclass
class EmbeddedRedis:
    server: TcpFakeServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"redis://{host!s}:{port}/0"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start(host: str = "127.0.0.1", port: int = 0) -> EmbeddedRedis:
    server = TcpFakeServer((host, port or free_port(host)), server_type="redis")
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True)
    thread.start()
    return EmbeddedRedis(server, thread)
