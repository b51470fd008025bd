"""The realtime service: sockets and their channel events, wired to the change capture.

One ``RealtimeService`` per gateway process, created at start-up and kept in the gateway context. It
owns the hub of channels, the change capture and the router between them, and speaks the protocol
of ``/realtime/v1/websocket`` as Supabase Realtime does for the official client (``protocol``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import asyncpg
from starlette.websockets import WebSocket

from devstack.gateway import jwt
from devstack.gateway.context import GatewayContext
from devstack.gateway.realtime import broadcasts, policies, schema
from devstack.gateway.realtime import catalog as catalog_module
from devstack.gateway.realtime.authz import Authorizer
from devstack.gateway.realtime.bindings import Binder
from devstack.gateway.realtime.broadcasts import BroadcastRelay, is_broadcast_row
from devstack.gateway.realtime.catalog import Catalog
from devstack.gateway.realtime.changes import ChangeCapture
from devstack.gateway.realtime.channels import Auth, Channel, Connection, Hub
from devstack.gateway.realtime.dispatch import ChangeRouter
from devstack.gateway.realtime.policies import (
    BROADCAST,
    PRESENCE,
    CheckFailed,
    NotAuthorized,
    Policies,
    TopicAuthorizer,
    expired_message,
    read_refusal,
    read_revoked,
    token_refusal,
)
from devstack.gateway.realtime.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_POLICY_VIOLATION,
    PHOENIX_TOPIC,
    TOPIC_PREFIX,
    Broadcast,
    ClientFrame,
    FrameError,
    JoinError,
    JoinRequest,
    dumps,
    parse_join,
    system_payload,
)
from devstack.gateway.realtime.serializer import SERIALIZERS
from devstack.gateway.realtime.wal import Change

log = logging.getLogger(__name__)

DEFAULT_VSN = "1.0.0"
"""Phoenix's default when a client names no ``vsn``."""
MAX_PRESENCE_BYTES = 64 * 1024
DRAIN_SECONDS = 2.0
STARTUP_CAPTURE_WAIT_SECONDS = 10.0
GAP_MESSAGE = "Realtime lost its replication slot while reconnecting to the database; changes may be missing"


class TokenRejected(Exception):
    """A token a channel cannot use, or a channel it may not join; the message is what the client is told
    after ``Unauthorized: `` (or, with ``reason``, the whole reason Realtime gives)."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or f"Unauthorized: {message}"


class RealtimeService:
    """Channels, presence and ``postgres_changes`` for one gateway process."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.hub = Hub()
        self.authorizer = Authorizer(ctx.api_pool, ctx.admin_pool)
        self.catalog = Catalog()
        self.router = ChangeRouter(self.hub, self.authorizer, lambda: self.catalog)
        self.topic_auth = TopicAuthorizer(ctx.api_pool)
        self.relay = BroadcastRelay(self.hub)
        self.binder = Binder(ctx.admin_pool, lambda: self.catalog)
        self.capture = ChangeCapture(
            ctx.settings.db_url, self._on_changes, self._refresh_catalog, on_gap=self._changes_missed
        )
        self._maintenance: asyncio.Task[None] | None = None
        self.connections: set[Connection] = set()
        self.draining = False
        self._no_connections = asyncio.Event()
        self._no_connections.set()

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        api_role = await self.ctx.api_pool.fetchval("select session_user")
        async with self.ctx.admin_pool.acquire() as conn:
            await schema.install(conn, str(api_role))
            await policies.install(conn, str(api_role))
            await broadcasts.install(conn)
            await broadcasts.maintain_partitions(conn)
        self._maintenance = asyncio.create_task(self._maintain(), name="realtime-partitions")
        self.capture.start()
        # Serve only once changes are being captured: a client that subscribes as soon as the port
        # opens must not miss a change committed before the slot existed. A database that is down
        # should not keep broadcast and presence from serving, though.
        try:
            await asyncio.wait_for(self.capture.running.wait(), STARTUP_CAPTURE_WAIT_SECONDS)
        except TimeoutError:
            log.warning("realtime: change capture not running yet; serving without it for now")

    async def drain(self) -> None:
        """Refuse new sockets and close open ones with 1001 (going away) after their queued frames."""
        self.draining = True
        for conn in list(self.connections):
            conn.close(CLOSE_GOING_AWAY, "server shutting down")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_connections.wait(), DRAIN_SECONDS)

    async def stop(self) -> None:
        await self.drain()
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self.capture.stop()

    def _changes_missed(self) -> None:
        """The capture may have missed changes: each ``postgres_changes`` channel gets a ``system`` error,
        on which the client rejoins (and an app back-fills), as after any Realtime error."""
        for channel in self.hub.subscribed():
            channel.push("system", system_payload(channel.sub_topic, "postgres_changes", "error", GAP_MESSAGE))

    async def _maintain(self) -> None:
        """Keep ``realtime.messages`` partitioned ahead, as Realtime's janitor does."""
        while True:
            await asyncio.sleep(broadcasts.MAINTENANCE_SECONDS)
            try:
                async with self.ctx.admin_pool.acquire() as conn:
                    await broadcasts.maintain_partitions(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("realtime: partition maintenance failed (retrying in an hour): %s", error)

    async def _on_changes(self, changes: list[Change]) -> None:
        """Rows of ``realtime.messages`` are broadcasts (sent as they are); the rest are postgres_changes."""
        rows = [change for change in changes if is_broadcast_row(change)]
        if not rows:
            await self.router.deliver(changes)
            return
        self.relay.deliver(rows)
        others = [change for change in changes if not is_broadcast_row(change)]
        if others:
            await self.router.deliver(others)

    async def _refresh_catalog(self, conn: asyncpg.Connection) -> None:
        await schema.sync_triggers(conn)
        self.catalog = await catalog_module.load(conn)
        self.authorizer.forget_privileges()

    # --- sockets -----------------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        """Run one client socket until it closes."""
        params = websocket.query_params
        apikey = params.get("apikey") or websocket.headers.get("apikey")
        if self.draining:
            await websocket.close(CLOSE_GOING_AWAY)
            return
        vsn = params.get("vsn", DEFAULT_VSN)
        serializer = SERIALIZERS.get(vsn)
        if serializer is None:
            # Before accept, a close becomes an HTTP 403 to the upgrade request, as Phoenix answers.
            log.info("realtime: refused a socket asking for serializer vsn=%s", vsn)
            await websocket.close(CLOSE_POLICY_VIOLATION)
            return
        try:
            if not apikey:
                raise TokenRejected("no apikey")
            self._verify(apikey)
        except TokenRejected as error:
            log.info("realtime: refused a socket: %s", error)
            await websocket.close(CLOSE_POLICY_VIOLATION)
            return
        await websocket.accept()
        conn = Connection(websocket, apikey, serializer)
        conn.on_broken = self._drop_channels
        conn.start()
        self.connections.add(conn)
        self._no_connections.clear()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if conn.closing:
                    continue
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                try:
                    await self._handle(conn, data)
                except Exception:
                    # A bug: say so, and close this socket properly rather than leave it half served.
                    log.exception("realtime: handling a frame failed; closing the socket")
                    conn.close(CLOSE_INTERNAL_ERROR, "internal error")
        finally:
            self.connections.discard(conn)
            if not self.connections:
                self._no_connections.set()
            self._drop_channels(conn)
            await conn.stop()

    def _drop_channels(self, conn: Connection) -> None:
        """Forget every channel of ``conn`` (its presences leave); it is closing."""
        for channel in list(conn.channels.values()):
            self.hub.remove(channel)
        conn.channels.clear()

    def _reply(self, conn: Connection, frame: ClientFrame, status: str, response: dict[str, Any]) -> None:
        conn.send(conn.serializer.reply(frame.topic, frame.ref, status, response, join_ref=frame.join_ref))

    async def _handle(self, conn: Connection, data: str | bytes) -> None:
        try:
            frame = conn.serializer.decode(data)
        except FrameError as error:
            if error.close_code is not None:
                log.info("realtime: closing a socket: %s", error)
                conn.close(error.close_code, str(error)[:120])
            elif error.topic is not None:
                reason = {"reason": f"malformed message: {error}"}
                conn.send(conn.serializer.reply(error.topic, error.ref, "error", reason, join_ref=error.join_ref))
            else:
                log.info("realtime: ignored a malformed frame: %s", error)
            return
        if frame.topic == PHOENIX_TOPIC:
            if frame.event == "heartbeat":
                self._reply(conn, frame, "ok", {})
            else:
                self._reply(conn, frame, "error", {"reason": f"unknown event {frame.event!r}"})
            return
        if frame.event == "phx_join":
            await self._join(conn, frame)
            return
        channel = conn.channels.get(frame.topic)
        if channel is None:
            self._reply(conn, frame, "error", {"reason": "unmatched topic"})
            return
        if frame.event == "phx_leave":
            self._reply(conn, frame, "ok", {})
            self._close_channel(channel)
        elif frame.event == "access_token":
            await self._access_token(channel, frame)
        elif frame.event == "broadcast":
            if channel.private and not await self._may_write(channel, BROADCAST):
                # Realtime drops it without a word, even when the channel asked for acks.
                return
            message = Broadcast(user=frame.user_broadcast) if frame.user_broadcast else Broadcast(payload=frame.payload)
            self.hub.broadcast(channel.topic_key, message, channel)
            if channel.broadcast_ack:
                self._reply(conn, frame, "ok", {})
        elif frame.event == "presence":
            await self._presence(channel, frame)
        else:
            log.info("realtime: unknown event %r on %s", frame.event, frame.topic)
            self._reply(conn, frame, "error", {"reason": f"unknown event {frame.event!r}"})

    # --- join --------------------------------------------------------------------------------------

    async def _join(self, conn: Connection, frame: ClientFrame) -> None:
        try:
            request = parse_join(frame.topic, frame.payload)
            token = request.access_token
            if token is None or token.startswith("sb_"):
                # No user token (or a publishable key): the channel acts with the socket's apikey.
                token = conn.apikey
            auth = Auth.of(token, self._verify(token))
            rights = await self._authorize_join(conn, request, auth)
            bindings = await self.binder.bind(request.bindings)
        except TokenRejected as error:
            self._reply(conn, frame, "error", {"reason": error.reason})
            return
        except (JoinError, CheckFailed) as error:
            self._reply(conn, frame, "error", {"reason": str(error)})
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("realtime: join of %s failed on the database: %s", frame.topic, error)
            reason = "UnableToConnectToProject: Realtime was unable to connect to the project database"
            self._reply(conn, frame, "error", {"reason": reason})
            return
        previous = conn.channels.pop(frame.topic, None)
        if previous is not None:
            # Phoenix replaces a channel joined twice on one socket. No phx_close for the old one:
            # this client does not check join_ref and would take it for the new channel's close.
            self.hub.remove(previous)
        channel = Channel(
            conn=conn,
            topic=frame.topic,
            sub_topic=request.sub_topic,
            join_ref=frame.join_ref or frame.ref,
            private=request.private,
            broadcast_self=request.broadcast_self,
            broadcast_ack=request.broadcast_ack,
            presence_enabled=request.presence_enabled,
            presence_key=request.presence_key or str(uuid.uuid4()),
            bindings=tuple(bindings),
            auth=auth,
            policies=rights,
        )
        # From here on nothing is awaited until the channel is registered, so no change can be pushed
        # to it before the client has its binding ids from this reply.
        echoed = [{**binding.request.raw, "id": binding.id} for binding in bindings]
        self._reply(conn, frame, "ok", {"postgres_changes": echoed})
        conn.channels[frame.topic] = channel
        self.hub.add(channel)
        self._schedule_expiry(channel)
        if bindings:
            if self.capture.running.is_set():
                channel.push(
                    "system", system_payload(request.sub_topic, "postgres_changes", "ok", "Subscribed to PostgreSQL")
                )
            else:
                message = "Realtime was unable to connect to the project database"
                channel.push("system", system_payload(request.sub_topic, "postgres_changes", "error", message))
        if channel.presence_enabled and channel.reads_presence:
            channel.push("presence_state", self.hub.presence.state(channel.topic_key))

    async def _authorize_join(self, conn: Connection, request: JoinRequest, auth: Auth) -> Policies | None:
        """A private channel's read rights (refused without any); None for a public channel."""
        rights = None
        if request.private:
            extensions = (BROADCAST, PRESENCE) if request.presence_enabled else (BROADCAST,)
            rights = await self._check_topic(auth, request.sub_topic, conn.x_headers, read=extensions)
            if not rights.may_join:
                raise TokenRejected(read_refusal(request.sub_topic))
        if request.bindings and not await self.authorizer.can_become(auth.role):
            raise TokenRejected(f"role {auth.role!r} cannot be used for postgres_changes")
        return rights

    async def _check_topic(
        self,
        auth: Auth,
        sub_topic: str,
        headers: dict[str, str],
        *,
        read: tuple[str, ...] = (),
        write: tuple[str, ...] = (),
    ) -> Policies:
        """Realtime Authorization of ``auth`` on ``sub_topic`` (``policies``); a check Postgres refuses is
        a read refusal, as Realtime has it."""
        try:
            return await self.topic_auth.check(
                auth.claims, auth.claims_json, sub_topic, headers, read=read, write=write
            )
        except NotAuthorized as error:
            log.info("realtime: authorization of %s failed in the database: %s", sub_topic, error)
            raise TokenRejected(read_refusal(sub_topic)) from None

    # --- tokens ------------------------------------------------------------------------------------

    def _verify(self, token: str) -> dict[str, Any]:
        """Claims of a token that a channel may act with (HS256 with our secret, ``role`` and ``exp``)."""
        try:
            claims = jwt.verify(token, self.ctx.settings.jwt_secret)
        except jwt.TokenError as error:
            message = expired_message(token) if error.expired else str(error)
            raise TokenRejected(message, reason=token_refusal(error, token)) from None
        if not isinstance(claims.get("exp"), int):
            message = "Fields `role` and `exp` are required in JWT"
            raise TokenRejected(message, reason=f"InvalidJWTToken: {message}")
        return claims

    async def _access_token(self, channel: Channel, frame: ClientFrame) -> None:
        token = frame.payload.get("access_token")
        # Realtime answers nothing; an unchanged token, null or a publishable key changes nothing.
        if not isinstance(token, str) or token == channel.auth.token or token.startswith("sb_"):
            return
        rights = channel.policies
        try:
            auth = Auth.of(token, self._verify(token))
            if auth.role != channel.auth.role and channel.bindings and not await self.authorizer.can_become(auth.role):
                raise TokenRejected(f"role {auth.role!r} cannot be used for postgres_changes")
            if channel.private:
                # A new token is checked again from scratch (write rights too, at their next use): this
                # is when a member who was removed loses the channel.
                extensions = (BROADCAST, PRESENCE) if channel.presence_enabled else (BROADCAST,)
                rights = await self._check_topic(auth, channel.sub_topic, channel.conn.x_headers, read=extensions)
                if not rights.may_join:
                    raise TokenRejected(read_refusal(channel.sub_topic))
                if channel.policies is not None and channel.policies.read_revoked_by(rights):
                    raise TokenRejected(read_revoked(channel.sub_topic))
        except TokenRejected as error:
            if channel.active:
                self._shut_down(channel, str(error))
            return
        except (CheckFailed, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.info("realtime: re-authorizing %s failed: %s", channel.sub_topic, error)
            if channel.active:
                self._shut_down(channel, "Realtime was unable to connect to the project database")
            return
        if channel.active:
            channel.auth = auth
            channel.policies = rights
            self._schedule_expiry(channel)

    async def _may_write(self, channel: Channel, extension: str) -> bool:
        """A private channel's write right for ``extension``, checked at its first use and kept."""
        rights = channel.policies or Policies()
        known = rights.broadcast_write if extension == BROADCAST else rights.presence_write
        if known is not None:
            return known
        # Presence read is checked with the write when presence was off at the join (as Realtime does).
        read = (PRESENCE,) if extension == PRESENCE and rights.presence_read is None else ()
        auth = channel.auth
        try:
            checked = await self._check_topic(
                auth, channel.sub_topic, channel.conn.x_headers, read=read, write=(extension,)
            )
        except (TokenRejected, CheckFailed, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.info("realtime: write authorization on %s failed: %s", channel.sub_topic, error)
            return False
        if channel.auth is not auth or not channel.active:
            return False  # a new token arrived meanwhile; its rights are checked afresh
        channel.policies = rights.merged(
            broadcast_write=checked.broadcast_write,
            presence_write=checked.presence_write,
            presence_read=checked.presence_read,
        )
        written = checked.broadcast_write if extension == BROADCAST else checked.presence_write
        return written is True

    def _schedule_expiry(self, channel: Channel) -> None:
        if channel.expiry is not None:
            channel.expiry.cancel()
        delay = max(0.0, channel.auth.expires_at - time.time()) + 0.01
        channel.expiry = asyncio.get_running_loop().call_later(delay, self._expire, channel)

    def _expire(self, channel: Channel) -> None:
        channel.expiry = None
        if channel.active:
            self._shut_down(channel, expired_message(channel.auth.token))

    def _shut_down(self, channel: Channel, message: str) -> None:
        """End a channel as Realtime does when its token goes bad: a system error, then phx_close."""
        channel.push("system", system_payload(channel.sub_topic, "system", "error", message))
        self._close_channel(channel)

    def _close_channel(self, channel: Channel) -> None:
        conn = channel.conn
        if conn.channels.get(channel.topic) is channel:
            del conn.channels[channel.topic]
        self.hub.remove(channel)
        conn.send(conn.serializer.close(channel.topic, channel.join_ref))

    # --- presence ----------------------------------------------------------------------------------

    async def _presence(self, channel: Channel, frame: ClientFrame) -> None:
        conn = channel.conn
        event = frame.payload.get("event")
        event = event.lower() if isinstance(event, str) else None
        if event == "track" and channel.private and not await self._may_write(channel, PRESENCE):
            # Realtime answers a bare error (no reason) and tracks nothing.
            self._reply(conn, frame, "error", {})
            return
        if event == "track":
            fields = frame.payload.get("payload", {})
            if not isinstance(fields, dict):
                self._reply(conn, frame, "error", {"reason": "Presence track payload must be a map"})
                return
            if len(dumps(fields).encode()) > MAX_PRESENCE_BYTES:
                self._reply(conn, frame, "error", {"reason": "Track message size exceeded"})
                return
            newly_enabled = not channel.presence_enabled
            channel.presence_enabled = True
            diff = self.hub.presence.track(channel.topic_key, channel, channel.presence_key, fields)
            self._reply(conn, frame, "ok", {})
            if newly_enabled and channel.reads_presence:
                # This channel never had presence_state: send it whole, and the diff to the others.
                channel.push("presence_state", self.hub.presence.state(channel.topic_key))
                if diff is not None:
                    self.hub.send_presence_diff(channel.topic_key, diff, exclude=channel)
            elif diff is not None:
                self.hub.send_presence_diff(channel.topic_key, diff)
        elif event == "untrack":
            diff = self.hub.presence.untrack(channel.topic_key, channel)
            self._reply(conn, frame, "ok", {})
            if diff is not None:
                self.hub.send_presence_diff(channel.topic_key, diff)
        else:
            self._reply(conn, frame, "error", {"reason": f"unknown presence event {event!r}"})

    # --- HTTP broadcast ----------------------------------------------------------------------------

    def http_auth(self, headers: dict[str, str]) -> Auth:
        """The token an HTTP broadcast acts with (the bearer token, else the apikey); ``TokenRejected``."""
        apikey = headers.get("apikey")
        if not apikey:
            raise TokenRejected("no apikey")
        self._verify(apikey)
        bearer = headers.get("authorization", "")
        token = bearer[7:] if bearer.lower().startswith("bearer ") else apikey
        return Auth.of(token, self._verify(token))

    async def broadcast_from_http(self, headers: dict[str, str], messages: list[dict[str, Any]]) -> None:
        """Relay REST broadcasts (``/api/broadcast``); raises ``TokenRejected`` when not allowed."""
        auth = self.http_auth(headers)
        # Private messages go out only to topics the token may write (the INSERT policy, once per topic);
        # the others are dropped without a word, and the request is still accepted, as Realtime does.
        x_headers = {name: value for name, value in headers.items() if name.startswith("x-")}
        allowed: dict[str, bool] = {}
        for topic in {message["topic"] for message in messages if message.get("private") is True}:
            try:
                rights = await self._check_topic(auth, topic, x_headers, write=(BROADCAST,))
                allowed[topic] = rights.broadcast_write is True
            except (TokenRejected, CheckFailed, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.info("realtime: HTTP broadcast to %s not authorized: %s", topic, error)
                allowed[topic] = False
        for message in messages:
            if message.get("private") is True and not allowed[message["topic"]]:
                continue
            payload = {"type": "broadcast", "event": message["event"], "payload": message["payload"]}
            if isinstance(message.get("id"), str):
                payload["meta"] = {"id": message["id"]}  # as Realtime passes a message id on
            key = (message.get("private") is True, TOPIC_PREFIX + message["topic"])
            self.hub.broadcast(key, Broadcast(payload=payload), None)
