"""A PostgreSQL wire-protocol proxy on a Unix socket that injects connection faults exactly
where a real network or server failure would hurt most:

* ``drop_at_commit_ack``: the server has committed, the proxy closes the connection instead
  of passing on the ``CommandComplete "COMMIT"`` message — the client never learns that its
  transaction committed (a lost commit acknowledgement);
* ``drop_before_commit``: the proxy closes the connection when the client sends ``COMMIT``
  (the server never gets it, so the transaction rolls back).

Each fault fires once per arming. Loopback only: both ends are Unix sockets.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from pathlib import Path


class PgProxy:
    def __init__(self, upstream_socket_dir: str, directory: Path, port: int = 5432) -> None:
        self.upstream = os.path.join(upstream_socket_dir, f".s.PGSQL.{port}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = str(self.directory / f".s.PGSQL.{port}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        self._lock = threading.Lock()
        self._drop_ack = 0
        self._drop_commit = 0
        self.fired: list[str] = []
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    # ------------------------------------------------------------------ faults
    def drop_at_commit_ack(self, times: int = 1) -> None:
        with self._lock:
            self._drop_ack += times

    def drop_before_commit(self, times: int = 1) -> None:
        with self._lock:
            self._drop_commit += times

    def _take(self, which: str) -> bool:
        with self._lock:
            if which == "ack" and self._drop_ack:
                self._drop_ack -= 1
            elif which == "commit" and self._drop_commit:
                self._drop_commit -= 1
            else:
                return False
            self.fired.append(which)
            return True

    def url(self, dbname: str, user: str = "postgres") -> str:
        return f"postgresql://{user}:@/{dbname}?host={self.directory}"

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        for c in list(self._conns):
            with contextlib.suppress(OSError):
                c.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    # ------------------------------------------------------------------ plumbing
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.connect(self.upstream)
            except OSError:
                client.close()
                continue
            self._conns += [client, server]
            pair = (client, server)
            threading.Thread(target=self._client_to_server, args=pair, daemon=True).start()
            threading.Thread(target=self._server_to_client, args=pair, daemon=True).start()

    @staticmethod
    def _kill(*socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    @staticmethod
    def _read_exact(sock: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        try:
            # startup message (no type byte): length + body
            head = self._read_exact(client, 4)
            if head is None:
                return
            (length,) = struct.unpack("!I", head)
            body = self._read_exact(client, length - 4)
            if body is None:
                return
            server.sendall(head + body)
            while True:
                kind = self._read_exact(client, 1)
                if kind is None:
                    return
                head = self._read_exact(client, 4)
                if head is None:
                    return
                (length,) = struct.unpack("!I", head)
                body = self._read_exact(client, length - 4) or b""
                if kind in (b"Q", b"P") and b"COMMIT" in body.upper()[:64] \
                        and self._take("commit"):
                    self._kill(client, server)
                    return
                server.sendall(kind + head + body)
        except OSError:
            pass
        finally:
            self._kill(client, server)

    def _server_to_client(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                kind = self._read_exact(server, 1)
                if kind is None:
                    return
                head = self._read_exact(server, 4)
                if head is None:
                    return
                (length,) = struct.unpack("!I", head)
                body = self._read_exact(server, length - 4) or b""
                if kind == b"C" and body.startswith(b"COMMIT\0") and self._take("ack"):
                    self._kill(client, server)
                    return
                client.sendall(kind + head + body)
        except OSError:
            pass
        finally:
            self._kill(client, server)
