"""Chaos soak: nothing accepted is lost while workers, hives and the queen are killed.

A queen and two hives (``h1``, ``h2``: separate processes, each in a session of its own with
its own state dir, pinned to a core in turn with ``taskset -c`` and ``RBEE_THREADS=1``, on a
fixed port so that a restart re-joins under the same name), a worker of ``smollm2-135m``
spawned on each (``rbee-keeper worker spawn``). Everything on 127.0.0.1, state and ``HOME``
in a temp dir.

Load: ``--clients`` (16) threads for ``--duration`` (600) seconds, each looping: submit a job
(``POST /jobs``: a prompt, ``max_tokens``, greedy (temperature 0) or sampled (0.8, no seed:
the queen picks one and reports it as ``seed`` in the ``end`` event)), then read its SSE
stream (``GET sse_url``) to ``data: [DONE]``, reconnecting with ``Last-Event-ID: <last id
seen>`` every 0.5 s whenever the connection drops or the queen is down, until no new event
came for ``--stall`` seconds.

Chaos, from one thread: SIGKILL a worker every ``--worker-every`` (20) s (a busy one if any:
from the queen's ``GET /workers``, its pid confirmed by the worker's ``GET /health`` and
checked to be in the session of a hive this script started); SIGKILL a hive's whole process
group (it and its workers) and start it again the same way every ``--hive-every`` (90) s,
the hives in turn; SIGKILL the queen and start it again (same port, same state dir)
``--queen-restarts`` (2) times, evenly spread over the run.

Then, on the quiet cluster, every distinct completed job (prompt, max_tokens, temperature,
and the seed its ``end`` event reported) runs again alone, one after another, and its text is
compared with what the chaos run streamed.

Report (markdown table, ``--json`` too): jobs accepted, completed, failed (by error code),
event ids duplicated or missing within a stream across its reconnects (ids must run 1, 2,
3, ... : must be 0), answers that differ from the job run alone (must be 0), the failovers
seen (narration events whose ``action`` is ``job_moved`` or ``job_resumed``) and p50/p99 of
the extra latency one adds (the gap between the last token before it and the first token
after it, less that stream's median gap between tokens), worker kills, hive restarts, queen
restarts. Exit status 0 only if nothing accepted was lost, no id was duplicated or missing
and no answer differed.

    python benchmarks/soak_chaos.py [--duration 600] [--clients 16] [--worker-every 20]
        [--hive-every 90] [--queen-restarts 2] [--stall 300] [--verify-max 0]
        [--seed 1] [--json out.json]

A short check of the harness itself (about two minutes):

    python benchmarks/soak_chaos.py --duration 60 --clients 4 --worker-every 15 \\
        --hive-every 40 --queen-restarts 1
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from daemons import free_port, healthy, start_queen

from rbee_queen.launcher import local_command

MODEL = "smollm2-135m"
BIN = Path(sys.executable).parent
HIVES = ("h1", "h2")
HEARTBEAT = 1.0
RETRY = 0.5  # seconds between reconnects, and between submits while the queen is down
FAILOVER_ACTIONS = ("job_moved", "job_resumed")
PROMPTS = [
    "Write a short story about bees.",
    "Name the capital of France and say why it is famous.",
    "List three colours and a fruit of each.",
    "Explain what a hive is to a child.",
    "Say hello in five languages.",
    "Describe the weather on a rainy day in autumn.",
    "Give three tips for learning to cook.",
    "Tell me about the moon.",
]
MAX_TOKENS = (16, 32, 48)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds it took ``predicate`` to hold; ``TimeoutError`` after ``timeout``."""
    start = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except (httpx.HTTPError, ValueError, KeyError):
            pass  # the queen is down or restarting: ask again
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.2)


# --- the cluster ---------------------------------------------------------------------


class Cluster:
    """A queen and the hives, which this script starts, kills and starts again."""

    def __init__(self, root: Path, models: str) -> None:
        self.root = root
        env = {**os.environ, "HOME": str(root), "RBEE_MODELS_DIR": models}
        drop = ("RBEE_API_KEY", "RBEE_THREADS", "RBEE_HOME")
        self.env = {k: v for k, v in env.items() if k not in drop and not k.startswith("XDG_")}
        self.queen_env = self.env | {"RBEE_HOME": str(root / "queen")}
        self.queen_port = free_port()
        self.url = f"http://127.0.0.1:{self.queen_port}"
        self.queen: subprocess.Popen[bytes] | None = None
        cores = sorted(os.sched_getaffinity(0))
        self.cores = {name: cores[i % len(cores)] for i, name in enumerate(HIVES)}
        self.hive_ports = {name: free_port() for name in HIVES}
        self.hives: dict[str, subprocess.Popen[bytes]] = {}
        self.lock = threading.Lock()  # over self.hives: the chaos thread and the checks

    # The queen.

    def start_queen(self) -> None:
        options = ["--max-replicas", str(len(HIVES)), "--max-queue", "1024"]
        options += ["--heartbeat", str(HEARTBEAT)]
        self.queen, _ = start_queen(
            self.queen_env,
            *options,
            new_session=True,
            port=self.queen_port,
            log=self.root / "queen.log",
        )

    def kill_queen(self) -> None:
        assert self.queen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.queen.pid, signal.SIGKILL)
        self.queen.wait()

    # The hives.

    def hive_command(self, name: str) -> list[str]:
        command = local_command(self.url, name, HEARTBEAT)
        # A fixed port: a hive that comes back on another URL is refused its name (the
        # queen binds a name to the URL it registered from, hives.py check_free).
        command[command.index("--port") + 1] = str(self.hive_ports[name])
        return ["taskset", "-c", str(self.cores[name]), *command]

    def start_hive(self, name: str) -> None:
        env = self.env | {"RBEE_HOME": str(self.root / name), "RBEE_THREADS": "1"}
        with Path(self.root, f"{name}.log").open("ab") as log:
            hive = subprocess.Popen(
                self.hive_command(name),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own group: a group kill takes its workers
            )
        with self.lock:
            self.hives[name] = hive

    def kill_hive(self, name: str) -> None:
        """SIGKILL the hive's whole process group: it and every worker it started."""
        with self.lock:
            hive = self.hives[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(hive.pid, signal.SIGKILL)
        hive.wait()

    def sessions(self) -> set[int]:
        """The session ids of the hives this script started (each leads its own)."""
        with self.lock:
            return {h.pid for h in self.hives.values() if h.poll() is None}

    def ready_hives(self, since: float = 0.0) -> set[str]:
        """The hives the queen has as ready, with a heartbeat after ``since`` (time.time)."""
        hives = httpx.get(f"{self.url}/hives", timeout=5).json()["hives"]
        return {
            h["name"] for h in hives if h["state"] == "ready" and (h["last_heartbeat"] or 0) > since
        }

    def workers(self) -> list[dict[str, Any]]:
        workers: list[dict[str, Any]] = httpx.get(f"{self.url}/workers", timeout=5).json()[
            "workers"
        ]
        return [w for w in workers if w["model"] == MODEL]

    def spawn_worker(self, hive: str) -> None:
        spawn = [str(BIN / "rbee-keeper"), "--queen-url", self.url, "worker", "spawn"]
        spawn += ["--hive", hive, "--model", MODEL, "--keep-alive", "-1"]
        env = self.env | {"RBEE_HOME": str(self.root / "keeper")}
        subprocess.run(spawn, env=env, check=True, capture_output=True, timeout=600)

    def stop(self) -> None:
        """SIGTERM everything still running, SIGKILL what is left after 30 s."""
        processes = [self.queen, *self.hives.values()]
        for process in processes:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in processes:
            if process is None:
                continue
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def cluster(models: str) -> Iterator[Cluster]:
    """The queen, both hives ready and a loaded worker of the model on each."""
    with tempfile.TemporaryDirectory(prefix="rbee-soak-chaos-") as tmp:
        c = Cluster(Path(tmp), models)
        try:
            c.start_queen()
            for name in HIVES:
                c.start_hive(name)
            _wait(lambda: c.ready_hives() >= set(HIVES), 120, "the hives to be ready")
            for name in HIVES:
                say(f"spawning a worker of {MODEL} on {name}")
                c.spawn_worker(name)
            _wait(
                lambda: {w["hive"] for w in c.workers()} >= set(HIVES),
                60,
                "the queen to see every worker",
            )
            yield c
        except BaseException:
            for name in ("queen", *HIVES):
                log = Path(tmp, f"{name}.log")
                if log.exists():
                    tail = log.read_text(errors="replace").splitlines()[-15:]
                    say(f"{name}.log, last lines:\n" + "\n".join(tail))
            raise
        finally:
            c.stop()


# --- the chaos -----------------------------------------------------------------------


@dataclass
class Chaos:
    worker_kills: int = 0
    worker_kills_skipped: Counter[str] = field(default_factory=Counter)
    hive_restarts: int = 0
    hive_rejoin_seconds: list[float] = field(default_factory=list)
    hive_rejoin_failures: list[str] = field(default_factory=list)
    queen_restarts: int = 0
    queen_down_seconds: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def note(self, start: float, message: str) -> None:
        line = f"t={time.monotonic() - start:6.1f}s {message}"
        self.log.append(line)
        say(line)


def kill_a_worker(c: Cluster, rng: random.Random, chaos: Chaos, start: float) -> None:
    """SIGKILL a worker (a busy one if any) of a hive this script started."""
    try:
        listed = [w for w in c.workers() if w.get("pid")]
    except (httpx.HTTPError, ValueError):
        chaos.worker_kills_skipped["queen down"] += 1
        return
    # Only a live process in the session of a hive this script started (the queen's list
    # may still hold a worker of a hive killed a moment ago).
    workers = [w for w in listed if _session(int(w["pid"])) in c.sessions()]
    if not workers:
        chaos.worker_kills_skipped["no live worker of ours listed"] += 1
        chaos.note(start, f"no worker to kill (the queen lists {len(listed)})")
        return
    busy = [w for w in workers if w.get("state") == "busy"]
    worker = rng.choice(busy or workers)
    pid = int(worker["pid"])
    try:  # the worker's own word for its pid (it tells it to a caller holding the key)
        told = httpx.get(f"{worker['url']}/health", timeout=5).json().get("pid")
    except (httpx.HTTPError, ValueError):
        chaos.worker_kills_skipped["worker not answering /health"] += 1
        return
    if told is not None and int(told) != pid:
        chaos.worker_kills_skipped["/health pid differs from the queen's list"] += 1
        chaos.note(start, f"worker {worker['id']}: /health says pid {told}, the queen {pid}")
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    chaos.worker_kills += 1
    chaos.note(start, f"SIGKILL worker {worker['id']} on {worker['hive']} (pid {pid})")


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def restart_a_hive(c: Cluster, name: str, chaos: Chaos, start: float) -> None:
    c.kill_hive(name)
    killed = time.time()
    chaos.note(start, f"SIGKILL hive {name}'s process group; starting it again")
    c.start_hive(name)
    chaos.hive_restarts += 1
    try:  # ready, and heard from since the kill: the new process, not the dead one's record
        seconds = _wait(lambda: name in c.ready_hives(killed), 60, f"hive {name} to re-join")
        chaos.hive_rejoin_seconds.append(seconds)
        chaos.note(start, f"hive {name} ready again after {seconds:.1f} s")
    except TimeoutError:
        tail = Path(c.root, f"{name}.log").read_text(errors="replace").splitlines()[-5:]
        chaos.hive_rejoin_failures.append(f"{name}: " + " | ".join(tail))
        chaos.note(start, f"hive {name} did NOT re-join within 60 s: {tail[-1:] or ''}")


def restart_the_queen(c: Cluster, chaos: Chaos, start: float) -> None:
    c.kill_queen()
    killed = time.monotonic()
    chaos.note(start, "SIGKILL the queen; starting it again")
    try:
        c.start_queen()
    except RuntimeError as exc:  # the run goes on without a queen, and says so
        chaos.note(start, f"the queen did NOT come back: {exc}")
        raise
    chaos.queen_restarts += 1
    chaos.queen_down_seconds.append(time.monotonic() - killed)
    chaos.note(start, f"queen healthy again after {chaos.queen_down_seconds[-1]:.1f} s")


def run_chaos(
    c: Cluster, args: argparse.Namespace, start: float, stop: threading.Event, chaos: Chaos
) -> None:
    """Every kill at its time, from this one thread, until ``stop`` or the run's end."""
    rng = random.Random(args.seed)
    parts = args.queen_restarts + 1
    queens = [start + args.duration * k / parts for k in range(1, parts)]
    next_worker = start + args.worker_every if args.worker_every > 0 else math.inf
    next_hive = start + args.hive_every if args.hive_every > 0 else math.inf
    hive_turn = 0
    end = start + args.duration
    while not stop.is_set():
        now = time.monotonic()
        if now >= end:
            return
        if queens and now >= queens[0]:
            queens.pop(0)
            restart_the_queen(c, chaos, start)
        elif now >= next_hive:
            next_hive += args.hive_every
            restart_a_hive(c, HIVES[hive_turn % len(HIVES)], chaos, start)
            hive_turn += 1
        elif now >= next_worker:
            next_worker += args.worker_every
            kill_a_worker(c, rng, chaos, start)
        stop.wait(0.1)


# --- the clients ---------------------------------------------------------------------


@dataclass
class Event:
    id: int
    kind: str
    data: Any
    at: float  # time.monotonic() when it arrived


@dataclass
class Stream:
    """One accepted job as its client saw it."""

    job_id: str
    request: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    reconnects: int = 0
    done: bool = False  # reached data: [DONE]
    gave_up: str | None = None  # why the client stopped reading before [DONE]
    record: dict[str, Any] | None = None  # the queen's record of a job without an ending

    @property
    def ids(self) -> list[int]:
        return [e.id for e in self.events]

    @property
    def text(self) -> str:
        return "".join(str(e.data.get("text", "")) for e in self.events if e.kind == "token")

    @property
    def terminal(self) -> Event | None:
        last = self.events[-1] if self.events else None
        return last if last is not None and last.kind in ("end", "error") else None

    @property
    def outcome(self) -> str:
        """``completed``, ``end:<outcome>``, ``error:<code>`` or ``lost:<why>``."""
        last = self.terminal
        if last is None:
            return f"lost:{self.gave_up or '[DONE] with no end or error event'}"
        if last.kind == "error":
            return f"error:{last.data.get('code', '?')}"
        outcome = str(last.data.get("outcome", "completed"))
        return "completed" if outcome == "completed" else f"end:{outcome}"

    @property
    def seed(self) -> int | None:
        last = self.terminal
        return last.data.get("seed") if last is not None and last.kind == "end" else None

    def id_faults(self) -> tuple[int, int]:
        """(duplicated, missing) ids: they must run 1, 2, 3, ... across reconnects."""
        ids = self.ids
        duplicated = len(ids) - len(set(ids))
        missing = len(set(range(1, max(ids, default=0) + 1)) - set(ids))
        return duplicated, missing

    def failover_gaps(self) -> tuple[int, list[float]]:
        """Failover narrations seen, and the extra latency of each that has tokens on both
        sides: last token before to first token after, less the median token gap."""
        tokens = [i for i, e in enumerate(self.events) if e.kind == "token"]
        gaps = [self.events[b].at - self.events[a].at for a, b in itertools.pairwise(tokens)]
        typical = statistics.median(gaps) if gaps else 0.0
        seen, pairs = 0, set()
        for i, e in enumerate(self.events):
            if e.kind != "narration" or not isinstance(e.data, dict):
                continue
            if e.data.get("action") not in FAILOVER_ACTIONS:
                continue
            seen += 1
            before = [t for t in tokens if t < i]
            after = [t for t in tokens if t > i]
            if before and after:
                pairs.add((before[-1], after[0]))
        extra = [self.events[b].at - self.events[a].at - typical for a, b in sorted(pairs)]
        return seen, extra


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.streams: list[Stream] = []
        self.refused: Counter[str] = Counter()  # submits answered 4xx/5xx, by status
        self.unknown_submits = 0  # the connection broke after the request was sent

    def add(self, stream: Stream) -> None:
        with self.lock:
            self.streams.append(stream)


def _read_stream(client: httpx.Client, url: str, stream: Stream) -> None:
    """Read from after the last event seen until [DONE] (``stream.done``) or the
    connection drops (an ``httpx.HTTPError``, or a status other than 200 as ``ValueError``)."""
    headers = {"Last-Event-ID": str(stream.events[-1].id)} if stream.events else {}
    current: dict[str, str] = {}
    with client.stream("GET", url, headers=headers) as r:
        if r.status_code != 200:
            r.read()
            raise ValueError(f"HTTP {r.status_code}: {r.text[:200]}")
        for line in r.iter_lines():
            if line == "data: [DONE]":
                stream.done = True
                return
            if not line:
                if "id" in current:
                    data: Any = current.get("data", "")
                    with contextlib.suppress(ValueError):
                        data = json.loads(data)
                    event = Event(int(current["id"]), current.get("event", ""), data, 0.0)
                    event.at = time.monotonic()
                    stream.events.append(event)
                current = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                value = value.removeprefix(" ")
                current[key] = f"{current[key]}\n{value}" if key in current else value


def follow(client: httpx.Client, base: str, stream: Stream, stall: float) -> None:
    """Read the job's stream to [DONE], reconnecting every RETRY s while no new event came
    for ``stall`` seconds."""
    url = f"{base}/jobs/{stream.job_id}/stream"
    last_progress = time.monotonic()
    why = ""
    first = True
    while True:
        seen = len(stream.events)
        if not first:
            stream.reconnects += 1
        first = False
        try:
            _read_stream(client, url, stream)
            if stream.done:
                return
            why = "the stream closed before [DONE]"
        except (httpx.HTTPError, ValueError) as exc:
            why = str(exc) or type(exc).__name__
        if len(stream.events) > seen:
            last_progress = time.monotonic()
        if time.monotonic() - last_progress > stall:
            stream.gave_up = f"no new event for {stall:.0f} s ({why[:120]})"
            return
        time.sleep(RETRY)


def submit(
    client: httpx.Client, base: str, body: dict[str, Any], tally: Tally, give_up: float
) -> str | None:
    """The job id, retrying every RETRY s while the queen is down; None if it never took
    it by ``give_up``."""
    while time.monotonic() < give_up:
        try:
            r = client.post(f"{base}/jobs", json=body)
        except httpx.ConnectError:
            time.sleep(RETRY)  # the queen is down: nothing was sent
            continue
        except httpx.HTTPError:
            with tally.lock:  # sent, and the answer lost: accepted or not, nobody knows
                tally.unknown_submits += 1
            time.sleep(RETRY)
            continue
        if r.status_code == 201:
            return str(r.json()["job_id"])
        with tally.lock:
            tally.refused[f"HTTP {r.status_code}"] += 1
        time.sleep(RETRY)
    return None


def run_client(base: str, deadline: float, rng: random.Random, tally: Tally, stall: float) -> None:
    timeout = httpx.Timeout(10, read=60)  # the queen sends a keep-alive every 15 s
    with httpx.Client(timeout=timeout) as client:
        while time.monotonic() < deadline:
            body: dict[str, Any] = {
                "model": MODEL,
                "prompt": rng.choice(PROMPTS),
                "max_tokens": rng.choice(MAX_TOKENS),
                "temperature": rng.choice((0.0, 0.8)),
            }
            job_id = submit(client, base, body, tally, deadline)
            if job_id is None:
                return
            stream = Stream(job_id, body)
            try:
                follow(client, base, stream, stall)
                if stream.terminal is None:
                    stream.record = job_record(client, base, job_id)
            finally:
                tally.add(stream)


def job_record(client: httpx.Client, base: str, job_id: str) -> dict[str, Any] | None:
    """What the queen says of a job (``GET /jobs/{id}``, less its text), asked for 30 s."""
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        try:
            r = client.get(f"{base}/jobs/{job_id}")
            if r.status_code == 200:
                record: dict[str, Any] = r.json()
                return {k: v for k, v in record.items() if k not in ("text", "request")}
            return {"http_status": r.status_code, "body": r.text[:300]}
        except (httpx.HTTPError, ValueError):
            time.sleep(RETRY)
    return None


# --- the check on a quiet cluster ----------------------------------------------------


def key(stream: Stream) -> tuple[str, int, float, int | None]:
    r = stream.request
    seed = stream.seed if r["temperature"] > 0 else None
    return r["prompt"], r["max_tokens"], r["temperature"], seed


def rerun_alone(base: str, streams: list[Stream], limit: int, rng: random.Random) -> dict[str, Any]:
    """Each distinct completed job again, alone, one after another: how many answers differ
    from what the chaos run streamed."""
    completed = [s for s in streams if s.outcome == "completed"]
    no_seed = [s for s in completed if s.request["temperature"] > 0 and s.seed is None]
    by_key: dict[tuple[str, int, float, int | None], list[Stream]] = {}
    for s in completed:
        if s not in no_seed:
            by_key.setdefault(key(s), []).append(s)
    keys = list(by_key)
    if limit and len(keys) > limit:
        keys = rng.sample(keys, limit)
    differ: list[dict[str, Any]] = []
    failed: list[str] = []
    compared = 0
    with httpx.Client(timeout=httpx.Timeout(10, read=120)) as client:
        for n, k in enumerate(keys, 1):
            prompt, max_tokens, temperature, seed = k
            body: dict[str, Any] = {
                "model": MODEL,
                "prompt": prompt,
                "max_tokens": max_tokens,
                "temperature": temperature,
            }
            if seed is not None:
                body["seed"] = seed
            r = client.post(f"{base}/jobs", json=body)
            if r.status_code != 201:
                failed.append(f"HTTP {r.status_code}")
                continue
            alone = Stream(str(r.json()["job_id"]), body)
            follow(client, base, alone, 120)
            if alone.outcome != "completed":
                failed.append(alone.outcome)
                continue
            for s in by_key[k]:
                compared += 1
                if s.text != alone.text:
                    differ.append(
                        {"job_id": s.job_id, "request": body, "soak": s.text, "alone": alone.text}
                    )
            if n % 50 == 0:
                say(f"re-ran {n} of {len(keys)} jobs alone")
    return {
        "distinct": len(by_key),
        "rerun": len(keys),
        "compared": compared,
        "differ": differ,
        "rerun_failed": failed,
        "no_seed": len(no_seed),
    }


# --- the report ----------------------------------------------------------------------


def summarize(
    tally: Tally, chaos: Chaos, verify: dict[str, Any], args: argparse.Namespace, seconds: float
) -> dict[str, Any]:
    streams = tally.streams
    outcomes = Counter(s.outcome for s in streams)
    duplicated = missing = faulty = 0
    failovers = 0
    extra: list[float] = []
    for s in streams:
        d, m = s.id_faults()
        duplicated, missing = duplicated + d, missing + m
        faulty += bool(d or m)
        seen, gaps = s.failover_gaps()
        failovers += seen
        extra += gaps
    failed = {k: v for k, v in outcomes.items() if k != "completed"}
    return {
        "command": command(args),
        "seconds": seconds,
        "accepted": len(streams),
        "completed": outcomes.get("completed", 0),
        "failed": sum(failed.values()),
        "failed_by_code": dict(sorted(failed.items())),
        "duplicated_ids": duplicated,
        "missing_ids": missing,
        "streams_with_id_faults": faulty,
        "reconnects": sum(s.reconnects for s in streams),
        "records_behind": sum(
            1
            for s in streams
            if s.record and s.ids and int(s.record.get("events") or 0) < max(s.ids)
        ),
        "submits_refused": dict(tally.refused),
        "submits_unknown": tally.unknown_submits,
        "answers_differ": len(verify["differ"]),
        "answers_compared": verify["compared"],
        "distinct_completed": verify["distinct"],
        "rerun": verify["rerun"],
        "rerun_failed": dict(Counter(verify["rerun_failed"])),
        "sampled_without_seed": verify["no_seed"],
        "failovers_seen": failovers,
        "failover_extra_p50": percentile(extra, 50) if extra else None,
        "failover_extra_p99": percentile(extra, 99) if extra else None,
        "failover_samples": len(extra),
        "worker_kills": chaos.worker_kills,
        "worker_kills_skipped": dict(chaos.worker_kills_skipped),
        "hive_restarts": chaos.hive_restarts,
        "hive_rejoin_max": max(chaos.hive_rejoin_seconds, default=None),
        "hive_rejoin_failures": chaos.hive_rejoin_failures,
        "queen_restarts": chaos.queen_restarts,
        "queen_down_max": max(chaos.queen_down_seconds, default=None),
        "chaos_log": chaos.log,
        "differ": verify["differ"][:20],
        "failures": [failure(s) for s in streams if s.outcome != "completed"][:50],
    }


def failure(s: Stream) -> dict[str, Any]:
    """A job that did not complete, for the JSON: its ending, or what its stream and the
    queen's record said."""
    out: dict[str, Any] = {"job_id": s.job_id, "outcome": s.outcome, "reconnects": s.reconnects}
    if s.terminal is not None:
        out["data"] = s.terminal.data
    else:
        out["last_ids"] = s.ids[-5:]
        out["record"] = s.record
    return out


def command(args: argparse.Namespace) -> str:
    return (
        f"python benchmarks/soak_chaos.py --duration {args.duration:g} --clients {args.clients} "
        f"--worker-every {args.worker_every:g} --hive-every {args.hive_every:g} "
        f"--queen-restarts {args.queen_restarts}"
    )


def report(f: dict[str, Any]) -> str:
    def ms(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"

    def counts(values: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in values.items()) or "-"

    rows: list[tuple[str, Any, str]] = [
        ("jobs accepted", f["accepted"], ""),
        ("completed", f["completed"], "= accepted"),
        ("failed", f["failed"], "0"),
        ("failed, by code", counts(f["failed_by_code"]), ""),
        ("event ids duplicated", f["duplicated_ids"], "0"),
        ("event ids missing", f["missing_ids"], "0"),
        ("answers that differ from the job run alone", f["answers_differ"], "0"),
        (
            "answers compared (distinct jobs re-run)",
            f"{f['answers_compared']} ({f['rerun']} of {f['distinct_completed']})",
            "",
        ),
        ("re-runs that did not complete", counts(f["rerun_failed"]), ""),
        ("sampled jobs whose end event had no seed", f["sampled_without_seed"], "0"),
        ("failovers seen (job_moved / job_resumed)", f["failovers_seen"], ""),
        ("failover extra latency p50", ms(f["failover_extra_p50"]), ""),
        ("failover extra latency p99", ms(f["failover_extra_p99"]), ""),
        ("failover latency samples", f["failover_samples"], ""),
        ("stream reconnects (Last-Event-ID)", f["reconnects"], ""),
        ("unended jobs whose record has fewer events than streamed", f["records_behind"], "0"),
        ("submits refused", counts(f["submits_refused"]), ""),
        ("submits whose answer was lost", f["submits_unknown"], ""),
        ("workers killed", f["worker_kills"], ""),
        ("worker kills skipped", counts(f["worker_kills_skipped"]), ""),
        ("hive restarts", f["hive_restarts"], ""),
        ("hive re-join, slowest", ms(f["hive_rejoin_max"]), ""),
        ("hives that did not re-join", len(f["hive_rejoin_failures"]), "0"),
        ("queen restarts", f["queen_restarts"], ""),
        ("queen down, longest", ms(f["queen_down_max"]), ""),
    ]
    lines = [
        f"`{f['command']}` ({f['seconds'] / 60:.1f} min)",
        "",
        "| | value | must be |",
        "| --- | --- | --- |",
        *(f"| {name} | {value} | {goal} |" for name, value, goal in rows),
    ]
    ok = verdict(f)
    lines += ["", f"nothing accepted lost, every event once, same answers: {'yes' if ok else 'NO'}"]
    return "\n".join(lines)


def verdict(f: dict[str, Any]) -> bool:
    return (
        f["failed"] == f["duplicated_ids"] == f["missing_ids"] == f["answers_differ"] == 0
        and not f["hive_rejoin_failures"]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=600, help="seconds of load and chaos")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--worker-every", type=float, default=20, help="seconds (0: never)")
    p.add_argument("--hive-every", type=float, default=90, help="seconds (0: never)")
    p.add_argument("--queen-restarts", type=int, default=2)
    p.add_argument(
        "--stall", type=float, default=300, help="give a stream up after this long without news"
    )
    p.add_argument(
        "--verify-max", type=int, default=0, help="re-run at most this many jobs (0: all)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--models-dir", default=os.environ.get("RBEE_MODELS_DIR", "/tmp/rbee-bench-models")
    )
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    started = time.monotonic()
    tally, chaos = Tally(), Chaos()
    with cluster(args.models_dir) as c:
        say(f"queen {c.url}, hives {', '.join(f'{n} on core {c.cores[n]}' for n in HIVES)}")
        start = time.monotonic()
        deadline = start + args.duration
        stop = threading.Event()
        clients = [
            threading.Thread(
                target=run_client,
                args=(c.url, deadline, random.Random(args.seed * 1000 + i), tally, args.stall),
                daemon=True,
            )
            for i in range(args.clients)
        ]
        for t in clients:
            t.start()
        agent = threading.Thread(target=run_chaos, args=(c, args, start, stop, chaos))
        agent.start()
        try:
            agent.join()
            say("chaos over; waiting for the clients' last jobs")
            for t in clients:
                t.join()
        finally:
            stop.set()
            agent.join()
        say(f"{len(tally.streams)} jobs; re-running the completed ones alone")
        _wait(lambda: healthy(c.url) and c.ready_hives() >= set(HIVES), 120, "a quiet cluster")
        verify = rerun_alone(c.url, tally.streams, args.verify_max, random.Random(args.seed))
    figures = summarize(tally, chaos, verify, args, time.monotonic() - started)
    print(report(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    sys.exit(0 if verdict(figures) else 1)


if __name__ == "__main__":
    main()
