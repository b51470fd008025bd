"""Auth errors as GoTrue answers them: ``{"code", "message"}`` plus ``X-Supabase-Api-Version``.

The client reads ``code`` only when that header is present (see supabase-wire.md, "Auth errors"), so
every auth response carries it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.responses import Response

API_VERSION_HEADER = {"X-Supabase-Api-Version": "2024-01-01"}


class AuthError(Exception):
    """An error answered in GoTrue's shape; ``extra`` adds fields such as ``weak_password``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> Response:
        body = {"code": self.code, "message": self.message, **self.extra}
        return json_response(body, self.status)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body).encode(), status, headers=API_VERSION_HEADER, media_type="application/json")


def validation_failed(message: str, status: int = 400) -> AuthError:
    return AuthError(status, "validation_failed", message)


def invalid_credentials() -> AuthError:
    return AuthError(400, "invalid_credentials", "Invalid login credentials")


def weak_password(message: str) -> AuthError:
    return AuthError(422, "weak_password", message, weak_password={"reasons": ["length"]})


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_email(value: object) -> str:
    """The address, trimmed and lower-cased as GoTrue stores it, or GoTrue's validation error."""
    if not isinstance(value, str) or not value.strip():
        raise validation_failed("An email address is required")
    email = value.strip().lower()
    if len(email) > 255 or not _EMAIL.match(email):
        raise validation_failed("Unable to validate email address: invalid format")
    return email
