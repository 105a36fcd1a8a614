"""Multi-turn conversations against a queen, as a chat client sends them: every turn is
``POST /v1/chat/completions`` with the whole history so far (a long system message of its
own, then each user turn and the answer to it), after a pause for its user to read and type
(each conversation's own, so turns do not arrive in lockstep). Shared by the prefix-routing spec and
``benchmarks/bench_cluster.py``: each turn's record says where it ran, how many of its
prompt tokens were cached there, and how long its first token took."""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "Turn",
    "cached_history",
    "pause",
    "run_conversations",
    "system_message",
    "user_message",
]

TOWNS = ("Arlen", "Brisk", "Corvo", "Dunmere", "Elsby", "Fennick", "Galt", "Harrow")
PLACES = ("bakery", "library", "museum", "market", "harbour", "garden", "theatre", "mill")
ITEMS = ("rye bread", "old maps", "copper pots", "honey", "wool hats", "lamp oil", "figs")
SEASONS = ("spring", "summer", "autumn", "winter")


def system_message(conversation: int, facts: int = 24) -> str:
    """A long system message of this conversation's own (about 730 tokens at 24 facts):
    no two conversations share more than the chat template's first tokens."""
    town = f"{TOWNS[conversation % len(TOWNS)]}-{conversation}"
    lines = [f"You are the guide of the town of {town}. Answer briefly from these facts."]
    for i in range(facts):
        k = conversation * 7 + i
        lines.append(
            f"Fact {i + 1}: in {town}, the {PLACES[k % len(PLACES)]} on street {k * 3 + 11} "
            f"opens at {(k % 12) + 1} o'clock and sells {ITEMS[k % len(ITEMS)]}."
        )
    return "\n".join(lines)


def user_message(conversation: int, turn: int) -> str:
    town = f"{TOWNS[conversation % len(TOWNS)]}-{conversation}"
    return (
        f"Question {turn + 1}: tell me about fact {(turn * 5 + conversation) % 30 + 1} of "
        f"{town}, and what a visitor should bring there in {SEASONS[turn % len(SEASONS)]}. "
        "Answer in two short sentences."
    )


def pause(conversation: int, turn: int, think: float) -> float:
    """Seconds a user thinks before turn ``turn`` (none before the first): from a fifth of
    ``think`` to all of it, varied across conversations and turns but the same every run."""
    if turn == 0:
        return 0.0
    return think * (1 + (conversation * 7 + turn * 3) % 5) / 5


@dataclass
class Turn:
    """One turn's request as it ran: the job's record and the client's view of it."""

    conversation: int
    turn: int
    job_id: str
    worker: str | None
    prompt_tokens: int
    cached_tokens: int  # from the job's record (its end event)
    usage_cached_tokens: int  # what the OpenAI answer's usage said
    ttft: float  # seconds from sending the request to the first token's text
    seconds: float  # the whole turn
    answer: str


def cached_history(turns: list[Turn]) -> list[bool]:
    """For each turn after the first: did it find the whole history it sent last time in the
    cache where it ran (the previous turn's prompt, at least)? A turn sent to a worker that
    never saw the conversation finds only the chat template's first tokens there; one sent
    back to a worker it left finds only the history up to the turn it left at."""
    return [t.cached_tokens >= prev.prompt_tokens for prev, t in itertools.pairwise(turns)]


def _turn(
    client: httpx.Client, body: dict[str, Any], conversation: int, turn: int
) -> tuple[Turn, str]:
    started = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    usage: dict[str, Any] = {}
    chunk_id = ""
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            raise AssertionError(f"turn {turn + 1}: {response.status_code} {response.text}")
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            chunk_id = chunk.get("id", chunk_id)
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices", []):
                text = choice.get("delta", {}).get("content")
                if text:
                    first = first or time.perf_counter()
                    pieces.append(text)
    ended = time.perf_counter()
    job_id = "job-" + chunk_id.removeprefix("chatcmpl-")
    record = client.get(f"/jobs/{job_id}").json()
    result = record.get("result") or {}
    answer = "".join(pieces)
    return (
        Turn(
            conversation=conversation,
            turn=turn,
            job_id=job_id,
            worker=record.get("worker"),
            prompt_tokens=int(result.get("prompt_tokens") or 0),
            cached_tokens=int(result.get("cached_tokens") or 0),
            usage_cached_tokens=int(
                (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
            ),
            ttft=(first or ended) - started,
            seconds=ended - started,
            answer=answer,
        ),
        answer,
    )


def _conversation(
    url: str,
    headers: dict[str, str],
    model: str,
    conversation: int,
    turns: int,
    max_tokens: int,
    think: float,
) -> list[Turn]:
    history: list[dict[str, str]] = [{"role": "system", "content": system_message(conversation)}]
    done: list[Turn] = []
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        for turn in range(turns):
            time.sleep(pause(conversation, turn, think))
            history.append({"role": "user", "content": user_message(conversation, turn)})
            body = {
                "model": model,
                "messages": history,
                "max_tokens": max_tokens,
                "temperature": 0,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            record, answer = _turn(client, body, conversation, turn)
            done.append(record)
            history.append({"role": "assistant", "content": answer})
    return done


def run_conversations(
    url: str,
    headers: dict[str, str],
    model: str,
    conversations: int,
    turns: int,
    max_tokens: int = 48,
    think: float = 3.0,
) -> list[list[Turn]]:
    """``conversations`` at once, each ``turns`` turns one after the other (greedy), its
    user thinking up to ``think`` seconds before each turn after the first."""
    with ThreadPoolExecutor(conversations) as pool:
        futures = [
            pool.submit(_conversation, url, headers, model, c, turns, max_tokens, think)
            for c in range(conversations)
        ]
        return [f.result() for f in futures]
