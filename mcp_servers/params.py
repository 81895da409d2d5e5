"""Parameter types the MCP servers share."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator


def _true_or_false(value: Any) -> bool:
    # Pydantic's lax mode would take "yes", "on", 1 or "1" for true: a model that sends
    # `run: "yes"` or `recursive: 1` should be told, not obeyed. Clients that send JSON
    # booleans as strings still work.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"must be true or false, got {value!r}")


#: A boolean parameter: true or false (JSON booleans, or the strings "true" and "false").
Flag = Annotated[bool, BeforeValidator(_true_or_false)]
