"""A stand-in for a network receipt printer: a TCP listener on 127.0.0.1 that records what it is sent.

A real ESC/POS printer on port 9100 reads bytes and answers nothing; so does this. Each connection's bytes
are recorded once the sender closes it (`connections`, `wait_for()`). It can be told to misbehave:
`refuse()` stops listening (connecting then fails with "connection refused") and `listen()` starts again on
the same port; `mode="reset"` reads `reset_after` bytes of each connection and then aborts it (RST), as a
printer that resets mid-job (the sender only notices if it still has bytes to send: send more than the
kernel buffers hold, a few MB). Use as a context manager or start()/stop().
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Literal

Mode = Literal["record", "reset"]


@dataclass(frozen=True)
class Connection:
    data: bytes
    peer: tuple[str, int]
    closed_by_peer: bool  # False when the listener cut it (reset mode)
    seq: int = 0  # the order in which connections were accepted


class EscposListener:
    def __init__(self, *, mode: Mode = "record", reset_after: int = 0) -> None:
        self.mode: Mode = mode
        self.reset_after = reset_after
        self._lock = threading.Condition()
        self._connections: list[Connection] = []
        self._accepted = 0
        self._sock: socket.socket | None = None
        self._port = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> EscposListener:
        if self._sock is None:
            self.listen()
        return self

    def stop(self) -> None:
        self.refuse()

    def __enter__(self) -> EscposListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def listen(self) -> None:
        """Listen on 127.0.0.1 (the port taken before, if any, so that a driver's config stays right)."""
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(16)
        sock.settimeout(0.05)
        self._port = int(sock.getsockname()[1])
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, args=(sock,), name="escpos-listener", daemon=True)
        self._thread.start()

    def refuse(self) -> None:
        """Stop listening: connecting now fails with "connection refused" until listen() is called."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        sock.close()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the listener has not started: call start()")
        return self._port

    # -------------------------------------------------------------------------------------------- records

    @property
    def connections(self) -> list[Connection]:
        """Finished connections in the order they were accepted (each is served by its own thread, and a later
        one may finish first)."""
        with self._lock:
            return sorted(self._connections, key=lambda c: c.seq)

    @property
    def received(self) -> list[bytes]:
        """The bytes of each finished connection, oldest first."""
        return [c.data for c in self.connections]

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[bytes]:
        """Wait until `count` connections have finished; their bytes (fewer if the timeout passed)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._connections) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            return [c.data for c in sorted(self._connections, key=lambda c: c.seq)]

    def clear(self) -> None:
        with self._lock:
            self._connections.clear()

    # ----------------------------------------------------------------------------------------- internals

    def _accept_loop(self, sock: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted += 1
            threading.Thread(target=self._serve, args=(conn, peer, self._accepted), daemon=True).start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int], seq: int) -> None:
        chunks: list[bytes] = []
        received = 0
        closed_by_peer = True
        with conn:
            conn.settimeout(10)
            while True:
                if self.mode == "reset" and received >= self.reset_after:
                    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    closed_by_peer = False
                    break
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        with self._lock:
            self._connections.append(Connection(b"".join(chunks), peer, closed_by_peer, seq))
            self._lock.notify_all()
