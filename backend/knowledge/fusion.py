"""Reciprocal rank fusion: one ranking out of several (keyword and semantic search).

Each list ranks ids best first; an id's score is the sum over the lists of 1 / (k + rank), rank
counted from 1 (Cormack, Clarke and Büttcher, SIGIR 2009). Only ranks count, so bm25, ts_rank and
cosine scores, which are not comparable, need no calibration; k = 60 keeps one list's first places
from outweighing agreement between the lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def reciprocal_rank_fusion(rankings: Sequence[Iterable[int]], k: int = 60) -> list[tuple[int, float]]:
    """(id, score) best first; ties keep the order in which the ids were first seen."""
    if k < 0:
        raise ValueError("k must not be negative")
    scores: dict[int, float] = {}
    for ranking in rankings:
        seen: set[int] = set()
        rank = 0
        for item in ranking:
            if item in seen:  # an id twice in one list counts at its best place
                continue
            seen.add(item)
            rank += 1
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])  # sorted() is stable
