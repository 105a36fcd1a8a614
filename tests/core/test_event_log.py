"""EventLog: ids from 1, replay from any point, many concurrent followers, terminal close."""

from __future__ import annotations

import asyncio

import pytest

from rbee_core.event_log import EventLog
from rbee_core.events import DONE, Event, EventType


async def collect(log: EventLog, after: int = 0) -> list[Event]:
    return [event async for event in log.follow(after)]


def filled(tokens: int, terminal: EventType = EventType.END) -> EventLog:
    log = EventLog()
    log.append(EventType.NARRATION, {"actor": "queen-rbee", "action": "a", "message": "m"})
    for i in range(tokens):
        log.append(EventType.TOKEN, {"text": str(i)})
    log.append(terminal, {"outcome": "completed"} if terminal is EventType.END else {})
    return log


def test_ids_increase_from_one() -> None:
    log = EventLog()
    events = [log.append(EventType.TOKEN, {"text": c}) for c in "abcde"]
    assert [e.id for e in events] == [1, 2, 3, 4, 5]
    assert len(log) == 5
    assert log.events == events
    assert events[2] == Event(id=3, type=EventType.TOKEN, data={"text": "c"})


def test_events_is_a_copy() -> None:
    log = EventLog()
    log.append(EventType.TOKEN, {"text": "a"})
    log.events.clear()
    assert len(log) == 1


def test_terminal_event_closes_the_log() -> None:
    log = EventLog()
    log.append(EventType.TOKEN, {"text": "a"})
    assert not log.closed
    end = log.append(EventType.END, {"outcome": "completed"})
    assert end.id == 2
    assert log.closed
    with pytest.raises(RuntimeError, match="closed"):
        log.append(EventType.TOKEN, {"text": "late"})
    with pytest.raises(RuntimeError):
        log.append(EventType.END, {})
    assert len(log) == 2


def test_error_is_terminal_too() -> None:
    log = EventLog()
    log.append(EventType.ERROR, {"code": "x", "message": "y"})
    assert log.closed
    with pytest.raises(RuntimeError):
        log.append(EventType.NARRATION, {})


def test_event_types() -> None:
    assert EventType.END.terminal
    assert EventType.ERROR.terminal
    assert not EventType.TOKEN.terminal
    assert not EventType.NARRATION.terminal
    assert DONE == "[DONE]"


def test_data_json_is_compact_utf8() -> None:
    event = Event(id=1, type=EventType.TOKEN, data={"text": "é 🐝", "n": 1})
    assert event.data_json() == '{"text":"é 🐝","n":1}'


def test_late_subscriber_replays_from_the_first_event() -> None:
    log = filled(tokens=5)
    events = asyncio.run(collect(log))
    assert [e.id for e in events] == list(range(1, 8))
    assert events == log.events
    assert events[-1].type is EventType.END


@pytest.mark.parametrize("after", range(8))
def test_after_resumes_exactly_after_an_id(after: int) -> None:
    log = filled(tokens=5)  # ids 1..7
    events = asyncio.run(collect(log, after=after))
    assert [e.id for e in events] == list(range(after + 1, 8))


def test_after_past_the_end_of_a_closed_log_yields_nothing() -> None:
    assert asyncio.run(collect(filled(tokens=2), after=100)) == []


def test_negative_after_means_from_the_start() -> None:
    assert [e.id for e in asyncio.run(collect(filled(tokens=1), after=-5))] == [1, 2, 3]


def test_follower_sees_events_appended_while_it_waits() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        log = EventLog()
        log.append(EventType.TOKEN, {"text": "0"})
        early = asyncio.create_task(collect(log))
        await asyncio.sleep(0)
        for i in range(1, 5):
            log.append(EventType.TOKEN, {"text": str(i)})
            await asyncio.sleep(0)
        # A follower that resumes in the middle of a live log.
        resumed = asyncio.create_task(collect(log, after=3))
        await asyncio.sleep(0)
        log.append(EventType.TOKEN, {"text": "5"})
        log.append(EventType.END, {"outcome": "completed"})
        done = await asyncio.wait_for(asyncio.gather(early, resumed), timeout=5)
        return [e.id for e in done[0]], [e.id for e in done[1]]

    early, resumed = asyncio.run(scenario())
    assert early == [1, 2, 3, 4, 5, 6, 7]
    assert resumed == [4, 5, 6, 7]


def test_many_concurrent_followers_all_see_every_event_once_in_order() -> None:
    async def scenario() -> tuple[list[list[Event]], list[Event]]:
        log = EventLog()
        followers = [asyncio.create_task(collect(log)) for _ in range(10)]
        await asyncio.sleep(0)
        for i in range(50):
            # Bursts with and without yielding, so followers wake both mid-burst and after it.
            log.append(EventType.TOKEN, {"text": str(i)})
            if i % 7 == 0:
                await asyncio.sleep(0)
            if i == 25:  # a late joiner while the log is live
                followers.append(asyncio.create_task(collect(log)))
                followers.append(asyncio.create_task(collect(log, after=20)))
        log.append(EventType.END, {"outcome": "completed"})
        results = await asyncio.wait_for(asyncio.gather(*followers), timeout=5)
        return list(results), log.events

    results, everything = asyncio.run(scenario())
    assert len(everything) == 51
    for events in results[:11]:
        assert events == everything
    assert [e.id for e in results[11]] == list(range(21, 52))


def test_follow_ends_only_when_the_log_closes() -> None:
    async def scenario() -> bool:
        log = EventLog()
        log.append(EventType.TOKEN, {"text": "a"})
        task = asyncio.create_task(collect(log))
        await asyncio.sleep(0.01)
        still_waiting = not task.done()
        log.append(EventType.ERROR, {"code": "x", "message": "y"})
        events = await asyncio.wait_for(task, timeout=5)
        assert [e.type for e in events] == [EventType.TOKEN, EventType.ERROR]
        return still_waiting

    assert asyncio.run(scenario())


def test_a_follower_that_stops_early_does_not_disturb_others() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        log = EventLog()

        async def first_two() -> list[int]:
            ids = []
            async for event in log.follow():
                ids.append(event.id)
                if len(ids) == 2:
                    break
            return ids

        short = asyncio.create_task(first_two())
        full = asyncio.create_task(collect(log))
        await asyncio.sleep(0)
        for i in range(4):
            log.append(EventType.TOKEN, {"text": str(i)})
            await asyncio.sleep(0)
        log.append(EventType.END, {})
        a, b = await asyncio.wait_for(asyncio.gather(short, full), timeout=5)
        return a, [e.id for e in b]

    short, full = asyncio.run(scenario())
    assert short == [1, 2]
    assert full == [1, 2, 3, 4, 5]


def test_a_relayed_event_keeps_the_json_it_came_with() -> None:
    log = EventLog()
    wire = '{"text":"caf\\u00e9"}'  # as another process encoded it
    relayed = log.append(EventType.TOKEN, {"text": "café"}, wire)
    own = log.append(EventType.TOKEN, {"text": "café"})
    assert relayed.data_json() is wire
    assert own.data_json() == '{"text":"café"}'
