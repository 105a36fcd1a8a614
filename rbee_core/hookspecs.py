"""Every rbee hook. Each docstring is the hook's contract.

Hooks are synchronous (pluggy): they register things and observe events. The objects they
register (backends, model sources, routes, commands) carry the real, possibly async, work.
Built-in plugins implement these hooks exactly as a third party would, through entry
points: ``rbee`` for a plugin every program loads, ``rbee.keeper``, ``rbee.queen``,
``rbee.hive`` or ``rbee.worker`` for one that serves only that program. Each docstring says
which programs call the hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # annotations only: pluggy reads a hook's argument names, not their types
    from rbee_core.backends import Backend
    from rbee_core.engine_options import EngineOptions
    from rbee_core.jobs import Job
    from rbee_core.models import ModelSource
    from rbee_core.narration import Narration
    from rbee_core.queen_api import QueenApi
    from rbee_core.scheduling import Candidate

__all__ = ["hookspec"]

hookspec = pluggy.HookspecMarker("rbee")


@hookspec
def rbee_register_backends(register: Callable[[Backend], None], options: EngineOptions) -> None:
    """Register inference backends by calling ``register(backend)`` for each.

    ``options`` are what the operator asked of the engines (``RBEE_MAX_BATCH``,
    ``RBEE_KV_CACHE``, ``RBEE_THREADS``, ``RBEE_TORCH_DTYPE``), read once by the calling
    program: a backend sizes its ``footprint`` and builds its engine from them, never from
    the environment. A plugin that does not need them may leave the argument out.

    Called by the worker (to pick and load its model's backend) and by the hive (to list
    its backends and, before it starts a worker, to pick the worker's backend and ask its
    ``footprint``), each time they need the backends: register cheaply, without importing
    an inference library.
    A backend's ``name`` must be unique; a later registration under the same name replaces
    the earlier one.
    """


@hookspec
def rbee_register_model_sources(register: Callable[[ModelSource], None]) -> None:
    """Register model sources by calling ``register(source)`` for each.

    Each source owns one reference scheme (``file``, ``pypi``, ...) and may contribute
    catalog aliases. Called by the queen (to check a job's model before accepting it), the
    hive (to provision models for its workers), the worker (to provision its model when run
    without ``--model-path``) and the keeper (``hive install`` reads the aliases to ship
    the packages that carry ``pypi:`` models).
    """


@hookspec(firstresult=True)
def rbee_schedule(job: Job, candidates: list[Candidate]) -> Candidate | None:
    """Choose where ``job`` runs among ``candidates``; the first non-None answer wins.

    ``candidates`` holds the workers of the job's model, loaded (with their load: ``busy``
    of ``slots``, and ``prefix_tokens``, how much of the job's prompt each likely holds
    cached) or ``starting``, and the devices where a new worker could start; the queen offers
    devices only where it may start one (no worker of the model yet, or a replica within
    ``max_replicas``). Return one of them, or None to leave the choice to the next
    implementation. A worker without room (or a starting one) makes the job wait in its
    model's line: the queen asks again, with fresh candidates, when a slot frees. The
    built-in policy is ``trylast``, so any plugin's policy goes first. Called by the queen
    each time the job at the head of a model's line places (docs/scheduling.md).
    """


@hookspec
def rbee_narrate(narration: Narration) -> None:
    """Deliver a narration to a sink (the job's stream, a log, a terminal).

    Called by the keeper, the queen and the worker for every narration of that process, and
    by the queen for each narration its workers and hives stream to it (the hive itself
    narrates over its streams, not through this hook). Must not block or raise: a slow or
    broken sink must not stop a job.
    """


@hookspec
def rbee_job_submitted(job: Job) -> None:
    """Observe a job the queen has accepted, before it is scheduled. Must not block.

    Called by the queen.
    """


@hookspec
def rbee_job_finished(job: Job) -> None:
    """Observe a job that reached a final state (``job.state``, ``job.result``).

    Called by the queen.
    """


@hookspec
def rbee_queen_routes() -> list[Any]:
    """Return HTTP route handlers for the queen (Litestar handlers or routers).

    Called by the queen once, when it builds its app. The queen's own API is contributed
    this way too. Paths must not clash with other plugins'. A handler gets the queen by
    declaring a parameter ``queen`` (Litestar dependency injection), annotated
    ``rbee_queen.dependencies.QueenApiDep``: what it may use is ``rbee_core.queen_api.QueenApi``.
    """
    return []


@hookspec(firstresult=True)
def rbee_worker_launcher() -> Any:
    """Return how this hive starts its workers' processes, or None to leave it to the next
    implementation (the default: a child process of the hive).

    The launcher is an async callable ``launch(argv, env, log_path, device, reserved,
    emit)``: run ``argv`` with ``env`` on this machine, its stderr appended to ``log_path``,
    for a worker on ``device`` that the hive set ``reserved`` bytes aside for; ``emit``
    takes ``Narration`` for the job that waits (while a cluster manager grants resources,
    say). It returns a process handle as ``asyncio.subprocess.Process`` has it: ``pid``
    (on this machine), ``returncode``, ``stdout`` (an ``asyncio.StreamReader``),
    ``wait()``, ``send_signal()``, ``kill()``; or raises ``WorkerFailed`` saying why not.
    Called by the hive once, when it starts.
    """


@hookspec
def rbee_queen_started(queen: QueenApi) -> None:
    """The queen is up, inside its event loop: start the background work a plugin needs for
    as long as the queen runs. What a plugin may use of ``queen`` is ``QueenApi``.

    Called by the queen once, when its app starts. Must not block; hand long work to a
    task and give it to ``queen.keep(task)``, which cancels it when the queen stops.
    """


@hookspec
def rbee_keeper_commands(cli: Any) -> None:
    """Add click commands to the keeper: ``cli`` is the root ``click.Group``.

    Called by the keeper once, when it starts; use ``cli.add_command`` or ``@cli.command``.
    """
