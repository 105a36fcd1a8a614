"""Fuzzing the live queen with schemathesis, from its own OpenAPI schema."""

from __future__ import annotations

import subprocess
from typing import Any

from behave import then, when

from steps.support import processes

EXCLUDED = r"^/(shutdown|hives|workers$|models/download)"


@when("schemathesis fuzzes the queen's API from its OpenAPI schema for {seconds:d} seconds")
def step_fuzz(context: Any, seconds: int) -> None:
    # With a key, every request carries it, so the fuzzer reaches the handlers, not the 401.
    key = context.env.get("RBEE_API_KEY")
    auth = ["--header", f"Authorization: Bearer {key}"] if key else []
    context.fuzz = subprocess.run(
        [
            *processes.command("st"),
            "run",
            f"{context.queen_url}/schema/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-time",
            str(seconds),
            "-n",
            "25",
            "--generation-deterministic",
            "--exclude-path-regex",
            EXCLUDED,
            "--phases",
            "examples,coverage,fuzzing",
            "-w",
            "1",
            *auth,
        ],
        env=context.env,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )


@then("schemathesis found no server error")
def step_no_5xx(context: Any) -> None:
    out = context.fuzz.stdout + context.fuzz.stderr
    assert "Server error" not in out and context.fuzz.returncode == 0, out[-6000:]
    assert "generated" in out, out[-2000:]  # it ran test cases
