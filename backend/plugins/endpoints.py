from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status

from ..deps import DiscoveryDep, ReadSession, SettingsDep, WriteSession
from ..kit.schemas import MAX_ID, CleanStr, ErrorResponse, Responses
from . import connection_test
from . import search as plugin_search
from . import service as plugin_service
from .schemas import (
    PluginInstall,
    PluginRead,
    PluginSearchResults,
    PluginTestRead,
    PluginUpdate,
    ProjectEnablement,
)
from .secrets import SecretBox


async def get_secrets(request: Request) -> SecretBox:
    return request.app.state.secrets


SecretsDep = Annotated[SecretBox, Depends(get_secrets)]
router = APIRouter(prefix="/plugins", tags=["plugins"])
PluginId = Annotated[int, Path(ge=1, le=MAX_ID, description="The plugin's id.")]
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="The project's id.")]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No such plugin"}}
CONFLICT: Responses = {
    409: {"model": ErrorResponse, "description": "Not possible for this plugin (built in, name taken)"}
}


@router.get("", response_model=list[PluginRead], summary="Installed plugins")
async def list_plugins(session: ReadSession):
    return await plugin_service.list_all(session)


@router.get(
    "/search",
    response_model=PluginSearchResults,
    summary="Search the MCP registries for servers to install",
    description="Searches Glama, the official MCP Registry, or both. A registry that fails is named in "
    "`errors` with the reason; the other's results are still returned.",
)
async def search_plugins(
    session: ReadSession,
    discovery: DiscoveryDep,
    q: Annotated[
        CleanStr, Query(max_length=200, description="Search text; empty lists what the registries have.")
    ] = "",
    source: Annotated[Literal["all", "glama", "official"], Query(description="Which registry to search.")] = "all",
    cursor: Annotated[
        CleanStr | None, Query(max_length=4000, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Results per registry.")] = plugin_search.SEARCH_LIMIT,
):
    return await plugin_search.search(session, discovery, q, source, cursor, limit)


@router.post(
    "",
    response_model=PluginRead,
    status_code=status.HTTP_201_CREATED,
    summary="Install a plugin",
    description="From a search result (`source` and `source_ref`, for official also `option`) or custom "
    "(`command` and `args`, or `url`). Settings the registry marks required must be given. Secret values "
    "are stored encrypted and never returned.",
    responses={**CONFLICT, 502: {"model": ErrorResponse, "description": "The registry could not be read"}},
)
async def install_plugin(body: PluginInstall, session: WriteSession, discovery: DiscoveryDep, secrets: SecretsDep):
    return await plugin_service.install(session, discovery, secrets, body)


@router.get("/{plugin_id}", response_model=PluginRead, summary="Get a plugin", responses=NOT_FOUND)
async def get_plugin(plugin_id: PluginId, session: ReadSession):
    return await plugin_service.read(session, plugin_id)


@router.patch(
    "/{plugin_id}",
    response_model=PluginRead,
    summary="Change a plugin's settings, switch or title",
    description='Values (env, headers, settings) not mentioned keep theirs, secrets included; null or "" clears one.',
    responses={**NOT_FOUND, **CONFLICT},
)
async def update_plugin(plugin_id: PluginId, body: PluginUpdate, session: WriteSession, secrets: SecretsDep):
    return await plugin_service.update(session, secrets, plugin_id, body)


@router.put(
    "/{plugin_id}/projects/{project_id}",
    response_model=PluginRead,
    summary="Switch a plugin on or off for a project",
    description="A project's agent runs get the plugins that are enabled and enabled for the project.",
    responses={**NOT_FOUND, **CONFLICT},
)
async def set_plugin_project(
    plugin_id: PluginId, project_id: ProjectId, body: ProjectEnablement, session: WriteSession
):
    return await plugin_service.set_project(session, plugin_id, project_id, body.enabled)


@router.post(
    "/{plugin_id}/test",
    response_model=PluginTestRead,
    summary="Test the connection: start or reach the server and list its tools",
    description="The outcome is stored as the plugin's last test. A failed test is a 200 with `ok: false` "
    "and the reason in `error`.",
    responses=NOT_FOUND,
)
async def test_plugin(
    plugin_id: PluginId,
    session: WriteSession,
    secrets: SecretsDep,
    settings: SettingsDep,
    timeout: Annotated[float, Query(ge=1, le=120, description="Seconds to wait for the server.")] = 10,
):
    return await connection_test.check_connection(session, secrets, settings, plugin_id, timeout)


@router.delete(
    "/{plugin_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Uninstall a plugin",
    responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "Built-in plugins cannot be uninstalled"}},
)
async def delete_plugin(plugin_id: PluginId, session: WriteSession) -> None:
    await plugin_service.remove(session, plugin_id)
