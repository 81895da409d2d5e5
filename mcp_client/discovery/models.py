"""What the registries send, and what discovery returns, as Pydantic models.

The registries' JSON is read through the ``Glama*`` and ``Official*`` models, which follow the
shapes the registries document and read them the way a search must: a response without a
``servers`` list is an error (the search names it in ``errors``); an entry that is not an object
is skipped; a field that is missing or of the wrong type counts as absent, so one odd field never
hides a server (:data:`Maybe`, :data:`Text`).

:class:`RegistryServer` (with its :class:`InstallOption` and :class:`ToolInfo`) is a server found
in either registry, the same shape whichever registry it came from.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    computed_field,
    model_validator,
)
from pydantic.alias_generators import to_camel

Source = Literal["glama", "official"]
OFFICIAL_META: Final = "io.modelcontextprotocol.registry/official"

T = TypeVar("T")


def _absent_if_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


# A value the registry may leave out or send in another shape: what does not fit is None.
Maybe = Annotated[T | None, WrapValidator(_absent_if_invalid)]
# A string with something in it (kept as sent); blank, missing or not a string is None.
Text = Maybe[Annotated[str, StringConstraints(pattern=r"\S")]]
# Anything JSON, read as true or false the way Python reads it.
Truthy = Annotated[bool, BeforeValidator(bool)]


def empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "required": []}


class _Wire(BaseModel):
    """A piece of a registry's JSON: camelCase keys, other keys ignored."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True)


class Link(_Wire):
    url: Text = None


class JsonObjectSchema(BaseModel):
    """A JSON Schema of an object as a registry sends it; keywords other than these are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    properties: dict[str, Any] = Field(default_factory=dict)
    required: Maybe[list[Any]] = None

    def normalised(self) -> dict[str, Any]:
        """The schema with ``"type": "object"``; an unreadable ``required`` becomes ``[]``."""
        schema = {**self.model_dump(exclude_unset=True), "type": "object", "properties": self.properties}
        if "required" in schema and self.required is None:
            schema["required"] = []
        return schema


# --------------------------------------------------------------------------- Glama's JSON


class GlamaTool(_Wire):
    name: str
    description: Text = None


class GlamaLicense(_Wire):
    name: Text = None


class GlamaServer(_Wire):
    id: Text = None
    name: Text = None
    namespace: Text = None
    slug: Text = None
    description: Text = None
    url: Text = None
    attributes: Maybe[list[Maybe[str]]] = None
    repository: Maybe[Link] = None
    spdx_license: Maybe[GlamaLicense] = None
    tools: Maybe[list[Maybe[GlamaTool]]] = None
    # Without readable `properties` the schema says nothing: no settings.
    environment_variables_json_schema: Maybe[JsonObjectSchema] = None


class GlamaPageInfo(_Wire):
    end_cursor: Text = None
    has_next_page: Truthy = False


class GlamaPage(_Wire):
    """``GET /v1/servers``: a page of servers, Relay-style paging."""

    servers: list[Maybe[GlamaServer]]
    page_info: Maybe[GlamaPageInfo] = None


# --------------------------------------------------------------------------- the official registry's JSON


class OfficialInput(_Wire):
    """An environment variable, a header or an argument, and what the user is asked for it."""

    type: Text = None  # arguments: "named" (with `name`, the flag) or "positional"
    name: Text = None
    value: Any = None
    default: Any = None
    value_hint: Text = None
    description: Text = None
    format: Text = None  # string | number | boolean | filepath
    choices: Maybe[list[Any]] = None
    is_required: Truthy = False
    is_secret: Maybe[bool] = None


Inputs = Maybe[list[Maybe[OfficialInput]]]


class OfficialTransport(_Wire):
    type: Text = None


class OfficialPackage(_Wire):
    registry_type: Text = Field(default=None, validation_alias=AliasChoices("registryType", "registry_type"))
    identifier: Text = Field(default=None, validation_alias=AliasChoices("identifier", "name"))
    version: Text = None
    transport: Maybe[OfficialTransport] = None
    environment_variables: Inputs = None
    runtime_arguments: Inputs = None
    package_arguments: Inputs = None


class OfficialRemote(_Wire):
    type: Text = Field(default=None, validation_alias=AliasChoices("type", "transport_type"))
    url: Text = None
    headers: Inputs = None
    variables: Maybe[dict[str, Maybe[OfficialInput]]] = None


class OfficialMeta(_Wire):
    status: Text = None
    is_latest: Maybe[StrictBool] = Field(default=None, validation_alias=AliasChoices("isLatest", "is_latest"))


class RegistryMeta(_Wire):
    official: Maybe[OfficialMeta] = Field(default=None, alias=OFFICIAL_META)


class OfficialServer(_Wire):
    name: Text = None
    title: Text = None
    description: Text = None
    version: Text = None
    status: Text = None  # older responses: here rather than in the registry's metadata
    website_url: Text = None
    repository: Maybe[Link] = None
    packages: Maybe[list[Maybe[OfficialPackage]]] = None
    remotes: Maybe[list[Maybe[OfficialRemote]]] = None
    meta: Maybe[RegistryMeta] = Field(default=None, alias="_meta")


class OfficialEntry(_Wire):
    """``{"server": {...}, "_meta": {...}}``; older responses put the server at the top."""

    server: OfficialServer
    meta: Maybe[RegistryMeta] = Field(default=None, alias="_meta")

    @model_validator(mode="before")
    @classmethod
    def _older_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("server"), dict):
            return {"server": data, "_meta": data.get("_meta")}
        return data

    @property
    def official_meta(self) -> OfficialMeta:
        for meta in (self.meta, self.server.meta):
            if meta is not None and meta.official is not None:
                return meta.official
        return OfficialMeta()


class OfficialMetadata(_Wire):
    next_cursor: Text = Field(default=None, validation_alias=AliasChoices("nextCursor", "next_cursor"))


class OfficialPage(_Wire):
    """``GET /v0.1/servers``: a page of server versions."""

    servers: list[Maybe[OfficialEntry]]
    metadata: Maybe[OfficialMetadata] = None


# --------------------------------------------------------------------------- what discovery returns


class ToolInfo(BaseModel):
    name: str
    description: str | None = None


class InstallOption(BaseModel):
    """One way to run a server, close to the Claude Agent SDK's ``mcp_servers`` entry.

    ``args`` and ``url`` may hold ``{name}`` placeholders described in ``variables`` (for a
    required argument with no value, or a remote URL template). ``env`` and ``headers`` name the
    environment variables and HTTP headers the user supplies. ``settings_schema`` describes them
    as a JSON Schema object; secrets are marked ``"writeOnly": true``.
    """

    transport: Literal["stdio", "http", "sse"]
    label: str
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    url: str | None = None
    headers: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    variables: dict[str, dict[str, Any]] = Field(default_factory=dict)
    settings_schema: dict[str, Any] = Field(default_factory=empty_schema)
    registry_type: str | None = None  # npm | pypi | oci for packages, None for remotes


# How a registry says a server runs: on the user's machine, remotely, or either.
Hosting = Literal["local", "remote", "hybrid"]


class RegistryServer(BaseModel):
    """A server found in a registry, the same shape whichever registry it came from."""

    source: Source
    source_ref: str  # Glama: "namespace/slug" (or id); official: the server name
    name: str
    title: str | None = None
    description: str | None = None
    version: str | None = None
    repository_url: str | None = None
    website_url: str | None = None
    license: str | None = None
    tools: list[ToolInfo] | None = None  # None when the registry does not say
    settings_schema: dict[str, Any] = Field(default_factory=empty_schema)
    install_options: list[InstallOption] = Field(default_factory=list)
    hosting: Hosting | None = None

    @computed_field  # type: ignore[prop-decorator]  # mypy does not allow decorators on a property
    @property
    def key(self) -> str:
        return f"{self.source}:{self.source_ref}"


class SourcePage(BaseModel):
    items: list[RegistryServer]
    next_cursor: str | None = None


class SearchResults(BaseModel):
    items: list[RegistryServer] = Field(default_factory=list)
    next_cursors: dict[str, str | None] = Field(default_factory=dict)  # per registry searched
    errors: dict[str, str] = Field(default_factory=dict)  # per registry that failed
    next_cursor: str | None = None  # pass back as `cursor` to get the next page of this search
