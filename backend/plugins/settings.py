"""A plugin's values: its settings schema, and the settings, env and headers stored for it.

The schema is a JSON Schema object made from the registry entry when the plugin is installed;
each property says where its value goes (``x-target``: an environment variable, an HTTP header,
or a ``{placeholder}`` in the args or URL). Stored values are plain strings, or
``{"secret": <Fernet token>}`` for secrets, which are never shown again (:func:`setting_reads`,
:func:`value_reads` say only whether they are set).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any, get_args

from mcp_client.discovery import InstallOption

from ..errors import InvalidInput
from ..models import Plugin
from .schemas import SettingRead, SettingTarget, ValueInput, ValueRead
from .secrets import SecretBox

# Names that make a value secret whatever the user says (and HTTP headers that carry credentials).
SECRET_NAME = re.compile(r"token|key|secret|password|^authorization$|^proxy-authorization$|^cookie$", re.IGNORECASE)
TARGETS: tuple[SettingTarget, ...] = get_args(SettingTarget)


# --------------------------------------------------------------------------- the schema


def empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "required": []}


def object_schema(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` as an object schema: properties that are objects, required names that are strings."""
    schema = copy.deepcopy(dict(raw)) if isinstance(raw, Mapping) else {}
    schema["type"] = "object"
    props = schema.get("properties")
    schema["properties"] = (
        {k: dict(v) if isinstance(v, Mapping) else {} for k, v in props.items()} if isinstance(props, Mapping) else {}
    )
    required = schema.get("required")
    schema["required"] = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
    return schema


def targeted(raw: Mapping[str, Any], target: str) -> dict[str, Any]:
    """The schema with every property's value going to ``target`` unless it says otherwise."""
    schema = object_schema(raw)
    for prop in schema["properties"].values():
        prop.setdefault("x-target", target)
    return schema


def option_schema(option: InstallOption) -> dict[str, Any]:
    """The install option's settings, each marked with where its value goes."""
    schema = object_schema(option.settings_schema)
    props = schema["properties"]
    for name in option.env:
        props.setdefault(name, {"type": "string"})["x-target"] = "env"
    for name in option.headers:
        props.setdefault(name, {"type": "string"})["x-target"] = "header"
    required = list(schema["required"])
    for name, spec in option.variables.items():
        prop: dict[str, Any] = {"type": "string", "x-target": "arg"}
        if isinstance(spec.get("description"), str):
            prop["description"] = spec["description"]
        if spec.get("default") is not None:
            prop["default"] = spec["default"]
        if isinstance(spec.get("choices"), list) and spec["choices"]:
            prop["enum"] = spec["choices"]
        if spec.get("isSecret"):
            prop["writeOnly"] = True
        props[name] = prop
        required.append(name)  # a placeholder left in the command line would break the server
    schema["required"] = list(dict.fromkeys(required))
    return schema


def schema_properties(schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    return {k: v for k, v in props.items() if isinstance(v, dict)} if isinstance(props, Mapping) else {}


def required_names(schema: Mapping[str, Any]) -> list[str]:
    names = schema.get("required") if isinstance(schema, Mapping) else None
    return [r for r in names if isinstance(r, str)] if isinstance(names, list) else []


def value_target(plugin: Plugin, prop: Mapping[str, Any]) -> SettingTarget:
    """Where a setting's value goes: the property's ``x-target``, else env (stdio) or a header."""
    value = prop.get("x-target")
    if value in TARGETS:
        return value
    return "env" if plugin.transport == "stdio" else "header"


# --------------------------------------------------------------------------- secrecy


def secret_by_default(name: str, prop: Mapping[str, Any] | None = None) -> bool:
    """Secret whatever the user says: the schema marks it, or its name says so."""
    if SECRET_NAME.search(name):
        return True
    prop = prop or {}
    return prop.get("writeOnly") is True or prop.get("format") == "password" or prop.get("isSecret") is True


def is_stored_secret(stored: Any) -> bool:
    return isinstance(stored, dict)


def reveal(box: SecretBox, stored: Any, what: str) -> str:
    """A stored value as the server gets it (a secret decrypted)."""
    return box.decrypt(stored["secret"], what) if is_stored_secret(stored) else str(stored)


# --------------------------------------------------------------------------- changing values


def apply_values(
    box: SecretBox,
    current: Mapping[str, Any],
    changes: Mapping[str, str | ValueInput | None],
    schema_secret: Callable[[str], bool],
    what: str,
) -> dict[str, Any]:
    """`current` with `changes` applied: set, cleared (null or ""), or marked secret."""
    out = dict(current)
    for name, change in changes.items():
        if change is None:
            out.pop(name, None)
            continue
        value, marked = (change, None) if isinstance(change, str) else (change.value, change.secret)
        was_secret = is_stored_secret(out.get(name))
        secret = secret_by_default(name) or schema_secret(name) or (marked if marked is not None else was_secret)
        if value is None:  # only the secret mark changes
            if name in out and secret and not was_secret:
                out[name] = {"secret": box.encrypt(str(out[name]))}
            elif name in out and not secret and was_secret:
                out[name] = box.decrypt(out[name]["secret"], f"{what}.{name}")
            continue
        if value == "":
            out.pop(name, None)
            continue
        out[name] = {"secret": box.encrypt(value)} if secret else value
    return out


def apply_settings(
    box: SecretBox, plugin: Plugin, current: Mapping[str, Any], changes: Mapping[str, Any]
) -> dict[str, Any]:
    """`current` with `changes` applied, each checked against the plugin's schema."""
    props = schema_properties(plugin.settings_schema)
    unknown = [name for name in changes if name not in props]
    if unknown:
        known = ", ".join(props) or "none"
        raise InvalidInput(
            f"settings: unknown setting(s) {', '.join(map(repr, unknown))}; this plugin's settings: {known}"
        )
    for name, change in changes.items():
        value = change if isinstance(change, str) else (change.value if change is not None else None)
        allowed = props[name].get("enum")
        if value and isinstance(allowed, list) and allowed and value not in [str(a) for a in allowed]:
            raise InvalidInput(f"settings.{name}: must be one of {', '.join(map(str, allowed))}")
        if value and props[name].get("type") in ("number", "integer"):
            try:
                float(value)
            except ValueError:
                raise InvalidInput(f"settings.{name}: must be a number") from None
        if value and props[name].get("type") == "boolean" and value not in ("true", "false"):
            raise InvalidInput(f"settings.{name}: must be true or false")
    return apply_values(box, current, changes, lambda n: secret_by_default(n, props.get(n)), "settings")


def check_required(plugin: Plugin) -> None:
    props = schema_properties(plugin.settings_schema)
    missing = [
        name
        for name in required_names(plugin.settings_schema)
        if plugin.settings.get(name) is None and props.get(name, {}).get("default") is None
    ]
    if missing:
        raise InvalidInput(f"settings: missing required setting(s): {', '.join(missing)}")


# --------------------------------------------------------------------------- what the API shows


def setting_reads(plugin: Plugin) -> list[SettingRead]:
    """The schema's settings then any others stored, without secret values."""
    props = schema_properties(plugin.settings_schema)
    needed = set(required_names(plugin.settings_schema))
    reads = []
    for name in [*props, *(n for n in plugin.settings if n not in props)]:
        prop = props.get(name, {})
        stored = plugin.settings.get(name)
        secret = is_stored_secret(stored) or secret_by_default(name, prop)
        reads.append(
            SettingRead(
                name=name,
                set=stored is not None,
                secret=secret,
                value=None if secret or stored is None else str(stored),
                required=name in needed,
                description=prop.get("description") if isinstance(prop.get("description"), str) else None,
                target=value_target(plugin, prop),
            )
        )
    return reads


def value_reads(stored: Mapping[str, Any]) -> list[ValueRead]:
    """Env or headers by name, without secret values."""
    return [
        ValueRead(
            name=name, set=True, secret=is_stored_secret(value), value=None if is_stored_secret(value) else str(value)
        )
        for name, value in sorted(stored.items())
    ]
