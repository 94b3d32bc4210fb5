"""A small HTTP forward proxy for tests: ``CONNECT`` tunnels (HTTPS) and absolute-URI requests
(plain HTTP), each recorded in a journal, so a test proves which traffic went through a proxy."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from typing import Any
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        head, rest = b"", b""
        while b"\r\n\r\n" not in head:
            data = client.recv(65536)
            if not data or len(head) > HEAD_LIMIT:
                return
            head += data
        head, rest = head.split(b"\r\n\r\n", 1)
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = [line.split(":", 1) for line in header_lines if ":" in line]
        authorized = any(name.strip().lower() == "proxy-authorization" for name, _ in headers)
        self.server.proxy.record(method, target, authorized)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            try:
                upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urlsplit(target)
            if not url.hostname:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                upstream = socket.create_connection((url.hostname, url.port or 80), timeout=10)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            path = url.path or "/"
            if url.query:
                path += f"?{url.query}"
            kept = [
                f"{name}:{value}"
                for name, value in headers
                if name.strip().lower() not in ("proxy-authorization", "proxy-connection", "connection")
            ]
            # one request per upstream connection: the server closes after replying, and so do we
            lines = [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
            upstream.sendall("\r\n".join(lines).encode("latin-1"))
        if rest:
            upstream.sendall(rest)
        _pipe(client, upstream)
        upstream.close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 60)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if sock is a else a).sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: ForwardProxy


class ForwardProxy:
    """``with ForwardProxy() as proxy:`` serves on ``proxy.url``; ``proxy.journal()`` lists
    ``{"method", "target", "authorized"}`` per request (``target`` is ``host:port`` for a tunnel,
    the absolute URL otherwise; ``authorized``: a Proxy-Authorization header came)."""

    def __init__(self) -> None:
        self._journal: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self.url = ""

    def record(self, method: str, target: str, authorized: bool) -> None:
        with self._lock:
            self._journal.append({"method": method, "target": target, "authorized": authorized})

    def journal(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._journal)

    def clear(self) -> None:
        with self._lock:
            self._journal.clear()

    def start(self) -> str:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        threading.Thread(target=self._server.serve_forever, daemon=True, name="ForwardProxy").start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ForwardProxy:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
