"""Hand-over of committed run events to live followers (backend/runs/live.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.runs.live import LISTENER_LIMIT, RunEventRecord, RunListeners


def records(*seqs: int) -> list[RunEventRecord]:
    return [RunEventRecord(seq, "text", {"text": str(seq)}, datetime.now(UTC)) for seq in seqs]


def seqs(events) -> list[int] | None:
    return None if events is None else [event.seq for event in events]


def test_a_follower_gets_what_follows_on_and_reads_the_database_otherwise():
    listeners = RunListeners()
    follower = listeners.listen(7)
    other_run = listeners.listen(8)

    listeners.written(7, records(1, 2, 3))
    assert follower.wake.is_set() and not other_run.wake.is_set()
    assert seqs(follower.take_after(0)) == [1, 2, 3]
    assert not follower.wake.is_set()
    assert seqs(follower.take_after(3)) == []

    # Already sent from the database: skipped, not repeated.
    listeners.written(7, records(3, 4))
    assert seqs(follower.take_after(3)) == [4]

    # A gap (the follower started later than these): read the database.
    listeners.written(7, records(9))
    assert follower.take_after(4) is None
    assert seqs(follower.take_after(4)) == []

    # The run changed state: read the database once, then hand-overs again.
    listeners.written(7, records(5))
    listeners.changed(7)
    assert follower.take_after(4) is None
    listeners.written(7, records(5, 6))
    assert seqs(follower.take_after(4)) == [5, 6]


def test_a_follower_that_falls_too_far_behind_reads_the_database():
    listeners = RunListeners()
    follower = listeners.listen(1)
    listeners.written(1, records(*range(1, LISTENER_LIMIT + 2)))
    assert follower.take_after(0) is None  # nothing held: the memory stays bounded
    listeners.written(1, records(LISTENER_LIMIT + 2))
    assert seqs(follower.take_after(LISTENER_LIMIT + 1)) == [LISTENER_LIMIT + 2]


def test_unlisten_forgets_the_run():
    listeners = RunListeners()
    follower = listeners.listen(3)
    listeners.unlisten(3, follower)
    listeners.written(3, records(1))
    assert not follower.wake.is_set()
    assert listeners._by_run == {}
