"""Slots: at most ``capacity`` holders at once, the rest wait in order, counts stay true."""

from __future__ import annotations

import asyncio

from rbee_core.slots import Slots


def test_slots_admit_capacity_holders_and_queue_the_rest_in_order() -> None:
    async def scenario() -> tuple[list[str], list[tuple[int, int]]]:
        slots = Slots(2)
        order: list[str] = []
        seen: list[tuple[int, int]] = []
        release = asyncio.Event()

        async def job(name: str) -> None:
            async with slots.hold():
                order.append(name)
                seen.append((slots.running, slots.waiting))
                await release.wait()

        tasks = [asyncio.create_task(job(n)) for n in "abcd"]
        await asyncio.sleep(0.01)
        assert (slots.running, slots.waiting, slots.load, slots.full) == (2, 2, 4, True)
        release.set()
        await asyncio.gather(*tasks)
        assert (slots.running, slots.waiting, slots.full) == (0, 0, False)
        return order, seen

    order, seen = asyncio.run(scenario())
    assert order == ["a", "b", "c", "d"]
    assert all(running <= 2 for running, _ in seen)


def test_a_waiter_cancelled_before_its_turn_leaves_the_counts_true() -> None:
    async def scenario() -> Slots:
        slots = Slots(1)
        hold = asyncio.Event()

        async def holder() -> None:
            async with slots.hold():
                await hold.wait()

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(holder())
        await asyncio.sleep(0.01)
        assert slots.waiting == 1
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        hold.set()
        await first
        return slots

    slots = asyncio.run(scenario())
    assert (slots.running, slots.waiting) == (0, 0)


def test_take_gets_a_free_slot_at_once_or_none_and_give_back_hands_it_on_in_order() -> None:
    async def scenario() -> list[str]:
        slots = Slots(2)
        assert slots.take() and slots.take()
        assert not slots.take() and (slots.running, slots.full) == (2, True)
        order: list[str] = []

        async def waiter(name: str) -> None:
            async with slots.hold():
                order.append(name)

        tasks = [asyncio.create_task(waiter(n)) for n in "ab"]
        await asyncio.sleep(0.01)
        assert slots.waiting == 2
        slots.give_back()
        assert not slots.take()  # the freed slot went to the first waiter, not to take
        slots.give_back()
        await asyncio.gather(*tasks)
        assert (slots.running, slots.waiting) == (0, 0)
        return order

    assert asyncio.run(scenario()) == ["a", "b"]
