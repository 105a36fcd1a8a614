"""The guard in front of llama.cpp's RPC server, and the tunnel a worker reaches it through.

llama.cpp's RPC protocol has no authentication: whoever connects may allocate memory and
run graphs there. So a part's RPC server listens on loopback only, and the hive's address
has a guard in front of it that lets a connection through only once the peer proved it
holds the part's token: the guard sends a random challenge, the peer answers its
HMAC-SHA256 under the token (the token never crosses the wire, and an answer overheard is
worth nothing for the next challenge). The worker's side is a tunnel on its own loopback
that answers the challenge; llama.cpp connects to the tunnel as to any RPC server.

Both sides copy bytes in threads, two per connection: the RPC traffic is one request and
one answer at a time per connection, and llama.cpp holds one connection per server.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["GREETING", "Guard", "Tunnel", "answer", "handshake"]

log = logging.getLogger("rbee.part")

GREETING = b"rbee-part/1\n"
_CHALLENGE = 32
_ANSWER = hashlib.sha256().digest_size
# A peer that has not answered the challenge by then is dropped.
HANDSHAKE_TIMEOUT = 5.0
# A link that stops carrying acknowledged bytes fails this soon (TCP_USER_TIMEOUT), not
# after the kernel's quarter of an hour of retransmissions: the job fails naming the hive.
LINK_TIMEOUT_MS = 5000


def answer(token: str, challenge: bytes) -> bytes:
    """What a peer holding ``token`` answers to ``challenge``."""
    return hmac.new(token.encode(), GREETING + challenge, hashlib.sha256).digest()


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the peer closed the connection during the handshake")
        data += chunk
    return data


def _watch_link(sock: socket.socket) -> None:
    """Notice a dead peer within seconds, busy or idle."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", 2),
        ("TCP_KEEPINTVL", 1),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", LINK_TIMEOUT_MS),
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def handshake(sock: socket.socket, token: str) -> None:
    """The peer's side: read the guard's challenge and prove holding ``token``."""
    sock.settimeout(HANDSHAKE_TIMEOUT)
    greeting = _read_exactly(sock, len(GREETING))
    if greeting != GREETING:
        raise ConnectionError("it is not an rbee part (a wrong greeting)")
    sock.sendall(answer(token, _read_exactly(sock, _CHALLENGE)))
    if _read_exactly(sock, 1) != b"\x01":
        raise ConnectionError("the part refused the token")
    sock.settimeout(None)


def _pipe(source: socket.socket, sink: socket.socket, done: Callable[[str], None]) -> None:
    """Copy until either side closes; then close both, and say why it ended."""
    why = "closed"
    try:
        while data := source.recv(1 << 20):
            sink.sendall(data)
    except OSError as exc:
        why = f"{exc.strerror or exc!r}"
    finally:
        done(why)  # first: which side ended first is told before the other side is woken
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _join(a: socket.socket, b: socket.socket, ended: Callable[[bool, str], None]) -> None:
    """Copy both ways between ``a`` and ``b``; once both stop, ``ended(b_first, why)``:
    whether ``b``'s side stopped first, and why it did."""
    first: list[tuple[bool, str]] = []
    lock = threading.Lock()

    def done_by(from_b: bool) -> Callable[[str], None]:
        def done(why: str) -> None:
            with lock:
                first.append((from_b, why))
                if len(first) == 2:
                    for sock in (a, b):
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                        sock.close()
                    ended(*first[0])

        return done

    for source, sink, from_b in ((a, b, False), (b, a, True)):
        threading.Thread(target=_pipe, args=(source, sink, done_by(from_b)), daemon=True).start()


def _serve(
    server: socket.socket, handle: Callable[[socket.socket, object], None], name: str
) -> None:
    """Accept on ``server`` until it is closed, each connection handled in its own thread
    (a peer slow to prove its token holds up no other)."""

    def accept() -> None:
        while True:
            try:
                sock, address = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(sock, address), daemon=True).start()

    threading.Thread(target=accept, name=name, daemon=True).start()


class Guard:
    """Listens on ``host``:``port`` (0: any free port) and lets through to the RPC server at
    127.0.0.1:``inner_port`` only the connections that prove holding ``token``. ``idle_for``
    says how long no connection has been open, since the first one (``None`` before any)."""

    def __init__(self, host: str, port: int, token: str, inner_port: int) -> None:
        self.token = token
        self.inner_port = inner_port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.server = socket.create_server((host, port), family=family, backlog=16)
        self.port = int(self.server.getsockname()[1])
        self.open = 0
        self.refused = 0
        self._first: float | None = None
        self._last_close = time.monotonic()
        self._lock = threading.Lock()
        _serve(self.server, self._admit, "guard")

    def idle_for(self) -> float | None:
        with self._lock:
            if self._first is None:
                return None
            return 0.0 if self.open else time.monotonic() - self._last_close

    def _admit(self, peer: socket.socket, address: object) -> None:
        challenge = secrets.token_bytes(_CHALLENGE)
        try:
            peer.settimeout(HANDSHAKE_TIMEOUT)
            peer.sendall(GREETING + challenge)
            said = _read_exactly(peer, _ANSWER)
            if not hmac.compare_digest(said, answer(self.token, challenge)):
                raise PermissionError("a wrong token")
            inner = socket.create_connection(("127.0.0.1", self.inner_port), timeout=10)
            peer.sendall(b"\x01")
        except (OSError, PermissionError) as exc:
            with self._lock:
                self.refused += 1
            log.warning("refused a connection from %s: %s", address, exc)
            peer.close()
            return
        for sock in (peer, inner):
            sock.settimeout(None)
        # Each hop forwards a message as it comes, in pieces: without NODELAY, Nagle holds
        # a piece back until the last is acknowledged (40 ms of delayed ACK, every token).
        inner.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _watch_link(peer)
        with self._lock:
            self.open += 1
            if self._first is None:
                self._first = time.monotonic()

        def ended(_: bool, __: str) -> None:
            with self._lock:
                self.open -= 1
                self._last_close = time.monotonic()

        _join(peer, inner, ended)

    def close(self) -> None:
        self.server.close()


class Tunnel:
    """The worker's end: a listener on its loopback that carries each connection to the
    part at ``endpoint`` after proving holding ``token``. ``on_lost(why)`` is called when
    a connection that carried the model's traffic breaks from the part's side."""

    def __init__(
        self, hive: str, endpoint: str, token: str, on_lost: Callable[[str], None]
    ) -> None:
        self.hive = hive
        self.endpoint = endpoint
        self.token = token
        self.on_lost = on_lost
        host, _, port = endpoint.rpartition(":")
        self.remote = (host.strip("[]"), int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.local = f"127.0.0.1:{self.server.getsockname()[1]}"
        _serve(self.server, self._carry, f"tunnel to {hive}")

    def check(self) -> None:
        """Connect once and prove the token, before llama.cpp (which aborts the process on
        a connection it cannot make) is pointed here; ``ConnectionError`` says why not."""
        sock = self._connect()
        sock.close()

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection(self.remote, timeout=HANDSHAKE_TIMEOUT)
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the part on hive {self.hive} at {self.endpoint}: "
                f"{exc.strerror or exc!r}"
            ) from None
        try:
            handshake(sock, self.token)
        except OSError as exc:
            sock.close()
            raise ConnectionError(
                f"the part on hive {self.hive} at {self.endpoint} refused this worker: {exc}"
            ) from None
        _watch_link(sock)
        return sock

    def _carry(self, local: socket.socket, _: object) -> None:
        try:
            remote = self._connect()
        except ConnectionError as exc:
            self.on_lost(str(exc))
            local.close()
            return
        local.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def ended(part_first: bool, why: str) -> None:
            # The part's side ending first (not llama.cpp closing its end) is a lost part.
            if part_first:
                self.on_lost(
                    f"lost the connection to the part on hive {self.hive} ({self.endpoint}): {why}"
                )

        _join(local, remote, ended)

    def close(self) -> None:
        self.server.close()
