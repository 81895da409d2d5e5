"""Schemathesis hooks for the API fuzz test (loaded through SCHEMATHESIS_HOOKS).

Ids the fuzzer makes up are almost never found (404), so half the time a path id is replaced
by one of the records the test seeded: the fuzzer then reaches the code behind the lookup.
DELETE requests get records seeded to be deleted, so the others stay for the rest of the run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

SEEDS: dict[str, list[int]] = json.loads(os.environ.get("KANBAN_FUZZ_SEEDS", "{}"))


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy:
    if not path_parameters:
        return st.just(path_parameters)
    deleting = context.operation is not None and context.operation.method.upper() == "DELETE"
    choices = {}
    for name, value in path_parameters.items():
        seeded = SEEDS.get(f"delete:{name}" if deleting else name)
        choices[name] = st.one_of(st.just(value), st.sampled_from(seeded)) if seeded else st.just(value)
    return st.fixed_dictionaries(choices)
