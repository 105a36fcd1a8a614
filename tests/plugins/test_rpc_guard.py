"""The token guard in front of llama.cpp's RPC server, over real sockets on loopback: an
echo server stands where the RPC server would (the guard copies bytes, whatever they are)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from rbee_llamacpp.rpc_guard import GREETING, Guard, Tunnel, answer


def _echo_server() -> int:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1])


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def test_a_worker_holding_the_token_reaches_the_server_through_its_tunnel() -> None:
    guard = Guard("127.0.0.1", 0, "s3cret-token-of-the-part", _echo_server())
    lost: list[str] = []
    tunnel = Tunnel("h2", f"127.0.0.1:{guard.port}", "s3cret-token-of-the-part", lost.append)
    tunnel.check()
    host, port = tunnel.local.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"x" * 100_000)
        got = b""
        while len(got) < 100_000:
            got += conn.recv(65536)
    assert got == b"x" * 100_000
    assert lost == [] and guard.refused == 0


def test_a_wrong_token_and_a_raw_client_are_refused_before_the_server_sees_a_byte() -> None:
    seen: list[bytes] = []
    inner = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: seen.append(inner.accept()[0].recv(10)), daemon=True).start()
    guard = Guard("127.0.0.1", 0, "the-right-token-here", int(inner.getsockname()[1]))
    tunnel = Tunnel("h2", f"127.0.0.1:{guard.port}", "a-wrong-token-here", lambda _: None)
    with pytest.raises(ConnectionError, match="refused this worker"):
        tunnel.check()
    # A client speaking llama.cpp's protocol straight away (its hello) gets the greeting and
    # then a closed connection.
    with socket.create_connection(("127.0.0.1", guard.port), timeout=10) as raw:
        raw.sendall(b"\x0e" + b"\x00" * 40)
        data = b""
        try:
            while chunk := raw.recv(4096):
                data += chunk
        except ConnectionResetError:  # it closed with the client's bytes unread
            pass
    assert data.startswith(GREETING) and len(data) == len(GREETING) + 32
    time.sleep(0.2)
    assert seen == [] and guard.refused == 2


def test_the_answer_depends_on_the_challenge() -> None:
    assert answer("t", b"a" * 32) != answer("t", b"b" * 32)
    assert answer("t", b"a" * 32) != answer("u", b"a" * 32)


def test_a_part_that_goes_away_is_reported_as_lost_naming_its_hive() -> None:
    # A part that lets the worker in, then dies (its process killed: the kernel closes it).
    server = socket.create_server(("127.0.0.1", 0))

    def part_then_gone() -> None:
        conn, _ = server.accept()
        challenge = b"c" * 32
        conn.sendall(GREETING + challenge)
        assert conn.recv(64) == answer("token-of-a-part-xyz", challenge)
        conn.sendall(b"\x01")
        conn.recv(4)  # the model's first request, then the part is gone
        conn.close()

    threading.Thread(target=part_then_gone, daemon=True).start()
    lost: list[str] = []
    endpoint = f"127.0.0.1:{server.getsockname()[1]}"
    tunnel = Tunnel("h2", endpoint, "token-of-a-part-xyz", lost.append)
    host, port = tunnel.local.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"ping")
        assert conn.recv(10) == b""  # llama.cpp sees its connection end
    deadline = time.monotonic() + 5
    while not lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lost == [f"lost the connection to the part on hive h2 ({endpoint}): closed"]
