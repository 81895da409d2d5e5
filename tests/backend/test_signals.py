"""Background loops stop when cancelled, even when their wake-up signal is set at that moment
(Python 3.11's asyncio.wait_for returns normally then, and a shutdown awaiting the loop hung)."""

from __future__ import annotations

import asyncio

import pytest

from backend.kit.signals import wait_for_signal


async def test_a_cancellation_arriving_as_the_signal_is_set_stops_the_waiter():
    signal = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            await wait_for_signal(signal, 10)
            signal.clear()
            rounds += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)  # the loop waits for its signal
    signal.set()
    task.cancel()  # in the same step of the event loop as the signal
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert rounds == 0


async def test_the_signal_or_the_time_limit_ends_the_wait():
    signal = asyncio.Event()
    assert await wait_for_signal(signal, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, signal.set)
    assert await wait_for_signal(signal, 5) is True
