from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from mcp_client.discovery import RegistryServer

from ..kit.schemas import InputSchema, OutputSchema, TextLimits

PluginName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"),
    Field(
        description="Slug: lowercase letters and digits, single - or _ between them. The agent sees the "
        "plugin's tools as mcp__<name>__<tool>.",
        examples=["weather"],
    ),
]
EnvName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
HeaderName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")]
SettingName = Annotated[str, TextLimits(1, 200)]
Value = Annotated[str, TextLimits(0, 10_000)]
Title = Annotated[str, TextLimits(1, 200, strip=True)]
Description = Annotated[str, TextLimits(0, 2_000, strip=True)]
Command = Annotated[str, TextLimits(1, 1_000, strip=True)]
Argument = Annotated[str, TextLimits(0, 4_000)]
Url = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4_000, strip_whitespace=True, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$"),
]
Transport = Literal["stdio", "http", "sse"]
Source = Literal["glama", "official", "custom"]


class ValueInput(InputSchema):
    """A value with its secrecy spelled out."""

    value: Value | None = Field(
        default=None, description='The value; omit it to change only `secret` of a value already set; "" clears it.'
    )
    secret: bool | None = Field(
        default=None,
        description="Store encrypted and never show it again. Values the schema marks secret and names "
        "containing token, key, secret or password are always secret.",
    )


# A plain string, or {value, secret}. In updates, null or "" removes the value.
ValueIn = Annotated[Value | ValueInput, Field(union_mode="left_to_right")]
Values = Annotated[dict[SettingName, ValueIn | None], Field(max_length=100)]
EnvValues = Annotated[dict[EnvName, ValueIn | None], Field(max_length=100)]
HeaderValues = Annotated[dict[HeaderName, ValueIn | None], Field(max_length=100)]


class PluginInstall(InputSchema):
    """Install a plugin: from a search result (`source` glama or official) or custom."""

    source: Source = Field(default="custom", description="Where the plugin comes from.")
    source_ref: Annotated[str, TextLimits(1, 500, strip=True)] | None = Field(
        default=None,
        description="For glama and official: the search result's `source_ref`.",
        examples=["io.github.example/weather"],
    )
    option: int | None = Field(
        default=None, ge=0, le=100, description="For official: which of the result's `install_options` (default 0)."
    )
    query: Annotated[str, TextLimits(0, 200)] | None = Field(
        default=None, description="The search text that found the result (helps to find it again)."
    )
    name: PluginName | None = Field(default=None, description="Default: derived from the title or the registry's name.")
    title: Title | None = None
    description: Description | None = None
    transport: Transport | None = Field(
        default=None,
        description="Custom and glama: stdio with `command`, http or sse with `url` (default from which is given).",
    )
    command: Command | None = Field(default=None, examples=["npx"])
    args: Annotated[list[Argument], Field(max_length=100)] | None = Field(
        default=None, examples=[["-y", "some-mcp-server"]]
    )
    url: Url | None = Field(default=None, examples=["http://127.0.0.1:9000/mcp"])
    env: EnvValues | None = Field(default=None, description="Environment variables of a stdio server.")
    headers: HeaderValues | None = Field(default=None, description="HTTP headers sent to an http or sse server.")
    settings: Values | None = Field(
        default=None, description="Values for the registry's settings (see the result's `settings_schema`)."
    )
    enabled: bool = Field(default=True, description="The global switch. Projects still have to enable the plugin.")

    @model_validator(mode="after")
    def _consistent(self) -> PluginInstall:
        if self.source != "custom" and not self.source_ref:
            raise ValueError(f"source_ref is required to install from {self.source}")
        if self.source == "official":
            given = [n for n in ("transport", "command", "args", "url") if getattr(self, n) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: an official registry entry's install option says how to run it")
            return self
        if self.option is not None:
            raise ValueError("option: only official registry results have install options")
        if self.command is None and self.url is None:
            raise ValueError("give a command (stdio) or a url (http or sse) to run the server")
        if self.command is not None and self.url is not None:
            raise ValueError("give either a command (stdio) or a url (http or sse), not both")
        transport = self.transport or ("stdio" if self.command is not None else "http")
        if transport == "stdio" and self.command is None:
            raise ValueError("transport stdio needs a command")
        if transport != "stdio" and self.url is None:
            raise ValueError(f"transport {transport} needs a url")
        if transport == "stdio" and self.headers:
            raise ValueError("headers: a stdio server takes env, not headers")
        if transport != "stdio" and (self.env or self.args):
            raise ValueError("env and args are for stdio servers; an http or sse server takes headers")
        self.transport = transport
        return self


class PluginUpdate(InputSchema):
    """Change a plugin. Values not mentioned keep theirs (secrets included); null or "" clears one."""

    title: Title | None = None
    description: Description | None = None
    enabled: bool | None = None
    command: Command | None = None
    args: Annotated[list[Argument], Field(max_length=100)] | None = None
    url: Url | None = None
    env: EnvValues | None = None
    headers: HeaderValues | None = None
    settings: Values | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> PluginUpdate:
        for name in ("title", "description", "enabled", "command", "args", "url"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ProjectEnablement(InputSchema):
    enabled: bool = Field(description="Give this plugin to the project's agent runs.")


class ValueRead(OutputSchema):
    name: str
    set: bool
    secret: bool
    value: str | None = Field(default=None, description="Only for values that are not secret.")


# Where a setting's value goes.
SettingTarget = Literal["env", "header", "arg"]


class SettingRead(ValueRead):
    required: bool
    description: str | None = None
    target: SettingTarget = Field(
        description="Where the value goes: an environment variable, an HTTP header, or a {placeholder} in args/url."
    )


class PluginTestRead(OutputSchema):
    tested_at: datetime
    ok: bool
    tools: list[dict[str, Any]] = Field(description="[{name, description}] the server listed.")
    error: str | None


class PluginProjectRead(OutputSchema):
    project_id: int
    enabled: bool


class PluginRead(OutputSchema):
    id: int
    name: str
    title: str
    description: str
    source: Literal["builtin", "glama", "official", "custom"]
    source_ref: str | None
    transport: Transport
    command: str | None
    args: list[str]
    url: str | None
    builtin: bool = Field(description="Comes with the board; cannot be uninstalled.")
    enabled: bool
    env: list[ValueRead]
    headers: list[ValueRead]
    settings: list[SettingRead]
    settings_schema: dict[str, Any]
    projects: list[PluginProjectRead] = Field(description="Projects the plugin is switched on or off for.")
    last_test: PluginTestRead | None
    installed_at: datetime
    updated_at: datetime


class PluginSearchItem(RegistryServer):
    installed: list[str] = Field(default_factory=list, description="Names of installed plugins made from this entry.")


class PluginSearchResults(OutputSchema):
    items: list[PluginSearchItem]
    next_cursor: str | None = Field(description="Pass as `cursor` (with the same q and source) for more.")
    errors: dict[str, str] = Field(description="Registries that failed, with why; the others' results are still there.")
