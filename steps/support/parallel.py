"""Run the behaviour specs in behave processes side by side, as many as the machine's cores
allow (``PROCESSES``: one on two cores): ``python -m steps.support.parallel``.

Each scenario already has its own state dir, ports and processes (environment.py), so
processes share nothing but the converted model cache, which is written under a lock.
Features go to processes longest first (``SECONDS``, measured), the
ones that make network namespaces (ray, remote_hives) to the same process, and each
process's whole output is printed when it ends, then every failure again and the slowest
scenarios of the run at the very end, so the tail of a CI log names them.

With arguments (a feature file, ``-n NAME``...), behave runs once with them, as ``behave``
does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

__all__ = ["SECONDS", "main", "slowest", "split"]

# Seconds each feature took in one run (tox -e bdd on 2 cores, 2026-12-03); a feature not
# listed counts as ``DEFAULT``. Only the split depends on them, never a result.
SECONDS = {
    "anthropic_api": 16,
    "auth": 14,
    "backends": 38,
    "backpressure": 13,
    "bad_input": 19,
    "batching": 130,
    "cancellation": 53,
    "console": 119,
    "durability": 49,
    "embeddings": 16,
    "everyday_use": 29,
    "failover": 150,
    "faults": 20,
    "fuzz": 142,
    "hives": 145,
    "job_submission": 18,
    "keepalive": 7,
    "memory": 24,
    "metrics": 3,
    "models": 63,
    "ollama_api": 86,
    "openai_api": 55,
    "prefix_routing": 73,
    "queen_lifecycle": 40,
    "ray": 53,
    "remote_hives": 67,
    "replicas": 32,
    "responses_api": 49,
    "resume": 46,
    "security": 96,
    "sse_streaming": 20,
    "structured_output": 45,
    "third_party_backend": 7,
    "tool_calls": 25,
}
DEFAULT = 30
# Features that make network namespaces: one process runs them all, one at a time.
TOGETHER = ("ray", "remote_hives")
# A scenario keeps about two cores busy (a worker decodes on every core it may use, and the
# queen, hive and keeper start beside it): one behave process per four cores. On two cores
# two processes were no faster (18.5 against 20 min) and made torch workers' scenarios up to
# 16x slower (their threads fight the other process's), a flake waiting to happen; limiting
# each worker to one thread broke scenarios that need two jobs decoded at once.
PROCESSES = max(1, (os.cpu_count() or 1) // 4)


def split(features: list[Path], processes: int = PROCESSES) -> list[list[Path]]:
    """The features in ``processes`` groups of about equal time, longest first."""
    groups: list[list[Path]] = [[] for _ in range(processes)]
    load = [0.0] * processes
    together = [f for f in features if f.stem in TOGETHER]
    units = [together] if together else []
    units += [[f] for f in features if f.stem not in TOGETHER]
    units.sort(key=lambda u: -sum(SECONDS.get(f.stem, DEFAULT) for f in u))
    for unit in units:
        least = load.index(min(load))
        groups[least] += unit
        load[least] += sum(SECONDS.get(f.stem, DEFAULT) for f in unit)
    return [sorted(g) for g in groups if g]


def _failures(log: str) -> str:
    """The end of one process's log: its failure report (steps/support/failures.py), if
    any, and behave's summary."""
    report = log.find("\n=== ")
    return log[report + 1 :] if report >= 0 else "\n".join(log.splitlines()[-6:])


def slowest(junit: Path, count: int = 15) -> str:
    """The ``count`` slowest scenarios of the run, from behave's JUnit reports."""
    times = [
        (float(case.get("time") or 0), f"{case.get('classname')}: {case.get('name')}")
        for report in junit.glob("*/*.xml")
        for case in ElementTree.parse(report).getroot().iter("testcase")
    ]
    times.sort(reverse=True)
    total = sum(t for t, _ in times)
    lines = [f"{len(times)} scenarios, {total:.0f} s in all; the {count} slowest:"]
    lines += [f"  {t:6.1f} s  {name[:110]}" for t, name in times[:count]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv:  # a chosen feature or scenario: one behave, as is
        return subprocess.call([sys.executable, "-m", "behave", *argv])
    features = sorted(Path("features").glob("*.feature"))
    groups = split(features)
    started = time.monotonic()
    runs = []
    out = Path(tempfile.mkdtemp(prefix="rbee-specs-"))
    if len(groups) == 1:  # one behave, its output as it comes; its failures again at the end
        junit = ["--junit", "--junit-directory", str(out / "1")]
        with subprocess.Popen(
            [sys.executable, "-m", "behave", *junit, *map(str, groups[0])],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as behave:
            assert behave.stdout is not None
            lines = []
            for line in behave.stdout:
                print(line, end="", flush=True)
                lines.append(line)
        print(slowest(out), flush=True)
        print(_failures("".join(lines)).rstrip(), flush=True)
        return behave.returncode
    for i, group in enumerate(groups, 1):
        log = out / f"behave-{i}.log"
        print(f"behave {i}: {' '.join(f.stem for f in group)}", flush=True)
        with log.open("wb") as sink:
            behave = ["--format", "progress", "--junit", "--junit-directory", str(out / f"{i}")]
            process = subprocess.Popen(
                [sys.executable, "-m", "behave", *behave, *map(str, group)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        runs.append((i, process, log))
    codes = []
    for i, process, log in runs:
        codes.append(process.wait())
        print(f"\n===== behave {i} (exit {codes[-1]}) =====", flush=True)
        print(log.read_text(errors="replace"), flush=True)
    print(f"\n===== all {len(runs)} behave processes: {time.monotonic() - started:.0f} s =====")
    print(slowest(out))
    for (i, _, log), code in zip(runs, codes, strict=True):
        print(f"--- behave {i}: exit {code}")
        print(_failures(log.read_text(errors="replace")).rstrip())
    return max(codes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
