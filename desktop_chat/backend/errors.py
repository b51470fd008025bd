"""Map what the supabase client raises onto desktop_chat.errors, in words a person understands."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pydantic

from desktop_chat.errors import (
    BackendUnavailable,
    Bug,
    DesktopChatError,
    InvalidInput,
    NotSignedIn,
    Rejected,
    Unauthorized,
)

if TYPE_CHECKING:
    # The client libraries are imported when an error is mapped (``map_error``), not with this module:
    # the first frame imports the backend, and the libraries come after it (docs/architecture.md §10).
    from postgrest import APIError
    from supabase_auth.errors import AuthError

# PostgREST's JWT errors: the session expired or the token is not accepted.
_JWT_CODES = {"PGRST301", "PGRST302", "PGRST303", "401"}
# SQLSTATEs that say the database is away or busy for now, whatever the HTTP status they came with:
# connection exceptions (08), insufficient resources (53, but 53400, a configured limit), a database
# shutting down, crashed or starting up (57P01..57P03), a serialization failure or deadlock (40001,
# 40P01), a lock not available (55P03).
_TRANSIENT_CLASSES = ("08", "53")
_TRANSIENT_CODES = {"57P01", "57P02", "57P03", "40001", "40P01", "55P03"}


def _transient(code: str) -> bool:
    return code in _TRANSIENT_CODES or (code.startswith(_TRANSIENT_CLASSES) and code != "53400")


_AUTH_MESSAGES = {
    "invalid_credentials": (Unauthorized, "Wrong email or password."),
    "user_already_exists": (Rejected, "An account with this email address already exists."),
    "email_exists": (Rejected, "An account with this email address already exists."),
    "email_address_invalid": (InvalidInput, "That email address is not valid."),
    "validation_failed": (InvalidInput, "Please enter a valid email address and password."),
    "refresh_token_not_found": (Unauthorized, "Your session has ended. Please sign in again."),
    "refresh_token_already_used": (Unauthorized, "Your session has ended. Please sign in again."),
    "session_not_found": (Unauthorized, "Your session has ended. Please sign in again."),
    "session_expired": (Unauthorized, "Your session has ended. Please sign in again."),
    "bad_jwt": (Unauthorized, "Your session has ended. Please sign in again."),
    "signup_disabled": (Rejected, "This server does not accept new accounts."),
    "over_request_rate_limit": (Rejected, "Too many attempts. Please wait a moment and try again."),
}


def _from_postgrest(error: APIError, server: str, status: int | None) -> DesktopChatError | Bug:
    code = str(error.code or "")
    message = str(error.message or "")
    if not code and status == 401 and "api key" in message.lower():
        # Supabase's API gateway, before PostgREST: {"message": "Invalid API key", "hint": …}, no code.
        return Unauthorized("The server does not accept the app's project key.", code="invalid_api_key")
    if code in _JWT_CODES:
        return Unauthorized("Your session has expired.", code=code)
    if code.startswith("PGRST0"):
        # PGRST0xx are PostgREST's connection errors: the database behind it is unreachable.
        return BackendUnavailable(f"The server at {server} cannot reach its database.", code=code)
    if status is not None and status >= 500:
        # Whatever the code, a 5xx is the server's trouble, not the request's: it may pass, so the request is
        # retried (a message stays pending) rather than reported as the app's bug.
        return BackendUnavailable(f"The server at {server} is having trouble (HTTP {status}, {code}).", code=code)
    if _transient(code):
        return BackendUnavailable(f"The server at {server} cannot use its database right now ({code}).", code=code)
    if code == "42501":
        return Rejected("You are not allowed to do that (you may have been removed from the chat).", code=code)
    if code == "23505":
        return Rejected("That already exists.", code=code)
    if code == "23503" and "chat_messages_reply_in_same_chat" in message:
        return Rejected("The message you replied to is not in this chat.", code=code)
    if code == "23503" and "message_reactions" in message:
        return Rejected("That message is not in this chat (or no longer exists).", code=code)
    if code == "23503":
        return Rejected("The chat no longer exists, or that person has no account.", code=code)
    if code in {"23514", "23502"}:
        return Rejected(f"The server refused the data: {message}", code=code)
    if code.startswith("22"):
        return Rejected(f"The server refused a value: {message}", code=code)
    if len(code) == 3 and code.isdigit() and int(code) >= 500:
        # A body that was not PostgREST's (a proxy's error page): the client puts the status in ``code``.
        return BackendUnavailable(f"The server at {server} is having trouble (HTTP {code}).", code=code)
    return Bug(f"The server rejected a request the app should not have made ({code}: {message}).", code=code)


def _from_auth(error: AuthError, server: str) -> DesktopChatError | Bug:
    from supabase_auth.errors import (
        AuthApiError,
        AuthRetryableError,
        AuthSessionMissingError,
        AuthUnknownError,
        AuthWeakPasswordError,
    )

    if isinstance(error, AuthWeakPasswordError):
        reasons = ", ".join(error.reasons) if error.reasons else "too short"
        return InvalidInput(f"That password is too weak ({reasons}); use at least 6 characters.", code="weak_password")
    if isinstance(error, AuthRetryableError):
        return BackendUnavailable(f"Cannot reach the server at {server}.", code=str(error.status))
    if isinstance(error, AuthSessionMissingError):
        return NotSignedIn("You are not signed in.")
    if isinstance(error, AuthUnknownError):
        return BackendUnavailable(f"The server at {server} answered in a way the app did not understand.")
    code = str(error.code) if error.code else None
    if code in _AUTH_MESSAGES:
        kind, text = _AUTH_MESSAGES[code]
        return kind(text, code=code)
    if isinstance(error, AuthApiError):
        if error.status == 401 and "api key" in (error.message or "").lower():
            # Supabase's API gateway, before GoTrue: {"message": "Invalid API key", "hint": …}.
            return Unauthorized("The server does not accept the app's project key.", code="invalid_api_key")
        if error.status >= 500:
            return BackendUnavailable(f"The server at {server} is having trouble (HTTP {error.status}).", code=code)
        if error.status in {401, 403}:
            return Unauthorized("Your session has ended. Please sign in again.", code=code)
        return Rejected(error.message or "The server refused the request.", code=code)
    return Bug(f"Unexpected sign-in error: {error.message}", code=code)


def map_error(error: BaseException, server: str, *, status: int | None = None) -> DesktopChatError | Bug:
    """Translate an exception from the supabase client stack into our error tree (or a Bug: a reply we never expect).

    ``status`` is the HTTP status of the response the error was made from, when known: the PostgREST
    client keeps only the body's code, and an unknown code with a 5xx status is the server's trouble.
    """
    if isinstance(error, (DesktopChatError, Bug)):
        return error
    # Imported here (cached after the first error): an error from them means they are loaded already.
    import httpx
    from postgrest import APIError
    from supabase_auth.errors import AuthError

    if isinstance(error, APIError):
        return _from_postgrest(error, server, status)
    if isinstance(error, AuthError):
        return _from_auth(error, server)
    if isinstance(error, (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException)):
        return BackendUnavailable(f"The server at {server} did not answer in time.")
    if isinstance(error, (httpx.TransportError, OSError)):
        return BackendUnavailable(f"Cannot reach the server at {server}.")
    if isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 401:
        # A raw call (the health check) refused by the API gateway's key check.
        return Unauthorized("The server does not accept the app's project key.", code="invalid_api_key")
    if isinstance(error, httpx.HTTPStatusError) and error.response.status_code >= 500:
        return BackendUnavailable(f"The server at {server} is having trouble (HTTP {error.response.status_code}).")
    if isinstance(error, pydantic.ValidationError):
        return Bug(f"The server's reply did not match what the app expects: {error.error_count()} problem(s).")
    return Bug(f"Unexpected error talking to the server: {type(error).__name__}")
