"""A thin async layer over the official ``supabase`` client: validated models in, validated models out.

Every call has a timeout, every error becomes one of desktop_chat.errors, and a request refused because
the access token expired is retried once after a refresh. Reads use the SQL functions of
``supabase/migrations/*_read_functions.sql`` where one round trip can answer a whole screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import TypeAdapter

from desktop_chat.backend.auth import AuthSession, SessionInfo, SessionListener, StateListener
from desktop_chat.backend.connections import CallDeadlines
from desktop_chat.backend.errors import map_error
from desktop_chat.backend.round_trips import RoundTrips
from desktop_chat.config import Settings
from desktop_chat.errors import Bug, DesktopChatError, Unauthorized
from desktop_chat.models import (
    Chat,
    ChatChanges,
    ChatDetails,
    ChatId,
    ChatListKey,
    ChatMember,
    ChatSummary,
    MemberPage,
    Message,
    MessageId,
    MessagePage,
    MessageReader,
    Profile,
    ReactionDetail,
    ReadPosition,
    ReadPositions,
    ReadReceipt,
    SearchCursor,
    SearchHit,
    SearchPage,
    UserId,
    validate_emoji,
    validate_search_text,
)
from desktop_chat.secrets import SecretStore

if TYPE_CHECKING:
    # Annotations only: ``httpx``, ``postgrest`` and ``supabase`` (with ``supabase_auth`` and ``realtime``)
    # are imported when the client is built (``connected``), which a restored session does behind the
    # first paint (docs/architecture.md §10).
    import httpx
    from supabase import AsyncClient

    from desktop_chat.backend.transport import RenewableTransport

log = logging.getLogger(__name__)

T = TypeVar("T")

MESSAGE_COLUMNS = "id,session_id,sender_id,content,created_at,edited_at,deleted_at,seq,rev,reply_to,reactions"
# A message's key: its id is unique within its chat (the idempotent send's ON CONFLICT target).
MESSAGE_KEY = "id,session_id"
# Seconds the client may be held back (``hold_client``) before it is built anyway: the release comes with
# the first painted frame; this only keeps a window that never paints from holding the session forever.
CLIENT_HOLD_LIMIT = 3.0
DETAILS_MEMBERS = 100  # members named in chat details (plus the recent senders); the dialog pages the rest
MAX_CHATS_PER_CALL = 500  # chat_list's p_ids; changes_since takes up to 1000
_messages = TypeAdapter(list[Message])
_changes = TypeAdapter(list[ChatChanges])
_hits = TypeAdapter(list[SearchHit])
_reaction_details = TypeAdapter(list[ReactionDetail])
_receipts = TypeAdapter(list[ReadReceipt])
_readers = TypeAdapter(list[MessageReader])


# The HTTP status of the last response the current task received. The PostgREST client raises an error
# with the body's code only; a 5xx with a code the app does not know is the server's trouble (retried),
# not a bug. A context variable: a call's response hook runs in the calling task, and concurrent calls
# (other tasks) each see their own.
_last_status: ContextVar[int | None] = ContextVar("desktop_chat_last_status", default=None)


async def _remember_status(response: httpx.Response) -> None:
    _last_status.set(response.status_code)


# A message going out in a batch: its id, its text and the message of the same chat it answers.
OutgoingRow = tuple[MessageId, str, MessageId | None]


def _summary(row: dict[str, Any]) -> ChatSummary:
    """A row of ``chat_list()`` as a ChatSummary (the chat's columns are flat in the row)."""
    return ChatSummary.model_validate(
        {
            "chat": row,
            "role": row["role"],
            "last_read_seq": row["last_read_seq"],
            "unread_count": row["unread_count"],
            "last_message": row.get("last_message"),
            "activity_at": row.get("activity_at"),
        }
    )


def _member(row: dict[str, Any]) -> ChatMember:
    return ChatMember.model_validate(row)


class SupabaseBackend:
    """Auth, reads and writes against one Supabase project.

    Args:
        settings: URL, anon key and request timeout.
        secrets: Keeps the refresh token between runs.
        http: An ``httpx.AsyncClient`` for every REST and auth call (a seam for tests; made from the
            settings when omitted, once the client is built: ``connected``).
    """

    def __init__(
        self,
        settings: Settings,
        secrets: SecretStore,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._server = settings.supabase_url
        self._timeout = settings.request_timeout
        self._transport: RenewableTransport | None = None
        self._http = http
        self._owns_http = http is None
        self._hooked = False  # the status and round-trip hooks are on ``_http``
        self.deadlines = CallDeadlines()
        """Every REST, RPC and auth call's deadline (``drop_connections`` ends them)."""
        self.round_trips = RoundTrips()
        """Requests sent to Supabase (REST, RPC, auth), for the diagnostics and the benchmarks."""
        self._client: AsyncClient | None = None
        self._building: asyncio.Lock | None = None
        self._hold: asyncio.Event | None = None
        self._auth = AuthSession(self.connected, secrets, self._server, self._timeout, self.deadlines)
        self._profile: Profile | None = None
        self._profile_task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Build the client now (no network traffic yet); otherwise the first call that needs it does."""
        await self.connected()

    def hold_client(self) -> None:
        """Build the client only after ``release_client`` (or ``CLIENT_HOLD_LIMIT`` seconds): importing it
        takes a few hundred milliseconds, which a start from a saved session spends after the first paint."""
        if self._client is None and self._hold is None:
            self._hold = asyncio.Event()

    def release_client(self) -> None:
        """The first frame is painted: the client may be built now (see ``hold_client``)."""
        if self._hold is not None:
            self._hold.set()

    async def connected(self) -> AsyncClient:
        """The official client, built on first use (imports the client libraries: see the imports)."""
        if self._client is not None:
            return self._client
        if self._hold is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hold.wait(), CLIENT_HOLD_LIMIT)
        if self._building is None:
            self._building = asyncio.Lock()
        async with self._building:
            if self._client is None:
                self._client = await self._build()
        return self._client

    async def _build(self) -> AsyncClient:
        # The client libraries, imported here rather than with the module (see the imports at the top).
        import httpx
        from supabase import AsyncClientOptions, acreate_client

        from desktop_chat.backend.transport import RenewableTransport

        started = time.perf_counter()
        if self._http is None:
            limits = httpx.Limits(max_connections=20, max_keepalive_connections=10)
            self._transport = RenewableTransport(lambda: httpx.AsyncHTTPTransport(limits=limits))
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout, connect=min(5.0, self._timeout)),
                transport=self._transport,
            )
        if not self._hooked:  # once, even if a first build failed after this point
            hooks = self._http.event_hooks
            self._http.event_hooks = {**hooks, "response": [*hooks.get("response", []), _remember_status]}
            self.round_trips.attach(self._http)
            self._hooked = True
        options = AsyncClientOptions(
            auto_refresh_token=False,  # AuthSession refreshes; the library's timer gives up silently
            persist_session=False,  # AuthSession keeps only the refresh token, in the keyring
            httpx_client=self._http,
            postgrest_client_retry=False,  # the data layer decides what to do when the server is away
            realtime={"auto_reconnect": False},  # the realtime manager owns reconnecting
        )
        key = self._settings.supabase_anon_key.get_secret_value()
        client = await acreate_client(self._server, key, options=options)
        log.info("Client for %s built in %.0f ms", self._server, (time.perf_counter() - started) * 1000)
        # A restore builds the client after the session opened and froze the heap (``chat_store.
        # hold_long_lived``): the libraries just imported live as long as this backend, so they join the
        # frozen objects rather than being walked by every full collection (the session's end unfreezes all).
        if gc.get_freeze_count():
            gc.freeze()
        return client

    async def close(self) -> None:
        await self._stop_profile_task()
        await self._auth.close()
        if self._client is not None:
            await self._client.remove_all_channels()
        if self._owns_http and self._http is not None:
            await self._http.aclose()

    def drop_connections(self) -> int:
        """The path to the server went silent (the realtime heartbeat went unanswered): end every call in
        flight as a timeout and open new connections for what follows (see ``connections.py``).

        Returns:
            How many calls were in flight.
        """
        ended = self.deadlines.expire_all()
        if self._transport is not None:
            self._transport.renew()
        log.info("Dropped the connections to %s (%d call(s) in flight)", self._server, ended)
        return ended

    @property
    def client(self) -> AsyncClient:
        """The official client, once built (``connected``): for the realtime manager, started after the
        session is confirmed, and for the calls, which ``_call`` runs after building it."""
        if self._client is None:
            raise Bug("SupabaseBackend.client was used before the client was built (await connected())")
        return self._client

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client every REST and auth call goes through, once the client is built."""
        if self._http is None:
            raise Bug("SupabaseBackend.http was used before the client was built (await connected())")
        return self._http

    @property
    def auth(self) -> AuthSession:
        return self._auth

    @property
    def server(self) -> str:
        return self._server

    async def health(self) -> float:
        """Round-trip seconds of the auth service's health check; raises BackendUnavailable if it is down."""
        url = f"{self._server.rstrip('/')}/auth/v1/health"
        headers = {"apikey": self._settings.supabase_anon_key.get_secret_value()}

        async def ping() -> httpx.Response:
            response = await self.http.get(url, headers=headers)
            response.raise_for_status()
            return response

        started = time.perf_counter()
        await self._call("health", ping)
        return time.perf_counter() - started

    # --- auth --------------------------------------------------------------------------------------
    @property
    def session(self) -> SessionInfo | None:
        return self._auth.current

    @property
    def profile(self) -> Profile | None:
        return self._profile

    def subscribe_session(self, listener: SessionListener) -> Callable[[], None]:
        return self.auth.subscribe(listener)

    def subscribe_session_state(self, listener: StateListener) -> Callable[[], None]:
        """``listener`` hears each move of the session's state (``session_state``)."""
        return self.auth.subscribe_state(listener)

    async def sign_in(
        self, email: str, password: str, *, alongside: Callable[[SessionInfo], Coroutine[Any, Any, None]] | None = None
    ) -> Profile:
        """Sign in with a password and read the user's profile.

        ``alongside`` runs at the same time as the profile read, once the token is there (the data layer
        asks for the chat list then: both need only the token, so the sign-in waits on one round trip
        for the two). It must not raise; it is cancelled if the profile cannot be read.
        """
        self.release_client()  # the user waits on the server: nothing is held for a paint any more
        info = await self.auth.sign_in(email, password)
        if alongside is None:
            return await self._load_profile(info)
        beside = asyncio.get_running_loop().create_task(alongside(info), name="sign-in-alongside")
        try:
            profile = await self._load_profile(info)
        except BaseException:
            beside.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beside
            raise
        await beside
        return profile

    async def sign_up(self, email: str, password: str, display_name: str) -> Profile:
        self.release_client()  # as sign_in
        info = await self.auth.sign_up(email, password, display_name)
        return await self._load_profile(info)

    async def restore_session(self) -> Profile | None:
        """Sign in again from the saved refresh token.

        With the identity saved beside the token (user id and name), the profile is returned at once,
        without a round trip: the app paints the saved chats while the token is confirmed in the
        background (``AuthSession.begin_restore``; calls wait for that answer). Refused, the session ends
        (listeners hear None); unreachable, the app stays offline and keeps trying. Without a saved
        identity (an older install), the refresh is awaited; a server that cannot be reached then raises
        ``BackendUnavailable``.
        """
        saved = self.auth.saved_identity()
        if saved is None:
            self.release_client()  # this restore waits for the server's answer before anything is shown
            info = await self.auth.restore()
            return None if info is None else await self._load_profile(info)
        user_id, _email, display_name = saved
        self._profile = Profile(id=user_id, display_name=display_name)
        self.auth.begin_restore()
        # Once confirmed, the profile row is read again and the saved name follows it.
        self._profile_task = asyncio.get_running_loop().create_task(self._reload_confirmed(), name="profile-reload")
        return self._profile

    async def _reload_confirmed(self) -> None:
        info = await self.auth.confirmed()
        if info is not None:
            await self._reload_profile(info)

    async def _reload_profile(self, info: SessionInfo) -> None:
        try:
            await self._load_profile(info)
        except DesktopChatError as error:  # the saved name stays; the next start tries again
            log.info("The profile could not be read again: %s", error.message)

    async def sign_out(self) -> None:
        self._profile = None
        await self._stop_profile_task()
        await self.auth.sign_out()

    async def _stop_profile_task(self) -> None:
        task, self._profile_task = self._profile_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def refresh_session(self) -> SessionInfo:
        return await self.auth.refresh()

    async def _load_profile(self, info: SessionInfo) -> Profile:
        rows = await self._rows(
            "profile",
            lambda: self.client.table("profiles").select("id,display_name").eq("id", str(info.user_id)).execute(),
        )
        if not rows:
            raise Bug("Signed in, but the account has no profile row")
        self._profile = Profile.model_validate(rows[0])
        self.auth.remember_identity(info.user_id, info.email, self._profile.display_name)
        return self._profile

    # --- calling -----------------------------------------------------------------------------------
    async def _call(self, operation: str, run: Callable[[], Awaitable[T]]) -> T:
        """Run ``run`` with the timeout and error mapping; after a 401, refresh once and retry."""
        if operation != "health":
            # A saved session not confirmed yet: the request would go out as anon, and row level security
            # would answer "nothing", which must not be mistaken for data. Wait for the answer, or fail
            # when the server could not be reached (see session_state).
            await self._auth.usable()
        await self.connected()
        for attempt in (1, 2):
            _last_status.set(None)
            try:
                async with self.deadlines.within(self._timeout):
                    result = await run()
            except Exception as raw:
                error = map_error(raw, self._server, status=_last_status.get())
                if isinstance(error, Unauthorized) and attempt == 1 and self.session is not None:
                    await self.refresh_session()
                    continue
                raise error from raw
            return result
        raise Bug("unreachable: the retry loop always returns or raises")

    async def _rows(self, operation: str, run: Callable[[], Awaitable[Any]]) -> list[dict[str, Any]]:
        response = await self._call(operation, run)
        data = response.data
        if not isinstance(data, list):
            raise Bug(f"{operation}: expected a list of rows, got {type(data).__name__}")
        return data

    # --- reads -------------------------------------------------------------------------------------
    async def fetch_recent_chats(self, limit: int = 50) -> list[ChatSummary]:
        """The first page of the chat list."""
        return await self.fetch_chat_list(limit)

    async def fetch_chat_list(
        self,
        limit: int = 50,
        *,
        after: ChatListKey | None = None,
        search: str | None = None,
        ids: Sequence[ChatId] | None = None,
    ) -> list[ChatSummary]:
        """A page of the chat list, newest activity first (``chat_list()``).

        Args:
            limit: Rows at most (the server caps it at 500).
            after: The page starts below this place (the last row of the previous page).
            search: Only chats whose title contains it (any case), out of all of the user's chats.
            ids: Only these chats (at most 500), wherever they are in the list; ``limit`` and ``after`` do
                not apply.
        """
        params: dict[str, Any] = {"p_limit": limit}
        if after is not None:
            params["p_before_activity"] = after.activity_at.isoformat()
            params["p_before_id"] = str(after.chat_id)
        if search is not None and search.strip():
            params["p_search"] = search.strip()
        if ids is not None:
            if len(ids) > MAX_CHATS_PER_CALL:
                raise Bug(f"fetch_chat_list: at most {MAX_CHATS_PER_CALL} ids at a time")
            params["p_ids"] = [str(chat_id) for chat_id in ids]
        rows = await self._rows("chat_list", lambda: self.client.rpc("chat_list", params).execute())
        return [_summary(row) for row in rows]

    async def fetch_chat_details(self, chat_id: ChatId) -> ChatDetails | None:
        """The chat, its member count and the members the chat view names, or None when the chat does not
        exist for this user."""
        params = {"p_session": str(chat_id), "p_member_limit": DETAILS_MEMBERS}
        response = await self._call("chat_details", lambda: self.client.rpc("chat_details", params).execute())
        if response.data is None or response.data == []:
            return None
        return ChatDetails.model_validate(response.data)

    async def fetch_members_page(
        self, chat_id: ChatId, after: ChatMember | None = None, limit: int = 100
    ) -> MemberPage:
        """Members of a chat in joining order, after ``after`` (the last one of the previous page)."""
        params: dict[str, Any] = {"p_session": str(chat_id), "p_limit": limit + 1}
        if after is not None:
            params["p_after_joined_at"] = after.joined_at.isoformat()
            params["p_after_user"] = str(after.user_id)
        rows = await self._rows("chat_members_page", lambda: self.client.rpc("chat_members_page", params).execute())
        members = tuple(_member(row) for row in rows[:limit])
        count = rows[0].get("member_count") if rows and after is None else None
        return MemberPage(chat_id=chat_id, members=members, member_count=count, has_more=len(rows) > limit)

    async def fetch_changes_since(self, cursors: Mapping[ChatId, int], limit: int = 500) -> list[ChatChanges]:
        """The back-fill of many chats in one round trip (``changes_since()``): for each chat whose newest rev
        is above its cursor, its messages above the cursor by rev (``limit`` in all, chat by chat in the
        order given), and the chats the user can no longer see. Chats that did not move are left out."""
        if len(cursors) > 1000:
            raise Bug("fetch_changes_since: at most 1000 chats at a time")
        if not cursors:
            return []
        params = {
            "p_chats": [str(chat_id) for chat_id in cursors],
            "p_revs": list(cursors.values()),
            "p_limit": limit,
        }
        rows = await self._rows("changes_since", lambda: self.client.rpc("changes_since", params).execute())
        return _changes.validate_python(rows)

    async def fetch_messages(self, chat_id: ChatId, before_seq: int | None = None, limit: int = 50) -> MessagePage:
        """Up to ``limit`` messages older than ``before_seq`` (the newest ones when None), ascending."""

        def query() -> Awaitable[Any]:
            builder = self.client.table("chat_messages").select(MESSAGE_COLUMNS).eq("session_id", str(chat_id))
            if before_seq is not None:
                builder = builder.lt("seq", before_seq)
            return builder.order("seq", desc=True).limit(limit + 1).execute()

        rows = await self._rows("messages_page", query)
        messages = _messages.validate_python(rows[:limit])
        return MessagePage(chat_id=chat_id, messages=tuple(reversed(messages)), has_more=len(rows) > limit)

    async def fetch_messages_after(self, chat_id: ChatId, after_seq: int, limit: int = 50) -> MessagePage:
        """Up to ``limit`` messages newer than ``after_seq``, ascending; ``has_more``: there are newer ones still."""

        def query() -> Awaitable[Any]:
            return (
                self.client.table("chat_messages")
                .select(MESSAGE_COLUMNS)
                .eq("session_id", str(chat_id))
                .gt("seq", after_seq)
                .order("seq")
                .limit(limit + 1)
                .execute()
            )

        rows = await self._rows("messages_after", query)
        messages = _messages.validate_python(rows[:limit])
        return MessagePage(chat_id=chat_id, messages=tuple(messages), has_more=len(rows) > limit)

    async def fetch_messages_since(self, chat_id: ChatId, after_rev: int, limit: int = 500) -> list[Message]:
        """Messages of the chat whose ``rev`` is above ``after_rev``, by rev (the back-fill query)."""
        rows = await self._rows(
            "messages_since",
            lambda: (
                self.client.table("chat_messages")
                .select(MESSAGE_COLUMNS)
                .eq("session_id", str(chat_id))
                .gt("rev", after_rev)
                .order("rev")
                .limit(limit)
                .execute()
            ),
        )
        return _messages.validate_python(rows)

    async def fetch_message(self, message_id: MessageId, chat_id: ChatId | None = None) -> Message | None:
        """The message, in ``chat_id`` when given (an id is unique within its chat only)."""

        def query() -> Awaitable[Any]:
            builder = self.client.table("chat_messages").select(MESSAGE_COLUMNS).eq("id", str(message_id))
            if chat_id is not None:
                builder = builder.eq("session_id", str(chat_id))
            return builder.execute()

        rows = await self._rows("message", query)
        return Message.model_validate(rows[0]) if rows else None

    async def fetch_messages_by_id(self, chat_id: ChatId, message_ids: Sequence[MessageId]) -> list[Message]:
        """The stored messages of those ids in that chat (those it can see), in ``seq`` order."""
        if not message_ids:
            return []
        rows = await self._rows(
            "messages_by_id",
            lambda: (
                self.client.table("chat_messages")
                .select(MESSAGE_COLUMNS)
                .eq("session_id", str(chat_id))
                .in_("id", [str(message_id) for message_id in message_ids])
                .order("seq")
                .execute()
            ),
        )
        return _messages.validate_python(rows)

    async def find_profile_by_email(self, email: str) -> Profile | None:
        rows = await self._rows(
            "find_profile", lambda: self.client.rpc("find_profile_by_email", {"p_email": email.strip()}).execute()
        )
        return Profile.model_validate(rows[0]) if rows else None

    async def count_messages(self, chat_id: ChatId) -> int:
        from postgrest import CountMethod  # loaded with the client, which ``_call`` builds first

        response = await self._call(
            "count_messages",
            lambda: (
                self.client.table("chat_messages")
                .select("id", count=CountMethod.exact, head=True)
                .eq("session_id", str(chat_id))
                .execute()
            ),
        )
        return int(response.count or 0)

    # --- writes ------------------------------------------------------------------------------------
    async def insert_message(
        self, message_id: MessageId, chat_id: ChatId, content: str, *, reply_to: MessageId | None = None
    ) -> Message | None:
        """Store a message idempotently (``on conflict (id, session_id) do nothing``).

        ``reply_to`` names the message of the same chat it answers (the database refuses another chat's
        or a missing one: ``InvalidInput``). Returns the stored row, or None when a row with this id
        already existed (an earlier attempt got through); the caller fetches it then.
        """
        row = {"id": str(message_id), "session_id": str(chat_id), "content": content}
        if reply_to is not None:
            row["reply_to"] = str(reply_to)
        rows = await self._rows(
            "insert_message",
            lambda: (
                self.client.table("chat_messages")
                .upsert(row, on_conflict=MESSAGE_KEY, ignore_duplicates=True)
                .execute()
            ),
        )
        return Message.model_validate(rows[0]) if rows else None

    async def insert_messages(self, chat_id: ChatId, messages: Sequence[OutgoingRow]) -> list[Message]:
        """Store a backlog of one chat's messages, ``(id, content, reply_to)`` in send order, in one request.

        One ``insert ... on conflict (id, session_id) do nothing`` of every row: the server gives them
        their ``seq`` in the order of the body, and a row an earlier attempt already stored is skipped, so
        a retry of the whole batch doubles nothing. Returns the rows this request stored (the skipped ones
        are not among them: ``fetch_messages_by_id`` reads those). One refused row refuses them all.
        """
        # Every row names the same columns (PostgREST inserts the first row's keys): no reply is null.
        body = [
            {
                "id": str(message_id),
                "session_id": str(chat_id),
                "content": content,
                "reply_to": str(reply_to) if reply_to is not None else None,
            }
            for message_id, content, reply_to in messages
        ]
        rows = await self._rows(
            "insert_messages",
            lambda: (
                self.client.table("chat_messages")
                .upsert(body, on_conflict=MESSAGE_KEY, ignore_duplicates=True)
                .execute()
            ),
        )
        return _messages.validate_python(rows)

    async def edit_message(self, message_id: MessageId, content: str) -> Message | None:
        rows = await self._rows(
            "edit_message",
            lambda: self.client.table("chat_messages").update({"content": content}).eq("id", str(message_id)).execute(),
        )
        return Message.model_validate(rows[0]) if rows else None

    async def delete_message(self, message_id: MessageId) -> Message | None:
        rows = await self._rows(
            "delete_message",
            lambda: (
                self.client.table("chat_messages")
                .update({"deleted_at": "now"})  # the server dates the deletion itself
                .eq("id", str(message_id))
                .execute()
            ),
        )
        return Message.model_validate(rows[0]) if rows else None

    async def create_chat(self, chat_id: ChatId, title: str) -> Chat:
        rows = await self._rows(
            "create_chat",
            lambda: self.client.table("chat_sessions").insert({"id": str(chat_id), "title": title}).execute(),
        )
        if not rows:
            raise Bug("create_chat returned no row")
        return Chat.model_validate(rows[0])

    async def update_chat(self, chat_id: ChatId, changes: dict[str, Any]) -> Chat | None:
        rows = await self._rows(
            "update_chat",
            lambda: self.client.table("chat_sessions").update(changes).eq("id", str(chat_id)).execute(),
        )
        return Chat.model_validate(rows[0]) if rows else None

    async def add_members(self, chat_id: ChatId, user_ids: Sequence[UserId]) -> list[ChatMember]:
        if not user_ids:
            return []
        payload = [{"session_id": str(chat_id), "user_id": str(user)} for user in user_ids]
        rows = await self._rows("add_members", lambda: self.client.table("chat_members").insert(payload).execute())
        return [ChatMember.model_validate(row) for row in rows]

    async def remove_member(self, chat_id: ChatId, user_id: UserId) -> bool:
        rows = await self._rows(
            "remove_member",
            lambda: (
                self.client.table("chat_members")
                .delete()
                .eq("session_id", str(chat_id))
                .eq("user_id", str(user_id))
                .execute()
            ),
        )
        return bool(rows)

    async def mark_read(self, chat_id: ChatId, user_id: UserId, seq: int) -> int | None:
        """Move the read position forward; returns the stored value (the database clamps it)."""
        rows = await self._rows(
            "mark_read",
            lambda: (
                self.client.table("chat_members")
                .update({"last_read_seq": seq})
                .eq("session_id", str(chat_id))
                .eq("user_id", str(user_id))
                .execute()
            ),
        )
        return int(rows[0]["last_read_seq"]) if rows else None

    # --- search, reactions, read receipts (migrations 20261205100000-20261205100200) ---------------
    async def search_messages(
        self,
        query: str,
        chat_id: ChatId | None = None,
        cursor: SearchCursor | None = None,
        limit: int = 30,
    ) -> SearchPage:
        """Messages the user can see that contain every word of ``query`` (each as a prefix), newest first.

        In one chat, or in all of the user's chats (not deleted) when ``chat_id`` is None; ``cursor`` is
        the previous page's ``next_cursor``. Blank text, or text with nothing searchable in it (only
        punctuation), finds nothing. Longer than ``MAX_SEARCH_CHARS``: ``InvalidInput``.
        """
        validate_search_text(query)
        if not query.strip():
            return SearchPage()
        limit = max(1, min(limit, 99))
        params = {
            "p_query": query,
            "p_chat_id": str(chat_id) if chat_id is not None else None,
            "p_before_at": cursor.before_at.isoformat() if cursor is not None else None,
            "p_before_id": str(cursor.before_id) if cursor is not None else None,
            # One more than asked: whether there is a next page, without a second call.
            "p_limit": limit + 1,
        }
        rows = await self._rows("search_messages", lambda: self.client.rpc("search_messages", params).execute())
        hits = _hits.validate_python(rows)
        more = len(hits) > limit
        hits = hits[:limit]
        return SearchPage(hits=tuple(hits), next_cursor=hits[-1].cursor if more else None)

    def _own_id(self) -> UserId:
        if self.session is None:
            raise Bug("reactions need a signed-in user")
        return self.session.user_id

    async def add_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        """React to a message; idempotent (``on conflict do nothing``), so an outbox may send it again.

        True when this call added it, False when it was there already. The message's ``reactions`` and
        ``rev`` change with it (the ``message`` broadcast and the back-fill bring them).
        """
        row = {
            "session_id": str(chat_id),
            "message_id": str(message_id),
            "user_id": str(self._own_id()),
            "emoji": validate_emoji(emoji),
        }
        rows = await self._rows(
            "add_reaction",
            lambda: (
                self.client.table("message_reactions")
                .upsert(row, on_conflict="session_id,message_id,user_id,emoji", ignore_duplicates=True)
                .execute()
            ),
        )
        return bool(rows)

    async def remove_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        """Take one's reaction back (a delete by the whole key: idempotent). True when one was removed."""
        rows = await self._rows(
            "remove_reaction",
            lambda: (
                self.client.table("message_reactions")
                .delete()
                .eq("session_id", str(chat_id))
                .eq("message_id", str(message_id))
                .eq("user_id", str(self._own_id()))
                .eq("emoji", emoji)
                .execute()
            ),
        )
        return bool(rows)

    async def fetch_reactions(
        self, chat_id: ChatId, from_seq: int, to_seq: int, users: int = 10
    ) -> list[ReactionDetail]:
        """Who reacted to the messages ``from_seq..to_seq`` (at most 500) of a chat, one row per emoji.

        Ordered by seq, then by when the emoji was first used; ``users`` bounds the names per emoji.
        """
        params = {"p_session": str(chat_id), "p_from_seq": from_seq, "p_to_seq": to_seq, "p_users": users}
        rows = await self._rows("message_reactions", lambda: self.client.rpc("message_reactions", params).execute())
        return _reaction_details.validate_python(rows)

    async def fetch_read_positions(self, chat_id: ChatId, limit: int = 100) -> ReadPositions:
        """Members' read positions, furthest first (at most ``limit``), with the number of members."""
        params = {"p_session": str(chat_id), "p_limit": limit}
        rows = await self._rows("read_positions", lambda: self.client.rpc("read_positions", params).execute())
        return ReadPositions(
            chat_id=chat_id,
            positions=tuple(ReadPosition.model_validate(row) for row in rows),
            member_count=int(rows[0]["member_count"]) if rows else 0,
        )

    async def fetch_read_receipts(self, chat_id: ChatId, from_seq: int, to_seq: int) -> list[ReadReceipt]:
        """For each message ``from_seq..to_seq`` (at most 500): how many others have read it, of how many."""
        params = {"p_session": str(chat_id), "p_from_seq": from_seq, "p_to_seq": to_seq}
        rows = await self._rows("read_receipts", lambda: self.client.rpc("read_receipts", params).execute())
        return _receipts.validate_python(rows)

    async def fetch_message_readers(self, chat_id: ChatId, seq: int, limit: int = 20) -> list[MessageReader]:
        """Who has read message ``seq`` (its sender left out), with names, at most ``limit``."""
        params = {"p_session": str(chat_id), "p_seq": seq, "p_limit": limit}
        rows = await self._rows("message_readers", lambda: self.client.rpc("message_readers", params).execute())
        return _readers.validate_python(rows)
