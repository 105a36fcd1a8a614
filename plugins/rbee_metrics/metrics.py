"""The metrics, in their own registry (one queen per process).

Counters and histograms move when a job finishes (one hook call per job, never per token);
gauges (jobs by state, queue depth, workers, hives) are read from the queen at scrape time.
"""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rbee_core.jobs import Job, JobState
from rbee_core.messages import HiveState
from rbee_core.queen_api import QueenApi

__all__ = ["REGISTRY", "observe_finished", "observe_submitted", "refresh"]

REGISTRY = CollectorRegistry()

JOBS_SUBMITTED = Counter(
    "rbee_jobs_submitted", "Jobs the queen accepted.", ["model"], registry=REGISTRY
)
JOBS_FINISHED = Counter(
    "rbee_jobs_finished", "Jobs that reached a final state.", ["model", "state"], registry=REGISTRY
)
TOKENS = Counter("rbee_tokens_generated", "Output tokens generated.", ["model"], registry=REGISTRY)
TTFT = Histogram(
    "rbee_time_to_first_token_seconds",
    "From job submission to its first token (includes queueing and worker start-up).",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
TPOT = Histogram(
    "rbee_time_per_output_token_seconds",
    "Mean time between output tokens of a job, after the first.",
    ["model"],
    buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28),
    registry=REGISTRY,
)
JOBS = Gauge(
    "rbee_jobs",
    "Jobs on record (live and finished, within retention), by state.",
    ["state"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("rbee_queue_depth", "Jobs accepted but not yet running.", registry=REGISTRY)
WORKERS = Gauge("rbee_workers", "Workers by state.", ["state"], registry=REGISTRY)
HIVES = Gauge("rbee_hives", "Hives by state.", ["state"], registry=REGISTRY)
MODEL_DOWNLOADS = Counter(
    "rbee_model_downloads", "Models downloaded into a hive's catalog.", registry=REGISTRY
)
MODEL_CONVERSIONS = Counter(
    "rbee_model_conversions", "Models converted once into the model cache.", registry=REGISTRY
)


def observe_submitted(job: Job) -> None:
    JOBS_SUBMITTED.labels(job.request.model).inc()


def observe_finished(job: Job) -> None:
    model = job.request.model
    JOBS_FINISHED.labels(model, job.state.value).inc()
    tokens = int(job.result.get("completion_tokens", job.tokens))
    TOKENS.labels(model).inc(tokens)
    if job.first_token_at is not None:
        TTFT.labels(model).observe(job.first_token_at - job.created_at)
        if job.finished_at is not None and job.tokens > 1:
            TPOT.labels(model).observe((job.finished_at - job.first_token_at) / (job.tokens - 1))


def refresh(queen: QueenApi) -> None:
    """Set the gauges from the queen's current state."""
    # Live jobs from memory (their records may lag a state behind); finished ones from the
    # store, since the queen keeps only a few of them in memory.
    live = Tally(job.state for job in queen.jobs.live)
    recorded = queen.job_state_counts()
    for state in JobState:
        count = live[state] if not state.finished else recorded.get(state.value, 0)
        JOBS.labels(state.value).set(count)
    QUEUE_DEPTH.set(live[JobState.QUEUED])
    loads = queen.worker_loads()
    busy = sum(1 for load in loads.values() if load.running)
    WORKERS.labels("busy").set(busy)
    WORKERS.labels("idle").set(len(loads) - busy)
    hive_states = Tally(queen.hive_states())
    for hive_state in HiveState:
        HIVES.labels(hive_state).set(hive_states[hive_state])
