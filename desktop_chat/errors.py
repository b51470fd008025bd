"""The error tree of desktop-chat.

Errors split into "the environment failed" (show a banner, retry later) and "we have a bug" (show the
crash dialog, write a report). Everything the data layer raises to the UI on purpose is a
``DesktopChatError``; ``Bug`` stands apart, so that ``except DesktopChatError`` never swallows one::

    DesktopChatError                expected: the user gets a sentence
    ├── EnvironmentFailure          the world is not as needed; retrying later can help
    │   ├── BackendUnavailable      Supabase unreachable, timed out, or answered 5xx
    │   └── LocalStorageError       the outbox or settings file cannot be read or written
    ├── AuthError                   who you are is the problem
    │   ├── NotSignedIn             no session
    │   └── Unauthorized            credentials wrong, or the session expired and cannot refresh
    ├── Rejected                    the server understood and said no (constraint, permission)
    └── InvalidInput                refused before sending: the input breaks a known limit

    Bug                             an impossible state or a malformed reply: our fault (crash dialog)

A cache that fails (Redis down, slow, full) raises nothing: the cache falls back to memory and says so in
its status.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BackendUnavailable",
    "Bug",
    "DesktopChatError",
    "EnvironmentFailure",
    "InvalidInput",
    "LocalStorageError",
    "NotSignedIn",
    "Rejected",
    "Unauthorized",
]


class DesktopChatError(Exception):
    """Base of every error the application raises on purpose.

    Args:
        message: A sentence for the user, in plain words.
        code: A machine-readable code when there is one (a SQLSTATE, a GoTrue error code).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class EnvironmentFailure(DesktopChatError):
    """Something outside the app failed; the same request may succeed later."""


class BackendUnavailable(EnvironmentFailure):
    """Supabase could not be reached, timed out, or answered with a server error."""


class LocalStorageError(EnvironmentFailure):
    """A local file (outbox database, settings, keyring fallback) cannot be used."""


class AuthError(DesktopChatError):
    """Authentication is missing or no longer valid."""


class NotSignedIn(AuthError):
    """An operation needs a signed-in user and there is none."""


class Unauthorized(AuthError):
    """Wrong credentials, or a session that expired and could not be refreshed."""


class Rejected(DesktopChatError):
    """The server refused the request for good: a constraint, a validation rule or a policy."""


class InvalidInput(DesktopChatError):
    """Input refused before it was sent, because it breaks a limit the server would enforce."""


class Bug(Exception):
    """A state that should be impossible, or a reply that does not match the contract.

    Not a ``DesktopChatError``: handlers of expected failures let it through to the crash handler.

    Args:
        message: What went wrong, for the crash report.
        code: A machine-readable code when there is one (a PostgREST code).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
