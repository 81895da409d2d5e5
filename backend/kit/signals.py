"""Waiting for an asyncio.Event with a time limit, in the loops that must stop when cancelled."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_for_signal(signal: asyncio.Event, seconds: float) -> bool:
    """Wait until `signal` is set or `seconds` have passed; True when it is set.

    Not `asyncio.wait_for`: on Python 3.11 it returns normally when the cancellation arrives
    as the event is set, so a background loop being stopped would run on, and the shutdown
    that awaits it would hang. `asyncio.timeout` waits in the caller's own task and lets the
    cancellation through."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await signal.wait()
    return signal.is_set()
