"""Search public MCP server registries and normalise what they return.

Two registries are supported, one module each: :mod:`.glama` (tools, a license and a settings
schema, no install command) and :mod:`.official` (packages and remote endpoints, from which come
install options). :mod:`.models` holds the registries' JSON shapes and the one shape of a result,
:mod:`.fetch` the HTTP (timeouts, one retry, errors meant for people).

:class:`DiscoveryClient` searches one registry or both and returns :class:`SearchResults`: the
items, a next cursor for each registry, and an error message for each registry that failed. One
registry failing (unreachable, timed out, HTTP error, malformed JSON, unexpected shape) never
hides the other's results, and no such failure is raised from :meth:`DiscoveryClient.search`.
Bad arguments (an unknown source, an unreadable cursor) raise :class:`ValueError`.
"""

from .client import DiscoveryClient, InvalidCursor
from .fetch import RegistryError
from .glama import DEFAULT_GLAMA_URL, GlamaClient
from .models import InstallOption, RegistryServer, SearchResults, SourcePage, ToolInfo
from .official import DEFAULT_OFFICIAL_URL, OfficialRegistryClient

__all__ = [
    "DEFAULT_GLAMA_URL",
    "DEFAULT_OFFICIAL_URL",
    "DiscoveryClient",
    "GlamaClient",
    "InstallOption",
    "InvalidCursor",
    "OfficialRegistryClient",
    "RegistryError",
    "RegistryServer",
    "SearchResults",
    "SourcePage",
    "ToolInfo",
]
