"""The queen's orchestration end to end, in one process: its real routes and ``Queen``, a
fake hive and a fake worker that speak the real wire format (docs/api.md).

The queen's own API is reached through ``httpx.ASGITransport``; its outgoing connections (to
hives and workers) go through an ``httpx.MockTransport`` that routes each request to a fake
by host. The fakes answer what the real programs answer: a hive's ``GET /health``,
``GET /capabilities`` and ``POST /workers`` (an SSE stream of narration, then ``end`` with
the worker, or ``error``); a worker's ``POST /generate`` (an SSE stream of ``token`` events,
then ``end`` or ``error``, then ``[DONE]``). A worker's stream that the queen closes early is
how a real worker learns its job was cancelled; a stream that breaks off with
``RemoteProtocolError`` is what httpx raises when a worker dies mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import aconnect_sse
from litestar.response import ServerSentEventMessage

from rbee_core import create_plugin_manager
from rbee_core.errors import DeviceTooSmall, WorkerFailed
from rbee_core.events import DONE
from rbee_core.messages import HiveState
from rbee_core.narration import Narration
from rbee_core.peer_identity import HIVE_TOKEN_HEADER, new_secret, proof
from rbee_queen.app import create_app
from rbee_queen.orchestrator import Queen

MODEL = "smollm2-135m"
CPU = {"id": "cpu", "name": "CPU", "total_memory": 2**34, "free_memory": 2**33, "cores": 8}
GPU = {"id": "cuda:0", "name": "H200", "total_memory": 2**37, "free_memory": 2**36}


def sse(event: str, data: dict[str, Any], id_: int) -> bytes:
    """One event as rbee's daemons write it (rbee_http.sse)."""
    return ServerSentEventMessage(data=json.dumps(data), event=event, id=id_).encode()


DONE_MESSAGE = ServerSentEventMessage(data=DONE).encode()


class SseBody(httpx.AsyncByteStream):
    """A streamed answer. ``aclose`` before the last chunk is the client leaving (a real
    worker then stops generating: its ``on_close``)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks
        self.finished = False
        self.left_early = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            yield chunk
        self.finished = True

    async def aclose(self) -> None:
        if not self.finished:
            self.left_early.set()


def stream_answer(chunks: AsyncIterator[bytes]) -> tuple[httpx.Response, SseBody]:
    body = SseBody(chunks)
    headers = {"content-type": "text/event-stream"}
    return httpx.Response(200, headers=headers, stream=body), body


@dataclass
class FakeWorker:
    """A worker's ``POST /generate``: ``tokens``, then ``end``. With ``hang_after``, it
    sends that many tokens, then nothing until ``release`` is set (or the queen leaves);
    with ``die_after``, that many tokens (and the hang), then its connection breaks."""

    id: str
    host: str
    tokens: list[str] = field(default_factory=lambda: ["The", " capital", " is", " Paris", "."])
    die_after: int | None = None
    hang_after: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    streams: list[SseBody] = field(default_factory=list)
    hanging: asyncio.Event = field(default_factory=asyncio.Event)  # the queen read them all
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://{self.host}:9100"

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/generate"), request
        body = json.loads(request.content)
        self.requests.append(body)
        response, stream = stream_answer(self._events(body))
        self.streams.append(stream)
        return response

    async def _events(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        n = 0
        for n, text in enumerate(self.tokens, 1):
            if n - 1 == self.hang_after:  # the queen has read every token so far
                self.hanging.set()
                await self.release.wait()  # or the queen closes the stream: a cancel
            if n - 1 == self.die_after:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            yield sse("token", {"text": text}, n)
            await asyncio.sleep(0)  # one write per token, as a real worker does
        end = {
            "outcome": "completed",
            "finish_reason": "length",
            "prompt_tokens": 7,
            "completion_tokens": len(self.tokens),
        }
        yield sse("end", end, n + 1) + DONE_MESSAGE

    def info(self, hive: str, model: str, device: str) -> dict[str, Any]:
        """The worker as a hive reports it (``end`` of ``POST /workers``, heartbeats)."""
        return {
            "id": self.id,
            "hive": hive,
            "model": model,
            "backend": "llamacpp",
            "quantization": "Q4_1",
            "device": device,
            "url": self.url,
            "pid": 4250,
            "state": "idle",
            "slots": 4,
            "jobs_served": 0,
            "memory": 2**28,
            "reserved": 2**29,
            "keep_alive": 300.0,
            "idle_since": time.time(),
        }


@dataclass
class FakeHive:
    """A hive's API as the queen uses it; ``POST /workers`` starts ``worker``, or answers
    ``failure`` as its ``error`` event after some narration."""

    name: str
    devices: list[dict[str, Any]]
    worker: FakeWorker
    failure: dict[str, Any] | None = None
    spawns: list[dict[str, Any]] = field(default_factory=list)
    answers: bool = True  # False: it is gone (its connections are refused)
    nonce: str | None = None  # while it registers (rbee_core.peer_identity)
    secret: str = ""  # what the queen issued it

    @property
    def host(self) -> str:
        return f"{self.name}.test"

    @property
    def url(self) -> str:
        return f"http://{self.host}:8600"

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.answers:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        route = (request.method, request.url.path)
        if route == ("GET", "/health"):
            return httpx.Response(200, json={"status": "ok", "name": self.name, "pid": 4242})
        if route == ("GET", "/identity") and self.nonce is not None:
            challenge = request.url.params["challenge"]
            said = {"name": self.name, "proof": proof(self.nonce, self.name, challenge)}
            return httpx.Response(200, json=said)
        if route == ("GET", "/capabilities"):
            return httpx.Response(
                200,
                json={
                    "name": self.name,
                    "url": self.url,
                    "devices": self.devices,
                    "backends": {"llamacpp": ["gguf"]},
                    "models": [],
                    "workers": [],
                },
            )
        if route == ("POST", "/workers"):
            body = json.loads(request.content)
            self.spawns.append(body)
            return stream_answer(self._spawn(body))[0]
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no route"}})

    async def _spawn(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        model, device = body["model"], body["device"]
        loading = Narration("llm-worker-rbee", "model_load", f"loading {model} on {device}")
        yield sse("narration", loading.to_json(), 1)
        if self.failure is not None:
            yield sse("error", self.failure, 2) + DONE_MESSAGE
            return
        worker = {"outcome": "completed", "worker": self.worker.info(self.name, model, device)}
        yield sse("end", worker, 2) + DONE_MESSAGE


@dataclass
class Cluster:
    """A queen, a client of its API, and the fake hive behind each host the queen's
    connections reach (a hive's host, and its worker's)."""

    queen: Queen
    client: httpx.AsyncClient
    hives: dict[str, FakeHive] = field(default_factory=dict)

    async def join(self, hive: FakeHive) -> None:
        """The hive joins as a real one does: register, heartbeat, and the queen asks for
        its capabilities."""
        self.hives[hive.host] = hive
        self.hives[hive.worker.host] = hive
        hive.nonce = new_secret()
        joining = {"name": hive.name, "url": hive.url, "nonce": hive.nonce}
        answer = await self.client.post("/hives/register", json=joining)
        hive.nonce = None
        assert answer.status_code == 200, answer.text
        hive.secret = answer.json()["secret"]
        await self.heartbeat(hive)
        async with asyncio.timeout(5):
            # The queen asks for the hive's capabilities in a task of its own.
            while not self.queen.hives.get(hive.name).ready:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def heartbeat(self, hive: FakeHive) -> None:
        beat = {"name": hive.name, "url": hive.url, "workers": [], "models": []}
        headers = {HIVE_TOKEN_HEADER: hive.secret}
        answer = await self.client.post("/hives/heartbeat", json=beat, headers=headers)
        assert answer.status_code == 200, answer.text

    async def submit(self, **fields: Any) -> str:
        body = {"model": MODEL, "prompt": "Name the capital of France.", **fields}
        answer = await self.client.post("/jobs", json=body)
        assert answer.status_code == 201, answer.text
        job_id: str = answer.json()["job_id"]
        return job_id

    async def stream(self, job_id: str) -> list[tuple[str, Any]]:
        """The job's stream as a client reads it: (event, data) pairs, ``[DONE]`` last."""
        read: list[tuple[str, Any]] = []
        async with aconnect_sse(self.client, "GET", f"/jobs/{job_id}/stream") as source:
            async for message in source.aiter_sse():
                data = message.data if message.data == DONE else json.loads(message.data)
                read.append((message.event, data))
        return read

    async def record(self, job_id: str) -> dict[str, Any]:
        answer = await self.client.get(f"/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        record: dict[str, Any] = answer.json()
        return record


Test = Callable[[Cluster], Awaitable[None]]


def in_cluster(**queen_options: Any) -> Callable[[Test], Callable[[], None]]:
    """Run the test against a fresh queen (``queen_options``) in its own event loop."""

    def decorate(test: Test) -> Callable[[], None]:
        def run() -> None:
            asyncio.run(_run(test, queen_options))

        run.__name__ = run.__qualname__ = test.__name__
        run.__doc__ = test.__doc__
        return run

    return decorate


async def _run(test: Test, queen_options: dict[str, Any]) -> None:
    queen = Queen(create_plugin_manager(), url="http://127.0.0.1:8500", **queen_options)
    hives: dict[str, FakeHive] = {}

    async def route(request: httpx.Request) -> httpx.Response:
        """Every connection the queen opens reaches a fake, by host."""
        fake = hives.get(request.url.host)
        assert fake is not None, f"the queen called {request.url}, which nobody serves"
        if request.url.host == fake.worker.host:
            return await fake.worker.handle(request)
        return await fake.handle(request)

    await queen.http.aclose()
    queen.http = httpx.AsyncClient(transport=httpx.MockTransport(route))
    app: Any = create_app(queen, stop=lambda: None)  # an ASGI app (httpx types it narrower)
    api = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=api, base_url="http://127.0.0.1:8500")
    queen.start()  # what the app's start-up does: the hive monitor
    try:
        async with asyncio.timeout(20):
            await test(Cluster(queen, client, hives))
    finally:
        await client.aclose()
        await queen.close()


def terminal(stream: list[tuple[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The stream's last event before ``[DONE]``, checking that ``[DONE]`` ends it and that
    exactly one terminal event came."""
    assert stream[-1] == ("message", DONE), stream[-3:]
    assert [e for e, _ in stream].count("end") + [e for e, _ in stream].count("error") == 1
    event, data = stream[-2]
    assert event in ("end", "error"), stream[-3:]
    return event, data


def narration(stream: list[tuple[str, Any]]) -> list[str]:
    return [data["message"] for event, data in stream if event == "narration"]


@in_cluster()
async def test_a_job_is_placed_on_the_hive_and_its_tokens_come_back_in_order(c: Cluster) -> None:
    worker = FakeWorker("worker-4242-1", "worker-1.test")
    hive = FakeHive("alpha", [CPU], worker)
    await c.join(hive)
    job_id = await c.submit(max_tokens=5, temperature=0)
    stream = await c.stream(job_id)

    tokens = [data["text"] for event, data in stream if event == "token"]
    assert tokens == worker.tokens
    event, end = terminal(stream)
    assert (event, end["outcome"], end["completion_tokens"]) == ("end", "completed", 5)
    assert hive.spawns == [{"model": MODEL, "device": "cpu", "make_room": True}]
    (sent,) = worker.requests  # the job's request, without the placement fields
    assert (sent["model"], sent["prompt"], sent["max_tokens"], sent["temperature"]) == (
        MODEL,
        "Name the capital of France.",
        5,
        0,
    )
    assert not {"hive", "device", "backend", "keep_alive"} & set(sent)
    said = narration(stream)
    assert any("picked cpu on alpha" in m for m in said), said
    assert f"loading {MODEL} on cpu" in said  # the hive's narration, relayed into the job
    record = await c.record(job_id)
    assert record["state"] == "completed" and record["worker"] == worker.id
    assert record["text"] == "The capital is Paris."


@in_cluster()
async def test_placement_picks_the_hive_the_policy_prefers_and_reuses_its_worker(
    c: Cluster,
) -> None:
    cpu_only = FakeHive("alpha", [CPU], FakeWorker("worker-1-1", "worker-a.test"))
    with_gpu = FakeHive("beta", [CPU, GPU], FakeWorker("worker-2-1", "worker-b.test"))
    await c.join(cpu_only)
    await c.join(with_gpu)
    first = await c.submit()
    assert terminal(await c.stream(first))[0] == "end"
    assert cpu_only.spawns == [] and with_gpu.spawns == [
        {"model": MODEL, "device": "cuda:0", "make_room": True}
    ]
    assert (await c.record(first))["worker"] == "worker-2-1"

    second = await c.stream(await c.submit())  # the worker has the model: no new start
    assert terminal(second)[0] == "end"
    assert len(with_gpu.spawns) == 1 and len(with_gpu.worker.requests) == 2
    assert any("worker-2-1 already has smollm2-135m loaded" in m for m in narration(second))


@in_cluster()
async def test_a_worker_that_cannot_start_fails_the_job_with_worker_failed(c: Cluster) -> None:
    failed = WorkerFailed(
        "the worker could not start: llama_model_load: tensor data is not within the file "
        "bounds; log: /state/logs/worker-4242-1.log"
    )
    hive = FakeHive("alpha", [CPU], FakeWorker("w", "w.test"), failure=failed.to_dict()["error"])
    await c.join(hive)
    job_id = await c.submit()
    stream = await c.stream(job_id)

    event, error = terminal(stream)
    assert event == "error"
    assert error == failed.to_dict()["error"]  # code, message and details as the hive sent
    assert error["code"] == "worker_failed"
    assert not hive.worker.requests
    assert (await c.record(job_id))["result"]["code"] == "worker_failed"


@in_cluster()
async def test_a_hive_error_keeps_its_details_on_the_way_to_the_job(c: Cluster) -> None:
    too_small = DeviceTooSmall("smollm2-135m needs 392 MB; cpu has 100 MB", need=392, free=100)
    hive = FakeHive("alpha", [CPU], FakeWorker("w", "w.test"), too_small.to_dict()["error"])
    await c.join(hive)
    event, error = terminal(await c.stream(await c.submit()))
    assert (event, error) == ("error", too_small.to_dict()["error"])


@in_cluster(max_retries=0)  # the job does not move: it fails with the loss
async def test_a_worker_lost_mid_stream_fails_the_job_with_worker_lost(c: Cluster) -> None:
    worker = FakeWorker("worker-4242-1", "worker-1.test", die_after=2)
    await c.join(FakeHive("alpha", [CPU], worker))
    job_id = await c.submit()
    stream = await c.stream(job_id)

    assert [data["text"] for event, data in stream if event == "token"] == worker.tokens[:2]
    event, error = terminal(stream)
    assert (event, error["code"]) == ("error", "worker_lost"), error
    assert "worker-4242-1" in error["message"] and "RemoteProtocolError" in error["message"]
    assert (error["hive"], error["worker"]) == ("alpha", "worker-4242-1")
    assert "worker-4242-1" not in c.queen.workers  # the next job gets another worker


@in_cluster(max_retries=0)  # the job does not move: it fails with the loss
async def test_a_worker_lost_with_its_hive_fails_the_job_with_hive_unreachable(
    c: Cluster,
) -> None:
    """A killed hive takes its workers with it: the broken stream may reach the queen
    before the missing heartbeats do, and the job still names the hive as the cause."""
    worker = FakeWorker("worker-4242-1", "worker-1.test", hang_after=2, die_after=2)
    hive = FakeHive("alpha", [CPU], worker)
    await c.join(hive)
    job_id = await c.submit()
    await worker.hanging.wait()
    hive.answers = False  # it dies, and its worker with it (the queen's monitor is slower)
    worker.release.set()
    event, error = terminal(await c.stream(job_id))
    assert (event, error["code"]) == ("error", "hive_unreachable"), error
    assert (error["hive"], error["worker"]) == ("alpha", "worker-4242-1")
    assert "Connection refused" in error["message"] and "RemoteProtocolError" in error["message"]


@in_cluster()
async def test_cancelling_a_running_job_closes_the_workers_stream(c: Cluster) -> None:
    worker = FakeWorker("worker-4242-1", "worker-1.test", hang_after=2)
    await c.join(FakeHive("alpha", [CPU], worker))
    job_id = await c.submit()
    await worker.hanging.wait()
    answer = await c.client.delete(f"/jobs/{job_id}")
    assert answer.status_code == 200 and answer.json()["state"] == "cancelled", answer.text

    assert worker.streams[0].left_early.is_set()  # the worker stops generating: its cancel
    stream = await c.stream(job_id)
    event, end = terminal(stream)
    assert (event, end["outcome"], end["finish_reason"]) == ("end", "cancelled", "cancelled")
    assert [data["text"] for event, data in stream if event == "token"] == worker.tokens[:2]
    assert c.queen.workers[worker.id].queue.load == 0  # its slot is free for the next job


@in_cluster()
async def test_a_job_past_its_deadline_fails_with_deadline_exceeded(c: Cluster) -> None:
    worker = FakeWorker("worker-4242-1", "worker-1.test", hang_after=1)
    await c.join(FakeHive("alpha", [CPU], worker))
    job_id = await c.submit(timeout=0.5)
    event, error = terminal(await c.stream(job_id))
    assert (event, error["code"]) == ("error", "deadline_exceeded"), error
    assert worker.streams[0].left_early.is_set()


# max_retries=0: the job does not move; it fails with the loss
@in_cluster(heartbeat=0.05, hive_timeout=0.3, max_retries=0)
async def test_a_job_on_a_hive_that_stops_heartbeating_fails_with_hive_unreachable(
    c: Cluster,
) -> None:
    worker = FakeWorker("worker-4242-1", "worker-1.test", hang_after=2)
    hive = FakeHive("alpha", [CPU], worker)
    await c.join(hive)

    async def heartbeats() -> None:
        while hive.answers:
            await c.heartbeat(hive)
            await asyncio.sleep(0.05)

    beating = asyncio.create_task(heartbeats())
    job_id = await c.submit()
    await worker.hanging.wait()
    hive.answers = False  # it dies: no more heartbeats, its connections are refused
    await beating
    event, error = terminal(await c.stream(job_id))
    assert (event, error["code"]) == ("error", "hive_unreachable"), error
    assert (error["hive"], error["worker"]) == ("alpha", "worker-4242-1")
    assert "alpha" in error["message"] and "worker-4242-1" in error["message"]
    assert c.queen.hives.get("alpha").state == "unreachable"


# -- a hive is who it says (rbee_core.peer_identity) --------------------------------------


async def _register(c: Cluster, hive: FakeHive, nonce: str, **headers: str) -> httpx.Response:
    body = {"name": hive.name, "url": hive.url, "nonce": nonce}
    return await c.client.post("/hives/register", json=body, headers=headers)


@in_cluster()
async def test_a_heartbeat_without_the_hives_secret_is_refused_and_changes_nothing(
    c: Cluster,
) -> None:
    hive = FakeHive("alpha", [CPU], FakeWorker("worker-4242-1", "worker-1.test"))
    await c.join(hive)
    record = c.queen.hives.get("alpha")
    evil = {"id": "w-evil", "hive": "alpha", "model": MODEL, "device": "cpu", "url": "http://x:9"}
    forged = {"name": "alpha", "url": hive.url, "workers": [evil], "models": ["stolen"]}
    for headers in ({}, {HIVE_TOKEN_HEADER: "guess"}, {HIVE_TOKEN_HEADER: hive.secret + "x"}):
        answer = await c.client.post("/hives/heartbeat", json=forged, headers=headers)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "hive_identity"
        assert "X-Rbee-Hive-Token" in answer.json()["error"]["message"]
    assert record.workers == [] and record.models == [] and "w-evil" not in c.queen.workers
    await c.heartbeat(hive)  # its own still count


@in_cluster()
async def test_a_url_is_taken_as_a_hive_only_once_the_hive_there_proves_the_nonce(
    c: Cluster,
) -> None:
    hive = FakeHive("alpha", [CPU], FakeWorker("worker-4242-1", "worker-1.test"))
    await c.join(hive)
    secret = hive.secret
    # A key holder registers alpha's own URL again, to be issued a secret: alpha is not
    # registering, so it proves nothing (this fake has no /identity then).
    answer = await _register(c, hive, new_secret())
    assert answer.status_code == 403, answer.text
    assert "answered GET /identity with not_found" in answer.json()["error"]["message"]
    # ... nor while it is: the key holder's nonce is not the one alpha holds.
    hive.nonce = new_secret()
    answer = await _register(c, hive, new_secret())
    assert answer.status_code == 403, answer.text
    assert "did not prove" in answer.json()["error"]["message"]
    # Another name at alpha's URL: alpha answers there.
    body = {"name": "impostor", "url": hive.url, "nonce": hive.nonce}
    answer = await c.client.post("/hives/register", json=body)
    assert answer.status_code == 403 and "hive 'alpha' answers there" in answer.text
    assert c.queen.hives.find("impostor") is None
    assert c.queen.hives.get("alpha").secret == secret and c.queen.hives.get("alpha").ready
    # alpha itself restarting at its URL: a new secret, and the old one stops working.
    answer = await _register(c, hive, hive.nonce)
    assert answer.status_code == 200, answer.text
    assert answer.json()["secret"] != secret
    old = {"name": "alpha", "url": hive.url}
    answer = await c.client.post("/hives/heartbeat", json=old, headers={HIVE_TOKEN_HEADER: secret})
    assert answer.status_code == 403


@in_cluster()
async def test_the_queens_own_url_is_never_a_hive(c: Cluster) -> None:
    for url in ("http://127.0.0.1:8500", "http://localhost:8500/"):
        body = {"name": "evil", "url": url, "nonce": new_secret()}
        answer = await c.client.post("/hives/register", json=body)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["field"] == "url" and "is the queen's own address" in error["message"]
    assert c.queen.hives.find("evil") is None


@in_cluster()
async def test_an_unreachable_hives_name_is_kept_from_another_url_but_for_the_queens_own_hive(
    c: Cluster,
) -> None:
    from rbee_core.peer_identity import HIVE_LAUNCH_TOKEN_HEADER

    hive = FakeHive("alpha", [CPU], FakeWorker("worker-4242-1", "worker-1.test"))
    await c.join(hive)
    c.queen.hives.get("alpha").state = HiveState.UNREACHABLE
    moved = FakeHive("alpha2", [CPU], FakeWorker("worker-4242-2", "worker-2.test"))
    moved.name = "alpha"  # the same name, served at alpha2.test
    moved_url = "http://alpha2.test:8600"
    c.hives["alpha2.test"] = moved
    moved.nonce = new_secret()
    body = {"name": "alpha", "url": moved_url, "nonce": moved.nonce}
    answer = await c.client.post("/hives/register", json=body)
    assert answer.status_code == 409, answer.text
    assert "its name stays bound to that URL" in answer.json()["error"]["message"]
    # The hive the queen started as alpha, back on another port, shows its launch token.
    token = c.queen.fleet.launch_token("alpha")
    answer = await c.client.post(
        "/hives/register", json=body, headers={HIVE_LAUNCH_TOKEN_HEADER: "guess"}
    )
    assert answer.status_code == 409, answer.text
    answer = await c.client.post(
        "/hives/register", json=body, headers={HIVE_LAUNCH_TOKEN_HEADER: token}
    )
    assert answer.status_code == 200, answer.text
    assert c.queen.hives.get("alpha").url == moved_url


@in_cluster()
async def test_a_heartbeat_over_a_cap_is_refused_naming_the_field(c: Cluster) -> None:
    hive = FakeHive("alpha", [CPU], FakeWorker("worker-4242-1", "worker-1.test"))
    await c.join(hive)
    beat = {"name": "alpha", "url": hive.url, "models": ["m"] * 1001}
    headers = {HIVE_TOKEN_HEADER: hive.secret}
    answer = await c.client.post("/hives/heartbeat", json=beat, headers=headers)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["field"], error["maximum"]) == ("models", 1000), error
    assert c.queen.hives.get("alpha").models == []
