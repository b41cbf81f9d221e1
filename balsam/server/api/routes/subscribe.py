"""`/subscribe-user` (spec §10, §12.26): a user's pub/sub messages over a websocket.

Protocol: the server accepts, then waits (at most `AUTH_TIMEOUT` s) for the first text frame, which is the
bare JWT. A missing, invalid or expired token closes with 1008. With no Redis configured the socket closes
with 1011; when Redis is unreachable (at subscribe time or later) it closes with 1013 ("try again later").
Otherwise each message of channel `user-<id>` is forwarded unchanged as a binary frame.

Disconnects are noticed promptly: a reader task waits on the socket, so a close frame (or a dropped
connection, which the ASGI server's websocket ping/pong keepalive turns into a disconnect) ends the
stream and the Redis subscription is always torn down in `finally`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sqlalchemy import select

from balsam.server.api.deps import SettingsDep
from balsam.server.auth.tokens import API_ONLY, PURPOSE_SUBSCRIBE, InvalidToken, TokenUser, decode_token
from balsam.server.conf import Settings
from balsam.server.db.engine import get_sessionmaker
from balsam.server.db.tables import User
from balsam.server.pubsub import user_channel

logger = logging.getLogger(__name__)
router = APIRouter(tags=["pubsub"])

AUTH_TIMEOUT = 10.0
# Redis-side liveness: redis-py PINGs an idle subscription connection this often (seconds).
REDIS_HEALTH_CHECK_INTERVAL = 15
CLOSE_REDIS_DISABLED = status.WS_1011_INTERNAL_ERROR
CLOSE_REDIS_UNAVAILABLE = status.WS_1013_TRY_AGAIN_LATER


def _user_exists(user_id: int) -> bool:
    with get_sessionmaker()() as db:
        return db.execute(select(User.id).where(User.id == user_id)).first() is not None


async def _authenticate(websocket: WebSocket, settings: Settings) -> TokenUser | None:
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout=AUTH_TIMEOUT)
    except TimeoutError:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="No token received")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    token = (message.get("text") or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    try:
        # An API token, or the short-lived one the dashboard's pages fetch (balsam.server.dashboard.live).
        user = decode_token(settings, token, accept=(*API_ONLY, PURPOSE_SUBSCRIBE))
        if not await asyncio.to_thread(_user_exists, user.id):
            raise InvalidToken("unknown user")
    except InvalidToken:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="Could not validate credentials")
        return None
    return user


async def _forward(pubsub: Any, websocket: WebSocket) -> None:
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=REDIS_HEALTH_CHECK_INTERVAL)
        if message is None or message.get("type") != "message":
            continue
        data = message["data"]
        await websocket.send_bytes(data if isinstance(data, bytes) else str(data).encode())


async def _wait_for_close(websocket: WebSocket) -> None:
    # The client has nothing to say after the token; anything it sends is read and ignored.
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


@router.websocket("/subscribe-user")
async def subscribe_user(websocket: WebSocket, settings: SettingsDep) -> None:
    await websocket.accept()
    try:
        user = await _authenticate(websocket, settings)
    except WebSocketDisconnect:
        return
    if user is None:
        return
    if settings.redis_params is None:
        await websocket.close(code=CLOSE_REDIS_DISABLED, reason="Pub/sub is not configured on this server")
        return

    params: dict[str, Any] = {
        "socket_connect_timeout": 2.0,
        "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
        # Fail fast: redis-py's default retry would hold the socket for seconds before the close code.
        "retry": Retry(NoBackoff(), 0),
        **settings.redis_params,
    }
    client = aioredis.Redis(**params)
    pubsub = client.pubsub()
    tasks: list[asyncio.Task[None]] = []
    try:
        try:
            await pubsub.subscribe(user_channel(user.id))
        except (RedisError, OSError) as exc:
            logger.warning("Websocket for user %s: Redis unavailable: %s", user.id, exc)
            await websocket.close(code=CLOSE_REDIS_UNAVAILABLE, reason="Pub/sub unavailable")
            return
        tasks = [
            asyncio.create_task(_forward(pubsub, websocket)),
            asyncio.create_task(_wait_for_close(websocket)),
        ]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if isinstance(error, RedisError | OSError):
                logger.warning("Websocket for user %s: lost Redis: %s", user.id, error)
                with contextlib.suppress(Exception):
                    await websocket.close(code=CLOSE_REDIS_UNAVAILABLE, reason="Pub/sub unavailable")
            elif error is not None and not isinstance(error, WebSocketDisconnect):
                logger.warning("Websocket for user %s ended: %r", user.id, error)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await pubsub.aclose()
        with contextlib.suppress(Exception):
            await client.aclose()
