"""Who is signed in: sign in, sign up, restore, refresh and sign out over the official client.

The refresh token (never the whole session) is kept in the OS keyring so the next start signs in
without a password. The library's own refresh timer gives up silently after a few failures, so this
class refreshes on its own schedule instead: shortly before expiry, and with backoff while the server
cannot be reached, for as long as the user stays signed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from desktop_chat.backend.connections import CallDeadlines
from desktop_chat.backend.errors import map_error
from desktop_chat.backend.session_state import CallVerdict, SessionEvent, SessionState, call_verdict, next_state
from desktop_chat.errors import AuthError, BackendUnavailable, Bug, EnvironmentFailure, NotSignedIn, Unauthorized
from desktop_chat.models import UserId
from desktop_chat.secrets import SecretStore

if TYPE_CHECKING:
    # Annotations only: the official client is built, and its modules imported, when the first auth call
    # goes out (behind the first paint when a saved session is restored; docs/architecture.md §10).
    from supabase import AsyncClient
    from supabase_auth import AsyncGoTrueClient
    from supabase_auth.types import AuthResponse, Session

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """The signed-in user and the current access token (never logged)."""

    user_id: UserId
    email: str
    access_token: str
    expires_at: float  # epoch seconds

    def __repr__(self) -> str:
        return f"SessionInfo(user_id={self.user_id}, expires_at={self.expires_at:.0f})"


SessionListener = Callable[[SessionInfo | None], None]
StateListener = Callable[[SessionState], None]


class AuthSession:
    """Owns the auth half of the client.

    Args:
        client: Gives the official async client (created with ``auto_refresh_token=False``), built on
            the first call that needs it (``SupabaseBackend.connected``).
        secrets: Where the refresh token is kept between runs.
        server: The Supabase URL, used in messages and as part of the keyring entry name.
        timeout: Seconds allowed for each auth call.
        deadlines: Where the calls' deadlines are kept, so that the backend can end them all when the
            path to the server goes silent (a private set when omitted).
    """

    def __init__(
        self,
        client: Callable[[], Awaitable[AsyncClient]],
        secrets: SecretStore,
        server: str,
        timeout: float,
        deadlines: CallDeadlines | None = None,
    ) -> None:
        self._connect = client
        self._client: AsyncClient | None = None
        self._deadlines = deadlines or CallDeadlines()
        self._secrets = secrets
        self._server = server
        self._timeout = timeout
        self._session: SessionInfo | None = None
        self._listeners: list[SessionListener] = []
        self._refresher: asyncio.Task[None] | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._refresh_lock = asyncio.Lock()
        self._state = SessionState.SIGNED_OUT
        self._state_listeners: list[StateListener] = []
        self._answered = asyncio.Event()  # set whenever the state is not RESTORING
        self._answered.set()
        self._confirming: asyncio.Task[SessionInfo | None] | None = None

    @property
    def secret_name(self) -> str:
        return f"refresh-token {self._server}"

    @property
    def identity_name(self) -> str:
        return f"identity {self._server}"

    @property
    def current(self) -> SessionInfo | None:
        return self._session

    @property
    def state(self) -> SessionState:
        """Where the session stands (``desktop_chat.backend.session_state``)."""
        return self._state

    def subscribe_state(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener`` with the new state whenever it changes."""
        self._state_listeners.append(listener)
        return lambda: self._state_listeners.remove(listener) if listener in self._state_listeners else None

    def _move(self, event: SessionEvent) -> None:
        before, self._state = self._state, next_state(self._state, event)
        if self._state is SessionState.RESTORING:
            self._answered.clear()
        else:
            self._answered.set()
        if self._state is before:
            return
        log.info("Session %s -> %s (%s)", before.value, self._state.value, event.value)
        for listener in list(self._state_listeners):
            try:
                listener(self._state)
            except Exception:  # a listener's bug must not break the session
                log.exception("session state listener failed")

    async def usable(self) -> None:
        """Return when a call to Supabase may go out: at once when confirmed (or signed out), after the
        answer while the saved session is being confirmed.

        Raises:
            BackendUnavailable: the saved session could not be confirmed (the server is away).
            NotSignedIn: the session ended while the call waited (refused, or signed out).
        """
        waited = False
        while (verdict := call_verdict(self._state)) is CallVerdict.WAIT:
            waited = True
            await self._answered.wait()
        if verdict is CallVerdict.UNAVAILABLE:
            # The same sentence as the status line's (SignedIn.session_state_changed).
            raise BackendUnavailable(f"Cannot reach {self._server}; showing what is saved on this computer.")
        if waited and self._state is SessionState.SIGNED_OUT:
            raise NotSignedIn("You are not signed in.")

    def remember_identity(self, user_id: UserId, email: str, display_name: str) -> None:
        """Who signed in last (not a secret, kept beside the token): lets the app start offline."""
        self._secrets.set(
            self.identity_name, json.dumps({"user_id": str(user_id), "email": email, "display_name": display_name})
        )

    def saved_identity(self) -> tuple[UserId, str, str] | None:
        """The identity saved with the refresh token, when both are there."""
        if not self._secrets.get(self.secret_name):
            return None
        raw = self._secrets.get(self.identity_name)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return (UserId(uuid.UUID(data["user_id"])), str(data["email"]), str(data["display_name"]))
        except (ValueError, TypeError, KeyError):
            return None

    def begin_restore(self) -> None:
        """The saved identity is being shown: confirm the saved refresh token in the background.

        Calls wait for the answer (``usable``). Confirmed: listeners hear the session. Unreachable: the
        state is ``OFFLINE`` and the token is tried again with backoff. Refused: the token is forgotten
        and listeners hear None (the window goes back to sign-in).
        """
        self._move(SessionEvent.RESTORE)
        self._confirming = asyncio.get_running_loop().create_task(self._confirm(), name="session-confirm")

    async def confirmed(self) -> SessionInfo | None:
        """The answer of the confirmation begun by ``begin_restore`` (None: unreachable or refused)."""
        if self._confirming is None:
            return self._session
        return await asyncio.shield(self._confirming)

    async def _confirm(self) -> SessionInfo | None:
        token = self._secrets.get(self.secret_name)
        try:
            if not token:
                raise Unauthorized("The saved session is gone.")
            response = await self.call(lambda: self._gotrue.refresh_session(token))
            return self._accept(response)
        except EnvironmentFailure:
            log.info("The server cannot be reached; showing what is saved until it can")
            self._move(SessionEvent.UNREACHABLE)
            self.reconnect_in_background()
            return None
        except AuthError:
            log.info("The saved session is no longer valid; signing in is needed")
            await self._ended()
            return None
        except BaseException:
            # Cancelled, or a bug: nothing may wait for an answer that will not come.
            if self._state is SessionState.RESTORING:
                self._move(SessionEvent.UNREACHABLE)
            raise

    def reconnect_in_background(self) -> None:
        """Keep trying the saved refresh token (with backoff) until the server answers; listeners hear
        the session when it does, or None if the server refuses the token."""
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(
                self._reconnect_forever(), name="session-reconnect"
            )

    async def _reconnect_forever(self) -> None:
        backoff = 1.0
        while self._session is None and self._state is SessionState.OFFLINE:
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 30.0)
            token = self._secrets.get(self.secret_name)
            if not token:
                return
            try:
                response = await self.call(partial(self._gotrue.refresh_session, token))
            except EnvironmentFailure:
                continue
            except AuthError:
                await self._ended()
                return
            self._accept(response)

    def require(self) -> SessionInfo:
        if self._session is None:
            raise NotSignedIn("You are not signed in.")
        return self._session

    def subscribe(self, listener: SessionListener) -> Callable[[], None]:
        """Call ``listener`` with the new session after sign-in and each refresh, and None on sign-out."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def _gotrue(self) -> AsyncGoTrueClient:
        """The official client's auth part (``call`` has built the client before it runs an operation)."""
        if self._client is None:
            raise Bug("AuthSession used its client before building it")
        return self._client.auth

    async def _ready(self) -> None:
        if self._client is None:
            self._client = await self._connect()

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one auth call with the timeout, translating errors (the client is built first, outside it)."""
        await self._ready()
        try:
            async with self._deadlines.within(self._timeout):
                return await operation()
        except Exception as error:
            raise map_error(error, self._server) from error

    # --- the four ways in and out ------------------------------------------------------------------
    async def sign_in(self, email: str, password: str) -> SessionInfo:
        response = await self.call(
            lambda: self._gotrue.sign_in_with_password({"email": email.strip(), "password": password})
        )
        return self._accept(response)

    async def sign_up(self, email: str, password: str, display_name: str) -> SessionInfo:
        response = await self.call(
            lambda: self._gotrue.sign_up(
                {"email": email.strip(), "password": password, "options": {"data": {"display_name": display_name}}}
            )
        )
        if response.session is None:
            # A hosted project with e-mail confirmation on: the account exists but is not active yet.
            raise Unauthorized("Check your email to confirm the account, then sign in.")
        return self._accept(response)

    async def restore(self) -> SessionInfo | None:
        """Sign in with the stored refresh token; None when there is none or it no longer works.

        A server that cannot be reached raises (BackendUnavailable) and keeps the token for later.
        """
        token = self._secrets.get(self.secret_name)
        if not token:
            return None
        try:
            response = await self.call(lambda: self._gotrue.refresh_session(token))
        except AuthError:
            log.info("The stored session is no longer valid; signing in is needed")
            self._secrets.delete(self.secret_name)
            self._move(SessionEvent.REFUSED)
            return None
        return self._accept(response)

    async def sign_out(self) -> None:
        """Revoke the session on the server when possible, and always forget it locally."""
        self._stop_refresher()
        for task in (self._reconnecting, self._confirming):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        had_session = self._session is not None
        self._session = None
        self._move(SessionEvent.SIGNED_OUT)
        self._secrets.delete(self.secret_name)
        self._secrets.delete(self.identity_name)
        if had_session:
            try:
                await self.call(lambda: self._gotrue.sign_out({"scope": "local"}))
            except EnvironmentFailure:
                log.info("Signed out locally; the server could not be told")
        self._notify()

    # --- refreshing --------------------------------------------------------------------------------
    async def refresh(self) -> SessionInfo:
        """Get a new access token now (e.g. after a 401). Concurrent callers share one refresh."""
        before = self._session
        async with self._refresh_lock:
            if self._session is not None and self._session is not before:
                return self._session  # someone else refreshed while we waited
            await self._ready()
            session = await self._gotrue.get_session()
            token = session.refresh_token if session else self._secrets.get(self.secret_name)
            if not token:
                raise NotSignedIn("You are not signed in.")
            try:
                response = await self.call(lambda: self._gotrue.refresh_session(token))
            except Unauthorized:
                await self._ended()
                raise
            return self._accept(response)

    def _accept(self, response: AuthResponse) -> SessionInfo:
        session = response.session
        if session is None or response.user is None:
            raise Unauthorized("The server did not start a session.")
        info = self._info(session)
        self._session = info
        self._secrets.set(self.secret_name, session.refresh_token)
        self._move(SessionEvent.CONFIRMED)
        self._start_refresher()
        self._notify()
        return info

    @staticmethod
    def _info(session: Session) -> SessionInfo:
        expires_at = float(session.expires_at or (time.time() + session.expires_in))
        return SessionInfo(
            user_id=UserId(uuid.UUID(session.user.id)),
            email=session.user.email or "",
            access_token=session.access_token,
            expires_at=expires_at,
        )

    def _start_refresher(self) -> None:
        """Make sure the refresh loop runs and reconsiders its schedule (a new session arrived)."""
        self._changed.set()
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever(), name="session-refresh")

    def _stop_refresher(self) -> None:
        task, self._refresher = self._refresher, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _refresh_forever(self) -> None:
        backoff = 1.0
        while self._session is not None:
            self._changed.clear()
            lifetime = max(self._session.expires_at - time.time(), 0.0)
            # Refresh with a tenth of the lifetime left (at least 5 s before expiry when possible).
            margin = min(max(lifetime * 0.1, 5.0), lifetime * 0.5)
            try:
                async with asyncio.timeout(max(lifetime - margin, 0.0)):
                    await self._changed.wait()
                continue  # signed in again or refreshed by someone else: new schedule
            except TimeoutError:
                pass
            try:
                await self.refresh()
                backoff = 1.0
            except EnvironmentFailure:
                # Offline: keep the session and try again soon. The access token may expire meanwhile;
                # requests then fail with Unauthorized and the next successful refresh recovers.
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 60.0)
            except AuthError:
                return

    async def _ended(self) -> None:
        log.info("The server ended the session")
        self._session = None
        self._secrets.delete(self.secret_name)
        self._move(SessionEvent.REFUSED)
        self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self._session)
            except Exception:  # a listener's bug must not break sign-in
                log.exception("session listener failed")

    async def close(self) -> None:
        for task in (self._refresher, self._reconnecting, self._confirming):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refresher = self._reconnecting = self._confirming = None
        if self._state is SessionState.RESTORING:
            self._move(SessionEvent.SIGNED_OUT)  # whatever waited for the confirmation stops waiting
