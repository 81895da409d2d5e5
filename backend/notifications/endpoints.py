from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from ..deps import ReadSession, WriteSession
from ..kit.schemas import MAX_ID, ErrorResponse, Responses
from ..plugins.secrets import SecretBox
from . import service as notification_service
from .schemas import ChannelCreate, ChannelRead, ChannelUpdate, DeliveryRead, DeliveryStatusName
from .sending import send


async def get_secrets(request: Request) -> SecretBox:
    return request.app.state.secrets


SecretsDep = Annotated[SecretBox, Depends(get_secrets)]
router = APIRouter(prefix="/notifications", tags=["notifications"])
ChannelId = Annotated[int, Path(ge=1, le=MAX_ID, description="The channel's id.")]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No such channel (or project)"}}
CONFLICT: Responses = {409: {"model": ErrorResponse, "description": "A channel with this name exists already"}}


@router.get("/channels", response_model=list[ChannelRead], summary="Notification channels")
async def list_channels(session: ReadSession):
    return await notification_service.list_channels(session)


@router.post(
    "/channels",
    response_model=ChannelRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a notification channel",
    description="`url` is an apprise URL (the service and its credentials); it is checked without sending, "
    "stored encrypted and never returned: answers show `url_hint`. 422 for a URL apprise cannot send to.",
    responses={**NOT_FOUND, **CONFLICT},
)
async def create_channel(body: ChannelCreate, session: WriteSession, secrets: SecretsDep):
    return await notification_service.create_channel(session, secrets, body)


@router.patch(
    "/channels/{channel_id}",
    response_model=ChannelRead,
    summary="Change a notification channel",
    description="Fields left out keep their value (the URL too); `project_id: null` means every project.",
    responses={**NOT_FOUND, **CONFLICT},
)
async def update_channel(channel_id: ChannelId, body: ChannelUpdate, session: WriteSession, secrets: SecretsDep):
    return await notification_service.update_channel(session, secrets, channel_id, body)


@router.delete(
    "/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a notification channel",
    description="Its deliveries are deleted with it.",
    responses=NOT_FOUND,
)
async def delete_channel(channel_id: ChannelId, session: WriteSession) -> None:
    await notification_service.delete_channel(session, channel_id)


@router.post(
    "/channels/{channel_id}/test",
    response_model=DeliveryRead,
    summary="Send a test notification now",
    description="Sends at once (whether the channel is enabled or not) and answers with the outcome, kept in the "
    "delivery log as kind `test`: `status` delivered, or failed with the reason in `last_error`.",
    responses=NOT_FOUND,
)
async def test_channel(channel_id: ChannelId, session: WriteSession, secrets: SecretsDep):
    return await notification_service.test_channel(session, secrets, channel_id, send)


@router.get(
    "/deliveries",
    response_model=list[DeliveryRead],
    summary="The delivery log",
    description="Notifications made for board events and tests, newest first.",
    responses=NOT_FOUND,
)
async def list_deliveries(
    session: ReadSession,
    channel_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this channel's.")] = None,
    status: Annotated[DeliveryStatusName | None, Query(description="Only deliveries in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 50,
):
    return await notification_service.list_deliveries(session, channel_id=channel_id, status=status, limit=limit)
